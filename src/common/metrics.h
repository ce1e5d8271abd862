// Metric instruments: Counter, Gauge, Histogram. They are created and owned by a
// metrics Registry (common/metrics_registry.h), which renders them for Prometheus; callers
// keep the raw pointers the registry hands out for as long as the registry lives.
//
// Every method is thread-safe and lock-free: updates are atomic operations.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace micedb {

// A count that only goes up (requests served, bytes written).
class Counter {
 public:
  void Inc() { value_.fetch_add(1, std::memory_order_relaxed); }
  void Add(uint64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (queue length, bytes in memory, current term).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void Sub(double d) { value_.fetch_sub(d, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Sub(1); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations (latencies, sizes) into buckets by upper bound, Prometheus style: an
// observation v lands in the first bucket whose bound b satisfies v <= b, or in the implicit
// +Inf bucket. NaN lands in +Inf only.
class Histogram {
 public:
  // `bounds` must be finite and strictly increasing (the Registry checks this); the +Inf
  // bucket is implicit and must not be listed.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    // cumulative[i] = observations <= bounds[i]; the last entry (one past bounds) is the +Inf
    // bucket and equals count.
    std::vector<uint64_t> cumulative;
    double sum = 0;
    uint64_t count = 0;
  };
  // A copy of the current state. Concurrent Observe calls may or may not be included; the
  // buckets and count always agree with each other, the sum may lag by in-flight observations.
  Snapshot Read() const;

  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// Bucket bound helpers. `count` bounds: start, start*factor, start*factor^2, ...
// (start > 0, factor > 1), and start, start+width, ... (width > 0).
std::vector<double> ExponentialBuckets(double start, double factor, int count);
std::vector<double> LinearBuckets(double start, double width, int count);
// Latency buckets in seconds, from 0.5 ms to 10 s.
std::vector<double> DefaultLatencyBuckets();

}  // namespace micedb
