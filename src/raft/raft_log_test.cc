// The log as the core sees it: MemoryStorage, the unstable tail, and RaftLog's matching,
// conflict and commit rules.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "raft/test_cluster.h"
#include "raft/unstable.h"

namespace micedb::raft {
namespace {

using testing::I;
using testing::MakeEntry;
using testing::T;

std::vector<Entry> Ents(const std::vector<std::pair<uint64_t, uint64_t>>& index_term) {
  std::vector<Entry> out;
  out.reserve(index_term.size());
  for (auto [i, t] : index_term) {
    out.push_back(MakeEntry(i, t));
  }
  return out;
}

TEST(MemoryStorageTest, EmptyLog) {
  MemoryStorage s;
  EXPECT_EQ(s.FirstIndex(), I(1));
  EXPECT_EQ(s.LastIndex(), I(0));
  EXPECT_EQ(*s.TermAt(I(0)), T(0));
  EXPECT_TRUE(IsUnavailable(s.TermAt(I(1)).status()));
}

TEST(MemoryStorageTest, AppendTruncatesConflictingSuffix) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Ents({{1, 1}, {2, 1}, {3, 1}})).ok());
  ASSERT_TRUE(s.Append(Ents({{2, 2}})).ok());
  EXPECT_EQ(s.LastIndex(), I(2));
  EXPECT_EQ(*s.TermAt(I(2)), T(2));
  EXPECT_FALSE(s.Append(Ents({{5, 2}})).ok()) << "a gap must be refused";
}

TEST(MemoryStorageTest, EntriesRespectsByteLimitButReturnsOne) {
  MemoryStorage s;
  std::vector<Entry> ents;
  for (uint64_t i = 1; i <= 5; ++i) {
    ents.push_back(MakeEntry(i, 1, std::string(100, 'x')));
  }
  ASSERT_TRUE(s.Append(ents).ok());
  auto one = s.Entries(I(1), I(6), 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  auto two = s.Entries(I(1), I(6), 2 * EntrySize(ents[0]));
  EXPECT_EQ(two->size(), 2u);
  auto all = s.Entries(I(1), I(6), UINT64_MAX);
  EXPECT_EQ(all->size(), 5u);
  EXPECT_TRUE(IsUnavailable(s.Entries(I(1), I(7), UINT64_MAX).status()));
}

TEST(MemoryStorageTest, CompactAndSnapshot) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Ents({{1, 1}, {2, 1}, {3, 2}, {4, 2}})).ok());
  ConfState cs = testing::MakeConfState({1, 2, 3});
  auto snap = s.CreateSnapshot(I(3), &cs, "state");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().term(), 2u);
  ASSERT_TRUE(s.Compact(I(3)).ok());
  EXPECT_EQ(s.FirstIndex(), I(4));
  EXPECT_EQ(*s.TermAt(I(3)), T(2));
  EXPECT_TRUE(IsCompacted(s.TermAt(I(2)).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(I(3), I(5), UINT64_MAX).status()));
  EXPECT_TRUE(IsCompacted(s.Compact(I(2))));
  EXPECT_FALSE(s.CreateSnapshot(I(2), nullptr, "").ok()) << "older than the current snapshot";
  // An append that starts inside the compacted prefix keeps only the new part.
  ASSERT_TRUE(s.Append(Ents({{3, 2}, {4, 2}, {5, 3}})).ok());
  EXPECT_EQ(s.LastIndex(), I(5));
}

TEST(MemoryStorageTest, ApplySnapshotReplacesEverything) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Ents({{1, 1}, {2, 1}})).ok());
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  *snap.mutable_metadata()->mutable_conf_state() = testing::MakeConfState({1, 2});
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_EQ(s.FirstIndex(), I(11));
  EXPECT_EQ(s.LastIndex(), I(10));
  EXPECT_EQ(s.GetInitialState()->conf_state.voters_size(), 2);
  snap.mutable_metadata()->set_index(5);
  EXPECT_FALSE(s.ApplySnapshot(snap).ok());
}

TEST(UnstableTest, TruncateAndAppendCases) {
  Unstable u(I(5));
  u.TruncateAndAppend(Ents({{5, 1}, {6, 1}, {7, 1}}));
  EXPECT_EQ(*u.MaybeLastIndex(), I(7));
  u.TruncateAndAppend(Ents({{7, 2}, {8, 2}}));  // truncates inside the tail
  EXPECT_EQ(*u.MaybeTerm(I(7)), T(2));
  EXPECT_EQ(*u.MaybeLastIndex(), I(8));
  u.TruncateAndAppend(Ents({{4, 3}}));  // replaces the whole tail
  EXPECT_EQ(u.offset(), I(4));
  EXPECT_EQ(*u.MaybeLastIndex(), I(4));
}

TEST(UnstableTest, StableToIgnoresReplacedEntries) {
  Unstable u(I(1));
  u.TruncateAndAppend(Ents({{1, 1}, {2, 1}}));
  u.AcceptInProgress();
  EXPECT_FALSE(u.HasNextEntries());
  u.TruncateAndAppend(Ents({{2, 2}}));  // entry 2 replaced after it was handed out
  EXPECT_TRUE(u.HasNextEntries()) << "the replacement must be handed out again";
  u.StableTo(I(2), T(1));  // the old entry 2 was persisted: must not drop the new one
  EXPECT_EQ(*u.MaybeTerm(I(2)), T(2));
  u.StableTo(I(1), T(1));
  EXPECT_EQ(u.offset(), I(2));
}

class RaftLogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(storage_.Append(Ents({{1, 1}, {2, 2}, {3, 3}})).ok()); }
  MemoryStorage storage_;
};

TEST_F(RaftLogTest, FindConflict) {
  RaftLog log(&storage_, UINT64_MAX);
  EXPECT_EQ(log.FindConflict({}), I(0));
  EXPECT_EQ(log.FindConflict(Ents({{1, 1}, {2, 2}})), I(0)) << "all match";
  EXPECT_EQ(log.FindConflict(Ents({{2, 2}, {3, 3}, {4, 4}})), I(4)) << "new entries";
  EXPECT_EQ(log.FindConflict(Ents({{2, 2}, {3, 4}})), I(3)) << "term conflict";
}

TEST_F(RaftLogTest, IsUpToDate) {
  RaftLog log(&storage_, UINT64_MAX);
  // §5.4.1: the later term wins; with equal terms the longer log wins.
  EXPECT_TRUE(log.IsUpToDate(I(1), T(4)));
  EXPECT_FALSE(log.IsUpToDate(I(9), T(2)));
  EXPECT_TRUE(log.IsUpToDate(I(3), T(3)));
  EXPECT_FALSE(log.IsUpToDate(I(2), T(3)));
}

TEST_F(RaftLogTest, MaybeAppendTruncatesAndCommits) {
  RaftLog log(&storage_, UINT64_MAX);
  EXPECT_FALSE(log.MaybeAppend(I(3), T(2), I(3), Ents({{4, 4}}))) << "prev term mismatch";
  EXPECT_FALSE(log.MaybeAppend(I(5), T(3), I(3), Ents({{6, 4}}))) << "prev missing";
  auto last = log.MaybeAppend(I(1), T(1), I(5), Ents({{2, 4}, {3, 4}}));
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, I(3));
  EXPECT_EQ(log.TermOrZero(I(2)), T(4));
  EXPECT_EQ(log.LastIndex(), I(3));
  // Commit is min(leader commit, last new entry).
  EXPECT_EQ(log.committed(), I(3));
}

TEST_F(RaftLogTest, MaybeAppendKeepsLongerMatchingLog) {
  RaftLog log(&storage_, UINT64_MAX);
  // A stale, shorter AppendEntries that matches must not truncate entries after it.
  auto last = log.MaybeAppend(I(0), T(0), I(0), Ents({{1, 1}}));
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, I(1));
  EXPECT_EQ(log.LastIndex(), I(3));
}

TEST_F(RaftLogTest, FindConflictByTerm) {
  RaftLog log(&storage_, UINT64_MAX);
  EXPECT_EQ(log.FindConflictByTerm(I(3), T(5)), std::make_pair(I(3), T(3)));
  EXPECT_EQ(log.FindConflictByTerm(I(3), T(2)), std::make_pair(I(2), T(2)));
  EXPECT_EQ(log.FindConflictByTerm(I(3), T(0)), std::make_pair(I(0), T(0)));
}

TEST_F(RaftLogTest, SliceAcrossStorageAndUnstable) {
  RaftLog log(&storage_, UINT64_MAX);
  log.Append(Ents({{4, 3}, {5, 3}}));
  auto all = log.Slice(I(2), I(6), UINT64_MAX);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].index(), 2u);
  EXPECT_EQ((*all)[3].index(), 5u);
  auto limited = log.Slice(I(2), I(6), 3 * EntrySize(MakeEntry(0, 0)));
  EXPECT_EQ(limited->size(), 3u);
  EXPECT_TRUE(IsUnavailable(log.Slice(I(2), I(7), UINT64_MAX).status()));
}

TEST_F(RaftLogTest, CommittedEntriesHandedOutOnce) {
  RaftLog log(&storage_, UINT64_MAX);
  log.CommitTo(I(2));
  ASSERT_TRUE(log.HasNextCommittedEntries());
  auto ents = log.NextCommittedEntries();
  ASSERT_EQ(ents.size(), 2u);
  log.AcceptReady(I(2));
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.AppliedTo(I(2));
  EXPECT_EQ(log.applied(), I(2));
}

TEST_F(RaftLogTest, CommittedEntriesRespectByteLimit) {
  RaftLog log(&storage_, 1);
  log.CommitTo(I(3));
  EXPECT_EQ(log.NextCommittedEntries().size(), 1u);
}

TEST_F(RaftLogTest, RestoreFromSnapshot) {
  RaftLog log(&storage_, UINT64_MAX);
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(5);
  log.Restore(snap);
  EXPECT_EQ(log.committed(), I(10));
  EXPECT_EQ(log.LastIndex(), I(10));
  EXPECT_EQ(log.FirstIndex(), I(11));
  EXPECT_EQ(log.TermOrZero(I(10)), T(5));
  EXPECT_FALSE(log.HasNextCommittedEntries()) << "nothing to apply over an uninstalled snapshot";
  EXPECT_TRUE(log.HasNextUnstableSnapshot());
}

}  // namespace
}  // namespace micedb::raft
