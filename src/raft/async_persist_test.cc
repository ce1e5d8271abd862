// Config::async_leader_persist: a leader counts its own copy of an entry only once the
// application reports it durable (RawNode::ReportPersisted), so that it can sync its log on
// another thread while it goes on replicating.
#include <gtest/gtest.h>

#include "raft/test_cluster.h"

namespace micedb::raft {
namespace {

using namespace testing;  // NOLINT(build/namespaces)

void Async(Config& cfg) { cfg.async_leader_persist = true; }

TEST(AsyncLeaderPersist, TwoFollowersCommitWithoutTheLeadersCopy) {
  TestCluster c(3, Async);
  c.Elect(1);
  c.HoldPersistReports();
  LogIndex before = c.raft(1).log().committed();
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  // Never reported durable on the leader, yet durable on both followers: a quorum.
  EXPECT_EQ(c.raft(1).log().committed(), before + 1);
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>({"x"}));
}

// Node 1 leads, node 3 is cut off, no persist reports: proposes "x" and returns the commit
// index from before it.
LogIndex ProposeWithOneFollower(TestCluster& c) {
  c.Elect(1);
  c.HoldPersistReports();
  c.Isolate(3);
  LogIndex before = c.raft(1).log().committed();
  EXPECT_TRUE(c.raw(1).Propose("x").ok());
  c.Stabilize();
  return before;
}

TEST(AsyncLeaderPersist, OneFollowerAndAnUnreportedLeaderDoNotCommit) {
  TestCluster c(3, Async);
  LogIndex before = ProposeWithOneFollower(c);
  EXPECT_EQ(c.raft(1).log().committed(), before) << "leader's copy is not known durable";
  EXPECT_TRUE(c.AppliedData(1).empty());

  // The report makes two copies of three.
  LogIndex last = c.raft(1).log().LastIndex();
  c.raw(1).ReportPersisted(last, c.raft(1).log().LastTerm());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).log().committed(), last);
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>({"x"}));
  // The new commit index went out at once, without waiting for the next heartbeat.
  EXPECT_EQ(c.raft(2).log().committed(), last);
}

TEST(AsyncLeaderPersist, WithoutTheOptionTheLeaderCountsItsAppend) {
  TestCluster c(3);
  LogIndex before = ProposeWithOneFollower(c);
  EXPECT_EQ(c.raft(1).log().committed(), before + 1);
}

TEST(AsyncLeaderPersist, ALoneVoterCommitsOnlyAfterTheReport) {
  TestCluster c(1, Async);
  c.HoldPersistReports();
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  c.HandleAllReady();
  ASSERT_EQ(c.raft(1).role(), Role::kLeader);
  EXPECT_EQ(c.raft(1).log().committed(), LogIndex(0)) << "the no-op is not reported yet";
  c.raw(1).ReportPersisted(c.raft(1).log().LastIndex(), c.raft(1).term());
  c.HandleAllReady();
  LogIndex noop = c.raft(1).log().LastIndex();
  EXPECT_EQ(c.raft(1).log().committed(), noop);

  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.HandleAllReady();
  EXPECT_EQ(c.raft(1).log().committed(), noop);
  EXPECT_TRUE(c.AppliedData(1).empty());
  c.raw(1).ReportPersisted(noop + 1, c.raft(1).term());
  c.HandleAllReady();
  EXPECT_EQ(c.raft(1).log().committed(), noop + 1);
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>({"x"}));
}

TEST(AsyncLeaderPersist, ReportsThatDoNotMatchTheLogAreIgnored) {
  TestCluster c(1, Async);
  ASSERT_TRUE(c.raw(1).Campaign().ok());
  c.HandleAllReady();  // reports the no-op: committed
  c.HoldPersistReports();
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.HandleAllReady();
  LogIndex last = c.raft(1).log().LastIndex();
  LogIndex committed = c.raft(1).log().committed();
  ASSERT_LT(committed, last);
  c.raw(1).ReportPersisted(last, c.raft(1).term() + 1);  // wrong term
  c.raw(1).ReportPersisted(last + 5, c.raft(1).term());  // past the log
  c.HandleAllReady();
  EXPECT_EQ(c.raft(1).log().committed(), committed);
  c.raw(1).ReportPersisted(last, c.raft(1).term());
  c.HandleAllReady();
  EXPECT_EQ(c.raft(1).log().committed(), last);
}

TEST(AsyncLeaderPersist, AReportReachingAFollowerChangesNothing) {
  TestCluster c(3, [](Config& cfg) {
    cfg.async_leader_persist = true;
    cfg.pre_vote = false;  // so that node 3 votes for 2 while 1 still leads
    cfg.check_quorum = false;
  });
  c.Elect(1);
  c.HoldPersistReports();
  c.Isolate(2);
  c.Isolate(3);
  ASSERT_TRUE(c.raw(1).Propose("x").ok());
  c.HandleAllReady();
  LogIndex last = c.raft(1).log().LastIndex();
  Term term = c.raft(1).term();
  c.Heal();
  c.Isolate(1);
  c.Elect(2);  // node 1 is cut off and still thinks it leads; elect 2 and bring 1 back
  ASSERT_EQ(c.raft(2).role(), Role::kLeader);
  c.Heal();
  c.Stabilize();
  c.TickAll(3);
  c.Stabilize();
  ASSERT_EQ(c.raft(1).role(), Role::kFollower);
  LogIndex committed = c.raft(1).log().committed();
  c.raw(1).ReportPersisted(last, term);
  c.HandleAllReady();
  EXPECT_EQ(c.raft(1).log().committed(), committed);
  EXPECT_EQ(c.raft(1).role(), Role::kFollower);
}

}  // namespace
}  // namespace micedb::raft
