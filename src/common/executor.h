// Executor: runs deferred work (timers, retries) for a component that has no thread of its own,
// so that its tests run against a fake with no threads and no sleeps (router::ThreadExecutor is
// the real one).
#pragma once

#include <cstdint>
#include <functional>

namespace micedb {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` once, on the executor, after `delay_ms` (0: soon). `fn` may not run at all once
  // the executor is stopping.
  virtual void After(int64_t delay_ms, std::function<void()> fn) = 0;
};

}  // namespace micedb
