#include "tests/sim/store_sim_cluster.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "coordinator/store_meta_region.h"
#include "store/snapshot_stage.h"
#include "tests/sim/digest.h"

namespace micedb::sim {

namespace {

enum Kind { kTimer = 1, kPoll, kRaft, kSnapshot, kForward, kForwardDone, kUnreachable };

uint64_t MessageDigest(const raft::Message& m) {
  uint64_t h = HashCombine(static_cast<uint64_t>(m.type()), m.from());
  h = HashCombine(h, m.to());
  h = HashCombine(h, m.term());
  h = HashCombine(h, m.index());
  h = HashCombine(h, m.log_term());
  h = HashCombine(h, m.commit());
  return HashCombine(h, static_cast<uint64_t>(m.entries_size()));
}

// Stages a snapshot's files in `dir` the way the receiving transport would. The one place that
// knows what a SnapshotSource holds.
std::optional<store::StagedSnapshot> ExportSnapshot(const store::SnapshotSource& source,
                                                    const std::string& dir) {
  auto files = source.export_files(dir);
  if (!files.ok()) return std::nullopt;
  auto staged = store::DescribeExportedFiles(dir, *files);
  if (!staged.ok()) return std::nullopt;
  return std::move(*staged);
}

}  // namespace

// The store's transport: hands everything to the cluster's simulated network.
class SimTransport final : public store::Transport {
 public:
  SimTransport(StoreCluster* c, uint64_t self) : c_(c), self_(self) {}
  void Send(raft::Message m) override { c_->SendRaft(self_, m); }
  void SendSnapshot(raft::Message m, store::SnapshotSource source) override {
    c_->SendSnapshot(self_, m, source);
  }
  void SetAddress(NodeId, const std::string&) override {}

 private:
  StoreCluster* c_;
  uint64_t self_;
};

// router::StoreLink, plus a poll of the store after each input the router queues there.
class PollingStoreLink final : public router::LocalStore {
 public:
  PollingStoreLink(StoreCluster* c, store::Store* s) : c_(c), link_(s), id_(s->node_id().value()) {}
  NodeId node_id() const override { return link_.node_id(); }
  bool lease_reads() const override { return link_.lease_reads(); }
  void Propose(region::RegionRequest req, router::ResponseCallback done) override {
    link_.Propose(std::move(req), std::move(done));
    c_->PollSoon(id_);
  }
  void ReadLinearizable(region::RegionRequest req, router::ResponseCallback done) override {
    link_.ReadLinearizable(std::move(req), std::move(done));
    c_->PollSoon(id_);
  }
  region::RegionResponse ReadLocal(const region::RegionRequest& req) override {
    return link_.ReadLocal(req);
  }
  std::optional<region::RegionResponse> ReadUnderLease(const region::RegionRequest& req) override {
    return link_.ReadUnderLease(req);
  }
  std::vector<router::RegionRoute> Regions() const override { return link_.Regions(); }
  NodeId LeaderOf(uint64_t region_id) const override { return link_.LeaderOf(region_id); }

 private:
  StoreCluster* c_;
  router::StoreLink link_;
  uint64_t id_;
};

class SimPeerLink final : public router::PeerLink {
 public:
  SimPeerLink(StoreCluster* c, uint64_t self) : c_(c), self_(self) {}
  void Forward(NodeId to, transport::ForwardRequest request, int64_t timeout_ms,
               ForwardCallback done) override {
    c_->Forward(self_, to.value(), std::move(request), timeout_ms, std::move(done));
  }
  std::vector<NodeId> Nodes() const override {
    std::vector<NodeId> out;
    for (int i = 1; i <= c_->size(); ++i) {
      if (static_cast<uint64_t>(i) != self_) out.push_back(NodeId(i));
    }
    return out;
  }

 private:
  StoreCluster* c_;
  uint64_t self_;
};

class SimExecutor final : public Executor {
 public:
  SimExecutor(StoreCluster* c, uint64_t self) : c_(c), self_(self), life_(c->life(self)) {}
  void After(int64_t delay_ms, std::function<void()> fn) override {
    if (c_->life(self_) != life_) return;  // the node crashed: its timers are gone
    c_->After(std::max<int64_t>(delay_ms, 0), self_, std::move(fn));
  }

 private:
  StoreCluster* c_;
  uint64_t self_;
  uint64_t life_;
};

// The coordinator client's way to a coordinator node: a forwarded request with `coord` set,
// over the same lossy links as the routers' (a call to itself too, for its deadline).
class SimCoordSender final : public coordinator::CoordSender {
 public:
  SimCoordSender(StoreCluster* c, uint64_t self) : c_(c), self_(self) {}
  void Send(NodeId to, coordinator::CoordRequest req, int64_t timeout_ms, Done done) override {
    transport::ForwardRequest f;
    *f.mutable_coord() = std::move(req);
    c_->Forward(self_, to.value(), std::move(f), timeout_ms,
                [done = std::move(done)](Result<transport::ForwardResponse> r) {
                  if (!r.ok()) return done(r.status());
                  done(std::move(*r->mutable_coord()));
                });
  }

 private:
  StoreCluster* c_;
  uint64_t self_;
};

struct StoreCluster::Node {
  uint64_t id = 0;
  uint64_t life = 0;  // bumped at every start and crash
  std::unique_ptr<storage::FaultEngine> engine = std::make_unique<storage::FaultEngine>();
  std::unique_ptr<SimTransport> transport;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<PollingStoreLink> link;
  std::unique_ptr<SimPeerLink> peers;
  std::unique_ptr<SimExecutor> executor;
  std::unique_ptr<router::Router> router;
  std::unique_ptr<coordinator::StoreMetaRegion> meta;
  std::unique_ptr<coordinator::Coordinator> coordinator;
  std::unique_ptr<SimCoordSender> coord_sender;
  std::unique_ptr<coordinator::CoordinatorClient> coord_client;
  std::set<int64_t> polls;             // times a poll is scheduled at
  std::unique_ptr<SkewedClock> clock;  // the store's (ticks, timeouts, leases)
  double rate = 1;
  int64_t frozen_until = 0;  // while now < this, nothing of the node runs
};

bool StoreCluster::up(uint64_t id) const { return node(id).store != nullptr; }
store::Store* StoreCluster::store(uint64_t id) { return node(id).store.get(); }
router::Router* StoreCluster::router(uint64_t id) { return node(id).router.get(); }
coordinator::Coordinator* StoreCluster::coordinator(uint64_t id) {
  return node(id).coordinator.get();
}
coordinator::CoordinatorClient* StoreCluster::coordinator_client(uint64_t id) {
  return node(id).coord_client.get();
}
storage::FaultEngine* StoreCluster::engine(uint64_t id) { return node(id).engine.get(); }
uint64_t StoreCluster::life(uint64_t id) const { return node(id).life; }

StoreCluster::StoreCluster(StoreClusterOptions options, Random* rng)
    : options_(std::move(options)), rng_(rng), network_(options_.nodes) {
  // Its own stream of draws, so that runs without clock faults stay as they were.
  Random rates(HashCombine(options_.seed, 0xC10C));
  for (int i = 1; i <= options_.nodes; ++i) {
    nodes_.push_back(std::make_unique<Node>());
    nodes_.back()->id = static_cast<uint64_t>(i);
    const double rate =
        options_.clock_faults ? 0.92 + 0.16 * static_cast<double>(rates.Uniform(1001)) / 1000 : 1;
    nodes_.back()->rate = rate;
    nodes_.back()->clock = std::make_unique<SkewedClock>(&clock_, rate);
  }
}

void StoreCluster::Freeze(uint64_t id, int64_t ms) {
  Node& n = node(id);
  if (!n.store || frozen(id)) return;
  n.clock->Freeze();
  n.frozen_until = queue_.now() + ms;
  Push(n.frozen_until, Event{kTimer, id, n.life, 0, [this, id] {
                               node(id).clock->Thaw(/*host_sets_wall=*/true);
                               Trace(fmt::format("n{} resumes", id));
                               PollSoon(id);
                             }});
}

bool StoreCluster::frozen(uint64_t id) const { return node(id).frozen_until > queue_.now(); }

double StoreCluster::clock_rate(uint64_t id) const { return node(id).rate; }

StoreCluster::~StoreCluster() {
  for (auto& n : nodes_) {
    n->life++;
    if (n->coordinator) n->coordinator->Stop();
    if (n->store) n->store->Stop();
    n->coord_client.reset();
    n->store.reset();
    n->router.reset();
    n->coordinator.reset();
  }
}

Status StoreCluster::Start() {
  for (int i = 1; i <= options_.nodes; ++i) {
    MICEDB_RETURN_IF_ERROR(StartNode(i, i <= options_.voters));
  }
  return Status::OK();
}

Status StoreCluster::StartNode(uint64_t id, bool bootstrap) {
  Node& n = node(id);
  n.life++;
  n.polls.clear();
  store::StoreOptions o;
  o.node_id = NodeId(id);
  o.snap_dir = fmt::format("{}/n{}", options_.dir, id);
  o.tick_ms = 10;
  o.election_tick = 10;
  o.heartbeat_tick = 2;
  o.log_gc_threshold = options_.log_gc_threshold;
  o.log_gc_keep = options_.log_gc_keep;
  o.request_timeout_ms = options_.request_timeout_ms;
  o.random_seed = HashCombine(HashCombine(options_.seed, id), n.life);
  o.lease_reads = options_.lease_reads;
  o.raft_lazy_commit = options_.lazy_commit;
  o.clock = n.clock.get();
  o.manual = true;
  n.transport = std::make_unique<SimTransport>(this, id);
  auto s = std::make_unique<store::Store>(o, n.engine.get(), &node_sm_, n.transport.get());
  if (bootstrap) {
    std::vector<std::pair<NodeId, std::string>> voters;
    for (int i = 1; i <= options_.voters; ++i) {
      voters.emplace_back(NodeId(i), fmt::format("n{}", i));
    }
    MICEDB_RETURN_IF_ERROR(s->Bootstrap(voters, /*meta_region=*/true));
  }
  MICEDB_RETURN_IF_ERROR(s->Start());
  n.store = std::move(s);
  n.link = std::make_unique<PollingStoreLink>(this, n.store.get());
  n.peers = std::make_unique<SimPeerLink>(this, id);
  n.executor = std::make_unique<SimExecutor>(this, id);
  router::RouterOptions ro;
  ro.request_timeout_ms = options_.request_timeout_ms;
  ro.unsafe_local_reads = options_.unsafe_local_reads;
  ro.request_id_base = (id << 48) | (n.life << 32);
  n.router =
      std::make_unique<router::Router>(ro, n.link.get(), n.peers.get(), n.executor.get(), &clock_);
  // The coordinator reads the TSO's time and compares the meta region's lease on the clock the
  // store keeps its leases by.
  n.meta = std::make_unique<coordinator::StoreMetaRegion>(n.store.get(), fmt::format("n{}", id));
  coordinator::CoordinatorOptions co;
  co.cluster_id = 0x5105;
  co.clock = n.clock.get();
  n.coordinator = std::make_unique<coordinator::Coordinator>(co, n.meta.get());
  n.coord_sender = std::make_unique<SimCoordSender>(this, id);
  n.coord_client = std::make_unique<coordinator::CoordinatorClient>(
      coordinator::CoordinatorClientOptions{.clock = &clock_}, n.coord_sender.get(),
      n.executor.get());
  std::vector<store::NodeAddress> members;
  for (int i = 1; i <= options_.voters; ++i) {
    store::NodeAddress a;
    a.set_node_id(i);
    a.set_peer_addr(fmt::format("n{}", i));
    members.push_back(std::move(a));
  }
  n.coord_client->SetMembers(std::move(members));
  After(50, id, [this, id] { CoordinatorTick(id); });
  PollSoon(id);
  if (on_start) on_start(id);
  return Status::OK();
}

void StoreCluster::Crash(uint64_t id, size_t keep_unsynced) {
  Node& n = node(id);
  if (!n.store) return;
  if (on_crash) on_crash(id);
  if (n.clock->frozen()) n.clock->Thaw(/*host_sets_wall=*/true);
  n.frozen_until = 0;
  n.life++;
  n.polls.clear();
  // The callers of forwarded requests being served here see the connection break.
  for (auto& [fid, p] : forwards_) {
    if (p.to == id) {
      After(Delay(), p.from,
            [this, fid = fid] { FinishForward(fid, Status::Unavailable("connection broke")); });
    }
  }
  std::erase_if(forwards_, [id](const auto& kv) { return kv.second.from == id; });
  // Stopping fails the requests pending in the store; their callbacks reach only the old
  // router and the clients, which ignore them (their node's life is over).
  // The coordinator outlives the store's Stop: the failed proposals call back into it.
  n.coordinator->Stop();
  n.store->Stop();
  n.coord_client.reset();
  n.coord_sender.reset();
  n.store.reset();
  n.router.reset();
  n.coordinator.reset();
  n.meta.reset();
  n.executor.reset();
  n.peers.reset();
  n.link.reset();
  n.engine->SimulatePowerLoss(keep_unsynced);
}

Status StoreCluster::Restart(uint64_t id) {
  if (up(id)) return Status::OK();
  return StartNode(id, false);
}

uint64_t StoreCluster::AnyLeader(uint64_t region) const {
  uint64_t best = 0, best_term = 0;
  for (const auto& n : nodes_) {
    if (!n->store) continue;
    for (const auto& r : n->store->Regions()) {
      if (r.descriptor.id() == region && r.raft.role == raft::Role::kLeader &&
          r.raft.term.value() >= best_term) {
        best = n->id;
        best_term = r.raft.term.value();
      }
    }
  }
  return best;
}

std::vector<uint64_t> StoreCluster::Members(uint64_t id, uint64_t region) {
  std::vector<uint64_t> out;
  if (id == 0 || !up(id)) return out;
  for (const auto& r : store(id)->Regions()) {
    if (r.descriptor.id() != region) continue;
    for (uint64_t v : r.descriptor.conf_state().voters()) out.push_back(v);
    for (uint64_t l : r.descriptor.conf_state().learners()) out.push_back(l);
  }
  return out;
}

void StoreCluster::Push(int64_t at, Event e) {
  queue_.Push(std::max(at, queue_.now()), std::move(e));
}

void StoreCluster::After(int64_t delay, uint64_t id, std::function<void()> fn, int kind) {
  Push(queue_.now() + delay, Event{kind, id, id ? node(id).life : 0, 0, std::move(fn)});
}

void StoreCluster::Trace(std::string_view what) {
  trace_hash_ = HashCombine(trace_hash_, HashBytes(what));
  std::string line = fmt::format("{:>7} {:>6}  {}", events_, now(), what);
  if (options_.verbose) std::printf("%s\n", line.c_str());
  tail_.push_back(std::move(line));
  if (tail_.size() > 40) tail_.pop_front();
}

bool StoreCluster::Step() {
  if (queue_.empty()) return false;
  Event e = queue_.Pop();
  const auto target = std::chrono::milliseconds(queue_.now());
  clock_.Advance(target - clock_.NowMonotonic());
  if (e.life != 0 && (node(e.node).life != e.life || !up(e.node))) return true;
  if (e.node != 0 && frozen(e.node)) {
    const int64_t until = node(e.node).frozen_until;
    Push(until, std::move(e));  // after the thaw event: pushed later for the same time
    return true;
  }
  ++events_;
  trace_hash_ = HashCombine(HashCombine(HashCombine(trace_hash_, queue_.now()), e.kind),
                            HashCombine(e.node, e.detail));
  if (options_.verbose) {
    static constexpr const char* kNames[] = {"?",        "timer",   "poll",         "raft",
                                             "snapshot", "forward", "forward-done", "unreachable"};
    std::printf("%7lu %6ld    %s n%lu %016lx\n", static_cast<unsigned long>(events_),
                static_cast<long>(now()),
                e.kind >= 0 && e.kind <= kUnreachable ? kNames[e.kind] : "?",
                static_cast<unsigned long>(e.node), static_cast<unsigned long>(e.detail));
  }
  e.fn();
  return true;
}

void StoreCluster::SchedulePoll(uint64_t id, int64_t at) {
  Node& n = node(id);
  at = std::max(at, queue_.now());
  if (!n.store || !n.polls.insert(at).second) return;
  Push(at, Event{kPoll, id, n.life, 0, [this, id, at] {
                   node(id).polls.erase(at);
                   Poll(id);
                 }});
}

void StoreCluster::CoordinatorTick(uint64_t id) {
  node(id).coordinator->Tick();
  PollSoon(id);
  After(50, id, [this, id] { CoordinatorTick(id); });
}

void StoreCluster::PollSoon(uint64_t id) { SchedulePoll(id, queue_.now()); }

void StoreCluster::Poll(uint64_t id) {
  store::Store* s = store(id);
  if (!s) return;
  s->Poll();
  if (store(id) != s) return;
  // NextTickMs is by the node's clock.
  const auto at = node(id).clock->BaseTimeAt(std::chrono::milliseconds(s->NextTickMs()));
  SchedulePoll(id, (at.count() + 999'999) / 1'000'000);
}

bool StoreCluster::Lost(uint64_t from, uint64_t to) {
  if (!network_.Connected(NodeId(from), NodeId(to))) return true;
  return faults_.drop > 0 && rng_->Bernoulli(faults_.drop);
}

int64_t StoreCluster::Delay() {
  if (faults_.long_delay > 0 && rng_->Bernoulli(faults_.long_delay)) {
    return rng_->Range(1, faults_.long_delay_max);
  }
  return rng_->Range(1, 3);
}

void StoreCluster::SendRaft(uint64_t from, const raft::Message& m) {
  const uint64_t to = m.to();
  if (to == 0 || to > nodes_.size()) return;
  if (Lost(from, to)) {
    if ((!up(to) || !network_.Connected(NodeId(from), NodeId(to))) && rng_->OneIn(4)) {
      After(
          Delay(), from,
          [this, from, to] {
            store(from)->ReportUnreachable(NodeId(to));
            PollSoon(from);
          },
          kUnreachable);
    }
    return;
  }
  const int copies = faults_.duplicate > 0 && rng_->Bernoulli(faults_.duplicate) ? 2 : 1;
  const uint64_t digest = MessageDigest(m);
  for (int i = 0; i < copies; ++i) {
    Push(queue_.now() + Delay(), Event{kRaft, to, 0, digest, [this, to, m] {
                                         if (!up(to)) return;
                                         store(to)->Step({m});
                                         PollSoon(to);
                                       }});
  }
}

void StoreCluster::SendSnapshot(uint64_t from, const raft::Message& m,
                                const store::SnapshotSource& source) {
  const uint64_t to = m.to();
  const std::string dir = fmt::format("{}/xfer-{}", options_.dir, ++snapshot_seq_);
  std::optional<store::StagedSnapshot> staged;
  if (to >= 1 && to <= nodes_.size()) staged = ExportSnapshot(source, dir);
  const bool sent = staged.has_value() && !Lost(from, to);
  const uint64_t from_life = node(from).life;
  Push(queue_.now() + Delay() + rng_->Range(2, 20),
       Event{kSnapshot, to, 0, MessageDigest(m), [this, from, from_life, to, sent, dir, staged, m] {
               const bool ok = sent && up(to);
               if (ok) {
                 store(to)->OnSnapshotReceived(m, *staged);
                 PollSoon(to);
               } else {
                 std::error_code ec;
                 std::filesystem::remove_all(dir, ec);
               }
               Trace(fmt::format("snapshot at {} {}->{} {}", m.snapshot().metadata().index(), from,
                                 to, ok ? "delivered" : "lost"));
               if (up(from) && node(from).life == from_life) {
                 store(from)->ReportSnapshot(RegionId(m.region_id()), NodeId(to), ok);
                 PollSoon(from);
               }
             }});
}

void StoreCluster::FinishForward(uint64_t fid, Result<transport::ForwardResponse> r) {
  auto it = forwards_.find(fid);
  if (it == forwards_.end()) return;
  auto done = std::move(it->second.done);
  forwards_.erase(it);
  done(std::move(r));
}

void StoreCluster::Reply(uint64_t fid, uint64_t from, uint64_t to,
                         transport::ForwardResponse resp) {
  if (Lost(to, from)) {
    After(
        Delay(), from, [this, fid] { FinishForward(fid, Status::Unavailable("connection broke")); },
        kForwardDone);
    return;
  }
  After(
      Delay(), from, [this, fid, resp = std::move(resp)] { FinishForward(fid, resp); },
      kForwardDone);
}

void StoreCluster::Forward(uint64_t from, uint64_t to, transport::ForwardRequest req,
                           int64_t timeout_ms, router::PeerLink::ForwardCallback done) {
  const uint64_t fid = ++next_forward_;
  forwards_[fid] = Pending{from, to, std::move(done)};
  After(
      timeout_ms, from, [this, fid] { FinishForward(fid, Status::TimedOut("forward timed out")); },
      kForwardDone);
  if (to == 0 || to > nodes_.size() || !up(to) || Lost(from, to)) {
    // Refused, or lost with its connection.
    After(
        Delay() + rng_->Range(0, 20), from,
        [this, fid] { FinishForward(fid, Status::Unavailable("connection broke")); }, kForwardDone);
    return;
  }
  Push(queue_.now() + Delay(),
       Event{kForward, to, 0, fid, [this, fid, from, to, req]() mutable {
               if (!up(to)) {
                 return FinishForward(fid, Status::Unavailable("node down"));
               }
               const uint64_t to_life = node(to).life;
               if (req.has_coord()) {
                 node(to).coordinator->Handle(
                     req.coord(), [this, fid, from, to, to_life](coordinator::CoordResponse c) {
                       if (node(to).life != to_life) return;
                       transport::ForwardResponse resp;
                       *resp.mutable_coord() = std::move(c);
                       Reply(fid, from, to, std::move(resp));
                     });
                 PollSoon(to);
                 return;
               }
               router(to)->ServeForward(
                   std::move(req),
                   [this, fid, from, to, to_life](const transport::ForwardResponse& resp) {
                     if (node(to).life != to_life) return;
                     Reply(fid, from, to, resp);
                   });
               PollSoon(to);
             }});
}

}  // namespace micedb::sim
