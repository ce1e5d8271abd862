#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <set>

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
  bool hold = false;  // proposals wait in `held` until the test lets them go
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
    for (int i = 1; i <= 3; ++i) {
      metas_.push_back(std::make_unique<FakeMetaRegion>(&shared_, NodeId(i), &clock_));
      CoordinatorOptions o;
      o.cluster_id = 77;
      o.clock = &clock_;
      o.id_batch = 10;
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

TEST_F(CoordinatorTest, OperatorsRideOnHeartbeatRepliesUntilTheRegionMovesPastThem) {
  Elect(1);
  CoordRequest hb;
  RegionMeta* m = hb.mutable_region_heartbeat()->mutable_region();
  m->mutable_region()->set_id(1);
  m->mutable_region()->mutable_epoch()->set_version(1);
  m->mutable_region()->mutable_epoch()->set_conf_ver(3);
  m->set_leader(1);
  Call(1, hb);
  CoordRequest add;
  Operator* op = add.mutable_add_operator()->mutable_op();
  op->set_region_id(1);
  op->set_kind(Operator::REMOVE_PEER);
  op->set_store_id(3);
  CoordResponse r = Call(1, add);
  ASSERT_TRUE(r.has_add_operator()) << r.DebugString();
  CoordRequest transfer = add;
  transfer.mutable_add_operator()->mutable_op()->set_kind(Operator::TRANSFER_LEADER);
  transfer.mutable_add_operator()->mutable_op()->set_store_id(2);
  ASSERT_TRUE(Call(1, transfer).has_add_operator());
  // Both go to the leader with every heartbeat of the epoch they were made for (idempotent:
  // the leader refuses what is done already).
  for (int i = 0; i < 2; ++i) {
    r = Call(1, hb);
    ASSERT_EQ(r.region_heartbeat().operators_size(), 2) << r.DebugString();
    EXPECT_EQ(r.region_heartbeat().operators(0).epoch().conf_ver(), 3u);
  }
  // The removal happened (conf_ver 4): it is dropped; the transfer's epoch is older now too.
  m->mutable_region()->mutable_epoch()->set_conf_ver(4);
  r = Call(1, hb);
  EXPECT_EQ(r.region_heartbeat().operators_size(), 0);
  // A transfer made for the new epoch is dropped once its target reports as leader.
  transfer.mutable_add_operator()->mutable_op()->clear_epoch();
  ASSERT_TRUE(Call(1, transfer).has_add_operator());
  EXPECT_EQ(Call(1, hb).region_heartbeat().operators_size(), 1);
  m->set_leader(2);
  EXPECT_EQ(Call(1, hb).region_heartbeat().operators_size(), 0);
  m->set_leader(1);
  EXPECT_EQ(Call(1, hb).region_heartbeat().operators_size(), 0);
  // An operator for a region the coordinator does not know is refused.
  add.mutable_add_operator()->mutable_op()->set_region_id(99);
  EXPECT_TRUE(Call(1, add).has_error());
}

}  // namespace
}  // namespace micedb::coordinator
