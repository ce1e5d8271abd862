// The checkers on hand-made histories: each must stay quiet on a good history and report the
// bad one. Without this, a simulation that "passes" might only mean a checker never fires.
#include <gtest/gtest.h>

#include "tests/sim/apply_checker.h"
#include "tests/sim/digest.h"
#include "tests/sim/election_checker.h"
#include "tests/sim/log_checker.h"
#include "tests/sim/read_checker.h"
#include "tests/sim/tso_checker.h"

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

// Three callers, each with one call at a time, calls overlapping across callers.
TEST(TsoCheckerTest, GoodHistoryIsFine) {
  Violations v;
  TsoChecker c(&v);
  const uint64_t a1 = c.Invoked(1, 10), b1 = c.Invoked(2, 11);
  c.Completed(b1, 12, 105);  // concurrent with a1: may be below or above it
  const uint64_t b2 = c.Invoked(2, 13);
  c.Completed(a1, 14, 100);
  c.Completed(b2, 15, 110);  // above b1, which ended before it began
  const uint64_t c1 = c.Invoked(3, 16);
  c.Completed(c1, 17, std::nullopt);  // a failure takes no part
  const uint64_t c2 = c.Invoked(3, 18);
  c.Completed(c2, 19, 111);
  c.Finish(/*healed_ms=*/16, /*liveness_bound_ms=*/5);
  EXPECT_TRUE(v.empty()) << v[0].detail;
  EXPECT_EQ(c.timestamps(), 4u);
  EXPECT_EQ(c.failures(), 1u);
}

TEST(TsoCheckerTest, TimestampHandedOutTwiceIsReported) {
  Violations v;
  TsoChecker c(&v);
  const uint64_t a = c.Invoked(1, 10), b = c.Invoked(2, 10);
  c.Completed(a, 12, 100);
  c.Completed(b, 12, 100);
  c.Finish(std::nullopt, 0);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "tso-unique");
  EXPECT_NE(v[0].detail.find("timestamp 100 handed out twice"), std::string::npos);
}

TEST(TsoCheckerTest, CallerGoingBackIsReported) {
  Violations v;
  TsoChecker c(&v);
  // Caller 1's two calls are concurrent with caller 2's only call, so only the per-caller
  // order is broken... and the real-time order with it, since 1's first call ended first.
  const uint64_t a1 = c.Invoked(1, 10);
  c.Completed(a1, 11, 200);
  const uint64_t a2 = c.Invoked(1, 12);
  c.Completed(a2, 13, 150);
  c.Finish(std::nullopt, 0);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].check, "tso-monotonic");
  EXPECT_NE(v[0].detail.find("caller 1: timestamp 150"), std::string::npos);
  EXPECT_EQ(v[1].check, "tso-real-time");
}

TEST(TsoCheckerTest, RealTimeOrderAcrossCallersIsChecked) {
  Violations v;
  TsoChecker c(&v);
  const uint64_t a = c.Invoked(1, 10);
  const uint64_t b = c.Invoked(2, 10);  // concurrent with a: any order is fine
  c.Completed(b, 11, 300);
  c.Completed(a, 11, 200);
  const uint64_t d = c.Invoked(3, 12);  // after both ended: must be above 300
  c.Completed(d, 13, 250);
  c.Finish(std::nullopt, 0);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "tso-real-time");
  EXPECT_NE(v[0].detail.find("caller 3 got 250"), std::string::npos);
  EXPECT_NE(v[0].detail.find("caller 2 had got the larger or equal 300"), std::string::npos);
}

TEST(TsoCheckerTest, NoTimestampAfterHealingIsReported) {
  Violations v;
  TsoChecker c(&v);
  const uint64_t a = c.Invoked(1, 10);
  c.Completed(a, 20, 100);  // before healing: does not count
  const uint64_t b = c.Invoked(1, 100);
  c.Completed(b, 150, std::nullopt);
  const uint64_t d = c.Invoked(1, 160);
  c.Completed(d, 400, 101);  // too late
  c.Invoked(2, 170);         // never answered
  c.Finish(/*healed_ms=*/100, /*liveness_bound_ms=*/200);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].check, "tso-liveness");
  EXPECT_NE(v[0].detail.find("first at 400 ms"), std::string::npos);

  Violations none;
  TsoChecker quiet(&none);
  quiet.Finish(/*healed_ms=*/0, 100);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].check, "tso-liveness");
}

}  // namespace
}  // namespace micedb::sim
