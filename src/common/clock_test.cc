#include "common/clock.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>
#include <vector>

namespace micedb {
namespace {

using namespace std::chrono_literals;

TEST(ClockTest, SystemClockMovesForwardAndWallIsPlausible) {
  Clock* clock = SystemClock::Get();
  EXPECT_EQ(clock, SystemClock::Get());
  const auto a = clock->NowMonotonic();
  const auto b = clock->NowMonotonic();
  EXPECT_LE(a, b);
  // After 2020-01-01 and before 2200-01-01, in microseconds.
  EXPECT_GT(clock->NowWallMicros(), 1577836800LL * 1000000);
  EXPECT_LT(clock->NowWallMicros(), 7258118400LL * 1000000);
  EXPECT_LE(std::abs(clock->NowWallMillis() - clock->NowWallMicros() / 1000), 1000);
}

TEST(ClockTest, ManualClockStandsStillUntilAdvanced) {
  ManualClock clock(5s, std::chrono::microseconds(1'000'000'000'000'000));
  EXPECT_EQ(clock.NowMonotonic(), 5s);
  EXPECT_EQ(clock.NowWallMicros(), 1'000'000'000'000'000);
  EXPECT_EQ(clock.NowMonotonic(), 5s);

  clock.Advance(1500ms);
  EXPECT_EQ(clock.NowMonotonic(), 6500ms);
  EXPECT_EQ(clock.NowWallMicros(), 1'000'000'000'000'000 + 1'500'000);
  EXPECT_EQ(clock.NowWallMillis(), 1'000'000'000'000 + 1'500);
}

TEST(ClockTest, ManualClockSmallStepsAddUp) {
  ManualClock clock;
  const int64_t start = clock.NowWallMicros();
  for (int i = 0; i < 1000; ++i) {
    clock.Advance(1ns);
  }
  EXPECT_EQ(clock.NowMonotonic(), 1000ns);
  EXPECT_EQ(clock.NowWallMicros(), start + 1);
}

TEST(ClockTest, ManualClockWallCanJumpWithoutMovingMonotonic) {
  ManualClock clock;
  clock.Advance(10s);
  clock.SetWall(std::chrono::microseconds(42));
  EXPECT_EQ(clock.NowWallMicros(), 42);
  EXPECT_EQ(clock.NowMonotonic(), 10s);
  clock.Advance(1s);
  EXPECT_EQ(clock.NowWallMicros(), 42 + 1'000'000);
  EXPECT_EQ(clock.NowMonotonic(), 11s);
}

TEST(ClockTest, ManualClockDefaultWallStart) {
  ManualClock clock;
  EXPECT_EQ(clock.NowWall(), ManualClock::kDefaultWallStart);
  EXPECT_EQ(clock.NowMonotonic(), 0ns);
}

TEST(ClockTest, ManualClockIsThreadSafe) {
  ManualClock clock;
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&clock] {
      std::chrono::nanoseconds last(0);
      for (int i = 0; i < 10000; ++i) {
        clock.Advance(1us);
        const auto now = clock.NowMonotonic();
        EXPECT_GE(now, last);
        last = now;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(clock.NowMonotonic(), 40000us);
}

TEST(ClockTest, UsableThroughInterface) {
  ManualClock manual;
  Clock& clock = manual;
  const auto t0 = clock.NowMonotonic();
  manual.Advance(3ms);
  EXPECT_EQ(clock.NowMonotonic() - t0, 3ms);
}

TEST(ClockTest, ASkewedClockHasReachedTheTimeAtBaseTimeAt) {
  // The store simulation polls a node when its clock reaches the next tick; a base time a
  // nanosecond early made it poll at the same instant forever (store_sim --seed 3000).
  for (double rate : {0.85, 0.944, 0.967, 1.001, 1.041, 1.054, 1.15}) {
    ManualClock base(1s);
    SkewedClock clock(&base, rate);
    base.Advance(std::chrono::nanoseconds(123'456'789));
    clock.SetRate(rate);  // a fresh anchor away from zero
    for (int64_t ms = 1200; ms < 9000; ms += 7) {
      const auto t = std::chrono::milliseconds(ms);
      const auto at = clock.BaseTimeAt(t);
      base.Advance(at - base.NowMonotonic());
      ASSERT_GE(clock.NowMonotonic(), t) << "rate " << rate << " t " << ms;
      ASSERT_LT(clock.NowMonotonic() - t, std::chrono::nanoseconds(3)) << "rate " << rate;
    }
  }
}

TEST(ClockTest, SkewedClockRunsAtItsRateAndFreezes) {
  ManualClock base(1s);
  SkewedClock slow(&base, 0.85);
  const auto wall0 = slow.NowWall();
  EXPECT_EQ(wall0, base.NowWall());
  EXPECT_EQ(slow.NowMonotonic(), 1s);
  base.Advance(100ms);
  EXPECT_EQ(slow.NowMonotonic(), 1085ms);
  EXPECT_EQ(slow.NowWall() - wall0, 85ms) << "one oscillator drives both";
  EXPECT_EQ(slow.BaseTimeAt(1170ms), 1200ms);
  slow.Freeze();
  base.Advance(1s);
  EXPECT_EQ(slow.NowMonotonic(), 1085ms) << "frozen";
  EXPECT_EQ(slow.NowWall() - wall0, 85ms);
  slow.Thaw(/*host_sets_wall=*/true);
  EXPECT_EQ(slow.NowMonotonic(), 1085ms);
  EXPECT_EQ(slow.NowWall() - wall0, 1085ms) << "the host set the time";
  slow.SetRate(2);
  base.Advance(10ms);
  EXPECT_EQ(slow.NowMonotonic(), 1105ms);
}

}  // namespace
}  // namespace micedb
