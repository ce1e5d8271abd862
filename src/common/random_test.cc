#include "common/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

namespace micedb {
namespace {

// Pins the sequence: a change here would stop old failure seeds from replaying.
TEST(RandomTest, GoldenSequenceForSeedZero) {
  Random rnd(0);
  EXPECT_EQ(rnd.Next64(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(rnd.Next64(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(rnd.Next64(), 0x1a5f849d4933e6e0ULL);
  EXPECT_EQ(rnd.seed(), 0u);
}

TEST(RandomTest, SameSeedSameSequence) {
  Random a(12345);
  Random b(12345);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(a.Next64(), b.Next64());
    ASSERT_EQ(a.Uniform(1000), b.Uniform(1000));
    ASSERT_EQ(a.Range(-5, 5), b.Range(-5, 5));
    ASSERT_EQ(a.Bernoulli(0.3), b.Bernoulli(0.3));
  }
  EXPECT_EQ(a.RandomBytes(37), b.RandomBytes(37));
}

TEST(RandomTest, DifferentSeedsDiffer) {
  Random a(1);
  Random b(2);
  int same = 0;
  for (int i = 0; i < 100; ++i) {
    same += a.Next64() == b.Next64();
  }
  EXPECT_EQ(same, 0);
}

TEST(RandomTest, CopyContinuesTheSameSequence) {
  Random a(9);
  a.Next64();
  Random b = a;
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(a.Next64(), b.Next64());
  }
}

TEST(RandomTest, UniformStaysInRangeAndCoversIt) {
  Random rnd(3);
  std::vector<int> hits(10, 0);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rnd.Uniform(10);
    ASSERT_LT(v, 10u);
    ++hits[v];
  }
  for (int h : hits) {
    EXPECT_GT(h, 9000);
    EXPECT_LT(h, 11000);
  }
  EXPECT_EQ(rnd.Uniform(1), 0u);
  EXPECT_EQ(rnd.Uniform(0), 0u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_LT(rnd.Uniform(std::numeric_limits<uint64_t>::max()),
              std::numeric_limits<uint64_t>::max());
  }
}

TEST(RandomTest, RangeIsInclusive) {
  Random rnd(4);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = rnd.Range(-2, 2);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 2);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(rnd.Range(7, 7), 7);
  EXPECT_EQ(rnd.Range(7, 3), 7);
  // The full range works (no overflow in the span).
  const int64_t lo = std::numeric_limits<int64_t>::min();
  const int64_t hi = std::numeric_limits<int64_t>::max();
  bool negative = false, positive = false;
  for (int i = 0; i < 100; ++i) {
    const int64_t v = rnd.Range(lo, hi);
    negative |= v < 0;
    positive |= v > 0;
  }
  EXPECT_TRUE(negative && positive);
  for (int i = 0; i < 100; ++i) {
    const int64_t v = rnd.Range(hi - 1, hi);
    ASSERT_TRUE(v == hi - 1 || v == hi);
  }
}

TEST(RandomTest, OneInAndBernoulliFrequencies) {
  Random rnd(5);
  int one_in_4 = 0, p30 = 0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    one_in_4 += rnd.OneIn(4);
    p30 += rnd.Bernoulli(0.3);
  }
  EXPECT_NEAR(one_in_4, kN * 0.25, kN * 0.01);
  EXPECT_NEAR(p30, kN * 0.3, kN * 0.01);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(rnd.OneIn(1));
    ASSERT_FALSE(rnd.Bernoulli(0));
    ASSERT_TRUE(rnd.Bernoulli(1));
    ASSERT_FALSE(rnd.Bernoulli(-1));
  }
}

TEST(RandomTest, NextDoubleInUnitInterval) {
  Random rnd(6);
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double d = rnd.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
    sum += d;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
}

TEST(RandomTest, RandomBytesLengthsAndContent) {
  Random rnd(8);
  for (size_t n : {0, 1, 7, 8, 9, 100}) {
    EXPECT_EQ(rnd.RandomBytes(n).size(), n);
  }
  const std::string big = rnd.RandomBytes(4096);
  std::set<char> distinct(big.begin(), big.end());
  EXPECT_GT(distinct.size(), 200u);
}

TEST(RandomTest, ShuffleIsAPermutationAndDeterministic) {
  std::vector<int> a(50);
  std::iota(a.begin(), a.end(), 0);
  std::vector<int> b = a;
  Random ra(10), rb(10);
  ra.Shuffle(a.begin(), a.end());
  rb.Shuffle(b.begin(), b.end());
  EXPECT_EQ(a, b);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> want(50);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(sorted, want);
  EXPECT_NE(a, want);
}

TEST(RandomTest, ForkGivesDeterministicIndependentStreams) {
  Random a(11), b(11);
  Random fa = a.Fork();
  Random fb = b.Fork();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(fa.Next64(), fb.Next64());
  }
  int same = 0;
  for (int i = 0; i < 100; ++i) {
    same += a.Next64() == fa.Next64();
  }
  EXPECT_EQ(same, 0);
}

TEST(RandomTest, WorksAsStandardBitGenerator) {
  Random rnd(12);
  std::vector<int> v = {1, 2, 3, 4};
  std::shuffle(v.begin(), v.end(), rnd);  // compiles and runs
  EXPECT_EQ(v.size(), 4u);
}

}  // namespace
}  // namespace micedb
