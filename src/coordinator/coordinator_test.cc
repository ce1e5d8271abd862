#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <set>

#include <fmt/format.h>

#include "common/clock.h"
#include "coordinator/meta_state_machine.h"
#include "storage/mem_engine.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

// A meta region of one replica that applies each command at once through the real state
// machine, shared by every "node" of a test: leadership is whatever the test says.
class SharedMeta {
 public:
  SharedMeta() {
    region_.set_id(store::kMetaRegionId);
    region_.set_start_key(std::string(store::kMetaRangeStart));
    region_.set_end_key(std::string(store::kMetaRangeEnd));
  }
  Result<MetaResult> Apply(const MetaCommand& cmd) {
    storage::WriteBatch wb;
    auto round = sm_.BeginRound(region_, &engine_, &wb);
    MetaResult r = round->ApplyMeta(cmd, LogIndex(++index_));
    round.reset();
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return r;
  }
  Result<MetaResult> Read(const MetaCommand& cmd) {
    return sm_.ReadMeta(region_, &engine_, nullptr, cmd);
  }
  NodeId leader;
  uint64_t term = 0;

 private:
  storage::MemEngine engine_;
  MetaStateMachine sm_;
  store::RegionDescriptor region_;
  uint64_t index_ = 0;
};

class FakeMetaRegion final : public MetaRegion {
 public:
  FakeMetaRegion(SharedMeta* shared, NodeId self, const ManualClock* clock)
      : shared_(shared), self_(self), clock_(clock) {}
  NodeId self() const override { return self_; }
  std::pair<NodeId, uint64_t> LeaderAndTerm() const override {
    return {shared_->leader, shared_->term};
  }
  int64_t LeaseUntilNs() const override {
    return shared_->leader == self_ && !no_lease ? clock_->NowMonotonic().count() + 1'000'000'000
                                                 : 0;
  }
  void Propose(MetaCommand cmd, Done done) override {
    if (shared_->leader != self_) return done(Status::Unavailable("not leader"));
    if (hold) {
      held.emplace_back(std::move(cmd), std::move(done));
      return;
    }
    done(shared_->Apply(cmd));
  }
  void Read(MetaCommand cmd, Done done) override { done(shared_->Read(cmd)); }
  void ProposeInTerm(MetaCommand cmd, uint64_t term, Done done) override {
    if (shared_->leader != self_ || shared_->term != term) {
      return done(Status::Unavailable("not leader in that term"));
    }
    if (hold_checks) {
      held_checks.emplace_back(std::move(cmd), std::move(done));
      return;
    }
    done(shared_->Apply(cmd));
  }
  std::vector<store::NodeAddress> Members() const override {
    std::vector<store::NodeAddress> out(1);
    out[0].set_node_id(self_.value());
    out[0].set_peer_addr("self:1");
    return out;
  }
  std::optional<RegionHeartbeat> Report() const override { return report; }
  void RunOperator(const Operator& op) override { ran.push_back(op); }
  std::optional<RegionHeartbeat> report;  // the meta region as this replica would report it
  std::vector<Operator> ran;              // meta region operator steps run here
  bool hold = false;                      // proposals wait in `held` until the test lets them go
  std::vector<std::pair<MetaCommand, Done>> held;
  bool no_lease = false;     // as after a leadership transfer that came to nothing
  bool hold_checks = false;  // ProposeInTerm calls wait in `held_checks`
  std::vector<std::pair<MetaCommand, Done>> held_checks;

 private:
  SharedMeta* shared_;
  NodeId self_;
  const ManualClock* clock_;
};

class CoordinatorTest : public ::testing::Test {
 protected:
  CoordinatorTest() {
    Build([](CoordinatorOptions&) {});
  }
  void Build(const std::function<void(CoordinatorOptions&)>& tune) {
    coords_.clear();
    metas_.clear();
    for (int i = 1; i <= 3; ++i) {
      metas_.push_back(std::make_unique<FakeMetaRegion>(&shared_, NodeId(i), &clock_));
      CoordinatorOptions o;
      o.cluster_id = 77;
      o.clock = &clock_;
      o.id_batch = 10;
      tune(o);
      coords_.push_back(std::make_unique<Coordinator>(o, metas_.back().get()));
    }
  }
  void Elect(int i) {
    shared_.leader = NodeId(i);
    ++shared_.term;
    for (auto& c : coords_) c->Tick();
  }
  CoordResponse Call(int i, const CoordRequest& req) {
    CoordResponse out;
    bool answered = false;
    coords_[i - 1]->Handle(req, [&](CoordResponse r) {
      out = std::move(r);
      answered = true;
    });
    EXPECT_TRUE(answered);
    return out;
  }
  CoordResponse Tso(int i, uint32_t n) {
    CoordRequest req;
    req.mutable_tso()->set_count(n);
    return Call(i, req);
  }
  CoordResponse Ids(int i, uint32_t n) {
    CoordRequest req;
    req.mutable_alloc_id()->set_count(n);
    return Call(i, req);
  }
  void Advance(int64_t ms) { clock_.Advance(std::chrono::milliseconds(ms)); }

  ManualClock clock_;
  SharedMeta shared_;
  std::vector<std::unique_ptr<FakeMetaRegion>> metas_;
  std::vector<std::unique_ptr<Coordinator>> coords_;
};

TEST_F(CoordinatorTest, TheFirstLeaderBootstrapsAndOthersPointToIt) {
  CoordResponse r = Tso(1, 1);
  EXPECT_TRUE(r.error().retry());  // no leader yet
  Elect(2);
  EXPECT_TRUE(coords_[1]->Serving());
  r = Tso(1, 1);
  EXPECT_TRUE(r.error().not_leader());
  EXPECT_EQ(r.error().leader(), 2u);
  CoordRequest c;
  c.mutable_cluster();
  r = Call(2, c);
  ASSERT_TRUE(r.has_cluster()) << r.DebugString();
  EXPECT_EQ(r.cluster().state().cluster().cluster_id(), 77u);
  EXPECT_GE(r.cluster().state().id_high_water(), 1024u);
}

TEST_F(CoordinatorTest, TimestampsRiseAcrossLeaderChangesAndAreNeverReused) {
  std::set<uint64_t> seen;
  uint64_t last = 0;
  auto take = [&](int node, uint32_t n) {
    CoordResponse r = Tso(node, n);
    ASSERT_TRUE(r.has_tso()) << r.DebugString();
    ASSERT_EQ(r.tso().count(), n);
    const uint64_t first = r.tso().last() - n + 1;
    EXPECT_GT(first, last);
    for (uint64_t t = first; t <= r.tso().last(); ++t) EXPECT_TRUE(seen.insert(t).second);
    last = r.tso().last();
  };
  Elect(1);
  for (int i = 0; i < 50; ++i) take(1, 100);
  // The clock does not move, but a new leader still starts above everything handed out.
  Elect(3);
  take(3, 5);
  // A clock that went back 10 s on the next leader does not matter either.
  clock_.SetWall(clock_.NowWall() - std::chrono::seconds(10));
  Elect(2);
  take(2, 7);
  for (int i = 0; i < 20; ++i) {
    Advance(50);
    coords_[1]->Tick();
    take(2, 1000);
  }
  // A millisecond's logical space runs out: the next millisecond is borrowed.
  take(2, 60000);
  take(2, 60000);
  take(2, 60000);
  take(2, 60000);
  take(2, 60000);
}

TEST_F(CoordinatorTest, TheOracleStopsAtItsPersistedBoundUntilANewOneIsSaved) {
  Elect(1);
  metas_[0]->hold = true;
  // Time runs on past the bound (3 s ahead) with the renewal stuck in raft.
  for (int i = 0; i < 80; ++i) {
    Advance(50);
    coords_[0]->Tick();
  }
  ASSERT_EQ(metas_[0]->held.size(), 1u);  // one renewal in flight, not one per tick
  CoordResponse r = Tso(1, 1);
  ASSERT_TRUE(r.has_tso());
  // Served below the bound although the clock is past it.
  const int64_t physical = static_cast<int64_t>(r.tso().last() >> Coordinator::kLogicalBits);
  EXPECT_LT(physical, clock_.NowWallMillis());
  auto held = std::move(metas_[0]->held);
  metas_[0]->hold = false;
  for (auto& [cmd, done] : held) done(shared_.Apply(cmd));
  // That bound was asked for long ago and is behind the clock already: the next tick asks
  // for another, the one after moves on to the clock.
  coords_[0]->Tick();
  coords_[0]->Tick();
  r = Tso(1, 1);
  ASSERT_TRUE(r.has_tso());
  EXPECT_EQ(static_cast<int64_t>(r.tso().last() >> Coordinator::kLogicalBits),
            clock_.NowWallMillis());
}

TEST_F(CoordinatorTest, IdsAreNeverHandedOutTwiceAcrossLeaders) {
  std::set<uint64_t> seen;
  auto take = [&](int node, uint32_t n) {
    CoordResponse r = Ids(node, n);
    ASSERT_TRUE(r.has_alloc_id()) << r.DebugString();
    for (uint64_t id = r.alloc_id().first(); id < r.alloc_id().first() + n; ++id) {
      EXPECT_TRUE(seen.insert(id).second) << id;
      EXPECT_GE(id, 1024u);
    }
  };
  Elect(1);
  for (int i = 0; i < 25; ++i) take(1, 1);  // batches of 10
  take(1, 35);                              // more than a batch
  Elect(2);
  for (int i = 0; i < 5; ++i) take(2, 3);
  Elect(1);
  take(1, 1);
  EXPECT_EQ(seen.size(), 25u + 35 + 15 + 1);
}

TEST_F(CoordinatorTest, StoresRegisterByHeartbeatAndJoin) {
  Elect(1);
  CoordRequest hb;
  hb.mutable_store_heartbeat()->mutable_store()->set_id(1);
  hb.mutable_store_heartbeat()->mutable_store()->set_peer_addr("h:1");
  CoordResponse r = Call(1, hb);
  ASSERT_TRUE(r.has_store_heartbeat()) << r.DebugString();
  EXPECT_EQ(r.store_heartbeat().cluster_id(), 77u);

  CoordRequest join;
  join.mutable_join()->mutable_store()->set_peer_addr("h:4");
  r = Call(1, join);
  ASSERT_TRUE(r.has_join()) << r.DebugString();
  const uint64_t id = r.join().store_id();
  EXPECT_GE(id, 1024u);
  EXPECT_EQ(r.join().cluster_id(), 77u);
  // A node from another cluster is refused, saying so.
  join.mutable_join()->set_cluster_id(99);
  join.mutable_join()->mutable_store()->set_peer_addr("h:5");
  r = Call(1, join);
  EXPECT_TRUE(r.error().cluster_mismatch());
  EXPECT_NE(r.error().message().find("belongs to cluster"), std::string::npos);
  // A new store may not take the address of one that is up.
  join.mutable_join()->set_cluster_id(0);
  join.mutable_join()->mutable_store()->set_peer_addr("h:1");
  r = Call(1, join);
  EXPECT_TRUE(r.has_error());
  EXPECT_FALSE(r.error().retry());

  // The next leader knows both stores from the meta state; status follows heartbeats.
  Elect(2);
  CoordRequest c;
  c.mutable_cluster();
  r = Call(2, c);
  ASSERT_EQ(r.cluster().stores_size(), 2);
  EXPECT_EQ(r.cluster().stores(0).status(), "up");
  Advance(11'000);
  r = Call(2, c);
  EXPECT_EQ(r.cluster().stores(0).status(), "disconnected");
  Advance(60'000);
  r = Call(2, c);
  EXPECT_EQ(r.cluster().stores(1).status(), "down");
  r = Call(2, hb);
  r = Call(2, c);
  EXPECT_EQ(r.cluster().stores(0).status(), "up");
}

TEST_F(CoordinatorTest, RegionHeartbeatsFillTheDirectoryAndStaleOnesAreRefused) {
  Elect(1);
  CoordRequest hb;
  RegionMeta* m = hb.mutable_region_heartbeat()->mutable_region();
  m->mutable_region()->set_id(1);
  m->mutable_region()->mutable_epoch()->set_version(2);
  m->mutable_region()->mutable_epoch()->set_conf_ver(1);
  m->set_leader(3);
  CoordResponse r = Call(1, hb);
  ASSERT_TRUE(r.has_region_heartbeat());
  EXPECT_FALSE(r.region_heartbeat().stale());
  CoordRequest get;
  get.mutable_get_region()->set_key("rkey");
  r = Call(1, get);
  ASSERT_EQ(r.regions().regions_size(), 1) << r.DebugString();
  EXPECT_EQ(r.regions().regions(0).leader(), 3u);
  m->mutable_region()->mutable_epoch()->set_version(1);
  r = Call(1, hb);
  EXPECT_TRUE(r.region_heartbeat().stale());
  EXPECT_EQ(coords_[0]->counters().stale_heartbeats.load(), 1u);
}

TEST_F(CoordinatorTest, WithoutALeaseTimestampsWaitForALeadershipCheck) {
  Elect(1);
  const uint64_t before = Tso(1, 1).tso().last();
  FakeMetaRegion& meta = *metas_[0];
  meta.no_lease = true;
  meta.hold_checks = true;
  std::vector<CoordResponse> got;
  auto call = [&](uint32_t n) {
    CoordRequest req;
    req.mutable_tso()->set_count(n);
    coords_[0]->Handle(req, [&](CoordResponse r) { got.push_back(std::move(r)); });
  };
  call(1);
  call(5);  // comes during the first check: waits for the next one
  EXPECT_TRUE(got.empty());
  ASSERT_EQ(meta.held_checks.size(), 1u);
  auto release = [&](bool ok) {
    auto [cmd, done] = std::move(meta.held_checks.front());
    meta.held_checks.erase(meta.held_checks.begin());
    done(ok ? shared_.Apply(cmd) : Result<MetaResult>(Status::Unavailable("no quorum")));
  };
  release(true);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(got[0].has_tso()) << got[0].DebugString();
  EXPECT_GT(got[0].tso().last(), before);
  ASSERT_EQ(meta.held_checks.size(), 1u);  // the second caller's check
  release(true);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(got[1].has_tso());
  EXPECT_EQ(got[1].tso().last(), got[0].tso().last() + 5);
  EXPECT_EQ(coords_[0]->counters().tso_leader_checks.load(), 2u);
  // A check that fails refuses its callers: they retry.
  call(1);
  release(false);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[2].error().retry()) << got[2].DebugString();
  // A check is made in the term this coordinator warmed up in: led again in a later term
  // that Tick has not seen yet, the store refuses it (another leader may have served between).
  shared_.term += 2;
  meta.hold_checks = false;
  call(1);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(got[3].error().retry()) << got[3].DebugString();
  shared_.term -= 2;
  meta.hold_checks = true;
  got.pop_back();
  // A caller still waiting when the term ends is told who leads now.
  call(1);
  ASSERT_EQ(meta.held_checks.size(), 1u);
  Elect(2);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3].error().leader(), 2u) << got[3].DebugString();
  release(true);  // the old term's check answers nobody
  EXPECT_EQ(got.size(), 4u);
  EXPECT_GT(Tso(2, 1).tso().last(), got[1].tso().last());
}

TEST_F(CoordinatorTest, TheGcSafePointTrailsTheClockAndNeverPassesARunningTransaction) {
  Build([](CoordinatorOptions& o) {
    o.gc_life_time_ms = 10'000;
    o.gc_interval_ms = 1'000;
    o.store_disconnected_ms = 2'000;
  });
  Advance(100'000);
  Elect(1);
  auto beat = [&](uint64_t id, uint64_t oldest) {
    CoordRequest hb;
    hb.mutable_store_heartbeat()->mutable_store()->set_id(id);
    hb.mutable_store_heartbeat()->mutable_store()->set_peer_addr(fmt::format("h:{}", id));
    hb.mutable_store_heartbeat()->mutable_stats()->set_store_id(id);
    hb.mutable_store_heartbeat()->mutable_stats()->set_txn_oldest_start_ts(oldest);
    CoordResponse r = Call(1, hb);
    EXPECT_TRUE(r.has_store_heartbeat()) << r.DebugString();
    return r.store_heartbeat().gc_safe_point();
  };
  auto now_ts = [&](int64_t back_ms) {
    return Coordinator::ComposeTs(clock_.NowWallMillis() - back_ms, 0);
  };
  // Store 2 runs a transaction that began 30 s ago.
  const uint64_t old_txn = now_ts(30'000) + 7;
  uint64_t sp = 0;
  for (int i = 0; i < 6; ++i) {  // a new leader first waits for every store to report
    Advance(500);
    beat(1, 0);
    sp = beat(2, old_txn);
    coords_[0]->Tick();
  }
  sp = beat(1, 0);
  EXPECT_EQ(sp, old_txn - 1);
  // It ends: the safe point moves up to 10 s behind the clock, and never back.
  for (int i = 0; i < 4; ++i) {
    Advance(500);
    beat(1, 0);
    beat(2, 0);
    coords_[0]->Tick();
  }
  sp = beat(1, 0);
  EXPECT_GT(sp, old_txn);
  EXPECT_LE(sp, now_ts(10'000));
  EXPECT_GE(sp, now_ts(12'000));
  for (int i = 0; i < 4; ++i) {
    Advance(500);
    beat(1, 0);
    beat(2, old_txn);  // reported again (a clock gone wrong): too late, nothing goes back
    coords_[0]->Tick();
  }
  EXPECT_GE(beat(1, 0), sp);
  // A store silent past the disconnected time holds nothing back.
  const uint64_t before = beat(1, 0);
  for (int i = 0; i < 8; ++i) {
    Advance(500);
    beat(1, 0);
    coords_[0]->Tick();
  }
  EXPECT_GT(beat(1, 0), before);
  // Persisted: a new leader starts from it.
  Elect(2);
  EXPECT_GE(shared_
                .Read([] {
                  MetaCommand c;
                  c.mutable_get_state();
                  return c;
                }())
                ->state()
                .gc_safe_point(),
            sp);
}

// A cluster of stores that heartbeat, and regions whose leaders report, driven by hand.
class ScheduleTest : public CoordinatorTest {
 protected:
  ScheduleTest() { Start(/*balance=*/false); }
  void Start(bool balance) {
    Build([balance](CoordinatorOptions& o) {
      o.store_down_ms = 6'000;
      o.store_disconnected_ms = 1'000;
      o.operator_timeout_ms = 60'000;
      o.excess_grace_ms = 5'000;
      o.store_limit = 2;
      if (!balance) o.balance_leader_limit = o.balance_region_limit = 0;
    });
    Elect(1);
  }
  StoreHeartbeatResponse StoreBeat(uint64_t id, uint32_t regions = 1, bool coordinator = false) {
    CoordRequest hb;
    hb.mutable_store_heartbeat()->mutable_store()->set_id(id);
    hb.mutable_store_heartbeat()->mutable_store()->set_peer_addr(fmt::format("h:{}", id));
    if (!host_of[id].empty()) {
      (*hb.mutable_store_heartbeat()->mutable_store()->mutable_labels())["host"] = host_of[id];
    }
    hb.mutable_store_heartbeat()->mutable_stats()->set_store_id(id);
    hb.mutable_store_heartbeat()->mutable_stats()->set_region_count(regions);
    hb.mutable_store_heartbeat()->mutable_stats()->set_coordinator(coordinator);
    CoordResponse r = Call(1, hb);
    EXPECT_TRUE(r.has_store_heartbeat()) << r.DebugString();
    return r.store_heartbeat();
  }
  static RegionHeartbeat Region(uint64_t id, const std::vector<uint64_t>& voters, uint64_t leader,
                                const std::vector<uint64_t>& learners = {}, uint64_t conf_ver = 1,
                                uint64_t size = 0) {
    RegionHeartbeat hb;
    hb.set_approximate_size(size);
    auto* d = hb.mutable_region()->mutable_region();
    d->set_id(id);
    d->set_start_key(fmt::format("r{:03}", id));
    d->set_end_key(fmt::format("r{:03}", id + 1));
    d->mutable_epoch()->set_version(1);
    d->mutable_epoch()->set_conf_ver(conf_ver);
    for (uint64_t v : voters) d->mutable_conf_state()->add_voters(v);
    for (uint64_t l : learners) d->mutable_conf_state()->add_learners(l);
    hb.mutable_region()->set_leader(leader);
    return hb;
  }
  RegionHeartbeatResponse Report(const RegionHeartbeat& hb) {
    CoordRequest req;
    *req.mutable_region_heartbeat() = hb;
    CoordResponse r = Call(1, req);
    EXPECT_TRUE(r.has_region_heartbeat()) << r.DebugString();
    return r.region_heartbeat();
  }
  // Time passes in steps of a second: the stores in `up` heartbeat, the regions in `regions`
  // report, the coordinator ticks (its checkers run once a second).
  void Pass(int64_t ms, const std::vector<uint64_t>& up,
            const std::vector<RegionHeartbeat>& regions = {}) {
    for (int64_t t = 0; t < ms; t += 1000) {
      Advance(1000);
      for (uint64_t s : up) StoreBeat(s);
      for (const auto& r : regions) Report(r);
      coords_[0]->Tick();
    }
  }
  ClusterResponse View() {
    CoordRequest c;
    c.mutable_cluster();
    return Call(1, c).cluster();
  }
  std::map<uint64_t, std::string> host_of;
};

TEST_F(ScheduleTest, AnOperatorByHandRunsUntilTheReportShowsItDone) {
  for (uint64_t s : {1, 2, 3}) StoreBeat(s);
  RegionHeartbeat hb = Region(1, {1, 2, 3}, 1, {}, 3);
  Report(hb);
  CoordRequest add;
  Operator* op = add.mutable_add_operator()->mutable_op();
  op->set_region_id(1);
  op->set_kind(Operator::REMOVE_PEER);
  op->set_store_id(3);
  CoordResponse r = Call(1, add);
  ASSERT_TRUE(r.has_add_operator()) << r.DebugString();
  // The leader's store is told to report the region now; the others are not.
  StoreHeartbeatResponse beat = StoreBeat(1);
  ASSERT_EQ(beat.report_regions_size(), 1);
  EXPECT_EQ(beat.report_regions(0), 1u);
  EXPECT_EQ(StoreBeat(2).report_regions_size(), 0);
  // One operator per region at a time.
  CoordRequest transfer = add;
  transfer.mutable_add_operator()->mutable_op()->set_kind(Operator::TRANSFER_LEADER);
  transfer.mutable_add_operator()->mutable_op()->set_store_id(2);
  EXPECT_NE(Call(1, transfer).error().message().find("under way"), std::string::npos);
  // The step goes with the next reply, stamped with the epoch the leader reported, and the
  // leader is asked to report again soon; it is handed over again only after a second.
  RegionHeartbeatResponse out = Report(hb);
  ASSERT_EQ(out.operators_size(), 1) << out.DebugString();
  EXPECT_EQ(out.operators(0).kind(), Operator::REMOVE_PEER);
  EXPECT_EQ(out.operators(0).epoch().conf_ver(), 3u);
  EXPECT_TRUE(out.report_again());
  EXPECT_EQ(Report(hb).operators_size(), 0);
  Advance(1001);
  EXPECT_EQ(Report(hb).operators_size(), 1);
  // Done once a report shows it: dropped, and kept among the finished.
  out = Report(Region(1, {1, 2}, 1, {}, 4));
  EXPECT_EQ(out.operators_size(), 0);
  EXPECT_FALSE(out.report_again());
  EXPECT_EQ(StoreBeat(1).report_regions_size(), 0);
  ClusterResponse v = View();
  EXPECT_EQ(v.operators_size(), 0);
  ASSERT_EQ(v.finished_operators_size(), 1);
  EXPECT_EQ(v.finished_operators(0).state(), "done");
  // A transfer is done when its target reports as the leader.
  ASSERT_TRUE(Call(1, transfer).has_add_operator());
  EXPECT_EQ(Report(Region(1, {1, 2}, 1, {}, 4)).operators_size(), 1);
  EXPECT_EQ(Report(Region(1, {1, 2}, 2, {}, 4)).operators_size(), 0);
  EXPECT_EQ(View().finished_operators(1).state(), "done");
  // A store the coordinator has no record of is reached at the address given with the operator.
  CoordRequest unknown = add;
  unknown.mutable_add_operator()->mutable_op()->set_kind(Operator::ADD_LEARNER);
  unknown.mutable_add_operator()->mutable_op()->set_store_id(9);
  unknown.mutable_add_operator()->mutable_op()->set_peer_addr("h:9");
  ASSERT_TRUE(Call(1, unknown).has_add_operator());
  out = Report(Region(1, {1, 2}, 2, {}, 4));
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).peer_addr(), "h:9");
  // An operator for a region the coordinator does not know is refused.
  add.mutable_add_operator()->mutable_op()->set_region_id(99);
  EXPECT_TRUE(Call(1, add).has_error());
}

TEST_F(ScheduleTest, ADownStoresReplicaIsReplacedStepByStep) {
  RegionHeartbeat hb = Region(1, {1, 2, 3}, 1);
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  // Store 3 falls silent: disconnected is not down yet, so nothing moves.
  Pass(3000, {1, 2, 4}, {hb});
  EXPECT_EQ(View().operators_size(), 0);
  Pass(4000, {1, 2, 4}, {hb});
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 1) << v.DebugString();
  EXPECT_EQ(v.operators(0).name(), "replace-replica");
  EXPECT_EQ(v.operators(0).reason(), "store 3 is down");
  // Add a learner on 4 (the only healthy store without a replica) ...
  Advance(1001);
  RegionHeartbeatResponse out = Report(hb);
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).kind(), Operator::ADD_LEARNER);
  EXPECT_EQ(out.operators(0).store_id(), 4u);
  EXPECT_EQ(out.operators(0).peer_addr(), "h:4");
  // ... promote it only once it caught up ...
  RegionHeartbeat learning = Region(1, {1, 2, 3}, 1, {4}, 2);
  learning.add_pending_peers(4);
  learning.add_pending_peers(3);
  EXPECT_EQ(Report(learning).operators_size(), 0);
  EXPECT_NE(View().operators(0).note().find("catch up"), std::string::npos);
  learning.clear_pending_peers();
  learning.add_pending_peers(3);
  out = Report(learning);
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).kind(), Operator::PROMOTE);
  EXPECT_EQ(out.operators(0).epoch().conf_ver(), 2u);
  // ... then remove the dead one; done when the report shows three voters on 1, 2 and 4.
  out = Report(Region(1, {1, 2, 3, 4}, 1, {}, 3));
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).kind(), Operator::REMOVE_PEER);
  EXPECT_EQ(out.operators(0).store_id(), 3u);
  Report(Region(1, {1, 2, 4}, 1, {}, 4));
  v = View();
  EXPECT_EQ(v.operators_size(), 0);
  ASSERT_EQ(v.finished_operators_size(), 1);
  EXPECT_EQ(v.finished_operators(0).state(), "done");
  EXPECT_EQ(coords_[0]->counters().operators_done.load(), 1u);
  // Nothing more to do.
  Pass(3000, {1, 2, 4}, {Region(1, {1, 2, 4}, 1, {}, 4)});
  EXPECT_EQ(View().operators_size(), 0);
}

TEST_F(ScheduleTest, NoTargetNoQuorumOrAnUnknownStoreMeansNoOperator) {
  for (uint64_t s : {1, 2, 3}) StoreBeat(s);
  const RegionHeartbeat r1 = Region(1, {1, 2, 3}, 1);
  // Three stores, one down: nowhere to move its replica.
  Pass(8000, {1, 2}, {r1});
  EXPECT_EQ(View().operators_size(), 0);
  // Two of three voters down: the region cannot commit a change, even with a store to go to.
  Pass(8000, {1}, {r1});
  StoreBeat(4);
  Pass(2000, {1, 4}, {r1});
  EXPECT_EQ(View().operators_size(), 0) << View().DebugString();
  // A voter on a store never registered: left alone.
  Pass(2000, {1, 2, 3, 4}, {r1, Region(3, {1, 2, 77}, 1)});
  const ClusterResponse view = View();
  for (const auto& op : view.operators()) EXPECT_NE(op.region_id(), 3u) << op.DebugString();
}

TEST_F(ScheduleTest, OperatorsTimeOutAndStoresTakeFewAtATime) {
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  std::vector<RegionHeartbeat> regions;
  for (uint64_t id = 1; id <= 4; ++id) regions.push_back(Region(id, {1, 2, 3}, 1));
  Pass(8000, {1, 2, 4}, regions);
  // Each region needs store 4; store_limit is 2.
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 2) << v.DebugString();
  // Nobody does anything: the operators time out, then others start.
  Pass(61'000, {1, 2, 4}, regions);
  v = View();
  size_t timed_out = 0;
  for (const auto& f : v.finished_operators()) timed_out += f.state() == "timeout";
  EXPECT_EQ(timed_out, 2u);
  EXPECT_EQ(v.operators_size(), 2);
  EXPECT_EQ(coords_[0]->counters().operators_timed_out.load(), 2u);
  // A target that goes down cancels the operator.
  Pass(8000, {1, 2}, regions);
  v = View();
  size_t cancelled = 0;
  for (const auto& f : v.finished_operators()) cancelled += f.state() == "cancelled";
  EXPECT_EQ(cancelled, 2u) << v.DebugString();
}

TEST_F(ScheduleTest, DecommissionMovesEverythingOffThenTombstones) {
  for (uint64_t s : {1, 2, 3}) StoreBeat(s);
  CoordRequest off;
  off.mutable_set_store_state()->set_store_id(3);
  off.mutable_set_store_state()->set_state(STORE_OFFLINE);
  // Three stores: the replicas would have nowhere to go.
  EXPECT_NE(Call(1, off).error().message().find("add a store first"), std::string::npos);
  StoreBeat(4);
  ASSERT_TRUE(Call(1, off).has_set_store_state());
  // Store 3 leads the region: the replica moves to 4, the leadership moves before the removal.
  RegionHeartbeat hb = Region(1, {1, 2, 3}, 3);
  Pass(2000, {1, 2, 3, 4}, {hb});
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 1);
  EXPECT_EQ(v.operators(0).reason(), "store 3 is being decommissioned");
  Report(Region(1, {1, 2, 3}, 3, {4}, 2));
  Pass(1000, {1, 2, 3, 4});
  Report(Region(1, {1, 2, 3, 4}, 3, {}, 3));
  Pass(1000, {1, 2, 3, 4});
  RegionHeartbeatResponse out = Report(Region(1, {1, 2, 3, 4}, 3, {}, 3));
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).kind(), Operator::TRANSFER_LEADER);
  EXPECT_NE(out.operators(0).store_id(), 3u);
  out = Report(Region(1, {1, 2, 3, 4}, 1, {}, 3));
  ASSERT_EQ(out.operators_size(), 1);
  EXPECT_EQ(out.operators(0).kind(), Operator::REMOVE_PEER);
  EXPECT_EQ(out.operators(0).store_id(), 3u);
  hb = Region(1, {1, 2, 4}, 1, {}, 4);
  Report(hb);
  // Not a tombstone while the store still says it holds a replica.
  Pass(2000, {1, 2, 3, 4}, {hb});
  auto status_of = [&](uint64_t id) {
    const ClusterResponse view = View();
    for (const auto& s : view.stores()) {
      if (s.meta().id() == id) return s.status();
    }
    return std::string("?");
  };
  EXPECT_EQ(status_of(3), "offline");
  Advance(1000);
  StoreBeat(3, /*regions=*/0);
  coords_[0]->Tick();
  EXPECT_EQ(status_of(3), "tombstone");
  EXPECT_EQ(coords_[0]->counters().stores_tombstoned.load(), 1u);
  // A tombstone stays one.
  off.mutable_set_store_state()->set_state(STORE_UP);
  EXPECT_TRUE(Call(1, off).has_error());
}

TEST_F(ScheduleTest, AnOfflineStoreThatDiedIsATombstoneOnceTheDirectoryPlacesNothingThere) {
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);  // store 4 last said it held a region
  const RegionHeartbeat hb = Region(1, {1, 2, 3}, 1);
  CoordRequest off;
  off.mutable_set_store_state()->set_store_id(4);
  off.mutable_set_store_state()->set_state(STORE_OFFLINE);
  ASSERT_TRUE(Call(1, off).has_set_store_state());
  Pass(3000, {1, 2, 3}, {hb});
  const ClusterResponse before = View();
  for (const auto& s : before.stores()) {
    if (s.meta().id() == 4) EXPECT_EQ(s.status(), "offline");
  }
  // Silent past the down time: it cannot report its last replica gone, and need not.
  Pass(4000, {1, 2, 3}, {hb});
  const ClusterResponse after = View();
  for (const auto& s : after.stores()) {
    if (s.meta().id() == 4) EXPECT_EQ(s.status(), "tombstone");
  }
}

TEST_F(ScheduleTest, TheMetaRegionIsCheckedToo) {
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  RegionHeartbeat meta = Region(store::kMetaRegionId, {1, 2, 3}, 1);
  metas_[0]->report = meta;
  // Down at 6 s: the operator starts; its first step runs at the next pass.
  Pass(7000, {1, 2, 4});
  ASSERT_EQ(metas_[0]->ran.size(), 1u) << View().DebugString();
  EXPECT_EQ(metas_[0]->ran[0].kind(), Operator::ADD_LEARNER);
  EXPECT_EQ(metas_[0]->ran[0].store_id(), 4u);
  metas_[0]->report = Region(store::kMetaRegionId, {1, 2, 3, 4}, 1, {}, 3);
  Pass(1000, {1, 2, 4});
  ASSERT_EQ(metas_[0]->ran.size(), 2u);
  EXPECT_EQ(metas_[0]->ran[1].kind(), Operator::REMOVE_PEER);
  EXPECT_EQ(metas_[0]->ran[1].store_id(), 3u);
}

TEST_F(ScheduleTest, ExcessReplicasGoAfterAGracePeriodAndHostsAreSpread) {
  host_of = {{1, "a"}, {2, "b"}, {3, "b"}, {4, "c"}};
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  // Stores 2 and 3 share host b, 4 is on c: one of them moves there (not the leader).
  Pass(1000, {1, 2, 3, 4}, {Region(1, {1, 2, 3}, 2)});
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 1) << v.DebugString();
  EXPECT_EQ(v.operators(0).steps(0).store_id(), 4u);
  EXPECT_EQ(v.operators(0).steps(2).store_id(), 3u);
  // A learner nobody asked for, beside three voters on three hosts: removed only after the
  // grace period.
  RegionHeartbeat extra = Region(2, {1, 2, 4}, 1, {3});
  Pass(3000, {1, 2, 3, 4}, {extra});
  const ClusterResponse view3 = View();
  for (const auto& op : view3.operators()) EXPECT_NE(op.region_id(), 2u);
  Pass(3000, {1, 2, 3, 4}, {extra});
  bool removing = false;
  const ClusterResponse view4 = View();
  for (const auto& op : view4.operators()) {
    removing |= op.region_id() == 2 && op.name() == "remove-learner";
  }
  EXPECT_TRUE(removing) << View().DebugString();
}

TEST_F(ScheduleTest, LeadersAreSpreadOverTheStores) {
  Start(/*balance=*/true);
  for (uint64_t s : {1, 2, 3}) StoreBeat(s);
  std::vector<RegionHeartbeat> regions;
  for (uint64_t id = 1; id <= 6; ++id) regions.push_back(Region(id, {1, 2, 3}, 1));
  Pass(1000, {1, 2, 3}, regions);
  // 6, 0, 0: four transfers at most at once, two to each of the others.
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 4) << v.DebugString();
  std::map<uint64_t, int> to;
  for (const auto& op : v.operators()) {
    EXPECT_EQ(op.name(), "balance-leader");
    ++to[op.steps(0).store_id()];
  }
  EXPECT_EQ(to[2], 2);
  EXPECT_EQ(to[3], 2);
  // They happen; 2, 2, 2 needs nothing more.
  for (const auto& op : v.operators()) {
    Report(Region(op.region_id(), {1, 2, 3}, op.steps(0).store_id()));
  }
  EXPECT_EQ(View().operators_size(), 0);
  for (auto& r : regions) {
    for (const auto& op : v.operators()) {
      if (op.region_id() == r.region().region().id()) {
        r.mutable_region()->set_leader(op.steps(0).store_id());
      }
    }
  }
  Pass(3000, {1, 2, 3}, regions);
  EXPECT_EQ(View().operators_size(), 0) << View().DebugString();
}

TEST_F(ScheduleTest, ReplicasMoveToNewStores) {
  Start(/*balance=*/true);
  for (uint64_t s : {1, 2, 3, 4, 5}) StoreBeat(s);
  std::vector<RegionHeartbeat> regions;
  for (uint64_t id = 1; id <= 6; ++id) {
    regions.push_back(Region(id, {1, 2, 3}, 1 + id % 3));
  }
  Pass(1000, {1, 2, 3, 4, 5}, regions);
  // 6, 6, 6, 0, 0: each new store takes two at a time (its store limit).
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 4) << v.DebugString();
  std::map<uint64_t, int> to;
  for (const auto& op : v.operators()) {
    EXPECT_EQ(op.name(), "balance-region");
    ASSERT_EQ(op.steps_size(), 3);
    ++to[op.steps(0).store_id()];
  }
  EXPECT_EQ(to[4], 2);
  EXPECT_EQ(to[5], 2);
  // Not while a store is down (replacing what it held comes first): those to store 5 are
  // cancelled, and no new one starts.
  std::set<uint64_t> before;
  for (const auto& op : v.operators()) before.insert(op.id());
  Pass(8000, {1, 2, 3, 4}, regions);
  v = View();
  for (const auto& op : v.operators()) {
    if (op.name() == "balance-region") {
      EXPECT_TRUE(before.count(op.id())) << op.DebugString();
    }
  }
  size_t cancelled = 0;
  for (const auto& f : v.finished_operators()) cancelled += f.state() == "cancelled";
  EXPECT_EQ(cancelled, 2u);
}

// Replicas weigh their region's size: stores 1-3 hold two 200 MiB regions (with stores 2 and 3
// also holding six empty ones), store 4 the six empty ones. By count, store 1 (2 replicas)
// would take from store 2 or 3 (8 each); by bytes, store 4 (6 MiB of weight) is the light one,
// and a big region goes there.
TEST_F(ScheduleTest, ReplicasBalanceByBytesNotJustCount) {
  Start(/*balance=*/true);
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  std::vector<RegionHeartbeat> regions;
  for (uint64_t id = 1; id <= 2; ++id) {
    regions.push_back(Region(id, {1, 2, 3}, 1, {}, 1, uint64_t{200} << 20));
  }
  for (uint64_t id = 3; id <= 8; ++id) regions.push_back(Region(id, {2, 3, 4}, 2));
  Pass(1000, {1, 2, 3, 4}, regions);
  ClusterResponse v = View();
  int moves = 0;
  for (const auto& op : v.operators()) {
    if (op.name() != "balance-region") continue;  // leaders are balanced too
    ++moves;
    ASSERT_EQ(op.steps_size(), 3);
    EXPECT_EQ(op.steps(0).store_id(), 4u) << op.DebugString();
    EXPECT_LE(op.region_id(), 2u) << op.DebugString();  // a big one
    EXPECT_NE(op.steps(2).store_id(), 1u) << op.DebugString();
  }
  EXPECT_EQ(moves, 1) << v.DebugString();  // then stores 3 and 4 weigh the same
}

// A hot region's traffic in a report of a second.
RegionHeartbeat Busy(RegionHeartbeat hb, uint64_t read_bps, uint64_t write_bps) {
  hb.set_interval_ms(1000);
  hb.set_bytes_read(read_bps);
  hb.set_bytes_written(write_bps);
  return hb;
}

// Store 1 leads both hot regions (4 MiB/s of reads each); every store leads two regions, so
// counting leaders finds nothing to do. The hot-region balancer moves one hot leadership away
// (two would only swap the imbalance), once the regions have been hot for two reports.
TEST_F(ScheduleTest, HotLeadershipsAreSpreadByTraffic) {
  Start(/*balance=*/true);
  for (uint64_t s : {1, 2, 3}) StoreBeat(s);
  constexpr uint64_t kHot = uint64_t{4} << 20;
  std::vector<RegionHeartbeat> regions;
  for (uint64_t id = 1; id <= 6; ++id) {
    RegionHeartbeat r = Region(id, {1, 2, 3}, 1 + (id - 1) / 2);
    regions.push_back(id <= 2 ? Busy(r, kHot, 0) : r);
  }
  Report(regions[0]);  // one report: not hot yet
  const ClusterResponse first = View();
  for (const auto& op : first.operators()) EXPECT_NE(op.name(), "hot-leader");
  Pass(2000, {1, 2, 3}, regions);
  ClusterResponse v = View();
  int hot = 0;
  for (const auto& op : v.operators()) {
    if (op.name() == "hot-leader") {
      ++hot;
      EXPECT_LE(op.region_id(), 2u) << op.DebugString();
      EXPECT_NE(op.steps(0).store_id(), 1u) << op.DebugString();
    } else {
      // Counting leaders moves cold regions only.
      EXPECT_GT(op.region_id(), 2u) << op.DebugString();
    }
  }
  EXPECT_EQ(hot, 1) << v.DebugString();
  // Done: each hot region led by its own store, and nothing more to move for traffic.
  for (const auto& op : v.operators()) {
    if (op.name() != "hot-leader") continue;
    for (auto& r : regions) {
      if (r.region().region().id() == op.region_id()) {
        r.mutable_region()->set_leader(op.steps(0).store_id());
        Report(r);
      }
    }
  }
  Pass(3000, {1, 2, 3}, regions);
  const ClusterResponse after = View();
  for (const auto& op : after.operators()) EXPECT_NE(op.name(), "hot-leader");
}

// Writes weigh on every replica: stores 1-3 each apply two hot regions' writes (4 MiB/s each),
// store 4 none. No leadership move can help (store 4 holds no replica of them); a replica of
// one hot region moves from the busiest store to store 4. A cold region never moves for it.
TEST_F(ScheduleTest, HotWritesMoveAReplicaToTheStoreApplyingTheLeast) {
  for (uint64_t s : {1, 2, 3, 4}) StoreBeat(s);
  constexpr uint64_t kHot = uint64_t{4} << 20;
  std::vector<RegionHeartbeat> regions = {Busy(Region(1, {1, 2, 3}, 1), 0, kHot),
                                          Busy(Region(2, {1, 2, 3}, 2), 0, kHot),
                                          Region(3, {1, 2, 3}, 3)};
  Pass(3000, {1, 2, 3, 4}, regions);
  ClusterResponse v = View();
  ASSERT_EQ(v.operators_size(), 1) << v.DebugString();
  const auto& op = v.operators(0);
  EXPECT_EQ(op.name(), "hot-peer");
  EXPECT_LE(op.region_id(), 2u);
  ASSERT_EQ(op.steps_size(), 3);
  EXPECT_EQ(op.steps(0).store_id(), 4u);
  EXPECT_EQ(op.steps(1).store_id(), 4u);
  EXPECT_NE(op.steps(2).store_id(), 4u);
  // Traffic that falls below the threshold cools the regions down: nothing more moves.
  for (auto& r : regions) r = Busy(r, 0, 1024);
  Pass(5000, {1, 2, 3, 4}, regions);
  EXPECT_LE(View().operators_size(), 1);
}

}  // namespace
}  // namespace micedb::coordinator
