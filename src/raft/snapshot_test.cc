// §7 Log compaction: followers too far behind get the leader's snapshot; the application
// reports how sending it went.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

// Leader 1 of {1,2,3} has compacted its log past what node 3 has.
class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() : c_(3) {
    c_.Elect(1);
    c_.Isolate(3);
    for (int k = 0; k < 10; ++k) {
      EXPECT_TRUE(c_.raw(1).Propose("e" + std::to_string(k)).ok());
    }
    c_.Stabilize();
    MemoryStorage& s = *c_.node(1).storage;
    LogIndex applied = c_.raft(1).log().applied();
    ConfState cs = c_.raft(1).GetStatus().conf_state;
    EXPECT_TRUE(s.CreateSnapshot(applied, &cs, "state@" + std::to_string(applied.value())).ok());
    EXPECT_TRUE(s.Compact(applied).ok());
    snap_index_ = applied;
    c_.Heal();
  }

  TestCluster c_;
  LogIndex snap_index_;
};

TEST_F(SnapshotTest, LaggingFollowerGetsSnapshot) {
  c_.TickAll();
  c_.Stabilize();
  EXPECT_EQ(c_.sent(MSG_SNAP), 1u);
  EXPECT_EQ(c_.node(3).snapshot_applied, snap_index_);
  EXPECT_EQ(c_.node(3).storage->GetSnapshot()->data(),
            "state@" + std::to_string(snap_index_.value()));
  EXPECT_EQ(c_.raft(3).log().committed(), snap_index_);
  EXPECT_EQ(c_.raft(3).GetStatus().conf_state.voters_size(), 3);
  c_.raw(1).ReportSnapshot(N(3), SnapshotStatus::kFinish);
  ASSERT_TRUE(c_.raw(1).Propose("after").ok());
  c_.TickAll();
  c_.Stabilize();
  EXPECT_EQ(c_.raft(1).GetStatus().progress.at(N(3)).state, ProgressState::kReplicate);
  EXPECT_EQ(c_.AppliedData(3), std::vector<std::string>{"after"})
      << "applies only what follows the snapshot";
}

TEST_F(SnapshotTest, FailedSnapshotIsRetried) {
  c_.DropType(MSG_SNAP);
  c_.TickAll();
  c_.Stabilize();
  ASSERT_EQ(c_.sent(MSG_SNAP), 1u);
  c_.raw(1).ReportSnapshot(N(3), SnapshotStatus::kFailure);
  EXPECT_EQ(c_.raft(1).GetStatus().progress.at(N(3)).state, ProgressState::kProbe);
  c_.Heal();
  c_.TickAll();
  c_.Stabilize();
  EXPECT_EQ(c_.sent(MSG_SNAP), 2u);
  EXPECT_EQ(c_.node(3).snapshot_applied, snap_index_);
}

TEST_F(SnapshotTest, PausedUntilInstalledOrReported) {
  c_.TickAll();
  for (int k = 0; k < 20 && c_.sent(MSG_SNAP) == 0; ++k) {
    c_.HandleAllReady();
    c_.DeliverOnce();
  }
  ASSERT_EQ(c_.sent(MSG_SNAP), 1u);
  c_.DropType(MSG_APP_RESP);  // the follower installs the snapshot but its answer is lost
  c_.Stabilize();
  EXPECT_EQ(c_.raft(1).GetStatus().progress.at(N(3)).state, ProgressState::kSnapshot);
  ASSERT_TRUE(c_.raw(1).Propose("x").ok());
  c_.Heal();
  c_.Stabilize();
  EXPECT_TRUE(c_.AppliedData(3).empty()) << "nothing is sent while the snapshot is in flight";
  EXPECT_EQ(c_.sent(MSG_SNAP), 1u);
  c_.raw(1).ReportSnapshot(N(3), SnapshotStatus::kFinish);
  c_.TickAll();
  c_.Stabilize();
  EXPECT_EQ(c_.AppliedData(3), std::vector<std::string>{"x"});
  EXPECT_EQ(c_.raft(1).GetStatus().progress.at(N(3)).state, ProgressState::kReplicate);
}

TEST_F(SnapshotTest, FollowerAckEndsSnapshotState) {
  // The follower's MSG_APP_RESP after installing is enough, even before ReportSnapshot.
  c_.TickAll();
  c_.Stabilize();
  EXPECT_EQ(c_.raft(1).GetStatus().progress.at(N(3)).state, ProgressState::kReplicate);
  ASSERT_TRUE(c_.raw(1).Propose("x").ok());
  c_.Stabilize();
  EXPECT_EQ(c_.AppliedData(3), std::vector<std::string>{"x"});
}

TEST_F(SnapshotTest, RestartAfterSnapshotInstall) {
  c_.TickAll();
  c_.Stabilize();
  c_.Restart(N(3));
  EXPECT_EQ(c_.raft(3).log().committed(), snap_index_);
  EXPECT_EQ(c_.raft(3).log().FirstIndex(), snap_index_ + 1);
}

TEST(SnapshotReceiver, IgnoresSnapshotAtOrBelowCommit) {
  HardState hs;
  hs.set_term(2);
  hs.set_commit(3);
  SoloNode f(1, {1, 2}, nullptr, {MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 2)}, hs);
  Message m = MakeMsg(MSG_SNAP, 2, 1, 2);
  m.mutable_snapshot()->mutable_metadata()->set_index(2);
  m.mutable_snapshot()->mutable_metadata()->set_term(1);
  Message resp = Only(f.Feed(m), MSG_APP_RESP);
  EXPECT_EQ(resp.index(), 3u) << "answers with its commit index";
  EXPECT_EQ(f.raft().log().LastIndex(), I(3));
}

TEST(SnapshotReceiver, MatchingEntryOnlyFastForwardsCommit) {
  HardState hs;
  hs.set_term(2);
  SoloNode f(1, {1, 2}, nullptr, {MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 2)}, hs);
  Message m = MakeMsg(MSG_SNAP, 2, 1, 2);
  m.mutable_snapshot()->mutable_metadata()->set_index(2);
  m.mutable_snapshot()->mutable_metadata()->set_term(1);
  f.Feed(m);
  EXPECT_EQ(f.raft().log().committed(), I(2));
  EXPECT_EQ(f.raft().log().LastIndex(), I(3)) << "log kept";
}

TEST(SnapshotReceiver, InstallsAndAdoptsMembership) {
  SoloNode f(1, {1, 2});
  Message m = MakeMsg(MSG_SNAP, 2, 1, 3);
  auto* md = m.mutable_snapshot()->mutable_metadata();
  md->set_index(20);
  md->set_term(3);
  *md->mutable_conf_state() = MakeConfState({1, 2, 4}, {5});
  m.mutable_snapshot()->set_data("blob");
  ASSERT_TRUE(f.node().Step(m).ok());
  ASSERT_TRUE(f.node().HasReady());
  Ready rd = f.node().GetReady();
  ASSERT_TRUE(rd.snapshot.has_value());
  EXPECT_EQ(rd.snapshot->data(), "blob");
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_TRUE(rd.must_sync);
  ASSERT_TRUE(f.storage().ApplySnapshot(*rd.snapshot).ok());
  f.node().Advance(rd);
  EXPECT_EQ(f.node().GetStatus().applied, I(20));
  EXPECT_EQ(f.node().GetStatus().conf_state.voters_size(), 3);
  EXPECT_EQ(f.node().GetStatus().conf_state.learners_size(), 1);
}

}  // namespace
}  // namespace micedb::raft
