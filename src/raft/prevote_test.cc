// §9.6 PreVote and CheckQuorum (thesis §6.2): a node cut off from the group must not bump its
// term and depose a healthy leader when it comes back, and a leader that lost its majority
// steps down.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

TEST(PreVote, PartitionedNodeDoesNotBumpTermOrDisruptOnRejoin) {
  TestCluster c(3);  // pre_vote and check_quorum on (the defaults)
  c.Elect(1);
  Term term = c.raft(1).term();
  c.Isolate(3);
  for (int k = 0; k < 100; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(3).term(), term) << "pre-votes failed, so the term never moved";
  EXPECT_EQ(c.raft(3).role(), Role::kPreCandidate);
  c.Heal();
  for (int k = 0; k < 5; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).leader(), N(1));
}

TEST(PreVote, WithoutPreVoteRejoiningNodeDeposesLeader) {
  // The disruption PreVote exists to prevent.
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  Term term = c.raft(1).term();
  c.Isolate(3);
  for (int k = 0; k < 100; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_GT(c.raft(3).term(), term + 2);
  c.Heal();
  for (int k = 0; k < 30 && c.raft(1).term() == term; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_GT(c.raft(1).term(), term) << "the leader saw the higher term and stepped down";
}

TEST(PreVote, PreVoteDoesNotChangeVoterState) {
  HardState hs;
  hs.set_term(3);
  hs.set_vote(2);
  SoloNode v(
      1, {1, 2, 3}, [](Config& c) { c.check_quorum = false; }, {MakeEntry(1, 3)}, hs);
  Message pv = MakeMsg(MSG_PRE_VOTE, 3, 1, 4);
  pv.set_index(1);
  pv.set_log_term(3);
  Message resp = Only(v.Feed(pv), MSG_PRE_VOTE_RESP);
  EXPECT_FALSE(resp.reject()) << "would vote in term 4";
  EXPECT_EQ(resp.term(), 4u);
  EXPECT_EQ(v.raft().term(), T(3));
  EXPECT_EQ(v.raft().vote(), N(2));

  pv.set_log_term(2);
  resp = Only(v.Feed(pv), MSG_PRE_VOTE_RESP);
  EXPECT_TRUE(resp.reject()) << "log not up to date";
  EXPECT_EQ(resp.term(), 3u);
}

TEST(PreVote, PreCandidateLearnsHigherTermFromRejection) {
  // A pre-candidate whose term is behind is rejected with the group's term and adopts it,
  // rather than retrying forever with a stale one.
  SoloNode n(3, {1, 2, 3});
  ASSERT_TRUE(n.node().Campaign().ok());
  auto out = n.Drain();
  EXPECT_EQ(CountType(out, MSG_PRE_VOTE), 2u);
  ASSERT_EQ(n.raft().role(), Role::kPreCandidate);
  EXPECT_EQ(n.raft().term(), T(0)) << "a pre-candidate keeps its term";
  Message rej = MakeMsg(MSG_PRE_VOTE_RESP, 2, 3, 5);
  rej.set_reject(true);
  n.Feed(rej);
  EXPECT_EQ(n.raft().term(), T(5));
  EXPECT_EQ(n.raft().role(), Role::kFollower);
}

TEST(PreVote, PreCandidateBecomesCandidateOnMajority) {
  SoloNode n(3, {1, 2, 3});
  ASSERT_TRUE(n.node().Campaign().ok());
  n.Drain();
  auto out = n.Feed(MakeMsg(MSG_PRE_VOTE_RESP, 2, 3, 1));
  EXPECT_EQ(n.raft().role(), Role::kCandidate);
  EXPECT_EQ(n.raft().term(), T(1));
  EXPECT_EQ(CountType(out, MSG_VOTE), 2u);
}

TEST(CheckQuorum, IsolatedLeaderStepsDown) {
  TestCluster c(3, [](Config& cfg) { cfg.election_tick = 10; });
  c.Elect(1);
  c.Isolate(1);
  for (int k = 0; k < 9; ++k) {
    c.Tick(1);
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader) << "not before an election timeout";
  c.Tick(1, 11);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raw(1).Propose("x").code(), StatusCode::kNotLeader);
}

TEST(CheckQuorum, LeaderWithQuorumStays) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int k = 0; k < 50; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
}

TEST(CheckQuorum, FollowerInLeaseIgnoresVoteRequests) {
  SoloNode f(1, {1, 2, 3});
  f.Feed(MakeMsg(MSG_HEARTBEAT, 2, 1, 1));  // leader 2, term 1
  Message vote = MakeMsg(MSG_VOTE, 3, 1, 2);
  vote.set_index(5);
  vote.set_log_term(1);
  auto out = f.Feed(vote);
  EXPECT_TRUE(out.empty()) << "ignored while the leader is fresh";
  EXPECT_EQ(f.raft().term(), T(1));
  EXPECT_EQ(f.raft().leader(), N(2));
  // After an election timeout without the leader the request is considered.
  for (int k = 0; k < 30; ++k) {
    f.node().Tick();
  }
  f.Drain();
  vote.set_term(10);
  auto out2 = f.Feed(vote);
  EXPECT_EQ(CountType(out2, MSG_VOTE_RESP), 1u);
}

TEST(CheckQuorum, StaleLeaderIsToldTheNewTerm) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  for (int k = 0; k < 40; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  NodeId leader = c.TickUntilLeader();
  ASSERT_TRUE(leader.valid());
  ASSERT_NE(leader, N(1));
  c.Heal();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.raft(1).term(), c.raft(leader.value()).term());
  EXPECT_EQ(c.raft(1).leader(), leader);
}

}  // namespace
}  // namespace micedb::raft
