#include "kv/active_expiry.h"

#include <gtest/gtest.h>

#include <future>

#include <fmt/format.h>

#include "kv/local_backend.h"
#include "kv/value_format.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

Result<CommandResult> Exec(KvBackend& backend, Command cmd) {
  std::promise<Result<CommandResult>> promise;
  auto future = promise.get_future();
  backend.Execute(std::move(cmd), ReadMode::kLinearizable,
                  [&promise](Result<CommandResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Command SetWithExpiry(const std::string& key, int64_t expire_at_ms) {
  Command c;
  c.mutable_set()->set_key(key);
  c.mutable_set()->set_value("v");
  c.mutable_set()->set_expire_at_ms(expire_at_ms);
  return c;
}

TEST(ActiveExpiryTest, DeletesDueKeysOfLedRegionsThroughTheBackendAndLeavesTheRestAlone) {
  storage::MemEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  const int64_t now = clock.NowWallMillis();
  for (const char* k : {"a1", "a2", "m1"}) {
    ASSERT_TRUE(Exec(*backend, SetWithExpiry(k, now + 100)).ok());
  }
  ASSERT_TRUE(Exec(*backend, SetWithExpiry("a3", now + 10'000)).ok());
  // This node leads the region of keys below "m" only.
  std::vector<ActiveExpiry::LedRegion> led = {{1, KeyRange{"", "m"}}};
  ActiveExpiry expiry(
      {.interval_ms = 1000, .batch = 256}, backend.get(), &engine, [&] { return led; }, &clock);
  EXPECT_EQ(expiry.RunOnce(), 0u);  // nothing due yet
  clock.Advance(std::chrono::milliseconds(200));
  EXPECT_EQ(expiry.RunOnce(), 2u);
  // The deletes went through the backend's apply: wait for them with a write behind them.
  ASSERT_TRUE(Exec(*backend, SetWithExpiry("z", 0)).ok());
  EXPECT_FALSE(engine.Get(storage::Cf::kDefault, EncodeRawKey("a1")).ok());
  EXPECT_FALSE(engine.Get(storage::Cf::kDefault, EncodeRawKey("a2")).ok());
  EXPECT_TRUE(engine.Get(storage::Cf::kDefault, EncodeRawKey("a3")).ok());  // not due
  EXPECT_TRUE(engine.Get(storage::Cf::kDefault, EncodeRawKey("m1")).ok());  // not led here
  // Once this node leads nothing, nothing is sent.
  led.clear();
  clock.Advance(std::chrono::seconds(20));
  EXPECT_EQ(expiry.RunOnce(), 0u);
}

TEST(ActiveExpiryTest, APassTakesABatchAndTheNextGoesOn) {
  storage::MemEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  const int64_t now = clock.NowWallMillis();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Exec(*backend, SetWithExpiry("k" + std::to_string(i), now + 1)).ok());
  }
  ActiveExpiry expiry(
      {.interval_ms = 1000, .batch = 2}, backend.get(), &engine,
      [] {
        return std::vector<ActiveExpiry::LedRegion>{{1, KeyRange{}}};
      },
      &clock);
  clock.Advance(std::chrono::milliseconds(10));
  size_t total = 0;
  for (int pass = 0; pass < 5 && total < 5; ++pass) {
    const size_t n = expiry.RunOnce();
    EXPECT_LE(n, 2u);
    total += n;
    ASSERT_TRUE(Exec(*backend, SetWithExpiry("z", 0)).ok());  // let the deletes land
  }
  EXPECT_EQ(total, 5u);
}

// Many regions cost no more than one: a pass examines a bounded number of keys, visiting the
// regions in turn, and a region whose whole walk met no key with a time to live is skipped
// until it is written to again.
TEST(ActiveExpiryTest, APassIsBoundedAndRegionsWithoutExpiriesAreSkipped) {
  storage::MemEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  std::vector<ActiveExpiry::LedRegion> led;
  for (int r = 0; r < 10; ++r) {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(Exec(*backend, SetWithExpiry(fmt::format("r{:02}k{:03}", r, i), 0)).ok());
    }
    led.push_back({static_cast<uint64_t>(r + 1),
                   KeyRange{fmt::format("r{:02}", r), fmt::format("r{:02}", r + 1)}, 1});
  }
  // Region 4 holds one key with a time to live (not due): never skipped.
  const int64_t now = clock.NowWallMillis();
  ASSERT_TRUE(Exec(*backend, SetWithExpiry("r03k050", now + 1'000'000)).ok());
  ActiveExpiry expiry(
      {.interval_ms = 1000, .batch = 256, .examine_per_pass = 250}, backend.get(), &engine,
      [&] { return led; }, &clock);
  size_t total = 0;
  for (int pass = 0; pass < 4; ++pass) {
    EXPECT_EQ(expiry.RunOnce(), 0u);
    EXPECT_LE(expiry.last_examined(), 250u);
    total += expiry.last_examined();
  }
  // Every pass used its whole budget; one more finishes the walks left half done (regions 6
  // and 9 were cut off by the budget) and region 4 again.
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(expiry.RunOnce(), 0u);
  EXPECT_EQ(expiry.last_examined(), 200u);
  // From now on only region 4 is walked.
  EXPECT_EQ(expiry.RunOnce(), 0u);
  EXPECT_EQ(expiry.last_examined(), 100u);
  // A write to region 7 puts it back in the walk.
  led[6].writes = 2;
  expiry.RunOnce();
  EXPECT_EQ(expiry.last_examined(), 200u);
  EXPECT_EQ(expiry.RunOnce(), 0u);
  EXPECT_EQ(expiry.last_examined(), 100u);
}

}  // namespace
}  // namespace micedb::kv
