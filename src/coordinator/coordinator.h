// Coordinator: the service the meta region's leader runs for the cluster (DESIGN §5,
// docs/coordinator.md). Every coordinator-role node has one; only the one whose store leads the
// meta region answers, the others say who leads (CoordError.not_leader).
//
// What it keeps in memory (rebuilt by a new leader, never replicated):
//   - the timestamp oracle: timestamps `physical_ms << 18 | logical`, served from memory while
//     this node holds the meta region's lease, always below an upper bound persisted through
//     raft some seconds ahead (tso_window_ms). A new leader starts above the last persisted
//     bound and persists a new one before it serves, so no timestamp is handed out twice and
//     every timestamp is above every one handed out before (also across leader changes);
//   - a batch of ids reserved through raft (AllocIds), handed out from memory; a new leader
//     reserves a fresh batch (the old leader's unused ids are skipped, never reused);
//   - the latest store and region heartbeats (load, sizes, down peers), with their times.
// What it persists through the meta region: the bootstrap (cluster id), stores as they
// register or change address, regions as their epoch or leader changes, the TSO bound and the
// id high-water mark (coordinator/meta_state_machine.h).
//
// A node that becomes leader first "warms up": one command through raft (every entry of earlier
// terms is then applied here), the bootstrap if the cluster has none, the region list, and the
// TSO bound. Until then calls are answered with CoordError.retry.
//
// Thread-safety: every method may be called from any thread. `done` callbacks run on the
// caller's thread or the store's loop thread and must not block.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "micedb/coordinator.pb.h"
#include "micedb/store.pb.h"

namespace micedb::coordinator {

// The meta region's replica on this node, as the coordinator needs it (StoreMetaRegion adapts
// store::Store; tests use a fake).
class MetaRegion {
 public:
  virtual ~MetaRegion() = default;
  virtual NodeId self() const = 0;
  // The leader and term this replica last knew (leader invalid: none known).
  virtual std::pair<NodeId, uint64_t> LeaderAndTerm() const = 0;
  // Until when (the coordinator clock's monotonic ns) this node holds the meta region's lease.
  virtual int64_t LeaseUntilNs() const = 0;
  using Done = std::function<void(Result<MetaResult>)>;
  // Replicates `cmd` and answers with its result once applied here. Errors: Unavailable (not
  // the leader now, busy, no quorum in time: nothing or something may have applied).
  virtual void Propose(MetaCommand cmd, Done done) = 0;
  // As Propose, but appended only while this replica leads in `term` (Unavailable otherwise):
  // success means the entry committed in that term.
  virtual void ProposeInTerm(MetaCommand cmd, uint64_t term, Done done) = 0;
  // A linearizable read of the meta state.
  virtual void Read(MetaCommand cmd, Done done) = 0;
  // The meta region's voters and their peer addresses.
  virtual std::vector<store::NodeAddress> Members() const = 0;
  // The meta region as this replica sees it while it leads (descriptor, leader, pending
  // peers), for the replica checker; nullopt when it does not lead or cannot tell.
  virtual std::optional<RegionHeartbeat> Report() const { return std::nullopt; }
  // Runs one operator step on the meta region (this replica leads it): as a region leader
  // does with an operator from its heartbeat reply.
  virtual void RunOperator(const Operator& op) { (void)op; }
};

struct CoordinatorOptions {
  // The id a bootstrap records; the first leader's bootstrap wins (MetaCommand bootstrap).
  uint64_t cluster_id = 0;
  uint64_t first_id = 1024;  // ids below are the initial members' (and reserved)
  uint32_t max_replicas = 3;
  // How far ahead of the timestamps served the persisted TSO bound runs (PD: 3 s).
  int64_t tso_window_ms = 3000;
  uint64_t id_batch = 1000;
  // Without a heartbeat for this long a store is "disconnected", then "down".
  int64_t store_disconnected_ms = 10'000;
  int64_t store_down_ms = 60'000;
  // Scheduling (docs/sharding.md §3). Operators that move replicas time out after
  // operator_timeout_ms, leader transfers after leader_operator_timeout_ms (PD: 10 min, 10 s).
  int64_t operator_timeout_ms = 600'000;
  int64_t leader_operator_timeout_ms = 10'000;
  // Replicas being added to one store at a time (each a snapshot it receives).
  uint32_t store_limit = 4;
  // Operators under way at once, cluster-wide.
  uint32_t max_operators = 64;
  // The checkers run this often on the serving leader; 0 turns them off (operators added by
  // hand still run).
  int64_t schedule_interval_ms = 1000;
  // Balancing (docs/sharding.md §3): operators that move a leadership, and that move a replica
  // from the store with the most to the one with the fewest, under way at once (0: off).
  uint32_t balance_leader_limit = 4;
  uint32_t balance_region_limit = 8;
  // Hot regions (docs/sharding.md §3): a region whose leader reported at least hot_region_bytes
  // a second (read and written) in hot_region_reports reports in a row is hot. The hot ones'
  // load is spread over the stores by moving leaderships (reads and writes at the leader) and
  // replicas (writes, which every replica applies): at most balance_hot_limit at once (0: off).
  uint64_t hot_region_bytes = uint64_t{1} << 20;
  int hot_region_reports = 2;
  uint32_t balance_hot_limit = 2;
  // A learner nobody scheduled, or a voter beyond max_replicas, on a healthy store is removed
  // only after it has been there this long (someone may be changing the region by hand).
  int64_t excess_grace_ms = 30'000;
  // GC (docs/transactions.md §8): every gc_interval_ms the safe point moves up to
  // now - gc_life_time_ms by the TSO's clock, never past the oldest transaction a store
  // reports running. 0: never.
  int64_t gc_life_time_ms = 600'000;
  int64_t gc_interval_ms = 600'000;
  const Clock* clock = nullptr;  // null: the system clock. Not owned.
};

struct CoordinatorCounters {
  std::atomic<uint64_t> store_heartbeats{0};
  std::atomic<uint64_t> region_heartbeats{0};
  std::atomic<uint64_t> stale_heartbeats{0};
  std::atomic<uint64_t> tso_requests{0};
  std::atomic<uint64_t> tso_timestamps{0};
  std::atomic<uint64_t> tso_bound_saves{0};
  std::atomic<uint64_t> ids_allocated{0};
  std::atomic<uint64_t> id_batches{0};
  std::atomic<uint64_t> directory_reads{0};
  std::atomic<uint64_t> joins{0};
  std::atomic<uint64_t> leader_terms{0};    // warm-ups finished
  std::atomic<uint64_t> not_leader{0};      // calls answered with not_leader or retry
  std::atomic<uint64_t> operators_sent{0};  // operator steps handed to region leaders
  std::atomic<uint64_t> operators_created{0};
  std::atomic<uint64_t> operators_done{0};
  std::atomic<uint64_t> operators_timed_out{0};
  std::atomic<uint64_t> operators_cancelled{0};
  std::atomic<uint64_t> stores_tombstoned{0};  // decommissions finished
  // Raft rounds that confirmed the leadership for timestamps served without a lease.
  std::atomic<uint64_t> tso_leader_checks{0};
  // TSO requests by the timestamps each asked for (a gateway folds its callers into one):
  // at most kTsoBatchBounds[i], the last bucket for more.
  static constexpr std::array<uint32_t, 7> kTsoBatchBounds = {1, 4, 16, 64, 256, 1024, 4096};
  std::array<std::atomic<uint64_t>, kTsoBatchBounds.size() + 1> tso_batch{};
};

class Coordinator {
 public:
  using Done = std::function<void(CoordResponse)>;
  Coordinator(CoordinatorOptions options, MetaRegion* meta);  // `meta` not owned
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  void Handle(const CoordRequest& req, Done done) EXCLUDES(mu_);
  // Call about every 50 ms: notices leadership changes, warms up, moves the TSO's clock on and
  // persists its bound ahead of it.
  void Tick() EXCLUDES(mu_);
  // Stops answering (calls get retry); pending callbacks still run.
  void Stop() EXCLUDES(mu_);

  // True once this node leads the meta region, has warmed up and holds the lease. Without the
  // lease (a leadership transfer was tried in this term) timestamps are still served, each
  // batch after a command through raft confirms the leadership (HandleTso).
  bool Serving() const EXCLUDES(mu_);
  const CoordinatorCounters& counters() const { return counters_; }
  // Operators under way (0 when not serving).
  size_t RunningOperators() const EXCLUDES(mu_);

  // Timestamps (TsoResponse): the physical part in ms and the logical part.
  static constexpr int kLogicalBits = 18;
  static uint64_t ComposeTs(int64_t physical_ms, uint64_t logical) {
    return (static_cast<uint64_t>(physical_ms) << kLogicalBits) | logical;
  }

 private:
  struct StoreLive {
    StoreStats stats;
    int64_t last_ms = 0;
  };
  struct RegionLive {
    RegionHeartbeat last;
    int64_t last_ms = 0;
    // Bytes a second in the last report, and how hot it has been (up by one per report at or
    // over hot_region_bytes, down by one per report under it).
    uint64_t read_bps = 0;
    uint64_t write_bps = 0;
    int hot_degree = 0;
  };
  struct TsoWaiter {
    uint32_t count;
    Done done;
  };
  struct IdWaiter {
    uint32_t count;
    std::function<void(Result<uint64_t>)> done;  // the first of `count` ids
  };
  // A store's health as the schedulers see it.
  enum class Health { kUp, kDisconnected, kDown, kOffline, kTombstone, kUnknown };
  // A scheduled operator under way (coordinator_schedule.cc).
  struct RunningOp {
    OperatorView view;
    int64_t step_ms = 0;  // when the current step began
    int64_t sent_ms = 0;  // when the current step was last handed to the leader (0: not yet)
    // What was handed over then (a removal of the leader goes as a transfer first).
    Operator::Kind sent_kind = Operator::ADD_LEARNER;
    uint64_t sent_store = 0;
    // A peer address given with an operator made by hand, for a store the coordinator has no
    // record of (yet); a recorded store's own address wins.
    std::string peer_addr;
  };
  // Work decided under mu_ that calls out (proposals, callbacks): run after unlocking, since
  // the store may answer on the calling thread.
  using Actions = std::vector<std::function<void()>>;
  static void Run(Actions& actions) {
    for (auto& a : actions) a();
  }

  int64_t NowMs() const;
  bool LeaseHeld() const;
  // The error for a call this node cannot serve now: not_leader with the leader it knows, or
  // retry while it is warming up.
  CoordResponse Refusal() const EXCLUDES(mu_);
  void StartWarmup(uint64_t term, Actions* after) REQUIRES(mu_);
  // The warm-up's steps, each after the one before succeeded in the same term.
  void WarmupLoad(uint64_t term) EXCLUDES(mu_);
  void WarmupRegions(uint64_t term, std::string from) EXCLUDES(mu_);
  void WarmupTso(uint64_t term) EXCLUDES(mu_);
  // False (and warming_ cleared) when the term is over.
  bool StillTerm(uint64_t term) REQUIRES(mu_);
  void WarmupFailed(uint64_t term, const Status& why) EXCLUDES(mu_);
  void MaybeSaveTsoBound(Actions* after) REQUIRES(mu_);
  void HandleTso(const TsoRequest& r, const Done& done) EXCLUDES(mu_);
  // Hands out `count` timestamps into `resp` (or a retry when the bound is used up).
  void TakeTimestamps(uint32_t count, CoordResponse* resp) REQUIRES(mu_);
  // Confirms this term's leadership (a command through raft) for the timestamp callers
  // waiting without a lease.
  void ConfirmLeadership(Actions* after) REQUIRES(mu_);
  // Hands out `count` ids (from the batch in memory, refilled through raft).
  void AllocIds(uint32_t count, std::function<void(Result<uint64_t>)> done) EXCLUDES(mu_);
  void RefillIds(Actions* after) REQUIRES(mu_);
  void HandleStoreHeartbeat(const StoreHeartbeatRequest& r, const Done& done) EXCLUDES(mu_);
  void HandleRegionHeartbeat(const RegionHeartbeat& r, const Done& done) EXCLUDES(mu_);
  void HandleJoin(const JoinRequest& r, const Done& done) EXCLUDES(mu_);
  void HandleRead(MetaCommand cmd, Done done);
  void HandleCluster(const Done& done) EXCLUDES(mu_);
  void HandleAddOperator(const AddOperatorRequest& req, const Done& done) EXCLUDES(mu_);
  void HandleSetStoreState(const SetStoreStateRequest& req, const Done& done) EXCLUDES(mu_);

  // ---- Operators and checkers (coordinator_schedule.cc) ----
  // Moves the region's operator on from what its leader just reported: steps the report shows
  // done are passed, the next one (when it may run) goes into `out` (at most once a second).
  void AdvanceOperator(const RegionHeartbeat& hb, std::vector<Operator>* out) REQUIRES(mu_);
  // Starts an operator; false (and nothing started) when the region has one already.
  bool StartOperator(uint64_t region, std::string name, std::string reason,
                     std::vector<OperatorStep> steps) REQUIRES(mu_);
  void FinishOperator(uint64_t region, const std::string& state, const std::string& note)
      REQUIRES(mu_);
  // One pass of the checkers: operators timed out or overtaken, the replica checker over every
  // region (the meta region too), decommissions that are complete.
  void Schedule(Actions* after) REQUIRES(mu_);
  // The replica checker for one region: at most one operator.
  void CheckReplicas(const RegionHeartbeat& hb, int64_t now) REQUIRES(mu_);
  // Leaders and replicas evened out across the healthy stores, a few operators at a time.
  void BalanceLeaders(int64_t now) REQUIRES(mu_);
  void BalanceRegions(int64_t now) REQUIRES(mu_);
  // Moves a hot region's leadership, else one of its replicas, from the store that carries the
  // most hot traffic towards the one that carries the least.
  void BalanceHotRegions(int64_t now) REQUIRES(mu_);
  bool IsHot(uint64_t region) const REQUIRES(mu_);
  // Operators of `name` under way.
  size_t Running(const std::string& name) const REQUIRES(mu_);
  // The least loaded healthy store that holds no replica of `desc`, preferring a host none of
  // `keep`'s stores is on; 0 when there is none (or each is at its store limit).
  uint64_t PickTarget(const store::RegionDescriptor& desc, const std::vector<uint64_t>& keep)
      REQUIRES(mu_);
  Health StoreHealth(uint64_t store, int64_t now) const REQUIRES(mu_);
  // How long the store has sent no heartbeat to this leader (since it took over, at most).
  int64_t SilentMs(uint64_t store, int64_t now) const REQUIRES(mu_);
  // Per store, the replicas the operators under way have still to add (and to remove).
  void StepsUnderWay(std::map<uint64_t, int64_t>* adding,
                     std::map<uint64_t, int64_t>* removing) const REQUIRES(mu_);
  std::string HostOf(uint64_t store) const REQUIRES(mu_);
  // Persists `s` unless the stored record is the same; `done` gets the error text ("" on OK).
  void PutStore(const StoreMeta& s, std::function<void(std::string)> done) EXCLUDES(mu_);
  // As /api/v1/stores shows it: up, disconnected, down, offline, tombstone (unknown).
  static const char* HealthName(Health h);
  // The coordinators and every store's address, for heartbeat and join replies.
  void FillAddresses(StoreHeartbeatResponse* r) const REQUIRES(mu_);
  // Moves the GC safe point up when it is time (CoordinatorOptions::gc_*).
  void MaybeAdvanceGc(int64_t now, Actions* after) REQUIRES(mu_);

  const CoordinatorOptions options_;
  MetaRegion* const meta_;
  const Clock* clock_;
  mutable CoordinatorCounters counters_;

  mutable std::mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = false;
  // The term this node leads in (0: not leading), and whether its warm-up has finished.
  uint64_t term_ GUARDED_BY(mu_) = 0;
  bool ready_ GUARDED_BY(mu_) = false;
  bool warming_ GUARDED_BY(mu_) = false;
  int64_t led_since_ms_ GUARDED_BY(mu_) = 0;
  MetaState state_ GUARDED_BY(mu_);  // as of the warm-up, plus this term's changes
  // TSO: the next timestamp is (physical_ms_, logical_ + 1); every timestamp served is below
  // ComposeTs(bound_ms_, 0), and bound_ms_ is applied in the meta region.
  int64_t physical_ms_ GUARDED_BY(mu_) = 0;
  uint64_t logical_ GUARDED_BY(mu_) = 0;
  int64_t bound_ms_ GUARDED_BY(mu_) = 0;
  bool saving_bound_ GUARDED_BY(mu_) = false;
  // TSO callers waiting for a leadership confirmation (no lease): those that came before the
  // round in flight (confirming_) and those after it (tso_waiting_, for the next round).
  std::vector<TsoWaiter> tso_confirming_ GUARDED_BY(mu_);
  std::vector<TsoWaiter> tso_waiting_ GUARDED_BY(mu_);
  bool confirm_in_flight_ GUARDED_BY(mu_) = false;
  // Ids reserved and not yet handed out: [next_id_, end_id_).
  uint64_t next_id_ GUARDED_BY(mu_) = 0;
  uint64_t end_id_ GUARDED_BY(mu_) = 0;
  bool refilling_ GUARDED_BY(mu_) = false;
  std::vector<IdWaiter> id_waiters_ GUARDED_BY(mu_);
  // The stores and regions as persisted (by id), and their latest heartbeats.
  std::map<uint64_t, StoreMeta> stores_ GUARDED_BY(mu_);
  std::map<uint64_t, RegionMeta> regions_ GUARDED_BY(mu_);
  std::map<uint64_t, StoreLive> store_live_ GUARDED_BY(mu_);
  std::map<uint64_t, RegionLive> region_live_ GUARDED_BY(mu_);
  // Operators under way, at most one per region (memory only: a new leader starts without, as
  // PD's operators do; its checkers make what is still needed again).
  std::map<uint64_t, RunningOp> operators_ GUARDED_BY(mu_);
  std::deque<OperatorView> finished_ GUARDED_BY(mu_);  // the latest that ended
  uint64_t next_operator_ GUARDED_BY(mu_) = 1;
  int64_t last_schedule_ms_ GUARDED_BY(mu_) = 0;
  int64_t last_gc_ms_ GUARDED_BY(mu_) = 0;
  bool gc_saving_ GUARDED_BY(mu_) = false;
  // Replicas per store in the directory (voters and learners), as of the last pass.
  std::map<uint64_t, uint32_t> replica_counts_ GUARDED_BY(mu_);
  // Since when a region has had a replica beyond what it needs on a healthy store.
  std::map<uint64_t, int64_t> excess_since_ GUARDED_BY(mu_);
  // Stores being marked tombstone (a proposal in flight).
  std::set<uint64_t> tombstoning_ GUARDED_BY(mu_);
};

}  // namespace micedb::coordinator
