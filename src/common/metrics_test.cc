#include "common/metrics_registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace micedb {
namespace {

TEST(MetricsTest, CounterAndGauge) {
  Counter c;
  c.Inc();
  c.Add(41);
  EXPECT_EQ(c.value(), 42u);
  Gauge g;
  g.Set(10);
  g.Add(2.5);
  g.Sub(0.5);
  g.Inc();
  g.Dec();
  g.Dec();
  EXPECT_DOUBLE_EQ(g.value(), 11);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithUpperBoundsInclusive) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 6.0, -3.0}) {
    h.Observe(v);
  }
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  const Histogram::Snapshot s = h.Read();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 3u);  // -3, 0.5, 1.0
  EXPECT_EQ(s.cumulative[1], 5u);  // + 1.5, 2.0
  EXPECT_EQ(s.cumulative[2], 7u);  // + 4.0, 5.0
  EXPECT_EQ(s.cumulative[3], 9u);  // + 6.0, NaN
  EXPECT_EQ(s.count, 9u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
  const auto d = DefaultLatencyBuckets();
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
}

TEST(MetricsTest, RenderMatchesPrometheusTextFormat) {
  Registry r;
  auto requests = r.GetCounter("micedb_requests_total", "Requests served.", {{"kind", "get"}});
  ASSERT_TRUE(requests.ok());
  (*requests)->Add(3);
  auto puts = r.GetCounter("micedb_requests_total", "ignored", {{"kind", "put"}});
  ASSERT_TRUE(puts.ok());
  (*puts)->Inc();
  auto temp = r.GetGauge("micedb_queue_depth", "Items waiting.\nSecond line \\ here.");
  ASSERT_TRUE(temp.ok());
  (*temp)->Set(2.5);
  auto lat = r.GetHistogram("micedb_latency_seconds", "Request latency.", {0.1, 1, 2.5},
                            {{"op", "read"}, {"node", "n\"1\\"}});
  ASSERT_TRUE(lat.ok());
  for (double v : {0.05, 0.1, 0.7, 3.0}) {
    (*lat)->Observe(v);
  }

  const std::string want =
      "# HELP micedb_latency_seconds Request latency.\n"
      "# TYPE micedb_latency_seconds histogram\n"
      "micedb_latency_seconds_bucket{node=\"n\\\"1\\\\\",op=\"read\",le=\"0.1\"} 2\n"
      "micedb_latency_seconds_bucket{node=\"n\\\"1\\\\\",op=\"read\",le=\"1\"} 3\n"
      "micedb_latency_seconds_bucket{node=\"n\\\"1\\\\\",op=\"read\",le=\"2.5\"} 3\n"
      "micedb_latency_seconds_bucket{node=\"n\\\"1\\\\\",op=\"read\",le=\"+Inf\"} 4\n"
      "micedb_latency_seconds_sum{node=\"n\\\"1\\\\\",op=\"read\"} 3.85\n"
      "micedb_latency_seconds_count{node=\"n\\\"1\\\\\",op=\"read\"} 4\n"
      "# HELP micedb_queue_depth Items waiting.\\nSecond line \\\\ here.\n"
      "# TYPE micedb_queue_depth gauge\n"
      "micedb_queue_depth 2.5\n"
      "# HELP micedb_requests_total Requests served.\n"
      "# TYPE micedb_requests_total counter\n"
      "micedb_requests_total{kind=\"get\"} 3\n"
      "micedb_requests_total{kind=\"put\"} 1\n";
  EXPECT_EQ(r.Render(), want);
}

TEST(MetricsTest, HistogramWithoutLabelsAndSpecialValues) {
  Registry r;
  auto h = r.GetHistogram("h", "", {1});
  ASSERT_TRUE(h.ok());
  auto g = r.GetGauge("g", "");
  ASSERT_TRUE(g.ok());
  (*g)->Set(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(r.Render(),
            "# HELP g \n"
            "# TYPE g gauge\n"
            "g -Inf\n"
            "# HELP h \n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(MetricsTest, SameNameAndLabelsGiveTheSameInstrument) {
  Registry r;
  auto a = r.GetCounter("c_total", "help", {{"x", "1"}, {"y", "2"}});
  auto b = r.GetCounter("c_total", "other help", {{"y", "2"}, {"x", "1"}});
  auto c = r.GetCounter("c_total", "help", {{"x", "2"}, {"y", "2"}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  auto h1 = r.GetHistogram("h", "", {1, 2});
  auto h2 = r.GetHistogram("h", "", {1, 2});
  ASSERT_TRUE(h1.ok() && h2.ok());
  EXPECT_EQ(*h1, *h2);
}

TEST(MetricsTest, ConflictsAndBadNamesAreErrors) {
  Registry r;
  ASSERT_TRUE(r.GetCounter("m", "").ok());
  EXPECT_EQ(r.GetGauge("m", "").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(r.GetHistogram("m", "", {1}).status().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(r.GetHistogram("h", "", {1, 2}).ok());
  EXPECT_EQ(r.GetHistogram("h", "", {1, 3}).status().code(), StatusCode::kAlreadyExists);

  EXPECT_TRUE(r.GetCounter("", "").status().IsInvalidArgument());
  EXPECT_TRUE(r.GetCounter("1abc", "").status().IsInvalidArgument());
  EXPECT_TRUE(r.GetCounter("a-b", "").status().IsInvalidArgument());
  EXPECT_TRUE(r.GetCounter("ok:name_1", "").ok());
  EXPECT_TRUE(r.GetCounter("c", "", {{"bad-label", "v"}}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetCounter("c", "", {{"__reserved", "v"}}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetCounter("c", "", {{"a", "1"}, {"a", "2"}}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetHistogram("h2", "", {1}, {{"le", "1"}}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetHistogram("h3", "", {2, 1}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetHistogram("h4", "", {1, 1}).status().IsInvalidArgument());
  EXPECT_TRUE(r.GetHistogram("h5", "", {1, std::numeric_limits<double>::infinity()})
                  .status()
                  .IsInvalidArgument());
  // Failed registrations leave nothing behind.
  EXPECT_EQ(r.Render().find("h3"), std::string::npos);
}

TEST(MetricsTest, ConcurrentUpdatesAndRegistration) {
  Registry r;
  constexpr int kThreads = 4;
  constexpr int kIters = 5000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < kIters; ++i) {
        auto c = r.GetCounter("ops_total", "");
        auto h = r.GetHistogram("sizes", "", {10, 100});
        auto g = r.GetGauge("level", "");
        ASSERT_TRUE(c.ok() && h.ok() && g.ok());
        (*c)->Inc();
        (*h)->Observe(i % 200);
        (*g)->Add(1);
        if (i % 1000 == 0) {
          EXPECT_FALSE(r.Render().empty());
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ((*r.GetCounter("ops_total", ""))->value(), uint64_t{kThreads} * kIters);
  EXPECT_DOUBLE_EQ((*r.GetGauge("level", ""))->value(), kThreads * kIters);
  EXPECT_EQ((*r.GetHistogram("sizes", "", {10, 100}))->Read().count, uint64_t{kThreads} * kIters);
}

TEST(MetricsTest, DefaultRegistryIsShared) {
  EXPECT_EQ(Registry::Default(), Registry::Default());
  auto c = Registry::Default()->GetCounter("micedb_metrics_test_total", "");
  ASSERT_TRUE(c.ok());
}

}  // namespace
}  // namespace micedb
