// Test support for the store tests (internal to src/store's tests): test commands carried as
// kv bodies, a test state machine, and three (or four) stores in one process over FaultEngines
// (MemEngines that can fail writes) joined by an in-process transport.
#pragma once

#include "store/snapshot_stage.h"
#include "store/store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <fmt/format.h>

#include "common/pulse.h"
#include "storage/fault_engine.h"
#include "store/errors.h"
#include "store/keys.h"

namespace micedb::store::test {

using storage::Cf;
using namespace std::chrono_literals;

// Test commands, written as strings and carried as kv bodies: "P<key>=<value>" puts (a SET),
// "G<key>" gets ("<none>" when absent); "D<value>" puts the value under both "a" and "b" (an
// MSET), "B" reads both ("<a>,<b>"; an MGET). Values are stored raw under "r" + key.
inline kv::Command TestCommand(std::string_view cmd) {
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
inline region::RegionRequest TestRequest(std::string_view cmd, uint64_t version = 1) {
  region::RegionRequest req;
  req.mutable_header()->set_region_id(1);
  req.mutable_header()->mutable_epoch()->set_conf_ver(1);
  req.mutable_header()->mutable_epoch()->set_version(version);
  *req.mutable_kv() = TestCommand(cmd);
  return req;
}

// A response as the tests read it: the value, or the error as a Status.
inline Result<std::string> TestResult(const region::RegionResponse& resp) {
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

// Calls `fn` and waits (10 s at most) for the response it hands its callback.
inline region::RegionResponse Await(const std::function<void(ResponseCallback)>& fn) {
  auto p = std::make_shared<std::promise<region::RegionResponse>>();
  auto f = p->get_future();
  fn([p](region::RegionResponse r) { p->set_value(std::move(r)); });
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return TimeoutResponse("test wait");
  }
  return f.get();
}

inline ResponseCallback Adapt(ResultCallback cb) {
  return [cb = std::move(cb)](const region::RegionResponse& r) { cb(TestResult(r)); };
}

class TestStateMachine : public StateMachine {
 public:
  class Round : public ApplyRound {
   public:
    Round(TestStateMachine* sm, storage::Engine* engine, storage::WriteBatch* wb)
        : sm_(sm), engine_(engine), wb_(wb) {}
    kv::CommandResult ApplyKv(const kv::Command& cmd, LogIndex, bool) override {
      if (engine_ == sm_->slow_engine.load()) {
        if (sm_->pulse_while_slow) {
          // Long work that pulses now and then, as the kv state machine's reads do.
          for (int ms = 0; ms < sm_->slow_apply_ms.load(); ms += 5) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            Pulse();
          }
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(sm_->slow_apply_ms.load()));
        }
      }
      if (cmd.has_mset()) {
        for (const auto& kv : cmd.mset().pairs()) {
          wb_->Put(Cf::kDefault, "r" + kv.key(), kv.value());
        }
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
  std::atomic<bool> pulse_while_slow{false};  // calls Pulse() every 5 ms while slow
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
  std::unique_ptr<storage::FaultEngine> engine = std::make_unique<storage::FaultEngine>();
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
    o.free_bytes = free_bytes;
    o.request_timeout_ms = request_timeout_ms;
    o.disk_check_ms = 20;
    if (tweak) tweak(id, &o);
    return o;
  }

  void StartNode(uint64_t id, const std::vector<uint64_t>& bootstrap_voters) {
    Node& n = nodes_[id];
    n.transport = std::make_unique<InProcTransport>(this, NodeId(id));
    n.store = std::make_unique<Store>(Options(id), n.engine.get(), &sm_, n.transport.get());
    if (!bootstrap_voters.empty()) {
      std::vector<std::pair<NodeId, std::string>> v;
      v.reserve(bootstrap_voters.size());
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

  void DeliverSnapshot(NodeId from, const raft::Message& m, const SnapshotSource& src) {
    std::string dir = fmt::format("{}/xfer-{}-{}", snap_root_, m.to(), seq_++);
    auto files = src.export_files(dir);
    Result<StagedSnapshot> staged =
        files.ok() ? DescribeExportedFiles(dir, *files) : Result<StagedSnapshot>(files.status());
    bool ok = staged.ok();
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = nodes_.find(m.to());
      if (ok && it != nodes_.end() && it->second.store) {
        it->second.store->OnSnapshotReceived(m, std::move(*staged));
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

  Result<std::string> Call(const std::function<void(ResultCallback)>& fn) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    auto f = p->get_future();
    fn([p](Result<std::string> r) { p->set_value(std::move(r)); });
    if (f.wait_for(10s) != std::future_status::ready) return Status::TimedOut("test wait");
    return f.get();
  }

  Result<std::string> Put(uint64_t at, const std::string& k, const std::string& v) {
    return Call([&](const ResultCallback& cb) {
      GetStore(at)->Propose(TestRequest("P" + k + "=" + v), Adapt(cb));
    });
  }
  // A linearizable read at node `at`, retried while that node knows no leader yet (as the
  // router does).
  Result<std::string> Get(uint64_t at, const std::string& k) {
    for (int attempt = 0;; ++attempt) {
      auto r = Call([&](const ResultCallback& cb) {
        GetStore(at)->ReadLinearizable(TestRequest("G" + k), Adapt(cb));
      });
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
  // Changes a node's options before it starts (its clock, manual mode, ...).
  std::function<void(uint64_t, StoreOptions*)> tweak;
  // The stores' free-space probe (StoreOptions::free_bytes); null: none.
  std::function<Result<uint64_t>()> free_bytes;
  int64_t request_timeout_ms = 10'000;
  std::atomic<int> snapshots_delivered_{0};

 private:
  std::string snap_root_;
  TestStateMachine sm_;
  std::mutex mu_;
  std::map<uint64_t, Node> nodes_;
  std::atomic<int> seq_{0};
};

inline void InProcTransport::Send(raft::Message m) { c_->Deliver(std::move(m)); }

inline void InProcTransport::SendSnapshot(raft::Message m, SnapshotSource source) {
  // Off the loop thread, as the real transport does.
  std::thread([c = c_, self = self_, m = std::move(m), source = std::move(source)]() mutable {
    c->DeliverSnapshot(self, m, source);
  }).detach();
}

inline std::string DataHash(storage::Engine* e) {
  auto it = e->NewIterator(Cf::kDefault, storage::ReadOptions{});
  std::string all;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    all += std::string(it->key()) + "=" + std::string(it->value()) + ";";
  }
  return all;
}

inline bool WaitLease(Store* s);  // below, with the lease helpers

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
  // A membership change of region 1 through whoever of `live` leads, retried until applied.
  void ChangeMembership(raft::ConfChangeType type, uint64_t node,
                        const std::vector<uint64_t>& live) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      uint64_t leader = cluster_->WaitLeader(live);
      raft::ConfChange cc;
      cc.set_type(type);
      cc.set_node_id(node);
      auto r = cluster_->Call([&](const ResultCallback& cb) {
        cluster_->GetStore(leader)->ChangeMembership(RegionId(1), cc, [cb](const Status& st) {
          cb(st.ok() ? Result<std::string>("") : st);
        });
      });
      if (r.ok()) return;
      std::this_thread::sleep_for(50ms);
    }
    FAIL() << "membership change never applied";
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

inline std::optional<Result<std::string>> LeaseRead(Store* s, std::string_view cmd) {
  auto r = s->ReadUnderLease(TestRequest(cmd));
  if (!r) return std::nullopt;
  return TestResult(*r);
}

inline std::optional<Result<std::string>> LeaseGet(Store* s, const std::string& k) {
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
        if (s != nullptr) {
          const int64_t until = s->LeaseUntilNs(RegionId(1));
          std::lock_guard<std::mutex> l(mu_);
          max_until_ = std::max(max_until_, until);
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
  // The latest lease end seen published (the store's clock; 0: none): the lease, left alone,
  // would have held at least until then.
  int64_t max_until() {
    std::lock_guard<std::mutex> l(mu_);
    return max_until_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  bool seen_ = false;
  std::chrono::steady_clock::time_point last_ok_;
  int64_t max_until_ = 0;
  std::thread thread_;
};

// The first answer under the lease within 3 s (nullopt if none).
inline std::optional<Result<std::string>> NextLeaseGet(Store* s, const std::string& k) {
  for (int i = 0; i < 3000; ++i) {
    if (auto r = LeaseGet(s, k)) return r;
    std::this_thread::sleep_for(1ms);
  }
  return std::nullopt;
}

// Waits until the leader answers under its lease (the first heartbeat round the followers
// answer, after it applied an entry of its term).
inline bool WaitLease(Store* s) {
  for (int i = 0; i < 300; ++i) {
    if (LeaseGet(s, "k").has_value()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

inline region::RegionRequest On(uint64_t region, uint64_t version, std::string_view cmd) {
  region::RegionRequest req = TestRequest(cmd, version);
  req.mutable_header()->set_region_id(region);
  return req;
}

inline std::optional<RegionDescriptor> DescOf(Store* s, uint64_t region) {
  if (auto info = s->RegionInfoOf(RegionId(region))) return info->descriptor;
  return std::nullopt;
}

// Helpers for tests with several regions (splits, merges).
class RegionsTest : public StoreTest {
 protected:
  // The node every listed node agrees leads `region`; 0 if none within 10 s.
  uint64_t WaitLeaderOf(uint64_t region, const std::vector<uint64_t>& ids) {
    for (int i = 0; i < 1000; ++i) {
      uint64_t leader = 0;
      bool agree = true;
      for (auto id : ids) {
        uint64_t l = cluster_->GetStore(id)->LeaderOf(RegionId(region)).value();
        if (leader == 0) leader = l;
        agree &= l != 0 && l == leader;
      }
      if (agree) return leader;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  // Waits until `pred` holds; false after 10 s.
  static bool Eventually(const std::function<bool()>& pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  region::RegionResponse Split(uint64_t at, const std::string& key, uint64_t new_id,
                               uint64_t version = 1, uint64_t region = 1) {
    region::RegionRequest req;
    req.set_format(region::FORMAT_V1);
    req.mutable_header()->set_region_id(region);
    req.mutable_header()->mutable_epoch()->set_conf_ver(1);
    req.mutable_header()->mutable_epoch()->set_version(version);
    req.mutable_admin()->mutable_split()->set_split_key(key);
    req.mutable_admin()->mutable_split()->set_new_region_id(new_id);
    return Await([&](const ResponseCallback& cb) { cluster_->GetStore(at)->RunAdmin(req, cb); });
  }

  Result<std::string> PutOn(uint64_t region, uint64_t version, const std::string& k,
                            const std::string& v, const std::vector<uint64_t>& live = {1, 2, 3}) {
    for (int attempt = 0;; ++attempt) {
      uint64_t leader = WaitLeaderOf(region, live);
      if (leader == 0) return Status::Unavailable("no leader");
      auto r = cluster_->Call([&](const ResultCallback& cb) {
        cluster_->GetStore(leader)->Propose(On(region, version, "P" + k + "=" + v), Adapt(cb));
      });
      if (r.ok() || attempt == 50 || r.status().code() != StatusCode::kNotLeader) return r;
      std::this_thread::sleep_for(10ms);
    }
  }

  Result<std::string> GetOn(uint64_t at, uint64_t region, uint64_t version, const std::string& k) {
    for (int attempt = 0;; ++attempt) {
      auto r = cluster_->Call([&](const ResultCallback& cb) {
        cluster_->GetStore(at)->ReadLinearizable(On(region, version, "G" + k), Adapt(cb));
      });
      if (r.ok() || attempt == 200) return r;
      if (r.status().code() != StatusCode::kUnavailable &&
          r.status().code() != StatusCode::kNotLeader &&
          r.status().code() != StatusCode::kNotFound) {
        return r;
      }
      std::this_thread::sleep_for(10ms);
    }
  }

  // Three stores holding a, q and z; *slow is a follower, the one the test cuts off.
  void StartWithData(uint64_t* leader, uint64_t* slow) {
    Start3();
    *leader = cluster_->WaitLeader({1, 2, 3});
    ASSERT_NE(*leader, 0u);
    for (const char* k : {"a", "q", "z"}) ASSERT_TRUE(cluster_->Put(*leader, k, k).ok());
    *slow = *leader % 3 + 1;
  }

  // Every store but `slow`.
  static std::vector<uint64_t> AllBut(uint64_t slow) {
    std::vector<uint64_t> live;
    for (uint64_t id : {1, 2, 3}) {
      if (id != slow) live.push_back(id);
    }
    return live;
  }

  // No two initialized regions on one store overlap.
  void ExpectNoOverlap(uint64_t id) {
    auto regions = cluster_->GetStore(id)->Regions();
    for (size_t i = 0; i < regions.size(); ++i) {
      for (size_t j = i + 1; j < regions.size(); ++j) {
        const auto& a = regions[i].descriptor;
        const auto& b = regions[j].descriptor;
        if (a.conf_state().voters_size() == 0 || b.conf_state().voters_size() == 0) continue;
        const bool apart = EngineRangeEnd(a.end_key()) <= b.start_key() ||
                           EngineRangeEnd(b.end_key()) <= a.start_key();
        EXPECT_TRUE(apart) << "node " << id << ": regions " << a.id() << " and " << b.id()
                           << " overlap";
      }
    }
  }
};

}  // namespace micedb::store::test
