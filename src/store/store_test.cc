// Three (or four) stores in one process over MemEngines, joined by an in-process transport:
// replication, follower reads, restart, log truncation with snapshot catch-up, membership.
#include "store/store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <fmt/format.h>

#include "storage/mem_engine.h"
#include "store/errors.h"
#include "store/snapshot_files.h"

namespace micedb::store {
namespace {

using storage::Cf;
using namespace std::chrono_literals;

// Test commands, written as strings and carried as kv bodies: "P<key>=<value>" puts (a SET),
// "G<key>" gets ("<none>" when absent); "D<value>" puts the value under both "a" and "b" (an
// MSET), "B" reads both ("<a>,<b>"; an MGET). Values are stored raw under "r" + key.
kv::Command TestCommand(std::string_view cmd) {
  kv::Command c;
  switch (cmd[0]) {
    case 'P': {
      auto eq = cmd.find('=');
      c.mutable_set()->set_key(std::string(cmd.substr(1, eq - 1)));
      c.mutable_set()->set_value(std::string(cmd.substr(eq + 1)));
      break;
    }
    case 'G':
      c.mutable_get()->set_key(std::string(cmd.substr(1)));
      break;
    case 'D':
      for (const char* k : {"a", "b"}) {
        auto* kv = c.mutable_mset()->add_pairs();
        kv->set_key(k);
        kv->set_value(std::string(cmd.substr(1)));
      }
      break;
    case 'B':
      c.mutable_mget()->add_keys("a");
      c.mutable_mget()->add_keys("b");
      break;
  }
  return c;
}

// The region request for a test command on region 1 at its bootstrap epoch.
region::RegionRequest TestRequest(std::string_view cmd, uint64_t version = 1) {
  region::RegionRequest req;
  req.mutable_header()->set_region_id(1);
  req.mutable_header()->mutable_epoch()->set_conf_ver(1);
  req.mutable_header()->mutable_epoch()->set_version(version);
  *req.mutable_kv() = TestCommand(cmd);
  return req;
}

// A response as the tests read it: the value, or the error as a Status.
Result<std::string> TestResult(const region::RegionResponse& resp) {
  if (resp.has_error()) return ToStatus(resp.error());
  const kv::CommandResult& r = resp.kv();
  switch (r.kind_case()) {
    case kv::CommandResult::kBulk:
      return r.bulk();
    case kv::CommandResult::kNil:
      return std::string("<none>");
    case kv::CommandResult::kArray: {
      std::string out;
      for (const auto& item : r.array().items()) {
        if (!out.empty()) out += ",";
        out += item.kind_case() == kv::CommandResult::kBulk ? item.bulk() : "<none>";
      }
      return out;
    }
    default:
      return std::string("OK");
  }
}

using ResultCallback = std::function<void(Result<std::string>)>;

ResponseCallback Adapt(ResultCallback cb) {
  return [cb = std::move(cb)](region::RegionResponse r) { cb(TestResult(r)); };
}

class TestStateMachine : public StateMachine {
 public:
  class Round : public ApplyRound {
   public:
    Round(TestStateMachine* sm, storage::Engine* engine, storage::WriteBatch* wb)
        : sm_(sm), engine_(engine), wb_(wb) {}
    kv::CommandResult ApplyKv(const kv::Command& cmd, LogIndex) override {
      if (engine_ == sm_->slow_engine.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(sm_->slow_apply_ms.load()));
      }
      if (cmd.has_mset()) {
        for (const auto& kv : cmd.mset().pairs()) wb_->Put(Cf::kDefault, "r" + kv.key(), kv.value());
      } else {
        wb_->Put(Cf::kDefault, "r" + cmd.set().key(), cmd.set().value());
      }
      kv::CommandResult ok;
      ok.mutable_ok();
      return ok;
    }
    TestStateMachine* sm_;
    storage::Engine* engine_;
    storage::WriteBatch* wb_;
  };
  std::unique_ptr<ApplyRound> BeginRound(const RegionDescriptor&, storage::Engine* engine,
                                         storage::WriteBatch* wb) override {
    return std::make_unique<Round>(this, engine, wb);
  }
  kv::CommandResult ReadKv(const RegionDescriptor&, storage::Engine* engine,
                           const storage::Snapshot* snapshot, const kv::Command& cmd) override {
    storage::ReadOptions ro;
    ro.snapshot = snapshot;
    auto get = [&](const std::string& k) {
      kv::CommandResult r;
      auto v = engine->Get(Cf::kDefault, "r" + k, ro);
      if (v.ok()) {
        r.set_bulk(*v);
      } else {
        r.mutable_nil();
      }
      return r;
    };
    if (cmd.has_mget()) {
      kv::CommandResult r;
      *r.mutable_array()->add_items() = get("a");
      std::this_thread::yield();  // widen the window between the two reads
      *r.mutable_array()->add_items() = get("b");
      return r;
    }
    return get(cmd.get().key());
  }
  void EngineKeys(const kv::Command& cmd, std::vector<std::string>* keys) const override {
    if (cmd.has_set()) keys->push_back("r" + cmd.set().key());
    if (cmd.has_get()) keys->push_back("r" + cmd.get().key());
    if (cmd.has_mset() || cmd.has_mget()) {
      keys->push_back("ra");
      keys->push_back("rb");
    }
  }

  // Applying on the node whose engine this is takes slow_apply_ms per entry.
  std::atomic<storage::Engine*> slow_engine{nullptr};
  std::atomic<int> slow_apply_ms{0};
};

class Cluster;

class InProcTransport : public Transport {
 public:
  InProcTransport(Cluster* c, NodeId self) : c_(c), self_(self) {}
  void Send(raft::Message m) override;
  void SendSnapshot(raft::Message m, SnapshotSource source) override;
  void SetAddress(NodeId, const std::string&) override {}

 private:
  Cluster* c_;
  NodeId self_;
};

struct Node {
  std::unique_ptr<storage::MemEngine> engine = std::make_unique<storage::MemEngine>();
  std::unique_ptr<InProcTransport> transport;
  std::unique_ptr<Store> store;
};

class Cluster {
 public:
  explicit Cluster(std::string snap_root) : snap_root_(std::move(snap_root)) {}
  ~Cluster() {
    for (auto& [id, n] : nodes_) StopNode(id);
  }

  StoreOptions Options(uint64_t id) {
    StoreOptions o;
    o.node_id = NodeId(id);
    o.snap_dir = fmt::format("{}/n{}", snap_root_, id);
    o.tick_ms = 10;
    o.election_tick = 10;
    o.heartbeat_tick = 1;
    o.log_gc_threshold = gc_threshold;
    o.log_gc_keep = gc_keep;
    o.log_gc_max_lag = gc_max_lag;
    o.random_seed = id;
    o.lease_reads = lease_reads;
    return o;
  }

  void StartNode(uint64_t id, const std::vector<uint64_t>& bootstrap_voters) {
    Node& n = nodes_[id];
    n.transport = std::make_unique<InProcTransport>(this, NodeId(id));
    n.store = std::make_unique<Store>(Options(id), n.engine.get(), &sm_, n.transport.get());
    if (!bootstrap_voters.empty()) {
      std::vector<std::pair<NodeId, std::string>> v;
      for (auto x : bootstrap_voters) v.emplace_back(NodeId(x), fmt::format("n{}", x));
      ASSERT_TRUE(n.store->Bootstrap(v).ok());
    }
    Status st = n.store->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  void StopNode(uint64_t id) {
    std::unique_ptr<Store> s;
    {
      std::lock_guard<std::mutex> l(mu_);
      s = std::move(nodes_[id].store);
    }
    if (s) s->Stop();
  }

  Store* GetStore(uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : it->second.store.get();
  }

  void Deliver(raft::Message m) {
    std::lock_guard<std::mutex> l(mu_);
    if (drop && drop(m)) return;
    auto it = nodes_.find(m.to());
    if (it == nodes_.end() || !it->second.store) return;
    it->second.store->Step({std::move(m)});
  }

  void DeliverSnapshot(NodeId from, raft::Message m, SnapshotSource src) {
    std::string dir = fmt::format("{}/xfer-{}-{}", snap_root_, m.to(), seq_++);
    auto files = ExportSnapshotFiles(src, dir);
    bool ok = files.ok();
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = nodes_.find(m.to());
      if (ok && it != nodes_.end() && it->second.store) {
        it->second.store->OnSnapshotReceived(m, dir);
      } else {
        ok = false;
      }
      auto from_it = nodes_.find(from.value());
      if (from_it != nodes_.end() && from_it->second.store) {
        from_it->second.store->ReportSnapshot(RegionId(m.region_id()), NodeId(m.to()), ok);
      }
    }
    snapshots_delivered_++;
  }

  // Waits for a leader of region 1 that every listed node agrees on.
  uint64_t WaitLeader(const std::vector<uint64_t>& ids) {
    for (int i = 0; i < 1000; ++i) {
      uint64_t leader = 0;
      bool agree = true;
      for (auto id : ids) {
        uint64_t l = GetStore(id)->LeaderOf(RegionId(1)).value();
        if (leader == 0) leader = l;
        agree &= l != 0 && l == leader;
      }
      if (agree) return leader;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  Result<std::string> Call(std::function<void(ResultCallback)> fn) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    auto f = p->get_future();
    fn([p](Result<std::string> r) { p->set_value(std::move(r)); });
    if (f.wait_for(10s) != std::future_status::ready) return Status::TimedOut("test wait");
    return f.get();
  }

  Result<std::string> Put(uint64_t at, const std::string& k, const std::string& v) {
    return Call([&](ResultCallback cb) {
      GetStore(at)->Propose(TestRequest("P" + k + "=" + v), Adapt(std::move(cb)));
    });
  }
  // A linearizable read at node `at`, retried while that node knows no leader yet (as the
  // router does).
  Result<std::string> Get(uint64_t at, const std::string& k) {
    for (int attempt = 0;; ++attempt) {
      auto r = Call(
          [&](ResultCallback cb) { GetStore(at)->ReadLinearizable(TestRequest("G" + k), Adapt(cb)); });
      if (r.ok() || attempt == 200) return r;
      if (r.status().code() != StatusCode::kUnavailable &&
          r.status().code() != StatusCode::kNotLeader) {
        return r;
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  Node& node(uint64_t id) { return nodes_[id]; }
  TestStateMachine& sm() { return sm_; }

  // Messages for which this returns true are lost (called under the cluster's lock).
  std::function<bool(const raft::Message&)> drop;
  uint64_t gc_threshold = 4096;
  uint64_t gc_keep = 1024;
  uint64_t gc_max_lag = 65536;
  bool lease_reads = true;
  std::atomic<int> snapshots_delivered_{0};

 private:
  std::string snap_root_;
  TestStateMachine sm_;
  std::mutex mu_;
  std::map<uint64_t, Node> nodes_;
  std::atomic<int> seq_{0};
};

void InProcTransport::Send(raft::Message m) { c_->Deliver(std::move(m)); }

void InProcTransport::SendSnapshot(raft::Message m, SnapshotSource source) {
  // Off the loop thread, as the real transport does.
  std::thread([c = c_, self = self_, m = std::move(m), source = std::move(source)]() mutable {
    c->DeliverSnapshot(self, std::move(m), std::move(source));
  }).detach();
}

std::string DataHash(storage::Engine* e) {
  auto it = e->NewIterator(Cf::kDefault, storage::ReadOptions{});
  std::string all;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    all += std::string(it->key()) + "=" + std::string(it->value()) + ";";
  }
  return all;
}

bool WaitLease(Store* s);  // below, with the lease tests

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/micedb-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    cluster_ = std::make_unique<Cluster>(root_);
  }
  void TearDown() override {
    cluster_.reset();
    std::this_thread::sleep_for(50ms);  // detached snapshot senders finish
    std::filesystem::remove_all(root_);
  }
  void Start3() {
    for (uint64_t id : {1, 2, 3}) cluster_->StartNode(id, {1, 2, 3});
  }
  // Puts retried at whoever leads now.
  void PutRetry(const std::string& k, const std::string& v, const std::vector<uint64_t>& live) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      uint64_t leader = cluster_->WaitLeader(live);
      ASSERT_NE(leader, 0u);
      auto r = cluster_->Put(leader, k, v);
      if (r.ok()) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "put " << k << " never succeeded";
  }
  // Three nodes; once k = value is written, *leader is the node that holds the lease.
  void StartWithLeaseHolder(const std::string& value, uint64_t* leader) {
    Start3();
    *leader = cluster_->WaitLeader({1, 2, 3});
    ASSERT_NE(*leader, 0u);
    ASSERT_TRUE(cluster_->Put(*leader, "k", value).ok());
    ASSERT_TRUE(WaitLease(cluster_->GetStore(*leader)));
  }
  std::string root_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(StoreTest, ReplicatesAndServesLinearizableReadsOnEveryNode) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  for (int i = 0; i < 50; ++i) {
    auto r = cluster_->Put(leader, fmt::format("k{}", i), fmt::format("v{}", i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "OK");
  }
  for (uint64_t id : {1, 2, 3}) {
    auto r = cluster_->Get(id, "k49");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "v49");
  }
  uint64_t follower = leader == 1 ? 2 : 1;
  auto r = cluster_->Put(follower, "x", "y");
  EXPECT_EQ(r.status().code(), StatusCode::kNotLeader);
}

// Found by the fault tests: a follower's MSG_READ_INDEX lost on the way to the leader left the
// read waiting for the whole request timeout, and the client got a timeout. It is now failed
// as retryable after two election timeouts and asked again.
TEST_F(StoreTest, ReadSurvivesALostReadIndexMessage) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v").ok());
  std::atomic<int> dropped{0};
  cluster_->drop = [&](const raft::Message& m) {
    if (m.type() != raft::MSG_READ_INDEX) return false;
    return dropped.fetch_add(1) == 0;  // only the first one
  };
  uint64_t follower = leader == 1 ? 2 : 1;
  auto start = std::chrono::steady_clock::now();
  auto r = cluster_->Get(follower, "k");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "v");
  EXPECT_GE(dropped.load(), 2);  // the lost request and the one asked again
  EXPECT_LT(took, 5s);           // well before the 10 s request timeout
}

TEST_F(StoreTest, RestartedNodeRecoversFromItsDiskAndCatchesUp) {
  Start3();
  for (int i = 0; i < 20; ++i) PutRetry(fmt::format("a{}", i), "1", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  uint64_t victim = leader == 3 ? 2 : 3;
  cluster_->StopNode(victim);
  std::vector<uint64_t> live;
  for (uint64_t id : {1, 2, 3}) {
    if (id != victim) live.push_back(id);
  }
  for (int i = 0; i < 20; ++i) PutRetry(fmt::format("b{}", i), "2", live);
  cluster_->StartNode(victim, {});
  auto r = cluster_->Get(victim, "b19");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2");
}

TEST_F(StoreTest, FollowerBehindTruncatedLogGetsSnapshot) {
  cluster_->gc_threshold = 20;
  cluster_->gc_keep = 5;
  cluster_->gc_max_lag = 50;
  Start3();
  PutRetry("first", "1", {1, 2, 3});
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  uint64_t victim = leader == 3 ? 2 : 3;
  cluster_->StopNode(victim);
  std::vector<uint64_t> live;
  for (uint64_t id : {1, 2, 3}) {
    if (id != victim) live.push_back(id);
  }
  for (int i = 0; i < 200; ++i) PutRetry(fmt::format("c{:03}", i), std::to_string(i), live);
  cluster_->StartNode(victim, {});
  auto r = cluster_->Get(victim, "c199");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "199");
  EXPECT_GE(cluster_->snapshots_delivered_.load(), 1);
  // Same data everywhere once the victim has applied everything.
  for (int i = 0; i < 200 && DataHash(cluster_->node(victim).engine.get()) !=
                                 DataHash(cluster_->node(leader).engine.get());
       ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(DataHash(cluster_->node(victim).engine.get()),
            DataHash(cluster_->node(leader).engine.get()));
}

TEST_F(StoreTest, AddLearnerPromoteAndRemove) {
  Start3();
  PutRetry("before", "1", {1, 2, 3});
  cluster_->StartNode(4, {});
  auto change = [&](raft::ConfChangeType type, uint64_t node) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      uint64_t leader = cluster_->WaitLeader({1, 2, 3});
      raft::ConfChange cc;
      cc.set_type(type);
      cc.set_node_id(node);
      auto r = cluster_->Call([&](ResultCallback cb) {
        cluster_->GetStore(leader)->ChangeMembership(
            RegionId(1), cc, [cb](Status st) { cb(st.ok() ? Result<std::string>("") : st); });
      });
      if (r.ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "membership change never applied";
  };
  change(raft::ADD_LEARNER, 4);
  PutRetry("after-learner", "2", {1, 2, 3});
  auto r = cluster_->Get(4, "after-learner");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2");
  change(raft::ADD_VOTER, 4);
  change(raft::REMOVE_NODE, 1);
  PutRetry("after-remove", "3", {2, 3, 4});
  for (uint64_t id : {2, 3, 4}) {
    auto g = cluster_->Get(id, "after-remove");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, "3");
  }
}

// ---- Lease reads (StoreOptions::lease_reads, raft.md §7) ----

std::optional<Result<std::string>> LeaseRead(Store* s, std::string_view cmd) {
  auto r = s->ReadUnderLease(TestRequest(cmd));
  if (!r) return std::nullopt;
  return TestResult(*r);
}

std::optional<Result<std::string>> LeaseGet(Store* s, const std::string& k) {
  return LeaseRead(s, "G" + k);
}

// Polls `node`'s lease reads on a thread and remembers when the last check that found a lease
// began (so a check that raced with the lease's end cannot be recorded late).
class LeaseWatcher {
 public:
  LeaseWatcher(Cluster* c, uint64_t node) {
    thread_ = std::thread([this, c, node] {
      while (!stop_) {
        auto t = std::chrono::steady_clock::now();
        Store* s = c->GetStore(node);
        if (s != nullptr && LeaseGet(s, "k").has_value()) {
          std::lock_guard<std::mutex> l(mu_);
          last_ok_ = t;
          seen_ = true;
        }
        std::this_thread::sleep_for(200us);
      }
    });
  }
  ~LeaseWatcher() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  std::chrono::steady_clock::time_point last_ok() {
    std::lock_guard<std::mutex> l(mu_);
    return last_ok_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  bool seen_ = false;
  std::chrono::steady_clock::time_point last_ok_;
  std::thread thread_;
};

// The first answer under the lease within 3 s (nullopt if none).
std::optional<Result<std::string>> NextLeaseGet(Store* s, const std::string& k) {
  for (int i = 0; i < 3000; ++i) {
    if (auto r = LeaseGet(s, k)) return r;
    std::this_thread::sleep_for(1ms);
  }
  return std::nullopt;
}

// Waits until the leader answers under its lease (the first heartbeat round the followers
// answer, after it applied an entry of its term).
bool WaitLease(Store* s) {
  for (int i = 0; i < 300; ++i) {
    if (LeaseGet(s, "k").has_value()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST_F(StoreTest, LeaderAnswersReadsUnderItsLeaseAndFollowersDoNot) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("v1", &leader));
  Store* s = cluster_->GetStore(leader);
  auto r = NextLeaseGet(s, "k");
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, "v1");
  // A write acknowledged by the leader is seen by the next lease read that answers (one made
  // while the leader is between publishing a commit and its apply falls back instead).
  ASSERT_TRUE(cluster_->Put(leader, "k", "v2").ok());
  r = NextLeaseGet(s, "k");
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, "v2");
  for (uint64_t id : {1, 2, 3}) {
    if (id != leader) EXPECT_FALSE(LeaseGet(cluster_->GetStore(id), "k").has_value()) << id;
  }
  EXPECT_GE(s->counters().lease_reads.load(), 2u);
}

TEST_F(StoreTest, NoLeaseReadsWhenTurnedOff) {
  cluster_->lease_reads = false;
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v").ok());
  std::this_thread::sleep_for(300ms);  // many heartbeat rounds
  EXPECT_FALSE(LeaseGet(cluster_->GetStore(leader), "k").has_value());
  auto g = cluster_->Get(leader, "k");  // the ReadIndex path still serves
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, "v");
}

TEST_F(StoreTest, ACutOffLeadersLeaseEndsBeforeANewLeaderWrites) {
  uint64_t old = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("old", &old));
  LeaseWatcher watch(cluster_.get(), old);
  for (int i = 0; i < 500 && !watch.seen(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(watch.seen());
  cluster_->drop = [old](const raft::Message& m) { return m.from() == old || m.to() == old; };
  std::vector<uint64_t> others;
  for (uint64_t id : {1, 2, 3}) {
    if (id != old) others.push_back(id);
  }
  std::optional<std::chrono::steady_clock::time_point> acked;
  for (int attempt = 0; attempt < 300 && !acked; ++attempt) {
    uint64_t now_leader = cluster_->WaitLeader(others);
    if (now_leader != 0 && now_leader != old && cluster_->Put(now_leader, "k", "new").ok()) {
      acked = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_TRUE(acked.has_value()) << "the two others never elected a leader and wrote";
  std::this_thread::sleep_for(50ms);
  watch.Stop();
  ASSERT_TRUE(watch.seen());
  // Had the old leader answered from its lease after this write, it would have said "old".
  EXPECT_LT(watch.last_ok(), *acked);
  EXPECT_FALSE(LeaseGet(cluster_->GetStore(old), "k").has_value());
}

TEST_F(StoreTest, ATransferEndsTheLeaseBeforeTheTargetCanWin) {
  uint64_t old = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("old", &old));
  uint64_t target = old == 3 ? 1 : old + 1;
  LeaseWatcher watch(cluster_.get(), old);
  for (int i = 0; i < 500 && !watch.seen(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(watch.seen());
  // Once the old leader sends MSG_TIMEOUT_NOW it hears nothing more, so only the transfer itself
  // can end its lease early (it would otherwise run on for the heartbeat round it last had
  // answered, as in the test above).
  std::atomic<bool> timeout_now_sent{false};
  cluster_->drop = [&timeout_now_sent, old](const raft::Message& m) {
    if (m.type() == raft::MSG_TIMEOUT_NOW && m.from() == old) timeout_now_sent = true;
    return timeout_now_sent && m.to() == old;
  };
  cluster_->GetStore(old)->TransferLeader(RegionId(1), NodeId(target));
  std::optional<std::chrono::steady_clock::time_point> acked;
  for (int attempt = 0; attempt < 300 && !acked; ++attempt) {
    if (cluster_->GetStore(target)->LeaderOf(RegionId(1)).value() == target &&
        cluster_->Put(target, "k", "new").ok()) {
      acked = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(2ms);
    }
  }
  ASSERT_TRUE(acked.has_value()) << "the transfer never completed";
  ASSERT_TRUE(timeout_now_sent);
  watch.Stop();
  ASSERT_TRUE(watch.seen());
  // The target won at once (MSG_TIMEOUT_NOW), well inside the old lease's time: only ending
  // the lease before that message left keeps the old leader from answering "old" now.
  EXPECT_LT(watch.last_ok(), *acked);
  auto r = LeaseGet(cluster_->GetStore(old), "k");
  EXPECT_FALSE(r.has_value()) << (r && r->ok() ? **r : std::string("error"));
}

// Found by the membership fault test: a leader's messages carry its new commit index before it
// applies the entries itself, so a follower may apply and serve a ReadIndex read of the new
// value first; a lease read on the leader at that moment answered with the old value.
TEST_F(StoreTest, LeaseReadsDoNotGoBehindWhatAFollowerAlreadyServed) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("old", &leader));
  Store* s = cluster_->GetStore(leader);
  uint64_t follower = leader == 1 ? 2 : 1;
  storage::Engine* follower_engine = cluster_->node(follower).engine.get();
  cluster_->sm().slow_apply_ms = 300;
  cluster_->sm().slow_engine = cluster_->node(leader).engine.get();
  // Its outcome does not matter: the leader may lose leadership while it applies slowly.
  std::thread writer([&] { (void)cluster_->Put(leader, "k", "new"); });
  // The follower applies "new" as soon as the leader's commit index reaches it, while the
  // leader is still applying it; from then on a ReadIndex read there returns "new".
  bool follower_has_new = false;
  for (int i = 0; i < 20000 && !follower_has_new; ++i) {
    auto v = follower_engine->Get(Cf::kDefault, "rk");
    follower_has_new = v.ok() && *v == "new";
    if (!follower_has_new) std::this_thread::sleep_for(100us);
  }
  ASSERT_TRUE(follower_has_new);
  // The leader's lease (72 ms here) is younger than its slow apply (300 ms): it must not
  // answer "old" now.
  auto r = LeaseGet(s, "k");
  EXPECT_TRUE(!r.has_value() || (r->ok() && **r == "new"))
      << "lease read went back in time: " << (r->ok() ? **r : r->status().ToString());
  writer.join();
  cluster_->sm().slow_engine = nullptr;
  // Whoever leads now answers "new" under its lease once it has one.
  uint64_t now_leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(now_leader, 0u);
  ASSERT_TRUE(WaitLease(cluster_->GetStore(now_leader)));
  r = NextLeaseGet(cluster_->GetStore(now_leader), "k");
  ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(**r, "new");
}

// Found in review: lease reads run on the client's thread while the loop applies; a command
// reading two keys must see both or neither of one entry's writes.
TEST_F(StoreTest, ALeaseReadOfSeveralKeysSeesOneState) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  Store* s = cluster_->GetStore(leader);
  ASSERT_TRUE(cluster_->Call([&](ResultCallback cb) { s->Propose(TestRequest("D0"), Adapt(cb)); }).ok());
  ASSERT_TRUE(WaitLease(s));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 1; i <= 300 && !stop; ++i) {
      (void)cluster_->Call(
          [&](ResultCallback cb) { s->Propose(TestRequest("D" + std::to_string(i)), Adapt(cb)); });
    }
    stop = true;
  });
  int served = 0, torn = 0;
  while (!stop) {
    auto r = LeaseRead(s, "B");
    if (!r.has_value() || !r->ok()) continue;
    ++served;
    const std::string& v = **r;
    auto comma = v.find(',');
    if (v.substr(0, comma) != v.substr(comma + 1)) ++torn;
  }
  writer.join();
  EXPECT_GT(served, 0);
  EXPECT_EQ(torn, 0) << "of " << served << " lease reads";
}

// A read that reaches the loop (the router's fallback when an apply was pending) is served
// under the lease too: it waits for the apply of the commit index, not for a heartbeat round.
TEST_F(StoreTest, LoopReadsOnALeaderWithALeaseSkipTheHeartbeatRound) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("v", &leader));
  Store* s = cluster_->GetStore(leader);
  bool under_lease = false;
  for (int attempt = 0; attempt < 50 && !under_lease; ++attempt) {
    const uint64_t before = s->counters().lease_reads.load();
    auto g = cluster_->Get(leader, "k");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, "v");
    under_lease = s->counters().lease_reads.load() == before + 1;
  }
  EXPECT_TRUE(under_lease);
}

// ---- Region requests (DESIGN §8 rule 7) ----

region::RegionResponse Await(std::function<void(ResponseCallback)> fn) {
  auto p = std::make_shared<std::promise<region::RegionResponse>>();
  auto f = p->get_future();
  fn([p](region::RegionResponse r) { p->set_value(std::move(r)); });
  if (f.wait_for(10s) != std::future_status::ready) return TimeoutResponse("test wait");
  return f.get();
}

TEST_F(StoreTest, RequestsWithAStaleEpochAreRefusedEverywhereAndNeverApplied) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("v", &leader));
  Store* s = cluster_->GetStore(leader);
  for (uint64_t version : {0, 2}) {
    auto w = Await([&](ResponseCallback cb) { s->Propose(TestRequest("Pk=stale", version), cb); });
    ASSERT_TRUE(w.has_error());
    ASSERT_EQ(w.error().kind_case(), region::RegionError::kEpochNotMatch) << w.DebugString();
    ASSERT_EQ(w.error().epoch_not_match().current_regions_size(), 1);
    EXPECT_EQ(w.error().epoch_not_match().current_regions(0).id(), 1u);
    EXPECT_EQ(w.error().epoch_not_match().current_regions(0).epoch().version(), 1u);
    auto lease = s->ReadUnderLease(TestRequest("Gk", version));
    if (lease.has_value()) {
      EXPECT_EQ(lease->error().kind_case(), region::RegionError::kEpochNotMatch);
    }
    for (uint64_t id : {1, 2, 3}) {
      Store* at = cluster_->GetStore(id);
      EXPECT_EQ(at->ReadLocal(TestRequest("Gk", version)).error().kind_case(),
                region::RegionError::kEpochNotMatch);
      auto r = Await([&](ResponseCallback cb) { at->ReadLinearizable(TestRequest("Gk", version), cb); });
      // A follower may first answer that it knows no leader; never with the data.
      EXPECT_TRUE(r.has_error());
      EXPECT_NE(r.error().kind_case(), region::RegionError::kTimeout);
    }
  }
  EXPECT_GT(s->counters().requests_refused.load(), 0u);
  // Nothing was applied anywhere: every replica still has "v" once a later write lands.
  ASSERT_TRUE(cluster_->Put(leader, "after", "1").ok());
  for (uint64_t id : {1, 2, 3}) {
    auto g = cluster_->Get(id, "k");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, "v");
  }
}

TEST_F(StoreTest, RequestsForARegionThatIsNotHereAreRefused) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  Store* s = cluster_->GetStore(leader);
  auto req = TestRequest("Pk=x");
  req.mutable_header()->set_region_id(9);
  auto w = Await([&](ResponseCallback cb) { s->Propose(req, cb); });
  EXPECT_EQ(w.error().kind_case(), region::RegionError::kRegionNotFound);
  EXPECT_EQ(w.error().region_not_found().region_id(), 9u);
  EXPECT_EQ(s->ReadLocal(req).error().kind_case(), region::RegionError::kRegionNotFound);
  EXPECT_FALSE(s->ReadUnderLease(req).has_value());
  auto r = Await([&](ResponseCallback cb) { s->ReadLinearizable(req, cb); });
  EXPECT_EQ(r.error().kind_case(), region::RegionError::kRegionNotFound);
}

}  // namespace
}  // namespace micedb::store
