// Store: the data node's replication engine. It hosts the region peers of one node on one
// storage engine and runs every peer's Raft state machine in a single loop thread:
//
//   1. take queued input (messages, proposals, reads) and step the peers; tick on time;
//      propose the round's writes as one batch and confirm its reads with one ReadIndex,
//      per region;
//   2. collect every peer's Ready and persist all new entries and hard states in ONE synced
//      WriteBatch (group commit across regions and clients; DESIGN §4); a leader's messages
//      leave before that write when the Ready allows it (raft::Ready::send_before_persist);
//   3. only then send the other messages (persist before send, DESIGN §8 rule 1);
//   4. apply committed entries: data and each region's applied index in one WriteBatch
//      (DESIGN §8 rule 2); answer proposers and serve reads whose read index is applied.
//      Entries that were durable here before the round are applied before its write;
//   5. Advance, and truncate logs that have grown past the threshold.
//
// Requests are region requests (proto/micedb/region.proto): each names its region and epoch,
// and one whose epoch is stale or whose keys lie outside the region is answered with its typed
// error and never applied (store/apply.h). The code is split by concern:
//   store.cc         construction, lifecycle, loading regions, input, requests, introspection
//   store_round.cc   the loop and one round of it (steps 1-5), the raft-sync thread
//   store_apply.cc   applying committed entries and serving reads (steps 3-4)
//   store_admin.cc   membership changes, snapshot install, log truncation, replica destroy
//   store_disk.cc    the disk alarm: a failed write holds the round and is retried, the free
//                    space is watched (disk_alarm.h)
//   lease.cc         the leader lease (raft.md §7): tick times and the table client threads read
//   apply.cc         the envelope: decode, checks, dedup, dispatch to the state machine
//
// Time: the loop's ticks, request timeouts and leases come from StoreOptions::clock; the
// store reads no other clock.
//
// Thread-safety: every public method may be called from any thread. Callbacks run on the
// loop thread (or the caller's, for an error found at once) and must not block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "micedb/region.pb.h"
#include "micedb/store.pb.h"
#include "raft/raw_node.h"
#include "storage/engine.h"
#include "store/disk_alarm.h"
#include "store/flow.h"
#include "store/lease.h"
#include "store/state_machine.h"
#include "store/transport.h"

namespace micedb::store {

struct StoreOptions {
  NodeId node_id;
  std::string snap_dir;    // staging directory for snapshots being received
  int tick_ms = 100;       // one raft tick
  int election_tick = 10;  // election timeout in ticks (randomized up to 2x)
  int heartbeat_tick = 2;  // heartbeat interval in ticks
  // Followers learn a new commit index from the next append or heartbeat, not from an append
  // of its own (raft::Config::lazy_commit; docs/raft.md §4). Admin entries and membership
  // changes are still sent at once.
  bool raft_lazy_commit = true;
  uint64_t log_gc_threshold = 4096;  // truncate when more applied entries than this are held
  uint64_t log_gc_keep = 1024;       // entries kept behind the applied index for followers
  uint64_t log_gc_max_lag = 65536;   // past this lag a follower is left to a snapshot
  size_t max_inflight_msgs = 256;
  uint64_t max_size_per_msg = 1 << 20;
  int64_t request_timeout_ms = 10'000;  // pending proposals/reads fail with Timeout after this
  uint64_t random_seed = 0;
  // A leader's own log writes are synced by the raft-sync thread while the loop goes on
  // (raft::Config::async_leader_persist); false: the loop waits for every sync itself.
  bool async_leader_sync = true;
  // A leader serves linearizable reads itself, without a heartbeat round, while its lease
  // holds (ReadUnderLease; raft.md §7); false: every read is confirmed by ReadIndex. Either
  // way a restarted node keeps the vote promise it may have made (its peers may lease).
  bool lease_reads = true;
  // The most any node's clock may run fast or slow, as a fraction of true time (NTP daemons
  // slew by up to 8.3%, chrony's maxslewrate). Leases are shortened so that they hold while
  // every node's clock is within it (raft.md §7). 0 <= max_clock_drift < 1.
  double max_clock_drift = 0.1;
  // The slowest rate at which a node may write and apply raft entries
  // (raft::Config::slow_entry_bytes_per_tick): after a big entry every replica waits that
  // much longer before an election or a step-down. 0: no allowance.
  uint64_t slow_write_bytes_per_sec = uint64_t{8} << 20;
  // Ticks, request timeouts and leases: one monotonic clock that keeps counting through a
  // host suspend. Null: BoottimeClock. Not owned.
  const Clock* clock = nullptr;
  // No threads of its own: Start starts none, and the owner runs the loop by calling Poll (the
  // deterministic simulation does). The leader then syncs its own log (async_leader_sync is
  // ignored).
  bool manual = false;
  // The disk alarm (store/disk_alarm.h). `free_bytes` tells how many bytes are free on the
  // data directory's disk (null: never asked; the server uses FreeDiskBytes). Below
  // `min_free_bytes` the NOSPACE alarm goes up and new writes are refused, so that the disk
  // rarely fills at all (etcd's quota, in spirit). Every `disk_check_ms` (StoreOptions::clock)
  // the loop asks again, resumes the engine and retries a write held by a full disk.
  std::function<Result<uint64_t>()> free_bytes;
  uint64_t min_free_bytes = uint64_t{256} << 20;
  int64_t disk_check_ms = 1000;
  // For this long after a split, the new region's leader sends no snapshot: its replicas on
  // the other stores are made by the same split there (docs/sharding.md §1). A store that
  // missed the split (it caught up on the parent by snapshot) gets one after this.
  int64_t split_snapshot_wait_ms = 10'000;
  // Hibernation (docs/sharding.md §5): a region led here with nothing to do for
  // `hibernate_ticks` ticks (0: two election timeouts) stops being ticked, and so do its
  // followers, until a request or a message wakes it. The stores ping each other meanwhile so
  // that a follower still notices when its leader's store goes silent.
  bool hibernate = true;
  int hibernate_ticks = 0;
};

// The answer to a region request; errors are typed (RegionResponse::error).
using ResponseCallback = std::function<void(region::RegionResponse)>;
// The outcome of an admin operation: NotLeader, NotFound (region not here), TimedOut,
// Unavailable (retry), or OK once applied.
using StatusCallback = std::function<void(Status)>;

// What /debug/raft, INFO and `micedb status` show of one region peer.
struct RegionInfo {
  RegionDescriptor descriptor;
  raft::NodeStatus raft;
  uint64_t applied_index = 0;
  uint64_t truncated_index = 0;
  uint64_t log_entries = 0;
  uint64_t log_bytes = 0;
  bool asleep = false;  // hibernating: not ticked (StoreOptions::hibernate)
  // The epoch of the last snapshot installed here (0/0: none; docs/sharding.md §2).
  RegionEpoch snapshot_epoch;
};

struct StoreCounters {
  std::atomic<uint64_t> proposals{0};
  std::atomic<uint64_t> proposals_failed{0};
  std::atomic<uint64_t> entries_committed{0};
  std::atomic<uint64_t> entries_applied{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> leader_changes{0};
  std::atomic<uint64_t> elections_started{0};
  std::atomic<uint64_t> snapshots_sent{0};
  std::atomic<uint64_t> snapshots_applied{0};
  // Received snapshots refused because their range overlaps another region here.
  std::atomic<uint64_t> snapshots_refused{0};
  // Stale replicas: MSG_GONE sent (as a leader) and replicas destroyed on one.
  std::atomic<uint64_t> gone_sent{0};
  std::atomic<uint64_t> gone_destroyed{0};
  std::atomic<uint64_t> sync_writes{0};        // fsyncs of the raft log, either thread
  std::atomic<uint64_t> async_sync_writes{0};  // of those, by the raft-sync thread
  std::atomic<uint64_t> loop_rounds{0};
  std::atomic<uint64_t> readies{0};      // regions' Readies handled (one per region per round)
  std::atomic<uint64_t> lease_reads{0};  // reads served under the leader lease
  std::atomic<uint64_t> lease_suspensions{0};  // clock gaps that suspended the leases
  std::atomic<uint64_t> requests_refused{0};   // stale epoch or key outside the region
  // Rounds that took more than half an election timeout: the leaders' heartbeats waited.
  std::atomic<uint64_t> slow_rounds{0};
  // Heartbeats sent from inside long loop work (Pulse), so that followers did not time out.
  std::atomic<uint64_t> pulses{0};
  // Engine writes that failed (the round holding them waits: store/disk_alarm.h).
  std::atomic<uint64_t> write_failures{0};
  // Writes refused because the disk alarm is up.
  std::atomic<uint64_t> writes_refused_no_space{0};
  // Hibernation: replicas that stopped (leaders once every member stopped with them), woke
  // (of those, followers whose leader's store went silent), and store pings sent.
  std::atomic<uint64_t> sleeps{0};
  std::atomic<uint64_t> wakes{0};
  std::atomic<uint64_t> silent_leader_wakes{0};
  std::atomic<uint64_t> pings_sent{0};
  // At-most-once records looked at and removed by the sweep (SweepDedup).
  std::atomic<uint64_t> dedup_scanned{0};
  std::atomic<uint64_t> dedup_deleted{0};
};

class RegionPeer;
class Applier;

class Store {
 public:
  // Ticks republish every region's info (commit, applied, progress) at most this often; a
  // round that changes a leadership, a descriptor or the regions republishes at once.
  static constexpr int64_t kTickPublishMs = 500;

  // `engine`, `sm` and `transport` are not owned and must outlive the store.
  Store(StoreOptions options, storage::Engine* engine, StateMachine* sm, Transport* transport);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // On a store with no region and no tombstone on disk: creates region 1 covering the whole
  // keyspace with `voters` as members and records their addresses; with `meta_region`, also
  // the coordinator's region (kMetaRegionId) with the same voters. Every initial member must
  // be bootstrapped with the same voters. Does nothing on a store that already has data.
  // Call before Start. Errors from the engine.
  Status Bootstrap(const std::vector<std::pair<NodeId, std::string>>& voters,
                   bool meta_region = false);

  // Loads every region from the engine, finishes an interrupted snapshot install, and starts
  // the loop thread. Corruption/IoError when the stored state cannot be read.
  Status Start();
  // Stops the loop; pending requests fail with ServerBusy ("stopping"). Idempotent.
  void Stop();
  // With StoreOptions::manual: runs what the loop thread would run once it woke up now --
  // the queued input, then batches, a tick when one is due, and a round. Callbacks run on the
  // caller's thread. Not thread-safe with itself.
  void Poll();
  // With StoreOptions::manual: when the next tick is due (StoreOptions::clock, ms).
  int64_t NextTickMs() const { return next_tick_ms_; }

  // ---- Input from the transport ----
  void Step(std::vector<raft::Message> msgs);
  // A snapshot's files were received and staged durably (store/snapshot_stage.h); steps its
  // MSG_SNAP. The store owns the staging directory from here on.
  void OnSnapshotReceived(raft::Message msg, StagedSnapshot staged);
  void ReportSnapshot(RegionId region, NodeId to, bool ok);
  void ReportUnreachable(NodeId to);

  // ---- Region requests (the region is req.header().region_id) ----
  // Replicates a write and answers once it is applied here (leader only: NotLeader
  // otherwise). Errors: RegionNotFound, NotLeader, EpochNotMatch, KeyNotInRegion, NoSpace
  // (the disk alarm is up; nothing applied); StaleCommand (the entry lost to another leader's: not
  // applied); Timeout (outcome unknown); ServerBusy when stopping.
  // With `only_term`, the entry is appended only if this leader's term is that one (NotLeader
  // otherwise): a command that must commit in the term its caller led in (the coordinator
  // confirms its leadership so).
  void Propose(region::RegionRequest req, ResponseCallback done, uint64_t only_term = 0);
  // Runs a read at a linearizable point (ReadIndex; works on followers too). Errors as for
  // Propose, and NotLeader when no leader confirmed the read (retry).
  void ReadLinearizable(region::RegionRequest req, ResponseCallback done);
  // Runs a read on this replica's current state (possibly stale). RegionNotFound when the
  // region is not here.
  region::RegionResponse ReadLocal(const region::RegionRequest& req);
  // Runs a read at once, on the caller's thread, if this node leads the region and holds its
  // lease (StoreOptions::lease_reads): the result is linearizable. nullopt when it cannot
  // (not the leader, no lease now, an apply pending, lease reads off): use ReadLinearizable.
  std::optional<region::RegionResponse> ReadUnderLease(const region::RegionRequest& req);
  // Until when (StoreOptions::clock's monotonic ns) this node holds the region's lease as last
  // published; 0: none. Thread-safe.
  int64_t LeaseUntilNs(RegionId region) const { return leases_.Until(region.value()); }
  // Runs an admin request (body `admin`: change_peer or transfer_leader; leader only, epoch
  // checked with conf_ver). A membership change answers once it is applied here; a leader
  // asked to remove itself hands leadership to the most caught-up other voter first and
  // answers ServerBusy (retry at the new leader). A transfer answers at once (it is a hint).
  void RunAdmin(region::RegionRequest req, ResponseCallback done);
  // Proposes a membership change (leader only); `done` gets OK once it is applied.
  void ChangeMembership(RegionId region, raft::ConfChange cc, StatusCallback done);
  void TransferLeader(RegionId region, NodeId target);

  // ---- Introspection ----
  // The region holding `engine_key` on this store, if any.
  std::optional<RegionId> RegionForKey(std::string_view engine_key) const;
  // The leader this store last heard of for `region` (invalid when unknown).
  NodeId LeaderOf(RegionId region) const;
  std::vector<RegionInfo> Regions() const;
  // The same, shared without a copy (it stays as it was when published). For callers that look
  // often at every region (the node's region check every 200 ms).
  std::shared_ptr<const std::vector<RegionInfo>> RegionsShared() const;
  // One region's, as published; nullopt when the region is not here.
  std::optional<RegionInfo> RegionInfoOf(RegionId region) const;
  std::map<NodeId, std::string> Addresses() const;
  const StoreCounters& counters() const { return counters_; }
  // Keys and bytes written (accepted as leader) and read here, by region, since the start.
  std::map<uint64_t, FlowCounts> Flow() const { return flow_.Snapshot(); }
  // Load split (store/load_split.h): samples the first keys of `region`'s requests served or
  // proposed here, until TakeLoadSamples hands them over. Thread-safe.
  void StartLoadSampling(uint64_t region) { flow_.StartSampling(region); }
  std::vector<std::string> TakeLoadSamples(uint64_t region) { return flow_.TakeSamples(region); }
  NodeId node_id() const { return options_.node_id; }
  bool lease_reads() const { return options_.lease_reads; }
  // The disk alarm and what raised it (store/disk_alarm.h; empty reason when none).
  DiskAlarm disk_alarm() const { return disk_.alarm(); }
  std::string disk_alarm_reason() const { return disk_.reason(); }

 private:
  friend class RegionPeer;
  // One peer's share of a round of the loop.
  struct Work {
    RegionPeer* peer;
    raft::Ready rd;
    bool installed = false;  // rd.snapshot is installed (Round::Step::kInstall)
  };
  // What the raft-sync thread is asked to make durable.
  struct PersistMark {
    uint64_t region;
    uint64_t index;
    uint64_t term;
  };
  using Replies = std::vector<std::pair<ResponseCallback, region::RegionResponse>>;
  // One round of the loop (steps 1-5), kept while it runs. A round whose write fails is held
  // (held_round_) with that write, which is retried as it is until it succeeds; the round then
  // carries on from where it stopped. So nothing that depends on a write (a message, an
  // answer, an apply, Advance) happens before the write is in, and nothing is skipped.
  struct Round {
    enum class Step {
      kInstall,
      kApplyFirst,
      kServeFirst,
      kLogWrite,
      kSendAndApply,
      kServe,
      kAdvance,
      kEnd
    };
    std::vector<Work> work;
    Step step = Step::kInstall;
    bool apply_first = false;
    bool sync_here = false;
    bool async = false;
    bool info_changed = false;
    storage::WriteBatch log_wb;
    std::vector<PersistMark> marks;
    Replies replies;  // the applied entries' answers, sent once their write is in
    // The write that failed, to retry before going on with `step`.
    std::optional<storage::WriteBatch> pending;
    bool pending_sync = false;
    std::string pending_what;
    int64_t started_ms = 0;
    int64_t write_ms = 0;
    size_t entry_bytes = 0;
  };

  // store.cc
  Status LoadRegions();
  // `vote_guard` (raft::Config::startup_vote_guard): false only for a replica that never
  // existed here before, so never acknowledged a leader whose lease it must keep.
  Result<RegionPeer*> CreatePeer(const RegionDescriptor& desc, bool load, bool vote_guard = true);
  RegionPeer* FindPeer(uint64_t region);
  void ErasePeer(uint64_t region);
  // The peer of `req`'s region when this store leads it; otherwise answers `done` with
  // RegionNotFound or NotLeader and returns null. Loop thread.
  RegionPeer* LeaderPeerFor(const region::RegionRequest& req, ResponseCallback& done);
  void MaybeCreatePeerFor(const raft::Message& m);
  // Stale replicas (docs/sharding.md §3): a leader answers a message from a store its
  // configuration does not name with MSG_GONE; the replica it reaches destroys itself if its
  // own configuration is older.
  void MaybeTellGone(RegionPeer* p, const raft::Message& m);
  // `p` stands in the way of another region's snapshot: asks its members whether it is stale
  // (they answer MSG_GONE if it is).
  void ProbeStale(const RegionPeer* p);
  void OnGone(const raft::Message& m);
  // store_merge.cc. A message for a region a merge took over here (its tombstone says so) is
  // answered with MSG_GONE carrying that tombstone; the replica it reaches goes unless its
  // store's replica of the target may still need it to apply the merge (docs/sharding.md §2).
  void MaybeTellMerged(const raft::Message& m);
  void OnMergedGone(const raft::Message& m);
  void DestroyGonePeers();
  // Another initialized region here whose range overlaps the snapshot's; null if none.
  const RegionPeer* OverlappingRegion(const raft::Message& snap_msg) const;
  void PublishInfo() EXCLUDES(info_mu_);
  int64_t NowMs() const;

  // store_round.cc
  void Post(std::function<void()> task) EXCLUDES(mu_);
  void Loop() EXCLUDES(mu_);
  // Takes the queued tasks; false when stopping.
  bool TakeTasks(std::vector<std::function<void()>>* tasks) EXCLUDES(mu_);
  // One pass of the loop after its input: batches, a tick when due, the round.
  void Drive(int64_t now_ms);
  // This thread's Pulse (common/pulse.h): once the loop has been busy for a heartbeat
  // interval, every leader here sends heartbeats at once, and again each interval after.
  void PulseLeaders();
  void SyncLoop() EXCLUDES(sync_mu_);
  void ReportPersisted(const std::vector<PersistMark>& marks);
  void RunRound();
  // Runs `r` on from r.step; false when a write failed and the round is held.
  bool ContinueRound(Round& r);
  // Round::Step::kInstall: the round's snapshots (false: one could not be written, the round
  // is held), then the round's log batch.
  bool InstallSnapshots(Round& r);
  void BuildLogWrite(Round& r);
  // Destroys removed replicas, publishes, logs a slow round.
  void FinishRound(Round& r);
  // Writes `wb`; on failure keeps it in r.pending, raises the disk alarm, and returns false.
  // Either way the round goes on with `next`.
  bool Persist(Round& r, storage::WriteBatch wb, bool sync, std::string_view what,
               Round::Step next);
  // A write failed: raise the alarm (kNoSpace or kFailed, by the error), count and log it.
  void OnWriteFailed(const Status& st, std::string_view what);
  // What the loop does while a round is held or the store has failed: answers new requests
  // with the alarm's error, ends the leases (the applied data may lag the memory), and asks
  // the disk again when due.
  void HoldWork(int64_t now_ms);
  // Every disk_check_ms: the free space (raising or clearing NOSPACE), the engine's Resume,
  // and the held round's write.
  void CheckDisk();
  // The answer to a request the disk alarm refuses.
  region::RegionResponse AlarmResponse(uint64_t region) const;
  // True while new writes must be refused (the alarm is up, or a round is held).
  bool RefusingWrites() const;
  // True when every entry the Ready commits is durable here already (none of them is among its
  // own entries), and none changes the membership: then it may be applied before the Ready's
  // writes.
  static bool CanApplyBeforePersist(const raft::Ready& rd);
  // Hands each region's requests gathered during the input phase to raft: all writes as one
  // batch of entries, all reads behind one ReadIndex.
  void StartBatches();
  // Moves the Ready's messages to `out` for one SendBatch; snapshots go to the transport now.
  void TakeMessages(RegionPeer* p, raft::Ready* rd, std::vector<raft::Message>* out);
  void CheckTimeouts(int64_t now_ms);

  // store_apply.cc
  // Applies the round's committed entries into `wb` (data and each region's applied index;
  // step 3), collecting their proposers' answers in `replies`.
  void ApplyCommitted(std::vector<Work>& work, storage::WriteBatch* wb, Replies* replies,
                      bool* info_changed);
  // Applies one committed entry of `p` (after its applied index) into `wb`; `applier` is the
  // region's for the round (started at its first normal entry). Returns the entry's answer.
  region::RegionResponse ApplyEntry(RegionPeer* p, const raft::Entry& e, storage::WriteBatch* wb,
                                    std::optional<Applier>& applier, bool* info_changed);
  // The round's applier of `p` is done: its dedup bookkeeping goes to the peer.
  void EndApplier(RegionPeer* p, std::optional<Applier>& applier);
  // Once that write is in: answers the proposers and serves the reads whose read index is
  // applied (step 4).
  void ServeApplied(std::vector<Work>& work, Replies* replies);
  // Serves the reads whose read index is applied.
  void ServeAppliedReads(RegionPeer* p);
  // Puts `p` on reads_waiting_ if reads wait there.
  void ListReads(RegionPeer* p);
  // Every second: removes at-most-once records past the window, a bounded number per region
  // (store/apply.h SweepDedupRecords), in one unsynced write.
  void SweepDedup();

  // store_admin.cc
  // False when the change was not made (it does not parse, or the region is frozen for a
  // merge).
  bool ApplyConfChange(RegionPeer* p, const raft::Entry& e, storage::WriteBatch* wb);
  // Proposes a split (RunAdmin) after checking it.
  void ProposeSplit(RegionPeer* p, region::RegionRequest req, ResponseCallback done);
  // Applies a split entry (the same on every replica): the region shrinks to the left half, the
  // right half's descriptor and initial state go into `wb`; its peer here is created once the
  // round's writes are in (split_births_, CreateSplitPeers).
  region::RegionResponse ApplySplit(RegionPeer* p, const region::Split& split, const raft::Entry& e,
                                    storage::WriteBatch* wb);
  void CreateSplitPeers();

  // store_merge.cc (docs/sharding.md §2)
  // Checks a merge step at the proposer and proposes it: PrepareMerge and RollbackMerge at the
  // source's leader, CommitMerge and RefuseMerge at the target's.
  void ProposeMerge(RegionPeer* p, region::RegionRequest req, ResponseCallback done);
  // The source freezes: no request runs on it any more; its version goes up.
  region::RegionResponse ApplyPrepareMerge(RegionPeer* p, const region::PrepareMerge& prepare,
                                           const raft::Entry& e, storage::WriteBatch* wb);
  // The target takes the source's range over, once the source replica here has applied its
  // PrepareMerge (it catches up from its own log if it has not); the source replica goes.
  region::RegionResponse ApplyCommitMerge(RegionPeer* p, const region::CommitMerge& commit,
                                          const raft::Entry& e, storage::WriteBatch* wb);
  region::RegionResponse ApplyRollbackMerge(RegionPeer* p, const region::RollbackMerge& rollback,
                                            const raft::Entry& e, storage::WriteBatch* wb);
  // At the target, after a merge waited too long for a member of the source: the target's
  // version goes up, so that the source's CommitMerge is refused and the source may roll back.
  region::RegionResponse ApplyRefuseMerge(RegionPeer* p, const region::RefuseMerge& refuse,
                                          const raft::Entry& e, storage::WriteBatch* wb);
  // Applies the source's committed entries up to its PrepareMerge at (index, term).
  void CatchUpSource(RegionPeer* s, uint64_t index, uint64_t term, storage::WriteBatch* wb);
  // True when the target replica here has applied an epoch past the one `s` froze for without
  // taking `s` over: then no CommitMerge for it can ever succeed, and it may thaw.
  bool MergeCannotCommit(const RegionPeer* s) const;
  // Before a snapshot of region `desc` is installed here (as `p`): records the snapshot's epoch
  // (SnapshotEpochKey), and destroys a local source frozen for a merge into it that the
  // snapshot overlaps (the merge happened).
  void DropMergedSources(RegionPeer* p, const RegionDescriptor& desc);
  // The merge `p` is frozen for (its descriptor's), or the one a tombstone holder told it of
  // (RegionPeer::merged_away); null: none.
  static const MergeState* MergeOf(const RegionPeer* p);
  // After a successful CommitMerge: the round's writes so far go to the engine, so that the
  // target's next entries see the source's data (written by other appliers this round).
  void FlushApplyBatch(storage::WriteBatch* wb);
  // Destroys the replicas taken over by merges in this round (their state is gone already).
  void FinishMerges();
  // In the round's log write: the merged replicas' raft state stays deleted.
  void ForgetMergedLogs(storage::WriteBatch* wb);

  // `resp` refused a request for a stale epoch: adds the current descriptors of the regions
  // split off `p` here, so that the router can route to them at once.
  void AddSplitChildren(const RegionPeer* p, region::RegionResponse* resp) const;
  void MaybeCompactLog(RegionPeer* p, storage::WriteBatch* wb);
  // False when the write failed (the disk alarm is raised; the replica stays, marked removed).
  bool DestroyPeer(RegionPeer* p);
  // Replaces the peer's data and log with a received snapshot (crash-safe: see
  // snapshot_files.h).
  Status InstallSnapshot(RegionPeer* p, const raft::Snapshot& snap);
  void FailAll(const region::RegionResponse& why);
  void FailWaitingReads(RegionPeer* p, const region::RegionResponse& why);
  void FailPeer(RegionPeer* p, const region::RegionResponse& why);

  // hibernate.cc (docs/sharding.md §5)
  // Before a peer's tick: a leader idle for long enough starts asking its followers to stop.
  void UpdateSleep(RegionPeer* p);
  // A message for `p` as it arrives: the flags of hibernation, any other message wakes it.
  // Called before and after stepping it (`stepped`).
  void OnSleepMessage(RegionPeer* p, const raft::Message& m, bool stepped);
  // Ticks `p` again (a request or a message for it, or its leader's store went silent).
  void Wake(RegionPeer* p);
  // Every heartbeat interval: pings the stores that hold followers of the regions asleep here,
  // and wakes followers whose leader's store has been silent for an election timeout.
  void CheckSleepers(int64_t now_ms);
  // Requests or answers waiting on the peer, or committed entries not applied yet.
  static bool HasWork(const RegionPeer* p);
  // Stops ticking `p`. The next round looks at the replica once more, for what the message or
  // tick that put it to sleep left in its Ready.
  void FallAsleep(RegionPeer* p);

  // Something reached `p`'s raft node (or its lease's inputs moved): the next round looks at it
  // for a Ready and recomputes its lease. Every call into the raft node is followed by one; a
  // round's cost is that of the replicas touched, not of all of them (debug builds check that
  // the others have neither a Ready nor a lease change: CheckUntouched).
  void Touch(RegionPeer* p);
  void TouchAll();
  void CheckUntouched();

  // lease.cc
  // Publishes `p`'s lease for ReadUnderLease (or its loss), with the commit index of the
  // round's start and the applied index. Called for each touched replica at the start of a
  // round (round_start), before its messages leave (a MSG_TIMEOUT_NOW ends the lease, a new
  // commit index must be published first), and for the round's replicas after applying and at
  // its end. `now` is ReadClocks at the call.
  void UpdateLease(RegionPeer* p, bool round_start, const ClockReading& now);
  void UpdateRoundLeases(const Round& r);
  // When the peer's lease ends on the lease clock (0: it holds none).
  int64_t LeaseUntil(RegionPeer* p) const;
  // The tick times behind LeaseStart: call instead of RawNode::Tick.
  void TickPeer(RegionPeer* p, int64_t now_ns);
  int64_t LeaseNowNs() const;
  // Called by the loop before each tick: when the clock stood still while the wall clock went
  // on (a paused VM), or the loop was away far longer than a tick (a stall, a clock jump),
  // every lease is suspended until a heartbeat round sent after now is answered.
  void CheckClockGap(const ClockReading& now);

  StoreOptions options_;
  storage::Engine* engine_;
  StateMachine* sm_;
  Transport* transport_;
  const Clock* clock_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread loop_;

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::vector<PersistMark> sync_pending_ GUARDED_BY(sync_mu_);  // written, not yet synced
  bool sync_stopping_ GUARDED_BY(sync_mu_) = false;
  std::thread sync_thread_;

  // Loop thread only (the Poll caller in manual mode).
  int64_t next_tick_ms_ = 0;
  int64_t busy_since_ms_ = 0;  // when the loop last took up work (PulseLeaders)
  int64_t last_pulse_ms_ = 0;
  std::map<uint64_t, std::unique_ptr<RegionPeer>> peers_;  // ErasePeer to remove one
  std::unordered_map<uint64_t, RegionPeer*> peer_index_;   // peers_ by id, for FindPeer
  std::map<std::pair<uint64_t, uint64_t>, StagedSnapshot> received_snapshots_;  // (region, index)
  std::map<NodeId, std::string> addresses_;
  uint64_t next_read_id_ = 1;
  std::unique_ptr<Round> held_round_;  // a round whose write failed (Round)
  // Regions a split applied in this round created, for CreateSplitPeers at its end.
  struct SplitBirth {
    RegionDescriptor desc;
    bool campaign = false;  // the parent was led here: the new region elects at once
  };
  std::vector<SplitBirth> split_births_;
  // Replicas taken over by a merge in this round (RegionPeer::merged_into), for FinishMerges.
  std::vector<uint64_t> merged_;
  int64_t next_disk_check_ms_ = 0;
  int64_t next_dedup_sweep_ms_ = 0;
  // SweepDedup: the records written since its last call, and the region it goes on at.
  size_t dedup_written_ = 0;
  uint64_t dedup_next_region_ = 0;
  int64_t next_tick_publish_ms_ = 0;
  // Hibernation: when each store was last heard from (any message, pings included), and when
  // CheckSleepers runs next.
  std::map<uint64_t, int64_t> heard_ms_;
  // Regions given requests since the last StartBatches (may repeat; some may be gone).
  std::vector<uint64_t> batching_;
  // Regions touched since the last round (Touch; some may be gone or made anew).
  std::vector<uint64_t> touched_;
  // Regions with reads waiting for a read index or an apply (ListReads).
  std::vector<uint64_t> reads_waiting_;
  // A replica was told it is gone (OnGone) and is not destroyed yet.
  bool gone_pending_ = false;
  int64_t next_sleep_check_ms_ = 0;

  DiskAlarmState disk_;
  // The raft-sync thread's sync failed for want of space: it retries, and the alarm stays.
  std::atomic<bool> sync_failing_{false};

  // Published by the loop for other threads.
  mutable std::mutex info_mu_;
  std::shared_ptr<const std::vector<RegionInfo>> info_ GUARDED_BY(info_mu_) =
      std::make_shared<const std::vector<RegionInfo>>();
  std::map<NodeId, std::string> info_addresses_ GUARDED_BY(info_mu_);

  mutable LeaseTable leases_;  // its own lock
  int64_t lease_ns_ = 0;       // how long a lease lasts past its heartbeat round's tick
  int64_t gap_ns_ = 0;         // the clocks may disagree by this much before leases are suspended
  ClockReading last_wake_;     // loop thread: the clocks when the loop last ran

  StoreCounters counters_;
  FlowMeter flow_;  // its own lock
  void CountRead(uint64_t region, const region::RegionRequest& req,
                 const region::RegionResponse& resp) {
    if (!resp.has_error() && flow_.AddRead(region, KeysOf(resp), resp.ByteSizeLong())) {
      SampleKey(region, req);
    }
  }
  // The request's first key, for the load split's samples.
  void SampleKey(uint64_t region, const region::RegionRequest& req);
};

}  // namespace micedb::store
