// Splitting a region (docs/sharding.md §1) over three in-process stores: every replica applies
// the split at the same index, both halves serve, requests with the old epoch are refused with
// both descriptors, and the races: the new region's first leader reaching a store before the
// split does, and a lagging store that catches up on the parent by snapshot.
#include <gtest/gtest.h>

#include "store/keys.h"
#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

constexpr uint64_t kRight = 10;  // the new region's id in these tests

class SplitTest : public RegionsTest {
 protected:
  // Every node holds both halves, split at "rm", at version 2.
  bool SplitEverywhere(const std::vector<uint64_t>& ids) {
    return Eventually([&] {
      for (uint64_t id : ids) {
        auto left = DescOf(cluster_->GetStore(id), 1);
        auto right = DescOf(cluster_->GetStore(id), kRight);
        if (!left || !right || left->end_key() != "rm" || left->epoch().version() != 2 ||
            right->start_key() != "rm" || !right->end_key().empty() ||
            right->epoch().version() != 2 || right->conf_state().voters_size() != 3) {
          return false;
        }
      }
      return true;
    });
  }
};

TEST_F(SplitTest, EveryReplicaAppliesTheSplitAndBothHalvesServeTheirKeys) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  for (const char* k : {"a", "k", "m", "z"}) ASSERT_TRUE(cluster_->Put(leader, k, k).ok());
  const uint64_t before = cluster_->GetStore(leader)->RegionInfoOf(RegionId(1))->applied_index;

  auto resp = Split(leader, "rm", kRight);
  ASSERT_FALSE(resp.has_error()) << resp.DebugString();
  ASSERT_EQ(resp.admin().regions_size(), 2);
  EXPECT_EQ(resp.admin().regions(0).end_key(), "rm");
  EXPECT_EQ(resp.admin().regions(1).id(), kRight);
  ASSERT_TRUE(SplitEverywhere({1, 2, 3}));
  for (uint64_t id : {1, 2, 3}) ExpectNoOverlap(id);

  // The new region elects a leader and takes writes; its data did not move.
  ASSERT_NE(WaitLeaderOf(kRight, {1, 2, 3}), 0u);
  ASSERT_TRUE(PutOn(kRight, 2, "y", "new").ok());
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(GetOn(id, kRight, 2, "z").value_or("?"), "z");
    EXPECT_EQ(GetOn(id, kRight, 2, "m").value_or("?"), "m");
    EXPECT_EQ(GetOn(id, kRight, 2, "y").value_or("?"), "new");
    EXPECT_EQ(GetOn(id, 1, 2, "k").value_or("?"), "k");
  }
  // Its log goes on from the parent's index (mod revisions keep rising per key).
  EXPECT_GT(cluster_->GetStore(leader)->RegionInfoOf(RegionId(kRight))->applied_index, before);

  // Each half refuses the other's keys, and the old epoch is refused with both descriptors.
  uint64_t left_leader = WaitLeaderOf(1, {1, 2, 3});
  auto outside = Await([&](const ResponseCallback& cb) {
    cluster_->GetStore(left_leader)->Propose(On(1, 2, "Pz=x"), cb);
  });
  EXPECT_EQ(outside.error().kind_case(), region::RegionError::kKeyNotInRegion);
  auto stale = Await([&](const ResponseCallback& cb) {
    cluster_->GetStore(left_leader)->Propose(On(1, 1, "Pz=x"), cb);
  });
  ASSERT_EQ(stale.error().kind_case(), region::RegionError::kEpochNotMatch);
  ASSERT_EQ(stale.error().epoch_not_match().current_regions_size(), 2);
  EXPECT_EQ(stale.error().epoch_not_match().current_regions(1).id(), kRight);
  EXPECT_EQ(GetOn(left_leader, kRight, 2, "z").value_or("?"), "z");

  // Both halves come back after a restart.
  cluster_->StopNode(3);
  cluster_->StartNode(3, {});
  ASSERT_TRUE(SplitEverywhere({3}));
  ASSERT_TRUE(PutOn(kRight, 2, "zz", "after").ok());
  EXPECT_EQ(GetOn(3, kRight, 2, "zz").value_or("?"), "after");
}

TEST_F(SplitTest, BadSplitsAreRefusedAndChangeNothing) {
  Start3();
  uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  PutRetry("k", "v", {1, 2, 3});
  // The region's start (the empty key) is not strictly inside it; nor is an empty id.
  EXPECT_TRUE(Split(leader, "", kRight).has_error());
  EXPECT_TRUE(Split(leader, "rm", 0).has_error());
  EXPECT_TRUE(Split(leader, "rm", 1).has_error());
  EXPECT_TRUE(Split(leader, "rm", kMetaRegionId).has_error());
  EXPECT_EQ(Split(leader, "rm", kRight, /*version=*/5).error().kind_case(),
            region::RegionError::kEpochNotMatch);
  EXPECT_EQ(Split(leader % 3 + 1, "rm", kRight).error().kind_case(),
            region::RegionError::kNotLeader);
  for (uint64_t id : {1, 2, 3}) {
    auto d = DescOf(cluster_->GetStore(id), 1);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->epoch().version(), 1u);
    EXPECT_FALSE(DescOf(cluster_->GetStore(id), kRight).has_value());
  }
  // Splitting again at a key outside the left half after a split is refused too.
  ASSERT_FALSE(Split(leader, "rm", kRight).has_error());
  auto again = Split(leader, "rz", 11, 2);
  ASSERT_TRUE(again.has_error());
  EXPECT_NE(again.error().message().find("not strictly inside"), std::string::npos);
}

// The new region's first leader reaches a store before that store applies the split: the empty
// replica there votes, takes no snapshot while the parent still covers its range, and becomes
// the real replica (with its vote) once the split applies.
class SplitRaceTest : public SplitTest, public ::testing::WithParamInterface<int64_t> {};

TEST_P(SplitRaceTest, TheNewRegionReachesAStoreBeforeItsSplitDoes) {
  cluster_->tweak = [](uint64_t, StoreOptions* o) { o->split_snapshot_wait_ms = GetParam(); };
  uint64_t leader = 0, slow = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithData(&leader, &slow));
  // Region 1's traffic to the slow store is lost; the new region's gets through.
  std::atomic<bool> cut{true};
  cluster_->drop = [&](const raft::Message& m) {
    return cut && m.region_id() == 1 && m.to() == slow;
  };
  ASSERT_FALSE(Split(leader, "rm", kRight).has_error());
  ASSERT_NE(WaitLeaderOf(kRight, {leader}), 0u);
  const std::vector<uint64_t> live = AllBut(slow);
  ASSERT_TRUE(PutOn(kRight, 2, "r2", "v", live).ok());
  // The slow store holds an empty replica of the new region and still the whole parent.
  ASSERT_TRUE(Eventually([&] { return DescOf(cluster_->GetStore(slow), kRight).has_value(); }));
  EXPECT_EQ(DescOf(cluster_->GetStore(slow), kRight)->conf_state().voters_size(), 0);
  EXPECT_TRUE(DescOf(cluster_->GetStore(slow), 1)->end_key().empty());
  std::this_thread::sleep_for(300ms);
  if (GetParam() > 0) {
    // The new region's leader sends no snapshot meanwhile.
    EXPECT_EQ(cluster_->snapshots_delivered_.load(), 0);
  } else {
    // It does, and the store refuses them: the parent still covers their range.
    EXPECT_GT(cluster_->GetStore(slow)->counters().snapshots_refused.load(), 0u);
  }
  ExpectNoOverlap(slow);
  EXPECT_TRUE(DescOf(cluster_->GetStore(slow), 1)->end_key().empty());

  cut = false;
  ASSERT_TRUE(SplitEverywhere({1, 2, 3}));
  EXPECT_EQ(GetOn(slow, kRight, 2, "r2").value_or("?"), "v");
  EXPECT_EQ(GetOn(slow, kRight, 2, "z").value_or("?"), "z");
  EXPECT_EQ(GetOn(slow, 1, 2, "a").value_or("?"), "a");
  ExpectNoOverlap(slow);
}

INSTANTIATE_TEST_SUITE_P(SnapshotWait, SplitRaceTest, ::testing::Values(10'000, 0));

// A store that missed the split and whose parent's log was truncated past it catches up on the
// parent by snapshot (the left half only); the right half then comes by its own snapshot, and
// no data is lost or left to two regions.
TEST_F(SplitTest, AStoreThatMissedTheSplitCatchesUpBySnapshots) {
  cluster_->gc_threshold = 8;
  cluster_->gc_keep = 2;
  cluster_->gc_max_lag = 4;
  cluster_->tweak = [](uint64_t, StoreOptions* o) { o->split_snapshot_wait_ms = 200; };
  uint64_t leader = 0, slow = 0;
  ASSERT_NO_FATAL_FAILURE(StartWithData(&leader, &slow));
  std::atomic<bool> cut{true};
  cluster_->drop = [&](const raft::Message& m) { return cut && m.to() == slow; };
  ASSERT_FALSE(Split(leader, "rm", kRight).has_error());
  ASSERT_NE(WaitLeaderOf(kRight, {leader}), 0u);
  // Enough writes on both halves that both logs are truncated past what the slow store has.
  const std::vector<uint64_t> live = AllBut(slow);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(PutOn(1, 2, fmt::format("b{}", i), "L", live).ok());
    ASSERT_TRUE(PutOn(kRight, 2, fmt::format("x{}", i), "R", live).ok());
  }
  cut = false;
  ASSERT_TRUE(SplitEverywhere({1, 2, 3}));
  EXPECT_EQ(GetOn(slow, 1, 2, "b29").value_or("?"), "L");
  EXPECT_EQ(GetOn(slow, 1, 2, "a").value_or("?"), "a");
  EXPECT_EQ(GetOn(slow, kRight, 2, "x29").value_or("?"), "R");
  EXPECT_EQ(GetOn(slow, kRight, 2, "z").value_or("?"), "z");
  ExpectNoOverlap(slow);
  // Region 1 by snapshot (the left half only) and region 10 by its own.
  EXPECT_GE(cluster_->snapshots_delivered_.load(), 2);
  EXPECT_GE(cluster_->GetStore(slow)->counters().snapshots_applied.load(), 2u);
}

}  // namespace
}  // namespace micedb::store::test
