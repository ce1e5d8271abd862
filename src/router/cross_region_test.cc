// Cross-region writes (cross_region.cc) against a store that runs the real state machine on
// an in-memory engine, with a manual clock and executor: the whole two-phase commit, and the
// resolution of intents a command meets, with no threads.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "kv/command_result.h"
#include "kv/state_machine.h"
#include "router/manual_executor.h"
#include "router/router.h"
#include "storage/mem_engine.h"
#include "store/test_descriptor.h"

namespace micedb::router {
namespace {

store::RegionDescriptor Desc(uint64_t id, std::string start, std::string end) {
  return store::TestDescriptor(id, std::move(start), std::move(end));
}

// Every region's data in one engine; regions are only the router's business here.
class KvStore : public LocalStore {
 public:
  NodeId node_id() const override { return NodeId(1); }
  bool lease_reads() const override { return true; }
  void Propose(region::RegionRequest req, ResponseCallback done) override {
    proposed.push_back(req);
    region::RegionResponse resp = Apply(req.kv(), req.header().region_id());
    if (after_propose) after_propose(proposed.size());
    done(std::move(resp));
  }
  void ReadLinearizable(region::RegionRequest req, ResponseCallback done) override {
    done(ReadLocal(req));
  }
  region::RegionResponse ReadLocal(const region::RegionRequest& req) override {
    region::RegionResponse resp;
    auto r = machine.Read(req.kv(), &engine, nullptr, req.kv().now_ms());
    EXPECT_TRUE(r.ok());
    if (r.ok()) *resp.mutable_kv() = *r;
    return resp;
  }
  std::optional<region::RegionResponse> ReadUnderLease(const region::RegionRequest& req) override {
    return ReadLocal(req);
  }
  std::vector<RegionRoute> Regions() const override { return regions; }
  NodeId LeaderOf(uint64_t) const override { return NodeId(1); }

  region::RegionResponse Apply(const kv::Command& cmd, uint64_t region = 0) {
    kv::ApplyBatch batch(&engine);
    auto r = machine.Apply(cmd, LogIndex(++index), batch);
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(engine.Write(batch.write_batch(), {}).ok());
    region::RegionResponse resp;
    if (r.ok()) *resp.mutable_kv() = *r;
    applied.emplace_back(region, cmd.op_case());
    return resp;
  }

  bool AnyIntentRecord() {
    kv::EngineView view(&engine);
    return view.Scan(storage::Cf::kLock, "", "\xff")->Valid();
  }

  storage::MemEngine engine;
  kv::KvStateMachine machine;
  uint64_t index = 0;
  std::vector<RegionRoute> regions;
  std::vector<region::RegionRequest> proposed;
  std::vector<std::pair<uint64_t, kv::Command::OpCase>> applied;  // (region, op)
  std::function<void(size_t)> after_propose;  // called with the number of proposals so far
};

class NoPeers : public PeerLink {
 public:
  void Forward(NodeId, transport::ForwardRequest, int64_t, ForwardCallback done) override {
    done(Status::Unavailable("no peers in this test"));
  }
  std::vector<NodeId> Nodes() const override { return {}; }
};

struct Outcome {
  bool called = false;
  Result<kv::CommandResult> result = Status::Internal("not called");
};

class CrossRegionTest : public ::testing::Test {
 protected:
  CrossRegionTest() : executor_(&clock_) {
    store_.regions = {RegionRoute{Desc(1, "", "rm"), NodeId(1)},
                      RegionRoute{Desc(7, "rm", ""), NodeId(1)}};
    router_ = std::make_unique<Router>(
        RouterOptions{
            .request_timeout_ms = 2000, .request_id_base = 1000, .cross_region_lock_ttl_ms = 500},
        &store_, &peers_, &executor_, &clock_);
    for (const auto& r : store_.regions) router_->cache().Update(r.desc, r.leader);
  }
  std::shared_ptr<Outcome> Run(kv::Command cmd) {
    auto out = std::make_shared<Outcome>();
    router_->Execute(std::move(cmd), kv::ReadMode::kLinearizable,
                     [out](Result<kv::CommandResult> r) {
                       EXPECT_FALSE(out->called) << "answered twice";
                       out->called = true;
                       out->result = std::move(r);
                     });
    return out;
  }
  // Runs `cmd` to its answer, moving the clock as far as `max_ms`.
  kv::CommandResult Done(kv::Command cmd, int64_t max_ms = 0) {
    auto out = Run(std::move(cmd));
    for (int64_t t = 0; !out->called && t <= max_ms; t += 5) executor_.RunFor(5);
    EXPECT_TRUE(out->called);
    EXPECT_TRUE(out->result.ok()) << out->result.status().ToString();
    return out->result.ok() ? *out->result : kv::CommandResult();
  }
  std::string Value(const std::string& key) {
    kv::Command get;
    get.mutable_get()->set_key(key);
    kv::CommandResult r = Done(get);
    return r.has_bulk() ? r.bulk() : r.has_nil() ? "<nil>" : r.DebugString();
  }
  static kv::Command Set(std::string k, std::string v) {
    kv::Command c;
    c.mutable_set()->set_key(std::move(k));
    c.mutable_set()->set_value(std::move(v));
    return c;
  }
  static kv::Command MSet(std::vector<std::pair<std::string, std::string>> pairs, bool nx = false) {
    kv::Command c;
    for (auto& [k, v] : pairs) {
      kv::KeyValue* p = nx ? c.mutable_msetnx()->add_pairs() : c.mutable_mset()->add_pairs();
      p->set_key(k);
      p->set_value(v);
    }
    return c;
  }
  // Applies a prepare straight to the store, as a gateway that then died would have left it.
  void Prepared(kv::Command body, const std::string& primary, uint64_t txn, int64_t ttl_ms,
                int64_t birth_ms = 0) {
    kv::Command c;
    c.set_now_ms(clock_.NowWallMillis());
    c.mutable_prepare()->set_txn_id(txn);
    c.mutable_prepare()->set_primary(primary);
    c.mutable_prepare()->set_lock_expire_at_ms(c.now_ms() + ttl_ms);
    c.mutable_prepare()->set_birth_ms(birth_ms);
    body.set_now_ms(c.now_ms());
    *c.mutable_prepare()->mutable_body() = std::move(body);
    ASSERT_FALSE(store_.Apply(c).kv().has_error());
  }

  ManualClock clock_;
  ManualExecutor executor_;
  KvStore store_;
  NoPeers peers_;
  std::unique_ptr<Router> router_;
};

using Op = kv::Command::OpCase;

TEST_F(CrossRegionTest, AnMSetOverTwoRegionsCommitsThroughThePrimaryFirst) {
  kv::CommandResult r = Done(MSet({{"z", "26"}, {"a", "1"}}));
  EXPECT_TRUE(r.has_ok()) << r.DebugString();
  EXPECT_EQ(Value("a"), "1");
  EXPECT_EQ(Value("z"), "26");
  EXPECT_FALSE(store_.AnyIntentRecord());
  // The primary (z, the first key: region 7) is prepared alone, then region 1; the decision
  // is the primary's commit; then region 1 commits and the decision is forgotten.
  std::vector<std::pair<uint64_t, Op>> want = {{7, Op::kPrepare},
                                               {1, Op::kPrepare},
                                               {7, Op::kResolveIntents},
                                               {1, Op::kResolveIntents},
                                               {7, Op::kForgetDecision}};
  EXPECT_EQ(store_.applied, want);
  EXPECT_TRUE(store_.proposed[2].kv().resolve_intents().decide());
  EXPECT_EQ(router_->counters().cross_region_txns.load(), 1u);
}

TEST_F(CrossRegionTest, MSetNxAndDelOverRegionsAreAllOrNothing) {
  Done(Set("z", "here"));
  EXPECT_EQ(Done(MSet({{"a", "1"}, {"z", "2"}}, true)).integer(), 0);
  EXPECT_EQ(Value("a"), "<nil>");
  EXPECT_EQ(Value("z"), "here");
  EXPECT_FALSE(store_.AnyIntentRecord());
  EXPECT_EQ(Done(MSet({{"a", "1"}, {"y", "2"}}, true)).integer(), 1);
  EXPECT_EQ(Value("y"), "2");
  kv::Command del;
  for (const char* k : {"a", "z", "nope", "y"}) del.mutable_del()->add_keys(k);
  EXPECT_EQ(Done(del).integer(), 3);
  EXPECT_EQ(Value("a"), "<nil>");
  EXPECT_EQ(Value("z"), "<nil>");
  EXPECT_FALSE(store_.AnyIntentRecord());
}

TEST_F(CrossRegionTest, MultiExecOverRegionsAnswersInOrderAndHonoursWatch) {
  Done(Set("a", "10"));
  Done(Set("z", "20"));
  kv::Command multi;
  kv::Command incr;
  incr.mutable_incrby()->set_key("a");
  incr.mutable_incrby()->set_delta(-3);
  *multi.mutable_txn()->add_commands() = incr;
  incr.mutable_incrby()->set_key("z");
  incr.mutable_incrby()->set_delta(3);
  *multi.mutable_txn()->add_commands() = incr;
  kv::Command mget;
  for (const char* k : {"z", "a"}) mget.mutable_mget()->add_keys(k);
  *multi.mutable_txn()->add_commands() = mget;  // cut in two, joined in the client's order
  kv::CommandResult r = Done(multi);
  ASSERT_TRUE(r.has_array()) << r.DebugString();
  ASSERT_EQ(r.array().items_size(), 3);
  EXPECT_EQ(r.array().items(0).integer(), 7);
  EXPECT_EQ(r.array().items(1).integer(), 23);
  EXPECT_EQ(r.array().items(2).array().items(0).bulk(), "23");
  EXPECT_EQ(r.array().items(2).array().items(1).bulk(), "7");
  // WATCH on a key of the second region whose revision moved: nothing runs anywhere.
  kv::Command watched = multi;
  kv::WatchedKey* w = watched.mutable_txn()->add_watched();
  w->set_key("z");
  w->set_revision(1);
  EXPECT_TRUE(Done(watched).has_aborted());
  EXPECT_EQ(Value("a"), "7");
  EXPECT_EQ(Value("z"), "23");
  EXPECT_FALSE(store_.AnyIntentRecord());
  // MSETNX cut by region inside MULTI cannot be all-or-nothing on its own: refused.
  kv::Command nx;
  *nx.mutable_txn()->add_commands() = MSet({{"a", "1"}, {"z", "2"}}, true);
  EXPECT_EQ(Done(nx).error().code(), kv::KvError::CROSS_REGION);
}

TEST_F(CrossRegionTest, AReaderRollsBackADeadWritersIntentOnceItsLockExpires) {
  Done(Set("a", "old"));
  Prepared(MSet({{"a", "new"}}), "a", 5, 300);  // the primary; its gateway died
  auto out = Run([] {
    kv::Command g;
    g.mutable_get()->set_key("a");
    return g;
  }());
  executor_.RunFor(200);
  EXPECT_FALSE(out->called);  // waits while the lock lives
  executor_.RunFor(400);
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok()) << out->result.status().ToString();
  EXPECT_EQ(out->result->bulk(), "old");
  EXPECT_FALSE(store_.AnyIntentRecord());
  EXPECT_GE(router_->counters().locks_resolved.load(), 1u);
}

TEST_F(CrossRegionTest, AReaderCommitsTheIntentOfATransactionThatCommittedAtItsPrimary) {
  Prepared(MSet({{"z", "new-z"}}), "z", 9, 60'000);
  Prepared(MSet({{"a", "new-a"}}), "z", 9, 60'000);
  kv::Command decide;
  decide.set_now_ms(clock_.NowWallMillis());
  decide.mutable_resolve_intents()->set_txn_id(9);
  decide.mutable_resolve_intents()->add_keys("z");
  decide.mutable_resolve_intents()->set_commit(true);
  decide.mutable_resolve_intents()->set_primary("z");
  decide.mutable_resolve_intents()->set_decide(true);
  decide.mutable_resolve_intents()->set_record(true);
  decide.mutable_resolve_intents()->add_others("a");
  ASSERT_FALSE(store_.Apply(decide).kv().has_error());
  // The gateway died before committing a: a write of a waits for nothing and finds the
  // transaction's value in place first.
  kv::Command append;
  append.mutable_append()->set_key("a");
  append.mutable_append()->set_value("+1");
  EXPECT_EQ(Done(append).integer(), 7);
  EXPECT_EQ(Value("a"), "new-a+1");
  EXPECT_EQ(Value("z"), "new-z");
  // The one who met it also dropped the commit record (every intent of it is resolved).
  EXPECT_FALSE(store_.AnyIntentRecord());
}

TEST_F(CrossRegionTest, AWriteMeetingAnOlderWritesIntentStartsAgainOnceItIsGone) {
  Prepared(MSet({{"b", "first"}}), "b", 11, 250);  // a dead (older) writer's intent on b
  kv::CommandResult r = Done(MSet({{"y", "second"}, {"b", "second"}}), 1000);
  EXPECT_TRUE(r.has_ok()) << r.DebugString();
  EXPECT_EQ(Value("b"), "second");
  EXPECT_EQ(Value("y"), "second");
  EXPECT_FALSE(store_.AnyIntentRecord());
  EXPECT_GE(router_->counters().cross_region_retries.load(), 1u);
}

TEST_F(CrossRegionTest, AWriteMeetingAYoungerWritesIntentWaitsKeepingWhatItPrepared) {
  // A younger writer (it began later) died holding an intent on b, in the second region.
  Prepared(MSet({{"b", "first"}}), "b", 11, 250, clock_.NowWallMillis() + 60'000);
  auto out = Run(MSet({{"y", "second"}, {"b", "second"}}));
  executor_.RunFor(100);
  EXPECT_FALSE(out->called);
  // Waiting, its primary's part (y) stays prepared: a reader of y waits too.
  kv::Command get_y;
  get_y.mutable_get()->set_key("y");
  auto reader = Run(get_y);
  executor_.RunFor(1000);
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok()) << out->result.status().ToString();
  EXPECT_TRUE(out->result->has_ok());
  ASSERT_TRUE(reader->called);
  EXPECT_EQ(Value("b"), "second");
  EXPECT_EQ(Value("y"), "second");
  EXPECT_EQ(router_->counters().cross_region_retries.load(), 0u);  // never started again
  EXPECT_FALSE(store_.AnyIntentRecord());
}

TEST_F(CrossRegionTest, ASplitBetweenPrepareAndCommitLeavesThePrimaryToDecideAlone) {
  // Once both parts are prepared, region 7 (the primary's: z and y) splits at "rz".
  store_.after_propose = [this](size_t n) {
    if (n != 2) return;
    router_->cache().Update(Desc(7, "rm", "rz"), NodeId(1));
    router_->cache().Update(Desc(8, "rz", ""), NodeId(1));
  };
  kv::CommandResult r = Done(MSet({{"z", "1"}, {"y", "2"}, {"a", "3"}}));
  EXPECT_TRUE(r.has_ok()) << r.DebugString();
  EXPECT_EQ(Value("z"), "1");
  EXPECT_EQ(Value("y"), "2");
  EXPECT_EQ(Value("a"), "3");
  EXPECT_FALSE(store_.AnyIntentRecord());  // every intent resolved, the decision forgotten
  const kv::ResolveIntents& decide = store_.proposed[2].kv().resolve_intents();
  EXPECT_TRUE(decide.decide());
  ASSERT_EQ(decide.keys_size(), 1);
  EXPECT_EQ(decide.keys(0), "z");
}

}  // namespace
}  // namespace micedb::router
