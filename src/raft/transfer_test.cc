// Leadership transfer (thesis §3.10): the leader catches the target up, sends it
// MSG_TIMEOUT_NOW, refuses proposals meanwhile, and gives up after an election timeout.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

TEST(Transfer, ToUpToDateFollower) {
  TestCluster c(3);  // CheckQuorum on: voters must still vote for a transfer candidate
  c.Elect(1);
  Term term = c.raft(1).term();
  c.raw(1).TransferLeader(N(2));
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(c.raft(2).term(), term + 1);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).leader(), N(2));
}

TEST(Transfer, CatchesUpLaggingTargetFirst) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(c.raw(1).Propose("w").ok());
  }
  c.Stabilize();
  c.Heal();
  c.raw(1).TransferLeader(N(3));
  c.HandleAllReady();
  EXPECT_EQ(c.sent(MSG_TIMEOUT_NOW), 0u) << "3 is behind: no TimeoutNow yet";
  c.Stabilize();
  EXPECT_EQ(c.sent(MSG_TIMEOUT_NOW), 1u);
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
  EXPECT_EQ(c.AppliedData(3).size(), 5u);
}

TEST(Transfer, ProposalsRefusedDuringTransfer) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  c.raw(1).TransferLeader(N(3));
  EXPECT_EQ(c.raft(1).lead_transferee(), N(3));
  EXPECT_EQ(c.raw(1).Propose("x").code(), StatusCode::kAborted);
  ConfChange cc;
  cc.set_type(ADD_LEARNER);
  cc.set_node_id(9);
  EXPECT_EQ(c.raw(1).ProposeConfChange(cc).code(), StatusCode::kAborted);
}

TEST(Transfer, AbortedAfterElectionTimeout) {
  TestCluster c(3, [](Config& cfg) { cfg.election_tick = 10; });
  c.Elect(1);
  c.Isolate(3);
  c.raw(1).TransferLeader(N(3));
  c.Stabilize();
  for (int k = 0; k < 10; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_FALSE(c.raft(1).lead_transferee().valid());
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_TRUE(c.raw(1).Propose("again").ok());
}

TEST(Transfer, IgnoredForSelfLearnerOrStranger) {
  TestCluster c(2, nullptr, 1);
  c.Elect(1);
  c.raw(1).TransferLeader(N(1));
  c.raw(1).TransferLeader(N(3));  // learner
  c.raw(1).TransferLeader(N(9));  // not a member
  EXPECT_FALSE(c.raft(1).lead_transferee().valid());
}

TEST(Transfer, FollowerForwardsRequest) {
  TestCluster c(3);
  c.Elect(1);
  c.raw(3).TransferLeader(N(3));
  c.Stabilize();
  EXPECT_EQ(c.raft(3).role(), Role::kLeader);
}

TEST(Transfer, SecondRequestReplacesFirst) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  c.raw(1).TransferLeader(N(3));
  c.Heal();
  c.Isolate(3);
  c.raw(1).TransferLeader(N(2));
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
}

}  // namespace
}  // namespace micedb::raft
