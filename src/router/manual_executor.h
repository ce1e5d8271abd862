// A manual executor for router tests: tasks run when the test moves virtual time, in the
// order of their due times, on the test's thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include "common/clock.h"
#include "router/links.h"

namespace micedb::router {

class ManualExecutor : public Executor {
 public:
  explicit ManualExecutor(ManualClock* clock) : clock_(clock) {}
  void After(int64_t delay_ms, std::function<void()> fn) override {
    queue_.emplace(NowMs() + std::max<int64_t>(delay_ms, 0), std::move(fn));
  }
  // Moves the clock to each queued task in turn and runs it, until `limit_ms` of virtual time
  // have passed.
  void RunFor(int64_t limit_ms) {
    const int64_t end = NowMs() + limit_ms;
    while (!queue_.empty() && queue_.begin()->first <= end) {
      auto node = queue_.extract(queue_.begin());
      if (node.key() > NowMs()) clock_->Advance(std::chrono::milliseconds(node.key() - NowMs()));
      node.mapped()();
    }
    if (end > NowMs()) clock_->Advance(std::chrono::milliseconds(end - NowMs()));
  }
  size_t pending() const { return queue_.size(); }

 private:
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
  }
  ManualClock* clock_;
  std::multimap<int64_t, std::function<void()>> queue_;
};

}  // namespace micedb::router
