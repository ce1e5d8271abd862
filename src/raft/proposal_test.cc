// Proposals never vanish silently: a node that cannot take one says so at once, or forwards
// it to the leader when configured to.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

TEST(Proposal, NoLeaderFailsFast) {
  TestCluster c(3);
  Status s = c.raw(1).Propose("x");
  EXPECT_EQ(s.code(), StatusCode::kNotLeader);
  EXPECT_NE(s.message().find("no leader"), std::string_view::npos) << s.ToString();
}

TEST(Proposal, FollowerFailsFastNamingTheLeader) {
  TestCluster c(3);
  c.Elect(1);
  Status s = c.raw(2).Propose("x");
  EXPECT_EQ(s.code(), StatusCode::kNotLeader);
  EXPECT_NE(s.message().find("leader is 1"), std::string_view::npos) << s.ToString();
  c.Stabilize();
  EXPECT_TRUE(c.AppliedData(1).empty());
}

TEST(Proposal, CandidateFailsFast) {
  TestCluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.Isolate(1);
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  EXPECT_EQ(c.raw(1).Propose("x").code(), StatusCode::kNotLeader);
}

TEST(Proposal, ForwardedToLeaderWhenEnabled) {
  TestCluster c(3, [](Config& cfg) { cfg.forward_proposals = true; });
  c.Elect(1);
  ASSERT_TRUE(c.raw(2).Propose("fwd").ok());
  ASSERT_TRUE(c.raw(3).ProposeBatch({"b1", "b2"}).ok());
  c.Stabilize();
  for (uint64_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(c.AppliedData(i), (std::vector<std::string>{"fwd", "b1", "b2"}));
  }
  // ProposeWithIndex is leader-only even with forwarding: a follower cannot say where it went.
  EXPECT_EQ(c.raw(2).ProposeWithIndex("y").status().code(), StatusCode::kNotLeader);
}

TEST(Proposal, ForwardingWithoutLeaderStillFails) {
  TestCluster c(3, [](Config& cfg) { cfg.forward_proposals = true; });
  EXPECT_EQ(c.raw(2).Propose("x").code(), StatusCode::kNotLeader);
}

TEST(Proposal, WithIndexDetectsOverwrite) {
  TestCluster c(3);
  c.Elect(1);
  c.Isolate(1);
  auto where = c.raw(1).ProposeWithIndex("doomed");
  ASSERT_TRUE(where.ok());
  auto [term, index] = *where;
  EXPECT_EQ(term, c.raft(1).term());
  NodeId leader;
  for (int k = 0; k < 100 && !leader.valid(); ++k) {
    c.TickAll();
    c.Stabilize();
    if (c.raft(2).role() == Role::kLeader) {
      leader = N(2);
    }
    if (c.raft(3).role() == Role::kLeader) {
      leader = N(3);
    }
  }
  ASSERT_TRUE(leader.valid());
  ASSERT_TRUE(c.raw(leader.value()).Propose("winner").ok());
  c.Stabilize();
  c.Heal();
  for (int k = 0; k < 3; ++k) {
    c.TickAll();
    c.Stabilize();
  }
  // The application learns its entry lost: the term at that index changed.
  EXPECT_NE(c.raft(1).log().TermOrZero(index), term);
  for (const std::string& d : c.AppliedData(1)) {
    EXPECT_NE(d, "doomed");
  }
}

TEST(Proposal, BatchWithIndexGivesConsecutiveIndexesAndOneAppendPerFollower) {
  TestCluster c(3);
  c.Elect(1);
  LogIndex before = c.raft(1).log().LastIndex();
  c.HandleAllReady();
  auto where = c.raw(1).ProposeBatchWithIndex({"a", "b", "c"});
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(where->first, c.raft(1).term());
  EXPECT_EQ(where->second, before + 3);
  Ready rd = c.raw(1).GetReady();
  size_t apps = 0;
  for (const Message& m : rd.messages) {
    if (m.type() == MSG_APP) {
      ++apps;
      EXPECT_EQ(m.entries_size(), 3);
    }
  }
  EXPECT_EQ(apps, 2u);
  EXPECT_EQ(c.raw(2).ProposeBatchWithIndex({"x"}).status().code(), StatusCode::kNotLeader);
  EXPECT_EQ(c.raw(1).ProposeBatchWithIndex({}).status().code(), StatusCode::kInvalidArgument);
}

TEST(Proposal, EmptyBatchIsNoOp) {
  TestCluster c(1);
  c.Elect(1);
  LogIndex last = c.raft(1).log().LastIndex();
  EXPECT_TRUE(c.raw(1).ProposeBatch({}).ok());
  EXPECT_EQ(c.raft(1).log().LastIndex(), last);
}

}  // namespace
}  // namespace micedb::raft
