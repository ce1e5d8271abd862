// Hibernation (StoreOptions::hibernate, docs/sharding.md §5) over three in-process stores: an
// idle region stops ticking on every replica, and each way of waking it works.
#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

// Whether region 1 is asleep on every node of `ids`, within 5 s.
bool WaitAsleep(Cluster* c, const std::vector<uint64_t>& ids) {
  for (int i = 0; i < 500; ++i) {
    bool all = true;
    for (uint64_t id : ids) {
      auto info = c->GetStore(id)->RegionInfoOf(RegionId(1));
      all &= info.has_value() && info->asleep;
    }
    if (all) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

uint64_t Rounds(Cluster* c, const std::vector<uint64_t>& ids) {
  uint64_t n = 0;
  for (uint64_t id : ids) n += c->GetStore(id)->counters().loop_rounds.load();
  return n;
}

TEST_F(StoreTest, AnIdleRegionSleepsOnEveryReplicaAndAWriteWakesIt) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  ASSERT_TRUE(WaitAsleep(cluster_.get(), {1, 2, 3}));
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_GE(cluster_->GetStore(id)->counters().sleeps.load(), 1u) << id;
  }
  // Asleep, nothing happens: no heartbeats, so no raft rounds with work (awake, a heartbeat
  // goes out every tick, 10 ms here).
  const uint64_t before = Rounds(cluster_.get(), {1, 2, 3});
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Rounds(cluster_.get(), {1, 2, 3}), before);
  EXPECT_EQ(cluster_->WaitLeader({1, 2, 3}), leader);
  // A write wakes the leader, its entries wake the followers.
  auto put = cluster_->Put(leader, "k", "v2");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto get = cluster_->Get(leader, "k");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(*get, "v2");
  // The write committed with a quorum: the third replica may wake a moment later.
  for (uint64_t id : {1, 2, 3}) {
    for (int i = 0; i < 200 && cluster_->GetStore(id)->counters().wakes.load() == 0; ++i) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_GE(cluster_->GetStore(id)->counters().wakes.load(), 1u) << id;
  }
  // And it goes back to sleep once idle again.
  EXPECT_TRUE(WaitAsleep(cluster_.get(), {1, 2, 3}));
}

TEST_F(StoreTest, AReadWakesASleepingLeaderWhichConfirmsItWithAQuorum) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v").ok());
  ASSERT_TRUE(WaitAsleep(cluster_.get(), {1, 2, 3}));
  // Asleep, the leader holds no lease: a read goes through the loop.
  EXPECT_FALSE(LeaseGet(cluster_->GetStore(leader), "k").has_value());
  auto get = cluster_->Get(leader, "k");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(*get, "v");
  EXPECT_GE(cluster_->GetStore(leader)->counters().wakes.load(), 1u);
}

TEST_F(StoreTest, ARegionReadUnderTheLeaseDoesNotSleep) {
  uint64_t leader = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithLeaseHolder("v", &leader));
  Store* s = cluster_->GetStore(leader);
  // Lease reads never reach the loop; they still count as traffic.
  const auto end = std::chrono::steady_clock::now() + 800ms;
  uint64_t answered = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (LeaseGet(s, "k").has_value()) answered++;
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GT(answered, 100u);
  EXPECT_EQ(s->counters().sleeps.load(), 0u);
  EXPECT_FALSE(s->RegionInfoOf(RegionId(1))->asleep);
}

TEST_F(StoreTest, FollowersOfASleepingLeaderWhoseStoreStopsElectAnother) {
  Start3();
  const uint64_t old = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(old, 0u);
  ASSERT_TRUE(cluster_->Put(old, "k", "v1").ok());
  ASSERT_TRUE(WaitAsleep(cluster_.get(), {1, 2, 3}));
  std::vector<uint64_t> others;
  for (uint64_t id : {1, 2, 3}) {
    if (id != old) others.push_back(id);
  }
  cluster_->StopNode(old);
  // No message tells them: the pings stop, and the followers wake on the silence.
  uint64_t now_leader = 0;
  for (int i = 0; i < 300 && (now_leader == 0 || now_leader == old); ++i) {
    std::this_thread::sleep_for(10ms);
    now_leader = cluster_->WaitLeader(others);
  }
  ASSERT_NE(now_leader, 0u);
  ASSERT_NE(now_leader, old);
  ASSERT_NO_FATAL_FAILURE(PutRetry("k", "v2", others));
  uint64_t silent = 0;
  for (uint64_t id : others) silent += cluster_->GetStore(id)->counters().silent_leader_wakes;
  EXPECT_GE(silent, 1u);
}

TEST_F(StoreTest, ACutOffSleepingLeaderServesNoStaleReadAndStepsDown) {
  cluster_->request_timeout_ms = 500;
  Start3();
  const uint64_t old = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(old, 0u);
  ASSERT_TRUE(cluster_->Put(old, "k", "old").ok());
  ASSERT_TRUE(WaitAsleep(cluster_.get(), {1, 2, 3}));
  cluster_->drop = [old](const raft::Message& m) { return m.from() == old || m.to() == old; };
  std::vector<uint64_t> others;
  for (uint64_t id : {1, 2, 3}) {
    if (id != old) others.push_back(id);
  }
  bool written = false;
  for (int i = 0; i < 300 && !written; ++i) {
    const uint64_t now_leader = cluster_->WaitLeader(others);
    written = now_leader != 0 && now_leader != old && cluster_->Put(now_leader, "k", "new").ok();
    if (!written) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(written);
  // The old leader is woken by the read; it cannot confirm it and must not answer "old".
  Store* s = cluster_->GetStore(old);
  EXPECT_FALSE(LeaseGet(s, "k").has_value());
  auto get = cluster_->Call(
      [&](const ResultCallback& cb) { s->ReadLinearizable(TestRequest("Gk"), Adapt(cb)); });
  EXPECT_FALSE(get.ok()) << "a read answered by the cut-off leader: " << *get;
  // Ticking again, it gives up leadership by CheckQuorum.
  bool stepped_down = false;
  for (int i = 0; i < 300 && !stepped_down; ++i) {
    auto info = s->RegionInfoOf(RegionId(1));
    stepped_down = info && info->raft.role != raft::Role::kLeader;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(stepped_down);
  // Healed, it follows the new leader and holds the new value.
  cluster_->drop = nullptr;
  const uint64_t now_leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(now_leader, 0u);
  EXPECT_NE(now_leader, old);
  EXPECT_EQ(cluster_->Get(now_leader, "k").value_or(""), "new");
}

TEST_F(StoreTest, NoRegionSleepsWithHibernationOff) {
  cluster_->tweak = [](uint64_t, StoreOptions* o) { o->hibernate = false; };
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v").ok());
  std::this_thread::sleep_for(600ms);  // three times what it takes to fall asleep
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(cluster_->GetStore(id)->counters().sleeps.load(), 0u) << id;
    EXPECT_FALSE(cluster_->GetStore(id)->RegionInfoOf(RegionId(1))->asleep) << id;
  }
}

}  // namespace
}  // namespace micedb::store::test
