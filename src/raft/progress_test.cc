// Flow control: the inflight window and the probe / replicate / snapshot states.
#include "raft/progress.h"

#include <gtest/gtest.h>

#include "raft/test_cluster.h"
#include "raft/tracker.h"

namespace micedb::raft {
namespace {

using testing::I;

TEST(InflightsTest, BoundedByCount) {
  Inflights in(3, 0);
  in.Add(I(1), 10);
  in.Add(I(2), 10);
  EXPECT_FALSE(in.Full());
  in.Add(I(3), 10);
  EXPECT_TRUE(in.Full());
  in.FreeLE(I(2));
  EXPECT_EQ(in.count(), 1u);
  EXPECT_FALSE(in.Full());
  in.Add(I(4), 10);
  in.Add(I(5), 10);  // wraps around the ring
  EXPECT_TRUE(in.Full());
  in.FreeLE(I(5));
  EXPECT_EQ(in.count(), 0u);
  EXPECT_EQ(in.bytes(), 0u);
}

TEST(InflightsTest, BoundedByBytes) {
  Inflights in(100, 250);
  in.Add(I(1), 100);
  in.Add(I(2), 100);
  EXPECT_FALSE(in.Full());
  in.Add(I(3), 100);
  EXPECT_TRUE(in.Full());
  in.FreeLE(I(1));
  EXPECT_EQ(in.bytes(), 200u);
  EXPECT_FALSE(in.Full());
}

TEST(ProgressTest, ProbeSendsOneMessageAtATime) {
  FollowerProgress pr(I(5), 10, 0, false);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(2, I(6), 100);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next, I(5)) << "probe does not advance next optimistically";
  EXPECT_TRUE(pr.MaybeUpdate(I(6)));
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next, I(7));
}

TEST(ProgressTest, ReplicateStreamsUntilWindowFull) {
  FollowerProgress pr(I(1), 2, 0, false);
  pr.BecomeReplicate();
  pr.SentEntries(1, I(1), 10);
  pr.SentEntries(1, I(2), 10);
  EXPECT_EQ(pr.next, I(3));
  EXPECT_TRUE(pr.IsPaused());
  pr.MaybeUpdate(I(1));
  pr.inflights.FreeLE(I(1));
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, StaleRejectionsAreIgnored) {
  FollowerProgress pr(I(10), 10, 0, false);
  pr.match = I(5);
  pr.BecomeReplicate();  // next = 6
  EXPECT_FALSE(pr.MaybeDecrTo(I(4), I(4))) << "at or below match: stale";
  EXPECT_TRUE(pr.MaybeDecrTo(I(7), I(7)));
  EXPECT_EQ(pr.next, I(6));

  FollowerProgress probe(I(10), 10, 0, false);
  EXPECT_FALSE(probe.MaybeDecrTo(I(5), I(2))) << "not the latest probe";
  EXPECT_TRUE(probe.MaybeDecrTo(I(9), I(2)));
  EXPECT_EQ(probe.next, I(3)) << "jumps to the hint";
}

TEST(ProgressTest, SnapshotPausesUntilReported) {
  FollowerProgress pr(I(3), 10, 0, false);
  pr.BecomeSnapshot(I(20));
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, I(21)) << "after a snapshot, probe past it";
}

TEST(QuorumTest, QuorumValue) {
  EXPECT_EQ(QuorumValue({5}), 5u);
  EXPECT_EQ(QuorumValue({5, 1, 3}), 3u);
  EXPECT_EQ(QuorumValue({5, 1, 3, 4}), 3u) << "4 voters need 3";
  EXPECT_EQ(QuorumValue({9, 9, 1, 1, 1}), 1u);
}

TEST(TrackerTest, LearnersNeverCount) {
  ProgressTracker t(10, 0);
  t.SetConfState(testing::MakeConfState({1, 2, 3}, {4, 5}));
  t.ResetProgress(I(1));
  for (auto& [id, pr] : t.progress()) {
    pr.match = id.value() >= 4 ? I(100) : I(1);
  }
  EXPECT_EQ(t.CommittedIndex(), I(1)) << "two learners at 100 must not commit 100";
  t.RecordVote(testing::N(4), true);
  t.RecordVote(testing::N(5), true);
  t.RecordVote(testing::N(1), true);
  EXPECT_EQ(t.TallyVotes(), VoteResult::kPending);
  t.RecordVote(testing::N(2), false);
  t.RecordVote(testing::N(3), false);
  EXPECT_EQ(t.TallyVotes(), VoteResult::kLost);
}

TEST(TrackerTest, MembershipChanges) {
  ProgressTracker t(10, 0);
  t.SetConfState(testing::MakeConfState({1}, {2}));
  EXPECT_TRUE(t.AddVoter(testing::N(2))) << "promotion";
  EXPECT_TRUE(t.IsVoter(testing::N(2)));
  EXPECT_FALSE(t.IsLearner(testing::N(2)));
  EXPECT_FALSE(t.AddVoter(testing::N(2)));
  EXPECT_TRUE(t.AddLearner(testing::N(1))) << "demotion";
  EXPECT_TRUE(t.Remove(testing::N(1)));
  EXPECT_FALSE(t.IsMember(testing::N(1)));
}

}  // namespace
}  // namespace micedb::raft
