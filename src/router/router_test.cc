// The router against a fake store and fake peers, with a manual clock and executor: no
// threads, no sleeps. Each test scripts what the store and the peers answer.
#include "router/router.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "kv/command_result.h"
#include "router/manual_executor.h"
#include "store/errors.h"
#include "store/test_descriptor.h"

namespace micedb::router {
namespace {

store::RegionDescriptor Desc(uint64_t id, std::string start, std::string end, uint64_t version,
                             const std::vector<uint64_t>& voters = {1, 2, 3}) {
  return store::TestDescriptor(id, std::move(start), std::move(end), version, voters);
}

// Holds strings; answers what the test scripts, else serves from `data`.
class FakeStore : public LocalStore {
 public:
  NodeId node_id() const override { return NodeId(1); }
  bool lease_reads() const override { return true; }
  void Propose(region::RegionRequest req, ResponseCallback done) override {
    proposed.push_back(req);
    if (!script.empty()) {
      auto r = script.front();
      script.pop_front();
      return done(r);
    }
    done(Serve(req));
  }
  void ReadLinearizable(region::RegionRequest req, ResponseCallback done) override {
    read_index.push_back(req);
    if (!script.empty()) {
      auto r = script.front();
      script.pop_front();
      return done(r);
    }
    done(Serve(req));
  }
  region::RegionResponse ReadLocal(const region::RegionRequest& req) override {
    local_reads.push_back(req);
    return Serve(req);
  }
  std::optional<region::RegionResponse> ReadUnderLease(const region::RegionRequest& req) override {
    if (!lease) return std::nullopt;
    lease_served.push_back(req);
    return Serve(req);
  }
  std::vector<RegionRoute> Regions() const override { return regions; }
  NodeId LeaderOf(uint64_t region_id) const override {
    for (const auto& r : regions) {
      if (r.desc.id() == region_id) return r.leader;
    }
    return NodeId();
  }

  region::RegionResponse Serve(const region::RegionRequest& req) {
    region::RegionResponse resp;
    const kv::Command& c = req.kv();
    if (c.has_set()) {
      data[c.set().key()] = c.set().value();
      *resp.mutable_kv() = kv::OkResult();
    } else if (c.has_get()) {
      auto it = data.find(c.get().key());
      *resp.mutable_kv() = it == data.end() ? kv::NilResult() : kv::BulkResult(it->second);
    } else if (c.has_mget()) {
      *resp.mutable_kv() = kv::ArrayResult();
      for (const auto& k : c.mget().keys()) {
        auto it = data.find(k);
        *resp.mutable_kv()->mutable_array()->add_items() =
            it == data.end() ? kv::NilResult() : kv::BulkResult(it->second);
      }
    } else if (c.has_scan() || c.has_dbsize() || c.has_flushall()) {
      // Over the keys of the request's region only, as the state machine does.
      std::string lo, hi;
      for (const auto& r : regions) {
        if (r.desc.id() == req.header().region_id()) {
          lo = r.desc.start_key().empty() ? "" : r.desc.start_key().substr(1);
          hi = r.desc.end_key().empty() ? "" : r.desc.end_key().substr(1);
        }
      }
      if (c.has_scan() && c.scan().start() > lo) lo = c.scan().start();
      auto in = [&](const std::string& k) { return k >= lo && (hi.empty() || k < hi); };
      if (c.has_flushall()) {
        std::erase_if(data, [&](const auto& kv) { return in(kv.first); });
        *resp.mutable_kv() = kv::OkResult();
        return resp;
      }
      int64_t n = 0;
      kv::CommandResult next = kv::NilResult();
      kv::CommandResult items = kv::ArrayResult();
      for (const auto& [k, v] : data) {
        if (!in(k)) continue;
        if (c.has_scan() && c.scan().limit() != 0 && n == static_cast<int64_t>(c.scan().limit())) {
          next = kv::BulkResult(k);
          break;
        }
        ++n;
        *items.mutable_array()->add_items() = kv::BulkResult(k);
      }
      if (c.has_dbsize()) {
        *resp.mutable_kv() = kv::IntResult(n);
      } else {
        *resp.mutable_kv() = kv::ArrayResult();
        *resp.mutable_kv()->mutable_array()->add_items() = next;
        *resp.mutable_kv()->mutable_array()->add_items() = items;
      }
    } else if (c.has_txn()) {
      *resp.mutable_kv() = kv::ArrayResult();
      for (const kv::Command& one : c.txn().commands()) {
        region::RegionRequest sub;
        *sub.mutable_kv() = one;
        *resp.mutable_kv()->mutable_array()->add_items() = Serve(sub).kv();
      }
    } else if (c.has_del()) {
      int64_t n = 0;
      for (const auto& k : c.del().keys()) n += data.erase(k);
      *resp.mutable_kv() = kv::IntResult(n);
    } else {
      *resp.mutable_kv() = kv::OkResult();
    }
    return resp;
  }

  std::vector<RegionRoute> regions;
  std::map<std::string, std::string> data;
  bool lease = false;
  std::deque<region::RegionResponse> script;  // answers to the next proposals / reads
  std::vector<region::RegionRequest> proposed, read_index, local_reads, lease_served;
};

class FakePeers : public PeerLink {
 public:
  struct Sent {
    NodeId to;
    transport::ForwardRequest request;
    ForwardCallback done;
  };
  void Forward(NodeId to, transport::ForwardRequest request, int64_t timeout_ms,
               ForwardCallback done) override {
    sent.push_back(Sent{to, std::move(request), std::move(done)});
  }
  std::vector<NodeId> Nodes() const override { return {NodeId(2), NodeId(3)}; }
  // Answers the oldest unanswered forward.
  void Answer(region::RegionResponse resp) {
    ASSERT_LT(answered, sent.size());
    transport::ForwardResponse out;
    *out.mutable_response() = std::move(resp);
    sent[answered++].done(std::move(out));
  }
  // Fails the oldest unanswered forward as the transport does (connection broke, timeout).
  void Fail(Status st) {
    ASSERT_LT(answered, sent.size());
    sent[answered++].done(std::move(st));
  }
  std::vector<Sent> sent;
  size_t answered = 0;
};

struct Outcome {
  bool called = false;
  Result<kv::CommandResult> result = Status::Internal("not called");
};

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : executor_(&clock_) {
    store_.regions.push_back(RegionRoute{Desc(1, "", "", 1), NodeId(1)});
    router_ =
        std::make_unique<Router>(RouterOptions{.request_timeout_ms = 1000, .request_id_base = 1000},
                                 &store_, &peers_, &executor_, &clock_);
  }
  std::shared_ptr<Outcome> Run(kv::Command cmd, kv::ReadMode mode = kv::ReadMode::kLinearizable) {
    auto out = std::make_shared<Outcome>();
    router_->Execute(std::move(cmd), mode, [out](Result<kv::CommandResult> r) {
      EXPECT_FALSE(out->called) << "answered twice";
      out->called = true;
      out->result = std::move(r);
    });
    return out;
  }
  static kv::Command Set(std::string k, std::string v) {
    kv::Command c;
    c.mutable_set()->set_key(std::move(k));
    c.mutable_set()->set_value(std::move(v));
    return c;
  }
  static kv::Command Get(std::string k) {
    kv::Command c;
    c.mutable_get()->set_key(std::move(k));
    return c;
  }
  static kv::Command MGet(std::vector<std::string> keys) {
    kv::Command c;
    for (auto& k : keys) c.mutable_mget()->add_keys(std::move(k));
    return c;
  }

  ManualClock clock_;
  ManualExecutor executor_;
  FakeStore store_;
  FakePeers peers_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, AWriteOnTheLeaderIsProposedWithItsRegionEpochAndARequestId) {
  auto out = Run(Set("a", "1"));
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok());
  EXPECT_TRUE(out->result->has_ok());
  ASSERT_EQ(store_.proposed.size(), 1u);
  const auto& h = store_.proposed[0].header();
  EXPECT_EQ(h.region_id(), 1u);
  EXPECT_EQ(h.epoch().version(), 1u);
  EXPECT_GT(h.request_id(), 1000u);
  EXPECT_GT(h.request_ts_ms(), 0);
  EXPECT_GT(store_.proposed[0].kv().now_ms(), 0);
  EXPECT_TRUE(peers_.sent.empty());
}

TEST_F(RouterTest, ALeaseReadIsServedOnTheCallersThreadWithNothingElse) {
  store_.data["a"] = "x";
  store_.lease = true;
  auto out = Run(Get("a"));
  ASSERT_TRUE(out->called);  // synchronously
  EXPECT_EQ(out->result->bulk(), "x");
  EXPECT_EQ(store_.lease_served.size(), 1u);
  EXPECT_TRUE(store_.read_index.empty());
  EXPECT_TRUE(peers_.sent.empty());
  EXPECT_EQ(executor_.pending(), 0u);
}

TEST_F(RouterTest, WithoutALeaseAReadGoesToTheLeaderElsewhereOrThroughReadIndexHere) {
  store_.data["a"] = "x";
  auto here = Run(Get("a"));
  ASSERT_TRUE(here->called);
  EXPECT_EQ(store_.read_index.size(), 1u);
  store_.regions[0].leader = NodeId(2);
  auto there = Run(Get("a"));
  EXPECT_FALSE(there->called);
  ASSERT_EQ(peers_.sent.size(), 1u);
  EXPECT_EQ(peers_.sent[0].to, NodeId(2));
  EXPECT_EQ(peers_.sent[0].request.request().kv().get().key(), "a");
  peers_.Answer(store_.Serve(peers_.sent[0].request.request()));
  ASSERT_TRUE(there->called);
  EXPECT_EQ(there->result->bulk(), "x");
}

TEST_F(RouterTest, NotLeaderWithAHintGoesStraightToTheLeaderNamed) {
  store_.regions[0].leader = NodeId(2);
  auto out = Run(Set("a", "1"));
  ASSERT_EQ(peers_.sent.size(), 1u);
  peers_.Answer(store::NotLeaderResponse(1, 3));
  ASSERT_EQ(peers_.sent.size(), 2u);
  EXPECT_EQ(peers_.sent[1].to, NodeId(3));
  // The same request id: a retry is applied at most once.
  EXPECT_EQ(peers_.sent[1].request.request().header().request_id(),
            peers_.sent[0].request.request().header().request_id());
  peers_.Answer(store_.Serve(peers_.sent[1].request.request()));
  ASSERT_TRUE(out->called);
  EXPECT_TRUE(out->result.ok());
  EXPECT_EQ(router_->cache().Get(1)->leader, NodeId(3));
}

TEST_F(RouterTest, EpochNotMatchFixesTheCacheAndRetriesAtOnceWithTheNewEpoch) {
  store_.script.push_back(store::EpochNotMatchResponse(Desc(1, "", "", 4)));
  auto out = Run(Set("a", "1"));
  ASSERT_TRUE(out->called);
  EXPECT_TRUE(out->result.ok());
  ASSERT_EQ(store_.proposed.size(), 2u);
  EXPECT_EQ(store_.proposed[0].header().epoch().version(), 1u);
  EXPECT_EQ(store_.proposed[1].header().epoch().version(), 4u);
  EXPECT_EQ(store_.proposed[1].header().request_id(), store_.proposed[0].header().request_id());
}

TEST_F(RouterTest, AfterASplitTheNewDescriptorsRouteEachKeyToItsRegion) {
  // The store still believes in one region; the leader answers with the two halves.
  store_.script.push_back(region::RegionResponse());
  store_.script.front() = store::EpochNotMatchResponse(Desc(1, "", "rm", 2));
  *store_.script.front().mutable_error()->mutable_epoch_not_match()->add_current_regions() =
      Desc(7, "rm", "", 2);
  auto out = Run(Set("z", "1"));
  ASSERT_TRUE(out->called);
  ASSERT_EQ(store_.proposed.size(), 2u);
  EXPECT_EQ(store_.proposed[1].header().region_id(), 7u);
  EXPECT_EQ(store_.proposed[1].header().epoch().version(), 2u);
}

TEST_F(RouterTest, AMultiKeyReadIsCutByRegionAndJoinedInTheClientsOrder) {
  router_->cache().Update(Desc(1, "", "rm", 2), NodeId(1));
  router_->cache().Update(Desc(7, "rm", "", 2), NodeId(1));
  store_.data = {{"a", "1"}, {"z", "26"}, {"b", "2"}};
  auto out = Run(MGet({"z", "a", "q", "b"}));
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok());
  ASSERT_EQ(out->result->array().items_size(), 4);
  EXPECT_EQ(out->result->array().items(0).bulk(), "26");
  EXPECT_EQ(out->result->array().items(1).bulk(), "1");
  EXPECT_TRUE(out->result->array().items(2).has_nil());
  EXPECT_EQ(out->result->array().items(3).bulk(), "2");
  ASSERT_EQ(store_.read_index.size(), 2u);
  EXPECT_EQ(store_.read_index[0].header().region_id(), 1u);
  EXPECT_EQ(store_.read_index[0].kv().mget().keys_size(), 2);
  EXPECT_EQ(store_.read_index[1].header().region_id(), 7u);
  EXPECT_EQ(router_->counters().split_requests.load(), 1u);
}

// A multi-key write over several regions runs as one two-phase commit: cross_region_test.cc.

// A pipelined run (kv.Txn.pipeline) over several regions is cut by region: one txn per region
// in each phase, each key's commands in order, results in the client's order; a multi-key write
// inside it that spans regions runs alone, as a cross-region write, between phases.
TEST_F(RouterTest, APipelinedRunIsCutByRegionAndAnswersInOrder) {
  router_->cache().Update(Desc(1, "", "rm", 2), NodeId(1));
  router_->cache().Update(Desc(7, "rm", "", 2), NodeId(1));
  kv::Command run;
  run.mutable_txn()->set_pipeline(true);
  *run.mutable_txn()->add_commands() = Set("a", "1");
  *run.mutable_txn()->add_commands() = Set("z", "26");
  *run.mutable_txn()->add_commands() = Set("a", "2");
  kv::Command mset;
  for (const char* k : {"b", "y"}) {
    auto* p = mset.mutable_mset()->add_pairs();
    p->set_key(k);
    p->set_value("v");
  }
  *run.mutable_txn()->add_commands() = mset;
  *run.mutable_txn()->add_commands() = Set("y", "25");
  auto out = Run(run);
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok());
  ASSERT_EQ(out->result->array().items_size(), 5);
  EXPECT_TRUE(out->result->array().items(0).has_ok());
  EXPECT_TRUE(out->result->array().items(1).has_ok());
  EXPECT_TRUE(out->result->array().items(2).has_ok());
  EXPECT_TRUE(out->result->array().items(3).has_ok());
  EXPECT_TRUE(out->result->array().items(4).has_ok());
  // Phase one: a txn for region 1 (SET a 1, SET a 2, in that order) and one for region 7;
  // then the MSET's prepares (its primary's region first) and its decision; phase two:
  // region 7's SET y; then the MSET's other region commits and its decision is dropped.
  ASSERT_EQ(store_.proposed.size(), 8u);
  EXPECT_EQ(store_.proposed[0].header().region_id(), 1u);
  ASSERT_EQ(store_.proposed[0].kv().txn().commands_size(), 2);
  EXPECT_EQ(store_.proposed[0].kv().txn().commands(1).set().value(), "2");
  EXPECT_EQ(store_.proposed[1].header().region_id(), 7u);
  EXPECT_EQ(store_.proposed[2].header().region_id(), 1u);
  EXPECT_TRUE(store_.proposed[2].kv().has_prepare());
  EXPECT_EQ(store_.proposed[3].header().region_id(), 7u);
  EXPECT_TRUE(store_.proposed[3].kv().has_prepare());
  EXPECT_TRUE(store_.proposed[4].kv().resolve_intents().decide());
  EXPECT_EQ(store_.proposed[5].header().region_id(), 7u);
  EXPECT_EQ(store_.proposed[5].kv().txn().commands(0).set().key(), "y");
  EXPECT_TRUE(store_.proposed[6].kv().has_resolve_intents());
  EXPECT_TRUE(store_.proposed[7].kv().has_forget_decision());
}

// SCAN, KEYS, DBSIZE and FLUSHALL visit every region in key order, each step from where the
// region that answered ends; a SCAN whose region runs out hands out the next region's start.
TEST_F(RouterTest, KeylessCommandsWalkEveryRegionInKeyOrder) {
  store_.regions = {RegionRoute{Desc(1, "", "rm", 2), NodeId(1)},
                    RegionRoute{Desc(7, "rm", "", 2), NodeId(1)}};
  router_->cache().Update(Desc(1, "", "rm", 2), NodeId(1));
  router_->cache().Update(Desc(7, "rm", "", 2), NodeId(1));
  store_.lease = true;
  store_.data = {{"a", "1"}, {"b", "2"}, {"y", "25"}, {"z", "26"}};
  auto run = [&](kv::Command c) {
    auto out = Run(std::move(c));
    executor_.RunFor(10);
    return out;
  };
  kv::Command dbsize;
  dbsize.mutable_dbsize();
  auto size = run(dbsize);
  ASSERT_TRUE(size->called);
  EXPECT_EQ(size->result->integer(), 4);
  ASSERT_EQ(store_.lease_served.size(), 2u);
  EXPECT_EQ(store_.lease_served[0].header().region_id(), 1u);
  EXPECT_EQ(store_.lease_served[1].header().region_id(), 7u);

  kv::Command keys;  // KEYS *: a scan without a limit
  keys.mutable_scan()->set_limit(0);
  auto all = run(keys);
  ASSERT_TRUE(all->called);
  ASSERT_EQ(all->result->array().items(1).array().items_size(), 4);
  EXPECT_EQ(all->result->array().items(1).array().items(2).bulk(), "y");
  EXPECT_TRUE(all->result->array().items(0).has_nil());

  {
    // Over the gateway's reply budget, summed over the regions: an error, not a huge reply.
    RouterOptions small;
    small.max_result_bytes = 2;
    Router tight(small, &store_, &peers_, &executor_, &clock_);
    tight.cache().Update(Desc(1, "", "rm", 2), NodeId(1));
    tight.cache().Update(Desc(7, "rm", "", 2), NodeId(1));
    auto out = std::make_shared<Outcome>();
    tight.Execute(keys, kv::ReadMode::kLinearizable, [out](Result<kv::CommandResult> r) {
      out->called = true;
      out->result = std::move(r);
    });
    executor_.RunFor(10);
    ASSERT_TRUE(out->called);
    EXPECT_EQ(out->result->error().code(), kv::KvError::RESULT_TOO_LARGE);
  }

  kv::Command scan;  // SCAN 0 COUNT 10: region 1 runs out, the cursor is region 7's start
  scan.mutable_scan()->set_limit(10);
  auto page = run(scan);
  ASSERT_TRUE(page->called);
  EXPECT_EQ(page->result->array().items(1).array().items_size(), 2);
  EXPECT_EQ(page->result->array().items(0).bulk(), "m");
  scan.mutable_scan()->set_start("m");
  page = run(scan);
  EXPECT_EQ(page->result->array().items(1).array().items_size(), 2);
  EXPECT_TRUE(page->result->array().items(0).has_nil());

  kv::Command flush;
  flush.mutable_flushall();
  auto flushed = run(flush);
  ASSERT_TRUE(flushed->called);
  EXPECT_TRUE(flushed->result->has_ok());
  ASSERT_EQ(store_.proposed.size(), 2u);
  EXPECT_NE(store_.proposed[0].header().request_id(), store_.proposed[1].header().request_id());
  EXPECT_TRUE(store_.data.empty());
}

// A multi-key read routed before a split learns of it (KeyNotInRegion) and is cut again at
// once, instead of being refused until its deadline.
TEST_F(RouterTest, AMultiKeyReadCaughtByASplitIsCutAgain) {
  router_->cache().Update(Desc(1, "", "", 1), NodeId(1));  // stale: before the split
  store_.regions = {RegionRoute{Desc(1, "", "rm", 2), NodeId(1)},
                    RegionRoute{Desc(7, "rm", "", 2), NodeId(1)}};
  store_.data = {{"a", "1"}, {"z", "26"}};
  store_.script.push_back(store::KeyNotInRegionResponse("rz", Desc(1, "", "rm", 2)));
  auto out = Run(MGet({"a", "z"}));
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok()) << out->result.status().ToString();
  ASSERT_EQ(out->result->array().items_size(), 2);
  EXPECT_EQ(out->result->array().items(1).bulk(), "26");
  // The stale attempt, then one read per region.
  EXPECT_EQ(store_.read_index.size(), 3u);
}

// DBSIZE, KEYS and FLUSHALL act on every region: in a pipelined run they run alone (walking
// the regions); in MULTI/EXEC over several regions they are refused.
TEST_F(RouterTest, KeylessCommandsInsideARunWalkEveryRegion) {
  store_.regions = {RegionRoute{Desc(1, "", "rm", 2), NodeId(1)},
                    RegionRoute{Desc(7, "rm", "", 2), NodeId(1)}};
  router_->cache().Update(Desc(1, "", "rm", 2), NodeId(1));
  router_->cache().Update(Desc(7, "rm", "", 2), NodeId(1));
  store_.data = {{"y", "25"}};
  kv::Command run;
  run.mutable_txn()->set_pipeline(true);
  *run.mutable_txn()->add_commands() = Set("a", "1");
  run.mutable_txn()->add_commands()->mutable_dbsize();
  auto out = Run(run);
  executor_.RunFor(10);
  ASSERT_TRUE(out->called);
  ASSERT_TRUE(out->result.ok());
  ASSERT_EQ(out->result->array().items_size(), 2);
  EXPECT_EQ(out->result->array().items(1).integer(), 2);  // a (just set) and y
  kv::Command multi = run;
  multi.mutable_txn()->set_pipeline(false);
  auto refused = Run(multi);
  ASSERT_TRUE(refused->called);
  EXPECT_EQ(refused->result->error().code(), kv::KvError::CROSS_REGION);
}

TEST_F(RouterTest, RetryableErrorsBackOffUntilTheDeadline) {
  for (int i = 0; i < 100; ++i) store_.script.push_back(store::NotLeaderResponse(1, 0));
  auto out = Run(Set("a", "1"));
  EXPECT_FALSE(out->called);
  executor_.RunFor(500);
  EXPECT_FALSE(out->called);
  const size_t tries_by_half_time = store_.proposed.size();
  EXPECT_GT(tries_by_half_time, 3u);
  EXPECT_LT(tries_by_half_time, 20u);  // backed off, not spinning
  executor_.RunFor(1000);
  ASSERT_TRUE(out->called);
  EXPECT_EQ(out->result.status().code(), StatusCode::kUnavailable);
  EXPECT_GT(router_->counters().retries.load(), 3u);
}

TEST_F(RouterTest, AStaleCommandIsRetriedAndATimeoutIsReportedAsUnknown) {
  store_.script.push_back(store::StaleCommandResponse());
  auto retried = Run(Set("a", "1"));
  EXPECT_FALSE(retried->called);
  executor_.RunFor(100);
  ASSERT_TRUE(retried->called);
  EXPECT_TRUE(retried->result.ok());
  store_.script.push_back(store::TimeoutResponse("slow"));
  auto timed_out = Run(Set("a", "2"));
  ASSERT_TRUE(timed_out->called);
  EXPECT_EQ(timed_out->result.status().code(), StatusCode::kTimedOut);
}

TEST_F(RouterTest, ANoSpaceRefusalReachesTheClientAtOnceAndIsNotRetried) {
  store_.script.push_back(store::NoSpaceResponse("10 MiB free"));
  auto refused = Run(Set("a", "1"));
  ASSERT_TRUE(refused->called);
  EXPECT_EQ(refused->result.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused->result.status().message().find(store::kNoSpaceMessage), std::string::npos);
  EXPECT_EQ(router_->counters().retries.load(), 0u);
}

// Found by the store simulation: a write whose forward broke may have been applied there, so
// running out of time afterwards is "outcome unknown", not "nothing applied" (TRYAGAIN).
TEST_F(RouterTest, AWriteThatMayHaveBeenAppliedEndsTimedOutNotUnavailable) {
  store_.regions[0].leader = NodeId(2);
  auto out = Run(Set("a", "1"));
  ASSERT_EQ(peers_.sent.size(), 1u);
  peers_.Fail(Status::Unavailable("the stream broke before the answer came"));
  for (int i = 0; i < 100 && !out->called; ++i) {
    executor_.RunFor(50);
    while (peers_.answered < peers_.sent.size()) peers_.Answer(store::NotLeaderResponse(1, 0));
  }
  ASSERT_TRUE(out->called);
  EXPECT_EQ(out->result.status().code(), StatusCode::kTimedOut);
  // A read in the same plight may simply be retried by the client.
  auto read = Run(Get("a"));
  while (!read->called) {
    while (peers_.answered < peers_.sent.size()) peers_.Fail(Status::Unavailable("broke"));
    executor_.RunFor(50);
  }
  EXPECT_EQ(read->result.status().code(), StatusCode::kUnavailable);
}

TEST_F(RouterTest, ARegionNotHeldHereIsAskedOfAVoter) {
  store_.regions.clear();
  router_->cache().Update(Desc(1, "", "", 1, {2, 3}));
  store_.script.push_back(store::RegionNotFoundResponse(1));
  auto out = Run(Set("a", "1"));
  ASSERT_EQ(peers_.sent.size(), 1u);
  EXPECT_TRUE(peers_.sent[0].to == NodeId(2) || peers_.sent[0].to == NodeId(3));
  peers_.Answer(store_.Serve(peers_.sent[0].request.request()));
  ASSERT_TRUE(out->called);
  EXPECT_TRUE(out->result.ok());
}

TEST_F(RouterTest, AForwardedRequestRunsOnTheLocalStoreOnly) {
  transport::ForwardRequest write;
  *write.mutable_request()->mutable_kv() = Set("a", "1");
  write.mutable_request()->mutable_header()->set_region_id(1);
  std::optional<transport::ForwardResponse> answer;
  router_->ServeForward(write, [&](transport::ForwardResponse r) { answer = std::move(r); });
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(answer->response().kv().has_ok());
  EXPECT_EQ(store_.proposed.size(), 1u);
  // A refusal goes back as it is, for the sender's router to act on.
  store_.script.push_back(store::NotLeaderResponse(1, 2));
  router_->ServeForward(write, [&](transport::ForwardResponse r) { answer = std::move(r); });
  EXPECT_EQ(answer->response().error().not_leader().leader(), 2u);
  EXPECT_TRUE(peers_.sent.empty());
  // Reads leave the caller's (the transport's) thread.
  transport::ForwardRequest read;
  *read.mutable_request()->mutable_kv() = Get("a");
  answer.reset();
  router_->ServeForward(read, [&](transport::ForwardResponse r) { answer = std::move(r); });
  EXPECT_FALSE(answer.has_value());
  executor_.RunFor(0);
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->response().kv().bulk(), "1");
}

TEST_F(RouterTest, StaleReadsUseTheLocalReplica) {
  store_.data["a"] = "old";
  auto out = Run(Get("a"), kv::ReadMode::kLocalStale);
  ASSERT_TRUE(out->called);
  EXPECT_EQ(out->result->bulk(), "old");
  EXPECT_EQ(store_.local_reads.size(), 1u);
  EXPECT_TRUE(store_.read_index.empty());
}

}  // namespace
}  // namespace micedb::router
