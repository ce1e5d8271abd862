// §5.2 Leader election: randomized timeouts, winning with a majority, split votes, and
// stepping down on a higher term.
#include <gtest/gtest.h>

#include <set>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

auto NoPreVote = [](Config& c) { c.pre_vote = false; };

TEST(Election, FollowerCampaignsAfterElectionTimeout) {
  TestCluster c(3, NoPreVote);
  NodeId leader = c.TickUntilLeader();
  ASSERT_TRUE(leader.valid());
  EXPECT_EQ(c.raft(leader.value()).term(), T(1));
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.raft(i).leader(), leader);
    EXPECT_EQ(c.raft(i).term(), T(1));
  }
}

TEST(Election, TimeoutIsRandomizedInRange) {
  // Over many resets, timeouts cover [election_tick, 2*election_tick) and nothing else.
  SoloNode n(1, {1, 2, 3}, [](Config& c) { c.election_tick = 10; });
  std::set<int> seen;
  for (int k = 0; k < 500; ++k) {
    n.Feed(MakeMsg(MSG_HEARTBEAT, 2, 1, k + 1));  // each new term resets the timer
    int t = n.raft().randomized_election_timeout();
    EXPECT_GE(t, 10);
    EXPECT_LT(t, 20);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(Election, SameSeedSameTimeouts) {
  auto timeouts = [](uint64_t seed) {
    SoloNode n(1, {1, 2, 3}, [seed](Config& c) { c.random_seed = seed; });
    std::vector<int> out;
    for (int k = 0; k < 20; ++k) {
      n.Feed(MakeMsg(MSG_HEARTBEAT, 2, 1, k + 1));
      out.push_back(n.raft().randomized_election_timeout());
    }
    return out;
  };
  EXPECT_EQ(timeouts(5), timeouts(5));
  EXPECT_NE(timeouts(5), timeouts(6));
}

TEST(Election, CandidateWinsWithMajority) {
  TestCluster c(5, NoPreVote);
  c.Isolate(4);
  c.Isolate(5);
  c.Elect(1);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader) << "3 of 5 is a majority";
}

TEST(Election, CandidateWithoutMajorityStaysCandidate) {
  TestCluster c(5, NoPreVote);
  c.Isolate(3);
  c.Isolate(4);
  c.Isolate(5);
  c.Elect(1);
  EXPECT_EQ(c.raft(1).role(), Role::kCandidate);
  EXPECT_EQ(c.raft(1).term(), T(1));
}

TEST(Election, CandidateLosesOnMajorityRejection) {
  TestCluster c(3, NoPreVote);
  // Nodes 2 and 3 have a longer log from term 1.
  std::vector<Entry> longer = {MakeEntry(1, 1), MakeEntry(2, 1)};
  c.SetLog(2, longer, 1);
  c.SetLog(3, longer, 1);
  c.SetLog(1, {MakeEntry(1, 1)}, 1);
  c.Elect(1);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower) << "rejected by both: back to follower";
  EXPECT_EQ(c.raft(1).term(), T(2));
}

TEST(Election, SplitVoteResolvesWithRandomizedTimeouts) {
  // Four voters, two candidates in the same term each holding two votes: nobody wins that
  // term, and randomized timeouts elect a leader in a later one.
  TestCluster c(4, NoPreVote);
  c.HandleAllReady();
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  ASSERT_TRUE(c.raw(2).Campaign().ok());
  c.HandleAllReady();
  // Deliver 1's request to 3 and 2's request to 4 first so each gets one vote.
  auto& q = c.inflight();
  std::deque<Message> later;
  std::deque<Message> first;
  for (Message& m : q) {
    bool early = (m.from() == 1 && m.to() == 3) || (m.from() == 2 && m.to() == 4);
    (early ? first : later).push_back(m);
  }
  q = first;
  for (Message& m : later) {
    q.push_back(m);
  }
  c.Stabilize();
  EXPECT_NE(c.raft(1).role(), Role::kLeader);
  EXPECT_NE(c.raft(2).role(), Role::kLeader);
  NodeId leader = c.TickUntilLeader();
  ASSERT_TRUE(leader.valid());
  EXPECT_GE(c.raft(leader.value()).term(), T(2));
}

TEST(Election, LeaderStepsDownOnHigherTerm) {
  // Without CheckQuorum followers do not hold on to a known leader (see prevote_test.cc).
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  c.Isolate(1);
  c.Elect(2);
  ASSERT_EQ(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader) << "1 has not heard yet";
  c.Heal();
  c.TickAll();  // 2's heartbeat reaches 1
  c.Stabilize();
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
  EXPECT_EQ(c.raft(1).term(), c.raft(2).term());
  EXPECT_EQ(c.raft(1).leader(), N(2));
}

TEST(Election, CandidateStepsDownOnLeaderOfSameTerm) {
  TestCluster c(3, NoPreVote);
  c.Elect(1);
  // 3 becomes a candidate in a later term but loses; meanwhile 1 is re-elected there.
  c.Isolate(3);
  c.HandleAllReady();
  ASSERT_TRUE(c.raw(3).Campaign().ok());
  c.HandleAllReady();
  c.Heal();
  c.inflight().clear();
  ASSERT_EQ(c.raft(3).role(), Role::kCandidate);
  // A MSG_APP of the candidate's own term from another node means a leader exists.
  Message app = MakeMsg(MSG_APP, 2, 3, c.raft(3).term().value());
  app.set_index(0);
  app.set_log_term(0);
  ASSERT_TRUE(c.raw(3).Step(app).ok());
  EXPECT_EQ(c.raft(3).role(), Role::kFollower);
  EXPECT_EQ(c.raft(3).leader(), N(2));
}

TEST(Election, SingleNodeElectsItself) {
  TestCluster c(1);
  NodeId leader = c.TickUntilLeader();
  EXPECT_EQ(leader, N(1));
  EXPECT_EQ(c.raft(1).log().committed(), I(1)) << "its no-op commits at once";
}

TEST(Election, LearnerNeverCampaigns) {
  TestCluster c(1, nullptr, /*learners=*/1);
  c.TickAll(100);
  c.Stabilize();
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).term(), c.raft(1).term());
  EXPECT_FALSE(c.raw(2).Campaign().ok());
}

TEST(Election, NewLeaderAppendsNoOpOfItsTerm) {
  TestCluster c(3, NoPreVote);
  c.Elect(2);
  const Entry& last = c.node(1).applied.back();
  EXPECT_EQ(last.term(), c.raft(2).term().value());
  EXPECT_TRUE(last.data().empty());
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.raft(i).log().committed(), I(1));
  }
}

// A refused vote tells the candidate what the voter knows to be committed; a candidate that
// holds the same entry commits it (found by the simulation: seed 1011 of 2000, a group whose
// only up-to-date node no longer counted itself a voter and so neither campaigned nor voted).
TEST(Election, ARefusedVoteTeachesTheCandidateTheCommitIndex) {
  TestCluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.HandleReady(N(1));
  c.DeliverOnce();  // the appends reach 2 and 3
  c.HandleReady(N(2));
  c.HandleReady(N(3));
  c.Cut(1, 2);
  c.Cut(1, 3);
  c.DeliverOnce();  // their answers commit x on 1; nobody hears of it
  c.HandleReady(N(1));
  const LogIndex x = c.raft(1).log().committed();
  ASSERT_EQ(c.raft(1).log().TermOrZero(x), c.raft(2).log().TermOrZero(x));
  ASSERT_LT(c.raft(2).log().committed(), x);
  ASSERT_TRUE(c.raw(1).Propose("y").ok());  // 1's log is now longer than 2's
  c.HandleReady(N(1));
  c.DeliverOnce();

  c.Heal();
  c.Cut(3, 2);  // only 1 answers 2's campaign, and it refuses
  ASSERT_TRUE(c.raw(2).Campaign().ok());
  c.HandleReady(N(2));
  c.DeliverOnce();
  c.HandleReady(N(1));
  c.HandleReady(N(3));
  c.DeliverOnce();
  EXPECT_NE(c.raft(2).role(), Role::kLeader);
  EXPECT_EQ(c.raft(2).log().committed(), x) << "learned from the refusal";
}

}  // namespace
}  // namespace micedb::raft
