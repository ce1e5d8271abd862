// §6 (and thesis chapter 4) membership changes, one server at a time: learners, adding,
// promoting and removing members, and the rules that keep changes from overlapping.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

ConfChange CC(ConfChangeType type, uint64_t id) {
  ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  return cc;
}

std::vector<uint64_t> Voters(Raft& r) {
  ConfState cs = r.GetStatus().conf_state;
  return {cs.voters().begin(), cs.voters().end()};
}
std::vector<uint64_t> Learners(Raft& r) {
  ConfState cs = r.GetStatus().conf_state;
  return {cs.learners().begin(), cs.learners().end()};
}

TEST(Membership, LearnerReceivesLogButIsNotCounted) {
  TestCluster c(2, nullptr, /*learners=*/1);  // voters 1,2; learner 3
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("a").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(3), std::vector<std::string>{"a"}) << "learners get the log";
  c.Isolate(2);
  ASSERT_TRUE(c.raw(1).Propose("b").ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(3).log().LastIndex(), c.raft(1).log().LastIndex());
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"a"})
      << "leader + learner is not a majority of the voters {1,2}";
}

TEST(Membership, AddLearnerThenPromote) {
  TestCluster c(3);
  c.Elect(1);
  // A joining node starts empty but for the group's current membership.
  c.AddNode(N(4), MakeConfState({1, 2, 3}));
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 4)).ok());
  c.Stabilize();
  EXPECT_EQ(Learners(c.raft(1)), std::vector<uint64_t>{4});
  EXPECT_EQ(Learners(c.raft(4)), std::vector<uint64_t>{4}) << "the learner applied it too";
  EXPECT_TRUE(c.raft(1).GetStatus().progress.at(N(4)).is_learner);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_VOTER, 4)).ok());
  c.Stabilize();
  EXPECT_EQ(Voters(c.raft(1)), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(Learners(c.raft(1)).empty());
  EXPECT_FALSE(c.raft(1).GetStatus().progress.at(N(4)).is_learner);
  // Four voters need three: 1 and 4 alone cannot commit.
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  EXPECT_TRUE(c.AppliedData(1).empty());
}

TEST(Membership, AddVoterJoinsAndCounts) {
  TestCluster c(1);
  c.Elect(1);
  c.AddNode(N(2), MakeConfState({1}));
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_VOTER, 2)).ok());
  c.Stabilize();
  EXPECT_EQ(Voters(c.raft(2)), (std::vector<uint64_t>{1, 2}));
  c.Isolate(2);
  ASSERT_TRUE(c.raw(1).Propose("needs-2").ok());
  c.Stabilize();
  EXPECT_TRUE(c.AppliedData(1).empty()) << "two voters: both are needed";
  c.Heal();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"needs-2"});
}

TEST(Membership, RemoveVoterShrinksQuorum) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 3)).ok());
  c.Stabilize();
  EXPECT_EQ(Voters(c.raft(1)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(c.raft(1).GetStatus().progress.count(N(3)), 0u);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).Propose("p").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"p"});
}

TEST(Membership, RemovedNodeDoesNotDisrupt) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 3)).ok());
  c.Stabilize();
  Term term = c.raft(1).term();
  // Node 3 no longer hears heartbeats; it must not campaign (it knows it is not a voter).
  for (int k = 0; k < 100; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).term(), term);
}

TEST(Membership, RemovedNodeThatMissedItsRemovalDoesNotDisrupt) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 3)).ok());
  c.Stabilize();
  c.Heal();
  Term term = c.raft(1).term();
  // 3 still believes it is a voter and times out over and over; PreVote and the leader lease
  // keep its attempts from costing the group its leader.
  for (int k = 0; k < 100; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), term);
}

TEST(Membership, SecondChangeRefusedWhilePending) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 4)).ok());
  Status s = c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 5));
  EXPECT_EQ(s.code(), StatusCode::kBusy) << s.ToString();
  c.Stabilize();
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 5)).ok()) << "applied: next may go";
}

TEST(Membership, ChangeRefusedUntilCurrentTermEntryCommits) {
  TestCluster c(3);
  c.HandleAllReady();
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  // Run the election but hold back every MSG_APP, so the no-op cannot commit.
  c.DropType(MSG_APP);
  c.Stabilize();
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  Status s = c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 4));
  EXPECT_EQ(s.code(), StatusCode::kBusy) << s.ToString();
  c.Heal();
  c.TickAll();
  c.Stabilize();
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 4)).ok());
}

TEST(Membership, InvalidChangesAreRefused) {
  TestCluster c(2, nullptr, 1);
  c.Elect(1);
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_VOTER, 0)).IsInvalidArgument());
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_VOTER, 2)).IsInvalidArgument());
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 3)).IsInvalidArgument());
  EXPECT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 9)).IsInvalidArgument());
  EXPECT_EQ(c.raw(2).ProposeConfChange(CC(ADD_LEARNER, 5)).code(), StatusCode::kNotLeader);
}

TEST(Membership, LeaderRemovingItselfHandsOver) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 1)).ok());
  c.Stabilize();
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
  NodeId leader = c.raft(2).leader();
  ASSERT_TRUE(leader.valid()) << "a caught-up voter took over at once";
  EXPECT_NE(leader, N(1));
  ASSERT_TRUE(c.raw(leader.value()).Propose("after").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(2), std::vector<std::string>{"after"});
}

TEST(Membership, LeaderBeingRemovedAppendsNothingMore) {
  // Two voters; the leader removes itself. Were it to append entries after the change, it
  // could hold a longer log than node 2 and refuse 2 the vote 2 needs under the old
  // membership, while itself unable to campaign under the new one.
  TestCluster c(2);
  c.Elect(1);
  c.Isolate(2);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 1)).ok());
  EXPECT_EQ(c.raw(1).Propose("late").code(), StatusCode::kAborted);
  c.Stabilize();
  c.Heal();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(Voters(c.raft(2)), std::vector<uint64_t>{2});
}

TEST(Membership, NewLeaderFindsItsOwnPendingRemoval) {
  // Node 1 proposes removing node 2, then loses leadership to 2 before the change commits;
  // 2 must commit it (it is in its log) but must not take proposals meanwhile.
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(REMOVE_NODE, 2)).ok());
  c.HandleAllReady();
  c.DeliverOnce();  // the entry reaches 2 only
  c.Heal();
  c.inflight().clear();
  c.Isolate(1);
  c.HandleAllReady();
  c.inflight().clear();
  ASSERT_TRUE(c.raw(2).Campaign().ok());
  c.HandleAllReady();
  c.DeliverOnce();  // vote request to 3
  c.HandleAllReady();
  c.DeliverOnce();  // vote to 2
  ASSERT_EQ(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(c.raw(2).Propose("x").code(), StatusCode::kAborted);
  c.Stabilize();
  EXPECT_NE(c.raft(2).role(), Role::kLeader) << "stepped down once the removal applied";
  EXPECT_EQ(Voters(c.raft(3)), (std::vector<uint64_t>{1, 3}));
}

TEST(Membership, DemoteVoterToLearner) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 3)).ok());
  c.Stabilize();
  EXPECT_EQ(Voters(c.raft(1)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Learners(c.raft(3)), std::vector<uint64_t>{3});
  EXPECT_FALSE(c.raw(3).Campaign().ok());
}

TEST(Membership, ConfStateSurvivesRestart) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).ProposeConfChange(CC(ADD_LEARNER, 4)).ok());
  c.Stabilize();
  c.Restart(N(2));
  EXPECT_EQ(Learners(c.raft(2)), std::vector<uint64_t>{4});
}

}  // namespace
}  // namespace micedb::raft
