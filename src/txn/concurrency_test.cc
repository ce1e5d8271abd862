// The store's admission of one-phase commits (txn/concurrency.h, docs/transactions.md §3a).
#include "txn/concurrency.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace micedb::txn {
namespace {

using Refusal = ConcurrencyManager::Refusal;

class ConcurrencyTest : public ::testing::Test {
 protected:
  // The TSO answers when the test says so.
  ConcurrencyManager cm_{
      [this](std::function<void(Result<uint64_t>)> done) { fetches_.push_back(std::move(done)); }};
  std::vector<std::function<void(Result<uint64_t>)>> fetches_;

  void Sync(uint64_t region, uint64_t term, uint64_t version, uint64_t ts) {
    uint64_t token = 0;
    ASSERT_EQ(cm_.TryLock(region, term, version, {"x"}, ~0ull, &token), Refusal::kNotSynced);
    ASSERT_FALSE(fetches_.empty());
    auto f = std::move(fetches_.back());
    fetches_.clear();
    f(ts);
  }
};

TEST_F(ConcurrencyTest, ALeadershipIsUsableOnlyOnceATimestampFetchedInItIsFoldedIn) {
  uint64_t token = 0;
  EXPECT_EQ(cm_.TryLock(1, 5, 1, {"a"}, 100, &token), Refusal::kNotSynced);
  ASSERT_EQ(fetches_.size(), 1u);
  // Asked again while the fetch is out: no second fetch.
  EXPECT_EQ(cm_.TryLock(1, 5, 1, {"a"}, 100, &token), Refusal::kNotSynced);
  EXPECT_EQ(fetches_.size(), 1u);
  fetches_[0](uint64_t{90});
  fetches_.clear();
  EXPECT_EQ(cm_.max_ts(), 90u);
  EXPECT_EQ(cm_.TryLock(1, 5, 1, {"a"}, 100, &token), Refusal::kNone);
  cm_.Unlock(token);
  // A new term, or a new epoch version (a split, a merge), needs a new fetch; a failed fetch
  // leaves it unsynced and the next attempt asks again.
  EXPECT_EQ(cm_.TryLock(1, 6, 1, {"a"}, 100, &token), Refusal::kNotSynced);
  ASSERT_EQ(fetches_.size(), 1u);
  fetches_[0](Status::Unavailable("no coordinator"));
  fetches_.clear();
  EXPECT_EQ(cm_.TryLock(1, 6, 1, {"a"}, 100, &token), Refusal::kNotSynced);
  EXPECT_EQ(fetches_.size(), 1u);
  fetches_.clear();
  EXPECT_EQ(cm_.TryLock(1, 5, 2, {"a"}, 100, &token), Refusal::kNotSynced);
  // Another region of the store is not synced by region 1's fetch.
  EXPECT_EQ(cm_.TryLock(2, 5, 1, {"a"}, 100, &token), Refusal::kNotSynced);
}

TEST_F(ConcurrencyTest, AReadAtOrAboveCommitTsMakesItFallBack) {
  Sync(1, 1, 1, 50);
  EXPECT_TRUE(cm_.ReadKey("k", 120));  // no lock: served, and max_ts is 120
  uint64_t token = 0;
  EXPECT_EQ(cm_.TryLock(1, 1, 1, {"k"}, 120, &token), Refusal::kReadAbove);
  EXPECT_EQ(cm_.TryLock(1, 1, 1, {"other"}, 110, &token), Refusal::kReadAbove);  // store-wide
  EXPECT_EQ(cm_.TryLock(1, 1, 1, {"k"}, 121, &token), Refusal::kNone);
  EXPECT_EQ(cm_.memory_locks(), 1u);
}

TEST_F(ConcurrencyTest, AReadOfAKeyOnItsWayWaitsUntilItIsUnlocked) {
  Sync(1, 1, 1, 50);
  uint64_t token = 0;
  ASSERT_EQ(cm_.TryLock(1, 1, 1, {"b", "d"}, 100, &token), Refusal::kNone);
  EXPECT_TRUE(cm_.ReadKey("b", 99));    // below commit_ts: the commit cannot change it
  EXPECT_FALSE(cm_.ReadKey("b", 100));  // at or above: must see it, so waits
  EXPECT_FALSE(cm_.ReadKey("d", 500));
  EXPECT_TRUE(cm_.ReadKey("c", 500));
  EXPECT_FALSE(cm_.ReadRange("a", "c", 100));
  EXPECT_TRUE(cm_.ReadRange("c", "d", 500));  // end excluded
  EXPECT_FALSE(cm_.ReadRange("c", "", 500));  // no end
  EXPECT_TRUE(cm_.ReadRange("a", "", 99));
  // The same key again before the first is through: the second falls back.
  uint64_t other = 0;
  EXPECT_EQ(cm_.TryLock(1, 1, 1, {"d"}, 600, &other), Refusal::kKeyBusy);
  cm_.Unlock(token);
  EXPECT_EQ(cm_.memory_locks(), 0u);
  EXPECT_TRUE(cm_.ReadKey("b", 500));
  // Every refused read raised max_ts all the same.
  EXPECT_EQ(cm_.max_ts(), 500u);
}

TEST(ConcurrencyNoTsoTest, WithoutATsoNothingIsAdmitted) {
  ConcurrencyManager cm(nullptr);
  uint64_t token = 0;
  EXPECT_EQ(cm.TryLock(1, 1, 1, {"a"}, 100, &token), Refusal::kNotSynced);
  EXPECT_TRUE(cm.ReadKey("a", 1000));
}

TEST_F(ConcurrencyTest, AsyncAdmissionComputesMinCommitTsAboveEveryReadServed) {
  uint64_t token = 0;
  uint64_t min_ts = 0;
  EXPECT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 10, 0, &min_ts, &token), Refusal::kNotSynced);
  ASSERT_EQ(fetches_.size(), 1u);
  fetches_[0](uint64_t{50});
  fetches_.clear();
  // Above max_ts (the fetch): 51.
  ASSERT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 10, 0, &min_ts, &token), Refusal::kNone);
  EXPECT_EQ(min_ts, 51u);
  // A read at or above it waits on the memory lock; one below passes (the commit will be
  // above it).
  EXPECT_TRUE(cm_.ReadKey("k", 50));
  EXPECT_FALSE(cm_.ReadKey("k", 51));
  // The same key again while the first is on its way: falls back.
  uint64_t other = 0;
  uint64_t other_min = 0;
  EXPECT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 10, 0, &other_min, &other), Refusal::kKeyBusy);
  cm_.Unlock(token);
  EXPECT_TRUE(cm_.ReadKey("k", 200));  // max_ts is 200 now
  // Later start_ts than every read: start_ts + 1; otherwise max_ts + 1.
  ASSERT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 300, 0, &min_ts, &token), Refusal::kNone);
  EXPECT_EQ(min_ts, 301u);
  cm_.Unlock(token);
  ASSERT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 100, 0, &min_ts, &token), Refusal::kNone);
  EXPECT_EQ(min_ts, 201u);
  cm_.Unlock(token);
  EXPECT_EQ(cm_.memory_locks(), 0u);
}

TEST_F(ConcurrencyTest, AsyncAdmissionRefusesAMinCommitTsPastTheClientsBound) {
  uint64_t token = 0;
  uint64_t min_ts = 0;
  EXPECT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 10, 0, &min_ts, &token), Refusal::kNotSynced);
  fetches_[0](uint64_t{50});
  fetches_.clear();
  // A read far ahead of the TSO raised max_ts: a commit_ts above it would hide the commit
  // from transactions started after it was acknowledged.
  EXPECT_TRUE(cm_.ReadKey("other", 5000));
  EXPECT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 100, 2000, &min_ts, &token), Refusal::kReadAbove);
  EXPECT_EQ(cm_.memory_locks(), 0u);
  // Within the bound (exactly at it too), admitted.
  ASSERT_EQ(cm_.TryLockAsync(1, 1, 1, {"k"}, 100, 5001, &min_ts, &token), Refusal::kNone);
  EXPECT_EQ(min_ts, 5001u);
  cm_.Unlock(token);
}

}  // namespace
}  // namespace micedb::txn
