// Counters and latency histograms of one run, kept per thread and merged at the end.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "histogram.h"
#include "workload.h"

namespace micedb::bench {

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The CPU time (user + system) this process has used so far, in seconds: the load
// generator's own cost, which shares the machine with the servers it measures.
inline double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// The measured part of a run: operations that start at or after `start_ns` and complete by
// `end_ns` are counted; the warm-up before it and the drain after it are not.
struct Window {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  bool Contains(int64_t begin, int64_t done) const { return begin >= start_ns && done <= end_ns; }
  double seconds() const { return static_cast<double>(end_ns - start_ns) / 1e9; }
};

struct Stats {
  Histogram all;
  Histogram reads;
  Histogram writes;
  uint64_t ops = 0;     // completed successfully inside the window
  uint64_t errors = 0;  // error replies, failed RPCs, lost connections (in or out of window)
  uint64_t misses = 0;  // reads that found no value (a read of a key never loaded)
  uint64_t aborts = 0;  // transactions refused with a conflict (inside the window)
  std::vector<uint64_t> per_second;      // completions in each second of the window
  std::vector<uint64_t> per_second_max;  // the slowest of them, ns
  std::string first_error;

  void Error(const std::string& what) {
    ++errors;
    if (first_error.empty()) {
      first_error = what;
    }
  }

  // One completed operation.
  void Done(const Window& w, OpType op, int64_t begin, int64_t done) {
    if (!w.Contains(begin, done)) {
      return;
    }
    const auto ns = static_cast<uint64_t>(done - begin);
    ++ops;
    all.Record(ns);
    (op == OpType::kRead ? reads : writes).Record(ns);
    const auto sec = static_cast<size_t>((done - w.start_ns) / 1000000000);
    if (per_second.size() <= sec) {
      per_second.resize(sec + 1, 0);
      per_second_max.resize(sec + 1, 0);
    }
    ++per_second[sec];
    per_second_max[sec] = std::max(per_second_max[sec], ns);
  }

  // A transaction refused with a conflict. Counted inside the window only, like operations,
  // so that aborts / (ops + aborts) is the share of the window's transactions that aborted.
  void Abort(const Window& w, int64_t begin, int64_t done) {
    if (w.Contains(begin, done)) {
      ++aborts;
    }
  }

  void Merge(const Stats& o) {
    all.Merge(o.all);
    reads.Merge(o.reads);
    writes.Merge(o.writes);
    ops += o.ops;
    errors += o.errors;
    misses += o.misses;
    aborts += o.aborts;
    if (per_second.size() < o.per_second.size()) {
      per_second.resize(o.per_second.size(), 0);
      per_second_max.resize(o.per_second.size(), 0);
    }
    for (size_t i = 0; i < o.per_second.size(); ++i) {
      per_second[i] += o.per_second[i];
      per_second_max[i] = std::max(per_second_max[i], o.per_second_max[i]);
    }
    if (first_error.empty()) {
      first_error = o.first_error;
    }
  }
};

}  // namespace micedb::bench
