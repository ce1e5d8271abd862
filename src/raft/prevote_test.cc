// §9.6 PreVote and CheckQuorum (thesis §6.2): a node cut off from the group must not bump its
// term and depose a healthy leader when it comes back, and a leader that lost its majority
// steps down.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

// Reconnects every node and lets five ticks' worth of messages settle.
void HealAndSettle(TestCluster& c) {
  c.Heal();
  for (int k = 0; k < 5; ++k) {
    c.TickAll();
    c.Stabilize();
  }
}

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
  HealAndSettle(c);
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

// Config::slow_entry_bytes_per_tick: a big entry holds every replica for a while, and none
// should depose a leader that is only busy writing or applying it.
constexpr size_t kKiB = 1024;

auto Allow1KiBPerTick = [](Config& c) {
  c.election_tick = 10;
  c.slow_entry_bytes_per_tick = 1024;
};

int TicksUntilCampaign(SoloNode& f) {
  for (int k = 1; k <= 1000; ++k) {
    f.node().Tick();
    if (f.raft().role() != Role::kFollower) return k;
  }
  return -1;
}

TEST(BigEntries, FollowerWaitsLongerAfterABigAppend) {
  SoloNode f(1, {1, 2, 3}, Allow1KiBPerTick);
  Message app = MakeMsg(MSG_APP, 2, 1, 1);
  *app.add_entries() = MakeEntry(1, 1, std::string(50 * kKiB, 'x'));  // 50 ticks' allowance
  f.Feed(app);
  ASSERT_EQ(f.raft().leader(), N(2));
  // A heartbeat after the entry (the commit announcement comes before the leader's own
  // apply) does not cancel the allowance.
  for (int k = 0; k < 5; ++k) f.node().Tick();
  f.Feed(MakeMsg(MSG_HEARTBEAT, 2, 1, 1));
  const int ticks = TicksUntilCampaign(f);
  EXPECT_GE(ticks, 50 - 5 + 10) << "allowance plus an election timeout";
  EXPECT_LT(ticks, 50 + 20);
  // Once it has run out, heartbeats reset the timer as usual.
}

TEST(BigEntries, SmallAppendsAndNoAllowanceKeepTheUsualTimeout) {
  SoloNode small(1, {1, 2, 3}, Allow1KiBPerTick);
  Message app = MakeMsg(MSG_APP, 2, 1, 1);
  *app.add_entries() = MakeEntry(1, 1, std::string(1000, 'x'));  // under one tick's worth
  small.Feed(app);
  EXPECT_LT(TicksUntilCampaign(small), 20);

  SoloNode off(1, {1, 2, 3}, [](Config& c) { c.election_tick = 10; });
  app = MakeMsg(MSG_APP, 2, 1, 1);
  *app.add_entries() = MakeEntry(1, 1, std::string(50 * kKiB, 'x'));
  off.Feed(app);
  EXPECT_LT(TicksUntilCampaign(off), 20) << "slow_entry_bytes_per_tick = 0: no allowance";
}

TEST(BigEntries, FollowerInAllowanceStillRefusesVotes) {
  // The allowance only delays: the node keeps its promise to the leader at least as long.
  SoloNode f(1, {1, 2, 3}, Allow1KiBPerTick);
  Message app = MakeMsg(MSG_APP, 2, 1, 1);
  *app.add_entries() = MakeEntry(1, 1, std::string(30 * kKiB, 'x'));
  f.Feed(app);
  for (int k = 0; k < 25; ++k) f.node().Tick();
  Message vote = MakeMsg(MSG_VOTE, 3, 1, 2);
  vote.set_index(5);
  vote.set_log_term(1);
  EXPECT_TRUE(f.Feed(vote).empty()) << "past an election timeout, but inside the allowance";
  EXPECT_EQ(f.raft().term(), T(1));
}

TEST(BigEntries, LeaderThatAppendsABigEntryDoesNotStepDownWhileFollowersWriteIt) {
  TestCluster c(3, Allow1KiBPerTick);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose(std::string(40 * kKiB, 'x')).ok());
  // The followers are busy writing it: nothing comes back for 30 ticks.
  c.Isolate(1);
  c.Tick(1, 30);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader) << "CheckQuorum waits out the allowance";
  c.Tick(1, 30);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower) << "but not forever";
}

TEST(BigEntries, LeaderAnnouncesABigEntryWithAHeartbeatAheadOfIt) {
  // The entry itself takes a while to reach the followers (and the leader a while to send
  // it); a heartbeat that leaves before it carries the allowance.
  TestCluster c(3, Allow1KiBPerTick);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose(std::string(40 * kKiB, 'x')).ok());
  std::vector<Message> out = c.raw(1).GetReady().messages;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front().type(), MSG_HEARTBEAT);
  EXPECT_EQ(out.front().big_entry_bytes(), 40u * 1024);
  EXPECT_EQ(CountType(out, MSG_HEARTBEAT), 2u);

  SoloNode f(2, {1, 2, 3}, Allow1KiBPerTick);
  Message hb = MakeMsg(MSG_HEARTBEAT, 1, 2, 1);
  hb.set_big_entry_bytes(40 * kKiB);
  f.Feed(hb);
  EXPECT_GE(TicksUntilCampaign(f), 40 + 10);

  // A small proposal sends no extra heartbeat.
  TestCluster small(3, Allow1KiBPerTick);
  small.Elect(1);
  ASSERT_TRUE(small.raw(1).Propose("small").ok());
  EXPECT_EQ(CountType(small.raw(1).GetReady().messages, MSG_HEARTBEAT), 0u);
}

TEST(BigEntries, AnnounceHandsOutHeartbeatsAtOnceOnTheLeaderOnly) {
  TestCluster c(3, Allow1KiBPerTick);
  c.Elect(1);
  std::vector<Message> hb = c.raw(1).AnnounceBigEntries(40 * kKiB);
  ASSERT_EQ(hb.size(), 2u);
  for (const Message& m : hb) {
    EXPECT_EQ(m.type(), MSG_HEARTBEAT);
    EXPECT_EQ(m.big_entry_bytes(), 40u * 1024);
    EXPECT_EQ(m.term(), c.raft(1).term().value());
  }
  EXPECT_FALSE(c.raw(1).HasReady()) << "outside the Ready cycle";
  EXPECT_TRUE(c.raw(1).AnnounceBigEntries(1000).empty()) << "less than a tick's worth";
  EXPECT_TRUE(c.raw(2).AnnounceBigEntries(40 * kKiB).empty()) << "followers announce nothing";
  // The leader's own CheckQuorum waits out the allowance too.
  c.Isolate(1);
  c.Tick(1, 30);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
}

TEST(BigEntries, AnAnnouncedEntryIsNotAnnouncedAgainWhenProposed) {
  TestCluster c(3, Allow1KiBPerTick);
  c.Elect(1);
  ASSERT_EQ(c.raw(1).AnnounceBigEntries(40 * kKiB).size(), 2u);
  ASSERT_TRUE(c.raw(1).Propose(std::string(40 * kKiB, 'x')).ok());
  EXPECT_EQ(CountType(c.raw(1).GetReady().messages, MSG_HEARTBEAT), 0u);
}

TEST(BigEntries, ClusterKeepsItsLeaderWhenEveryoneStallsOnABigEntry) {
  TestCluster c(3, Allow1KiBPerTick);
  c.Elect(1);
  const Term term = c.raft(1).term();
  ASSERT_TRUE(c.raw(1).Propose(std::string(40 * kKiB, 'x')).ok());
  c.Stabilize();
  // The leader stalls (no ticks, no messages) while its followers go on ticking: without
  // the allowance they would elect a new leader after 10-20 ticks.
  c.Isolate(1);
  for (int k = 0; k < 35; ++k) {
    c.Tick(2);
    c.Tick(3);
    c.Stabilize();
  }
  HealAndSettle(c);
  EXPECT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).term(), term);
}

}  // namespace
}  // namespace micedb::raft
