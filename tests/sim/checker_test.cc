// The checkers on hand-made histories: each must stay quiet on a good history and report the
// bad one. Without this, a simulation that "passes" might only mean a checker never fires.
#include <gtest/gtest.h>

#include "tests/sim/apply_checker.h"
#include "tests/sim/digest.h"
#include "tests/sim/election_checker.h"
#include "tests/sim/log_checker.h"
#include "tests/sim/read_checker.h"

namespace micedb::sim {
namespace {

constexpr NodeId n1(1), n2(2), n3(3);

TEST(ElectionCheckerTest, OneLeaderPerTermIsFine) {
  Violations v;
  ElectionChecker c(&v);
  c.ObserveLeader(n1, Term(1));
  c.ObserveLeader(n1, Term(1));
  c.ObserveLeader(n2, Term(2));
  c.ObserveLeader(n1, Term(3));
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(c.terms_with_leader(), 3u);
}

TEST(ElectionCheckerTest, TwoLeadersInOneTermAreReportedOnce) {
  Violations v;
  ElectionChecker c(&v);
  c.ObserveLeader(n1, Term(4));
  c.ObserveLeader(n2, Term(5));
  c.ObserveLeader(n3, Term(4));
  c.ObserveLeader(n3, Term(4));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "election-safety");
  EXPECT_NE(v[0].detail.find("term 4"), std::string::npos);
}

TEST(LogCheckerTest, SameEntriesOnManyNodesAreFine) {
  Violations v;
  LogChecker c(&v);
  for (NodeId n : {n1, n2, n3}) {
    c.ObserveAppend(n, LogIndex(1), Term(1), Term(0), 11);
    c.ObserveAppend(n, LogIndex(2), Term(1), Term(1), 22);
  }
  // A different term at index 2 is a different entry, not a conflict.
  c.ObserveAppend(n3, LogIndex(2), Term(2), Term(1), 33);
  EXPECT_TRUE(v.empty());
}

TEST(LogCheckerTest, SameIndexAndTermWithOtherContentIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveAppend(n1, LogIndex(3), Term(2), Term(1), 11);
  c.ObserveAppend(n2, LogIndex(3), Term(2), Term(1), 12);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "log-matching");
}

TEST(LogCheckerTest, SameIndexAndTermAfterAnotherTermIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveAppend(n1, LogIndex(3), Term(3), Term(1), 11);
  c.ObserveAppend(n2, LogIndex(3), Term(3), Term(2), 11);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "log-matching");
}

TEST(LogCheckerTest, CommittedEntryThatChangesIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveCommitted(n1, LogIndex(5), Term(2), Term(2));
  c.ObserveCommitted(n2, LogIndex(5), Term(2), Term(3));
  EXPECT_TRUE(v.empty());
  c.ObserveCommitted(n3, LogIndex(5), Term(3), Term(3));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "committed-entry-changed");
  EXPECT_EQ(c.CommittedTerm(LogIndex(5)), Term(2));
}

TEST(LogCheckerTest, OverwritingBelowTheCommitIndexIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveOverwrite(n1, LogIndex(7), Term(2), Term(3), LogIndex(6));  // above commit: fine
  c.ObserveOverwrite(n1, LogIndex(7), Term(2), Term(2), LogIndex(9));  // same term: no change
  EXPECT_TRUE(v.empty());
  c.ObserveOverwrite(n1, LogIndex(7), Term(2), Term(3), LogIndex(7));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "committed-entry-changed");
}

// The paper's Figure 8: (index 2, term 2) is "committed" by the term-4 leader counting
// replicas; the term-5 leader then holds term 3 at index 2.
TEST(LogCheckerTest, LaterLeaderWithoutACommittedEntryIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveCommitted(n1, LogIndex(1), Term(1), Term(1));
  c.ObserveCommitted(n1, LogIndex(2), Term(2), Term(4));
  std::vector<Term> log5 = {Term(0), Term(1), Term(3), Term(5)};
  auto at = [&](LogIndex i) -> std::optional<Term> { return log5[i.value()]; };
  // A leader of term 4 or lower is not bound by the commit made in term 4.
  c.CheckLeaderLog(n3, Term(4), LogIndex(1), LogIndex(3), at);
  EXPECT_TRUE(v.empty());
  c.CheckLeaderLog(n3, Term(5), LogIndex(1), LogIndex(3), at);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "leader-completeness");
}

TEST(LogCheckerTest, LaterLeaderWithAShorterLogIsReported) {
  Violations v;
  LogChecker c(&v);
  c.ObserveCommitted(n1, LogIndex(1), Term(1), Term(1));
  c.ObserveCommitted(n1, LogIndex(2), Term(1), Term(1));
  auto at = [](LogIndex) -> std::optional<Term> { return Term(1); };
  c.CheckLeaderLog(n2, Term(2), LogIndex(1), LogIndex(2), at);
  EXPECT_TRUE(v.empty());
  c.CheckLeaderLog(n3, Term(3), LogIndex(1), LogIndex(1), at);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "leader-completeness");
}

TEST(LogCheckerTest, CompactedPrefixOfALeaderIsNotChecked) {
  Violations v;
  LogChecker c(&v);
  c.ObserveCommitted(n1, LogIndex(1), Term(1), Term(1));
  c.ObserveCommitted(n1, LogIndex(2), Term(1), Term(1));
  auto at = [](LogIndex i) -> std::optional<Term> { return Term(i.value() == 3 ? 2 : 1); };
  c.CheckLeaderLog(n2, Term(2), LogIndex(3), LogIndex(3), at);
  EXPECT_TRUE(v.empty());
}

TEST(ApplyCheckerTest, PrefixesOfOneSequenceAreFine) {
  Violations v;
  ApplyChecker c(&v);
  c.ObserveApply(n1, LogIndex(1), Term(1), 10);
  c.ObserveApply(n1, LogIndex(2), Term(1), 20);
  c.ObserveApply(n2, LogIndex(1), Term(1), 10);
  c.ObserveApply(n1, LogIndex(3), Term(2), 30);
  c.ObserveApply(n2, LogIndex(2), Term(1), 20);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(c.length(), LogIndex(3));
  EXPECT_EQ(c.applied(n2), LogIndex(2));
}

TEST(ApplyCheckerTest, DivergentSequencesAreReported) {
  Violations v;
  ApplyChecker c(&v);
  c.ObserveApply(n1, LogIndex(1), Term(1), 10);
  c.ObserveApply(n1, LogIndex(2), Term(2), 20);
  c.ObserveApply(n2, LogIndex(1), Term(1), 10);
  c.ObserveApply(n2, LogIndex(2), Term(3), 21);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "state-machine-safety");
}

TEST(ApplyCheckerTest, SameTermOtherContentIsReported) {
  Violations v;
  ApplyChecker c(&v);
  c.ObserveApply(n1, LogIndex(1), Term(1), 10);
  c.ObserveApply(n2, LogIndex(1), Term(1), 11);
  ASSERT_EQ(v.size(), 1u);
}

TEST(ApplyCheckerTest, GapsAndRepeatsAreReported) {
  Violations v;
  ApplyChecker c(&v);
  c.ObserveApply(n1, LogIndex(1), Term(1), 10);
  c.ObserveApply(n1, LogIndex(3), Term(1), 30);
  EXPECT_EQ(v.size(), 1u);
  c.ObserveApply(n1, LogIndex(3), Term(1), 30);
  EXPECT_EQ(v.size(), 2u);
}

TEST(ApplyCheckerTest, RestoredStateMustMatchTheCommonSequence) {
  Violations v;
  ApplyChecker c(&v);
  uint64_t d1 = ChainDigest(0, Term(1), 10);
  uint64_t d2 = ChainDigest(d1, Term(1), 20);
  c.ObserveApply(n1, LogIndex(1), Term(1), 10);
  c.ObserveApply(n1, LogIndex(2), Term(1), 20);
  c.ObserveRestore(n2, LogIndex(2), d2);
  c.ObserveRestore(n3, LogIndex(0), 0);
  EXPECT_TRUE(v.empty());
  c.ObserveApply(n2, LogIndex(3), Term(2), 30);  // continues after the restored state
  EXPECT_TRUE(v.empty());
  c.ObserveRestore(n3, LogIndex(2), d1);  // the state at index 1, claimed for index 2
  EXPECT_EQ(v.size(), 1u);
  c.ObserveRestore(n3, LogIndex(9), d2);  // beyond anything applied
  EXPECT_EQ(v.size(), 2u);
}

TEST(ReadCheckerTest, ReadThatSeesEveryEarlierAckIsFine) {
  Violations v;
  ReadChecker c(&v);
  c.ObserveAck(LogIndex(4));
  uint64_t r = c.BeginRead();
  c.ObserveAck(LogIndex(9));  // acknowledged after the read began: it may be missed
  c.ObserveServed(r, n2, LogIndex(5), LogIndex(5));
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(c.served(), 1u);
}

TEST(ReadCheckerTest, StaleReadIsReported) {
  Violations v;
  ReadChecker c(&v);
  c.ObserveAck(LogIndex(10));
  uint64_t r = c.BeginRead();
  c.ObserveServed(r, n3, LogIndex(8), LogIndex(8));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "read-linearizability");
}

TEST(ReadCheckerTest, FailedReadsAreForgotten) {
  Violations v;
  ReadChecker c(&v);
  uint64_t r = c.BeginRead();
  EXPECT_EQ(c.pending(), 1u);
  c.ObserveFailed(r);
  EXPECT_EQ(c.pending(), 0u);
  c.ObserveServed(r, n1, LogIndex(1), LogIndex(1));  // served after failing: a driver bug
  EXPECT_EQ(v.size(), 1u);
}

}  // namespace
}  // namespace micedb::sim
