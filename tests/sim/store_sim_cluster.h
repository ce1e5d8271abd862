// StoreCluster: several real store::Stores, each with the real router::Router in front of it,
// over storage::FaultEngines, in one process on one seeded event queue (docs/simulation.md §6).
// The stores run manually (StoreOptions::manual): the cluster calls Store::Poll when input
// arrives and when a tick is due, and advances one ManualClock that is every router's clock
// and, through a SkewedClock per node (a rate, a pause), every store's. The raft messages,
// snapshots and forwarded requests between nodes go through a simulated network that delays, loses,
// duplicates and reorders them and honours partitions.
//
// Every store hosts region 1 (data) and, on the initial voters, region 2, the coordinator's meta
// region; every node runs a coordinator::Coordinator (serving while its store leads region 2)
// and a CoordinatorClient whose calls go over the same network as forwarded requests.
//
// A crash is a power loss: the node's store, router and coordinator are dropped (pending requests
// there fail), its engine loses every unsynced write, and a restart builds a new Store on the same
// engine. Events belonging to a node's earlier life (timers, replies) are dropped.
//
// Not thread-safe: everything runs on the caller's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "coordinator/client.h"
#include "coordinator/coordinator.h"
#include "coordinator/meta_state_machine.h"
#include "kv/region_state_machine.h"
#include "router/router.h"
#include "router/store_link.h"
#include "storage/fault_engine.h"
#include "store/store.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/network.h"

namespace micedb::sim {

// The per-message network faults, while on.
struct NetFaults {
  double drop = 0;
  double duplicate = 0;
  double long_delay = 0;
  int long_delay_max = 100;  // ms
};

struct StoreClusterOptions {
  int nodes = 3;
  int voters = 3;  // nodes 1..voters are region 1's initial voters; the others start empty
  uint64_t seed = 1;
  std::string dir;  // scratch directory for snapshot files (exists, owned by the caller)
  bool lease_reads = true;
  bool unsafe_local_reads = false;    // RouterOptions::unsafe_local_reads (self-test only)
  int64_t request_timeout_ms = 3000;  // the stores' and the routers'
  uint64_t log_gc_threshold = 64;     // small, so that followers often need snapshots
  uint64_t log_gc_keep = 8;
  // Each node's clock runs at its own rate, drawn from the seed within +-8% (chrony's largest
  // slew, inside the stores' max_clock_drift of 10%), and Freeze can pause a node.
  bool clock_faults = false;
  bool lazy_commit = true;  // StoreOptions::raft_lazy_commit
  bool verbose = false;
};

class StoreCluster {
 public:
  struct Event {
    int kind = 0;
    uint64_t node = 0;
    uint64_t life = 0;  // 0: any; else dropped unless the node is up in this life
    uint64_t detail = 0;
    std::function<void()> fn;
  };

  StoreCluster(StoreClusterOptions options, Random* rng);
  ~StoreCluster();

  // Bootstraps region 1 on the initial voters and starts every node.
  Status Start();

  // Runs the next event: advances the clock, runs it. False when the queue is empty.
  bool Step();
  int64_t now() const { return queue_.now(); }
  const StoreClusterOptions& options() const { return options_; }
  uint64_t events() const { return events_; }
  uint64_t trace_hash() const { return trace_hash_; }
  // Folds `what` into the trace hash, keeps it among the last lines, prints it with --verbose.
  void Trace(std::string_view what);
  const std::deque<std::string>& tail() const { return tail_; }

  // Schedules `fn` after `delay` ms (for node `node` in its current life when node != 0).
  void After(int64_t delay, uint64_t node, std::function<void()> fn, int kind = 1);

  // ---- nodes ----
  int size() const { return options_.nodes; }
  bool up(uint64_t id) const;
  store::Store* store(uint64_t id);                                 // null when down
  router::Router* router(uint64_t id);                              // null when down
  coordinator::Coordinator* coordinator(uint64_t id);               // null when down
  coordinator::CoordinatorClient* coordinator_client(uint64_t id);  // null when down
  storage::FaultEngine* engine(uint64_t id);
  // Bumped at every start and crash of the node.
  uint64_t life(uint64_t id) const;
  // Power loss: keeps `keep_unsynced` of the unsynced writes (0: none). `on_crash` runs first.
  void Crash(uint64_t id, size_t keep_unsynced);
  Status Restart(uint64_t id);
  // A paused VM: for `ms` milliseconds node `id` runs nothing (its events wait) and its clock
  // stands still; then the host sets its wall clock and it goes on. A crash ends the pause.
  void Freeze(uint64_t id, int64_t ms);
  bool frozen(uint64_t id) const;
  // Node `id`'s clock rate.
  double clock_rate(uint64_t id) const;
  // The leader of `region` (region 1, or the meta region) as some up node believes (0: none
  // known).
  uint64_t AnyLeader(uint64_t region = 1) const;
  // Region 1's voters and learners as `id`'s store knows them (empty when it has no replica).
  std::vector<uint64_t> Members(uint64_t id, uint64_t region = 1);
  std::function<void(uint64_t)> on_crash;
  // Runs after node `id` started (at Start and at every restart).
  std::function<void(uint64_t)> on_start;

  // ---- network ----
  Network& network() { return network_; }
  void set_faults(const NetFaults& f) { faults_ = f; }
  // The node's store has new input: poll it soon.
  void PollSoon(uint64_t id);

  // Transport and peer link (called by the node's adapters).
  void SendRaft(uint64_t from, const raft::Message& m);
  void SendSnapshot(uint64_t from, const raft::Message& m, const store::SnapshotSource& source);
  void Forward(uint64_t from, uint64_t to, transport::ForwardRequest req, int64_t timeout_ms,
               router::PeerLink::ForwardCallback done);

 private:
  struct Node;
  // A forwarded request waiting for its answer.
  struct Pending {
    uint64_t from = 0;
    uint64_t to = 0;
    router::PeerLink::ForwardCallback done;
  };
  Node& node(uint64_t id) { return *nodes_[id - 1]; }
  const Node& node(uint64_t id) const { return *nodes_[id - 1]; }
  void Push(int64_t at, Event e);
  void SchedulePoll(uint64_t id, int64_t at);
  void Poll(uint64_t id);
  // Coordinator::Tick every 50 ms of the node's life.
  void CoordinatorTick(uint64_t id);
  Status StartNode(uint64_t id, bool bootstrap);
  // Whether a message from -> to sent now is lost, and its delay otherwise.
  bool Lost(uint64_t from, uint64_t to);
  int64_t Delay();
  // Answers forwarded request `fid` once (later answers are ignored).
  void FinishForward(uint64_t fid, Result<transport::ForwardResponse> r);
  // Sends `to`'s answer to forwarded request `fid` back to `from` (or loses it).
  void Reply(uint64_t fid, uint64_t from, uint64_t to, transport::ForwardResponse resp);

  StoreClusterOptions options_;
  Random* rng_;
  ManualClock clock_;
  EventQueue<Event> queue_;
  Network network_;
  NetFaults faults_;
  kv::RegionStateMachine sm_;
  coordinator::MetaStateMachine meta_sm_;
  coordinator::NodeStateMachine node_sm_{&sm_, &meta_sm_};
  std::vector<std::unique_ptr<Node>> nodes_;
  uint64_t events_ = 0;
  uint64_t trace_hash_ = 0;
  uint64_t snapshot_seq_ = 0;
  uint64_t next_forward_ = 0;
  std::deque<std::string> tail_;
  std::map<uint64_t, Pending> forwards_;
};

}  // namespace micedb::sim
