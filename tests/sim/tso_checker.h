// TsoChecker: the timestamp oracle's promises (docs/coordinator.md), seen only from the callers'
// side, for the store simulation (docs/simulation.md §6). The port of tests/cluster/tso_checker.py.
//
// A history of calls, each by one caller (one outstanding call per caller), stamped in the order
// they are made (the order of events in the run, which is real-time order). A violation is
//   - a timestamp handed out twice (to any two calls of the run);
//   - a caller's timestamp not above its previous one;
//   - a call that got a timestamp not above one that some call answered before it was invoked
//     (real-time order across callers);
//   - liveness: no call answered with a timestamp within the bound after the faults healed.
// Failed calls (the caller got an error, or never heard back) take no part but liveness.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "tests/sim/violation.h"

namespace micedb::sim {

class TsoChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit TsoChecker(Violations* out) : out_(out) {}

  // `caller` asks for a timestamp at `now_ms`; returns the call's id.
  uint64_t Invoked(uint64_t caller, int64_t now_ms);
  // Call `id` was answered at `now_ms`: a timestamp, or nullopt when it failed.
  void Completed(uint64_t id, int64_t now_ms, std::optional<uint64_t> ts);

  // Checks the whole history. With `healed_ms` set, some call invoked after it must have got a
  // timestamp by healed_ms + liveness_bound_ms.
  void Finish(std::optional<int64_t> healed_ms, int64_t liveness_bound_ms);

  uint64_t timestamps() const { return timestamps_; }
  uint64_t failures() const { return failures_; }

 private:
  struct Call {
    uint64_t caller = 0;
    uint64_t invoked = 0;  // order stamps
    uint64_t completed = 0;
    int64_t invoked_ms = 0;
    int64_t completed_ms = 0;
    std::optional<uint64_t> ts;
    bool done = false;
  };
  void Report(std::string check, std::string detail);

  Violations* out_;
  uint64_t clock_ = 0;
  uint64_t timestamps_ = 0;
  uint64_t failures_ = 0;
  std::map<uint64_t, Call> calls_;  // by id, which is invocation order
};

}  // namespace micedb::sim
