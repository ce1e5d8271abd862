// The load generator's arithmetic: histogram buckets and percentiles, the Zipf generator and
// key scramble, workload mixes and key names, RESP encoding and reply framing, aborts in the
// window, the transactional workloads' key pairs and bank transfers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "common/random.h"
#include "histogram.h"
#include "resp_protocol.h"
#include "stats.h"
#include "workload.h"
#include "zipf.h"

namespace micedb::bench {
namespace {

TEST(Histogram, BucketsTileTheRangeWithBoundedWidth) {
  // Consecutive buckets are contiguous, and each is at most 1/128 of its lower bound wide.
  for (size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    ASSERT_EQ(Histogram::BucketHigh(i) + 1, Histogram::BucketLow(i + 1)) << i;
    const uint64_t lo = Histogram::BucketLow(i);
    const uint64_t width = Histogram::BucketHigh(i) - lo + 1;
    if (lo >= Histogram::kSubCount) {
      ASSERT_LE(width * Histogram::kSubCount, lo) << i;
    } else {
      ASSERT_EQ(width, 1u);
    }
  }
  EXPECT_EQ(Histogram::BucketLow(0), 0u);
  EXPECT_EQ(Histogram::BucketHigh(Histogram::kBuckets - 1), UINT64_MAX);
}

TEST(Histogram, EveryValueLandsInItsBucket) {
  Rng rng(7);
  std::vector<uint64_t> values = {0, 1, 127, 128, 129, 255, 256, 1000, 1023, 1024, UINT64_MAX};
  for (int i = 0; i < 100000; ++i) {
    values.push_back(rng.Next64() >> rng.Uniform(64));
  }
  for (uint64_t v : values) {
    const size_t b = Histogram::BucketOf(v);
    ASSERT_LT(b, Histogram::kBuckets);
    ASSERT_LE(Histogram::BucketLow(b), v);
    ASSERT_GE(Histogram::BucketHigh(b), v);
  }
}

TEST(Histogram, EmptyAndSingle) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  h.Record(123456);
  for (double p : {0.0, 50.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(h.Percentile(p), 123456u) << p;  // clamped to [min, max]
  }
  EXPECT_DOUBLE_EQ(h.mean(), 123456.0);
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) {
    h.Record(v);
  }
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(99.9), 100u);  // rank ceil(99.9) = 100
  EXPECT_EQ(h.Percentile(1), 1u);
  EXPECT_EQ(h.Percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

// Percentiles of a known distribution land within the bucket error (0.79%, never below).
TEST(Histogram, PercentilesWithinRelativeError) {
  Histogram h;
  const uint64_t n = 1000000;
  for (uint64_t v = 1; v <= n; ++v) {
    h.Record(v * 1000);  // 1 us .. 1 s in ns
  }
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99}) {
    const double exact = std::ceil(p / 100.0 * n) * 1000;
    const auto got = static_cast<double>(h.Percentile(p));
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(got, exact * (1 + 1.0 / Histogram::kSubCount)) << p;
  }
  EXPECT_EQ(h.Percentile(100), n * 1000);
  EXPECT_EQ(h.min(), 1000u);
}

TEST(Histogram, SkewedTailIsFound) {
  // 99% fast (100 us), 1% slow (50 ms): p50 and p99 are fast, p99.9 is slow.
  Histogram h;
  h.RecordN(100000, 9900);
  h.RecordN(50000000, 100);
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 100000, 1000);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99)), 100000, 1000);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99.9)), 50000000, 500000);
}

TEST(Histogram, MergeEqualsRecordingEverything) {
  Histogram a, b, both;
  Rng rng(3);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng.Uniform(10000000);
    (i % 2 ? a : b).Record(v);
    both.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), both.min());
  EXPECT_EQ(a.max(), both.max());
  for (double p : {1.0, 50.0, 99.0, 99.9}) {
    EXPECT_EQ(a.Percentile(p), both.Percentile(p));
  }
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.Percentile(50), 0u);
}

TEST(Zipf, ProbabilitiesFollowThePowerLaw) {
  ZipfGenerator z(1000, 0.99);
  double sum = 0;
  for (uint64_t k = 0; k < 1000; ++k) {
    sum += z.Probability(k);
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  for (uint64_t k : {1u, 9u, 99u, 999u}) {
    EXPECT_NEAR(z.Probability(k) / z.Probability(0), std::pow(k + 1.0, -0.99), 1e-9) << k;
  }
  EXPECT_EQ(z.Probability(1000), 0.0);
}

TEST(Zipf, SampleInvertsTheCdf) {
  ZipfGenerator z(100, 1.2);
  EXPECT_EQ(z.Sample(0.0), 0u);
  EXPECT_EQ(z.Sample(z.Probability(0) * 0.999), 0u);
  EXPECT_EQ(z.Sample(z.Probability(0) * 1.001), 1u);
  EXPECT_EQ(z.Sample(std::nextafter(1.0, 0.0)), 99u);
}

// Sampled frequencies match the exact probabilities (chi-square, 49 degrees of freedom; the
// bound is far above the 99.99th percentile of the distribution, about 96, and the seed is
// fixed so the test is deterministic).
TEST(Zipf, SampledFrequenciesMatch) {
  const uint64_t n = 50;
  ZipfGenerator z(n, 0.99);
  Rng rng(42);
  std::vector<uint64_t> counts(n, 0);
  const int draws = 1000000;
  for (int i = 0; i < draws; ++i) {
    const uint64_t k = z.Sample(rng.NextDouble());
    ASSERT_LT(k, n);
    ++counts[k];
  }
  double chi2 = 0;
  for (uint64_t k = 0; k < n; ++k) {
    const double expected = z.Probability(k) * draws;
    chi2 += (counts[k] - expected) * (counts[k] - expected) / expected;
  }
  EXPECT_LT(chi2, 100.0);
  // The hottest key of 50 gets about 22% of the draws at theta 0.99.
  EXPECT_NEAR(static_cast<double>(counts[0]) / draws, z.Probability(0), 0.003);
}

TEST(Zipf, ThetaZeroIsUniform) {
  ZipfGenerator z(10, 0.0);
  for (uint64_t k = 0; k < 10; ++k) {
    EXPECT_NEAR(z.Probability(k), 0.1, 1e-12);
  }
  EXPECT_EQ(z.Sample(0.05), 0u);
  EXPECT_EQ(z.Sample(0.95), 9u);
}

TEST(Zipf, MillionKeysIsQuickAndSkewed) {
  ZipfGenerator z(1000000, 0.99);
  EXPECT_EQ(z.n(), 1000000u);
  // The top 1% of ranks take well over half of the draws at this skew.
  double top = 0;
  for (uint64_t k = 0; k < 10000; ++k) {
    top += z.Probability(k);
  }
  EXPECT_GT(top, 0.6);
  EXPECT_LT(top, 0.8);
}

TEST(Scramble, IsABijection) {
  for (uint64_t n : {1u, 2u, 3u, 10u, 1000u, 1024u, 99991u}) {
    Scramble s(n);
    std::vector<bool> seen(n, false);
    for (uint64_t r = 0; r < n; ++r) {
      const uint64_t k = s(r);
      ASSERT_LT(k, n);
      ASSERT_FALSE(seen[k]) << "n=" << n << " r=" << r;
      seen[k] = true;
    }
  }
  // Neighbouring ranks do not map to neighbouring keys.
  Scramble s(1000000);
  EXPECT_GT(std::max(s(0), s(1)) - std::min(s(0), s(1)), 1000u);
}

TEST(Workload, NamesAndMixes) {
  EXPECT_EQ(ReadFractionOf("write"), 0.0);
  EXPECT_EQ(ReadFractionOf("read"), 1.0);
  EXPECT_EQ(ReadFractionOf("rw50"), 0.5);
  EXPECT_EQ(ReadFractionOf("read95"), 0.95);
  EXPECT_FALSE(ReadFractionOf("scan").has_value());

  WorkloadSpec spec;
  spec.read_fraction = 0.95;
  spec.keys = 1000;
  Workload wl(spec);
  Rng rng(1);
  int reads = 0;
  std::set<uint64_t> keys;
  for (int i = 0; i < 100000; ++i) {
    reads += wl.NextOp(rng) == OpType::kRead;
    const uint64_t k = wl.NextKey(rng);
    ASSERT_LT(k, 1000u);
    keys.insert(k);
  }
  EXPECT_NEAR(reads / 100000.0, 0.95, 0.005);
  EXPECT_EQ(keys.size(), 1000u);  // uniform over 1000 keys: every key drawn
}

TEST(Workload, ZipfKeysStayInRangeAndConcentrate) {
  WorkloadSpec spec;
  spec.keys = 1000;
  spec.dist = KeyDist::kZipf;
  Workload wl(spec);
  Rng rng(5);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < 100000; ++i) {
    const uint64_t k = wl.NextKey(rng);
    ASSERT_LT(k, 1000u);
    ++counts[k];
  }
  int hottest = 0;
  for (auto& [k, c] : counts) {
    hottest = std::max(hottest, c);
  }
  EXPECT_GT(hottest, 10000);  // rank 0 has ~13% of the mass at n = 1000
}

TEST(Workload, KeysAndValues) {
  EXPECT_EQ(KeyName("bench:", 0), "bench:0000000000");
  EXPECT_EQ(KeyName("k", 1234567890), "k1234567890");
  WorkloadSpec spec;
  spec.value_size = 100;
  Workload wl(spec);
  Rng rng(9);
  const std::string_view a = wl.NextValue(rng);
  const std::string_view b = wl.NextValue(rng);
  EXPECT_EQ(a.size(), 100u);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_NE(a, b);
}

TEST(Resp, EncodesCommands) {
  std::string out;
  AppendCommand(out, {"SET", "k", "hello"});
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n");
  out.clear();
  AppendArrayHeader(out, 1);
  AppendBulk(out, "");
  EXPECT_EQ(out, "*1\r\n$0\r\n\r\n");
}

TEST(Resp, ParsesEachReplyKind) {
  struct Case {
    std::string bytes;
    ReplyKind kind;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"+OK\r\n", ReplyKind::kStatus, "OK"},
      {"-ERR boom\r\n", ReplyKind::kError, "ERR boom"},
      {":42\r\n", ReplyKind::kInteger, "42"},
      {"$5\r\nhe\r\no\r\n", ReplyKind::kBulk, "he\r\no"},
      {"$0\r\n\r\n", ReplyKind::kBulk, ""},
      {"$-1\r\n", ReplyKind::kNil, ""},
      {"*-1\r\n", ReplyKind::kNil, ""},
      {"_\r\n", ReplyKind::kNil, ""},
      {"*2\r\n$1\r\na\r\n*1\r\n:1\r\n", ReplyKind::kArray, ""},
      {"%1\r\n+a\r\n:1\r\n", ReplyKind::kOther, ""},
      {"!3\r\nbad\r\n", ReplyKind::kError, "bad"},
  };
  for (const auto& c : cases) {
    const std::string in = c.bytes + "+NEXT\r\n";
    size_t used = 0;
    Reply r;
    ASSERT_EQ(ParseReply(in, &used, &r), ParseResult::kComplete) << c.bytes;
    EXPECT_EQ(used, c.bytes.size()) << c.bytes;
    EXPECT_EQ(r.kind, c.kind) << c.bytes;
    EXPECT_EQ(std::string(r.text), c.text) << c.bytes;
    // Every strict prefix is incomplete, never bad and never consumed.
    for (size_t cut = 0; cut < c.bytes.size(); ++cut) {
      size_t u = 99;
      EXPECT_EQ(ParseReply(std::string_view(c.bytes).substr(0, cut), &u, &r),
                ParseResult::kIncomplete)
          << c.bytes << " cut " << cut;
      EXPECT_EQ(u, 99u);
    }
  }
}

TEST(Resp, RejectsGarbage) {
  size_t used = 0;
  Reply r;
  EXPECT_EQ(ParseReply("?x\r\n", &used, &r), ParseResult::kBad);
  EXPECT_EQ(ParseReply(":12a\r\n", &used, &r), ParseResult::kBad);
  EXPECT_EQ(ParseReply("$3\r\nabcd\r\n", &used, &r), ParseResult::kBad);
  EXPECT_EQ(ParseReply("$-2\r\n", &used, &r), ParseResult::kBad);
  std::string deep;
  for (int i = 0; i < 100; ++i) {
    deep += "*1\r\n";
  }
  deep += ":1\r\n";
  EXPECT_EQ(ParseReply(deep, &used, &r), ParseResult::kBad);
}

TEST(Stats, AbortsCountInsideTheWindowAndMerge) {
  Window w{1000, 2000};
  Stats a, b;
  a.Abort(w, 1000, 1500);
  a.Abort(w, 900, 1500);   // began in the warm-up
  a.Abort(w, 1500, 2500);  // ended after the window
  b.Abort(w, 1999, 2000);
  a.Done(w, OpType::kWrite, 1100, 1200);
  a.Merge(b);
  EXPECT_EQ(a.aborts, 2u);
  EXPECT_EQ(a.ops, 1u);
  EXPECT_EQ(a.errors, 0u);
}

TEST(Workload, TwoKeysAreDistinctAndInRange) {
  for (KeyDist dist : {KeyDist::kUniform, KeyDist::kZipf}) {
    WorkloadSpec spec;
    spec.keys = 1000;
    spec.dist = dist;
    Workload wl(spec, 7);
    Rng rng(3);
    for (int i = 0; i < 10000; ++i) {
      auto [a, b] = TwoKeys(wl, rng, 500, 2);  // only two keys to choose from
      EXPECT_NE(a, b);
      EXPECT_GE(std::min(a, b), 500u);
      EXPECT_LE(std::max(a, b), 501u);
      auto [x, y] = TwoKeys(wl, rng, 0, 400);
      EXPECT_NE(x, y);
      EXPECT_LT(std::max(x, y), 400u);
    }
  }
}

TEST(Workload, BankTransfersKeepTheTotalAndNoBalanceBelowZero) {
  Rng rng(11);
  int64_t from = 250, to = 0;
  bool moved_most = false;
  for (int i = 0; i < 10000; ++i) {
    auto [f, t] = BankTransfer(from, to, 100, rng);
    EXPECT_EQ(f + t, 250);
    EXPECT_GE(f, 0);
    EXPECT_LE(from - f, 100);
    EXPECT_TRUE(from == 0 ? f == 0 : f < from);  // something moves unless the account is empty
    moved_most |= from > 0 && from - f == std::min<int64_t>(from, 100);
    // Turn around now and then, so both sides empty and fill.
    if (i % 7 == 0) {
      std::tie(from, to) = std::pair{t, f};
    } else {
      std::tie(from, to) = std::pair{f, t};
    }
  }
  EXPECT_TRUE(moved_most);
  EXPECT_EQ(BankTransfer(0, 5, 100, rng), (std::pair<int64_t, int64_t>{0, 5}));
}

}  // namespace
}  // namespace micedb::bench
