// §5.3 Log replication: the leader's log wins, followers are repaired, entries commit once a
// majority holds them, and fast backtracking skips a term per round trip.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

auto NoPreVote = [](Config& c) { c.pre_vote = false; };

TEST(Replication, ProposalsCommitAndApplyInOrderEverywhere) {
  TestCluster c(3);
  c.Elect(1);
  for (int k = 0; k < 10; ++k) {
    ASSERT_TRUE(c.raw(1).Propose("v" + std::to_string(k)).ok());
  }
  c.Stabilize();
  std::vector<std::string> want;
  want.reserve(10);
  for (int k = 0; k < 10; ++k) {
    want.push_back("v" + std::to_string(k));
  }
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), want) << "node " << i;
  }
}

TEST(Replication, CommitsWithMajorityOnly) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).Propose("a").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"a"}) << "2 of 3 suffice";
  c.Isolate(2);
  ASSERT_TRUE(c.raw(1).Propose("b").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"a"}) << "1 of 3 does not";
  c.Heal();
  c.TickAll();
  c.Stabilize();
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), (std::vector<std::string>{"a", "b"})) << "node " << i;
  }
}

TEST(Replication, FollowersLearnCommitIndex) {
  TestCluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  // Followers learn the commit through the next MSG_APP sent after it advanced.
  EXPECT_EQ(c.raft(2).log().committed(), c.raft(1).log().committed());
  EXPECT_EQ(c.raft(3).log().committed(), c.raft(1).log().committed());
}

// Config::lazy_commit: the leader sends nothing of its own for a new commit index. One write
// costs one append per follower and one answer each; the followers learn the commit from the
// next append or heartbeat, and SendCommitNow tells them at once.
TEST(Replication, LazyCommitRidesOnTheNextAppendOrHeartbeat) {
  TestCluster c(3, [](Config& cfg) { cfg.lazy_commit = true; });
  c.Elect(1);
  c.ResetSentCounts();
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"x"});
  EXPECT_EQ(c.sent(MSG_APP), 2u) << "one append per follower, none for the commit";
  EXPECT_EQ(c.sent(MSG_APP_RESP), 2u);
  const LogIndex committed = c.raft(1).log().committed();
  EXPECT_LT(c.raft(2).log().committed(), committed);
  EXPECT_TRUE(c.AppliedData(2).empty());

  // The next write's append carries the first one's commit.
  ASSERT_TRUE(c.raw(1).Propose("y").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(2), std::vector<std::string>{"x"});
  EXPECT_EQ(c.AppliedData(3), std::vector<std::string>{"x"});

  // A heartbeat carries the rest.
  c.Tick(1, c.node(1).cfg.heartbeat_tick);
  c.Stabilize();
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), (std::vector<std::string>{"x", "y"})) << "node " << i;
  }

  // SendCommitNow: every follower hears of a new commit index at once.
  ASSERT_TRUE(c.raw(1).Propose("z").ok());
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(2).size(), 2u);
  c.raw(1).SendCommitNow();
  c.Stabilize();
  for (uint64_t i = 2; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), (std::vector<std::string>{"x", "y", "z"})) << "node " << i;
  }
}

TEST(Replication, EagerCommitSendsTheCommitIndexAtOnce) {
  TestCluster c(3);
  c.Elect(1);
  c.ResetSentCounts();
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  EXPECT_EQ(c.sent(MSG_APP), 4u) << "the append, then one carrying the commit";
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), std::vector<std::string>{"x"}) << "node " << i;
  }
}

// Paper Figure 7: followers that miss entries, or hold extra uncommitted ones from old terms,
// all end up with the leader's log.
TEST(Replication, LeaderRepairsDivergentFollowers) {
  TestCluster c(5, NoPreVote);
  auto ents = [](std::vector<uint64_t> terms) {
    std::vector<Entry> out;
    for (size_t k = 0; k < terms.size(); ++k) {
      out.push_back(MakeEntry(k + 1, terms[k]));
    }
    return out;
  };
  c.SetLog(1, ents({1, 1, 1, 4, 4, 5, 5, 6, 6, 6}), 6);     // the future leader
  c.SetLog(2, ents({1, 1, 1, 4, 4, 5, 5, 6, 6}), 6);        // missing one
  c.SetLog(3, ents({1, 1, 1, 4}), 6);                       // missing many
  c.SetLog(4, ents({1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}), 6);  // an extra entry of term 6
  c.SetLog(5, ents({1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}), 6);  // extra entries from old terms
  c.Elect(1);
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  c.TickAll();
  c.Stabilize();
  const RaftLog& want = c.raft(1).log();
  for (uint64_t i = 2; i <= 5; ++i) {
    const RaftLog& got = c.raft(i).log();
    ASSERT_EQ(got.LastIndex(), want.LastIndex()) << "node " << i;
    for (LogIndex k(1); k <= want.LastIndex(); ++k) {
      EXPECT_EQ(got.TermOrZero(k), want.TermOrZero(k)) << "node " << i << " index " << k;
    }
    EXPECT_EQ(got.committed(), want.committed());
  }
}

TEST(Replication, FastBacktrackingSkipsWholeTerms) {
  // Node 3 holds 50 uncommitted entries of term 2 where the leader has term-3 entries. Probing
  // one index per round trip would take 50 rejections; using the conflicting term takes one.
  TestCluster c(3, NoPreVote);
  std::vector<Entry> leader_log = {MakeEntry(1, 1)};
  std::vector<Entry> stale_log = leader_log;
  for (uint64_t i = 2; i <= 51; ++i) {
    leader_log.push_back(MakeEntry(i, 3));
    stale_log.push_back(MakeEntry(i, 2));
  }
  c.SetLog(1, leader_log, 3);
  c.SetLog(2, leader_log, 3);
  c.SetLog(3, stale_log, 3);
  c.Elect(1);
  c.Stabilize();
  EXPECT_EQ(c.raft(3).log().LastIndex(), c.raft(1).log().LastIndex());
  EXPECT_EQ(c.raft(3).log().TermOrZero(I(51)), T(3));
  EXPECT_EQ(c.Rejections(3), 1u);
}

TEST(Replication, RejectCarriesHintAndTerm) {
  // Follower log: 1:1, then 2..6 of term 2. A probe at prev=6 with term 4 is rejected with the
  // follower's last index whose term is <= 4 — here 6, term 2.
  std::vector<Entry> log = {MakeEntry(1, 1)};
  for (uint64_t i = 2; i <= 6; ++i) {
    log.push_back(MakeEntry(i, 2));
  }
  HardState hs;
  hs.set_term(4);
  SoloNode f(1, {1, 2, 3}, nullptr, log, hs);
  Message app = MakeMsg(MSG_APP, 2, 1, 4);
  app.set_index(6);
  app.set_log_term(4);
  Message resp = Only(f.Feed(app), MSG_APP_RESP);
  ASSERT_TRUE(resp.reject());
  EXPECT_EQ(resp.index(), 6u);
  EXPECT_EQ(resp.reject_hint(), 6u);
  EXPECT_EQ(resp.reject_term(), 2u);
  // A probe at prev=6 with term 1: entries of term 2 cannot match, skip them all.
  app.set_log_term(1);
  resp = Only(f.Feed(app), MSG_APP_RESP);
  EXPECT_EQ(resp.reject_hint(), 1u);
  EXPECT_EQ(resp.reject_term(), 1u);
}

TEST(Replication, FollowerRestartKeepsPersistedLog) {
  TestCluster c(3);
  c.Elect(1);
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(c.raw(1).Propose("e").ok());
  }
  c.Stabilize();
  LogIndex last = c.raft(2).log().LastIndex();
  c.Restart(N(2));
  EXPECT_EQ(c.raft(2).log().LastIndex(), last);
  EXPECT_EQ(c.raft(2).log().committed(), last);
  EXPECT_EQ(c.raft(2).term(), c.raft(1).term());
  // Nothing is applied twice after the restart.
  size_t applied = c.node(2).applied.size();
  c.TickAll();
  c.Stabilize();
  EXPECT_EQ(c.node(2).applied.size(), applied);
}

}  // namespace
}  // namespace micedb::raft
