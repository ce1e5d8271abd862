// ThreadExecutor: the router's Executor on a thread of its own ("router") with asio timers.
// Thread-safety: After may be called from any thread; Stop from one.
#pragma once

#include <asio.hpp>

#include <thread>

#include "router/links.h"

namespace micedb::router {

class ThreadExecutor final : public Executor {
 public:
  ThreadExecutor();
  ~ThreadExecutor() override;
  void After(int64_t delay_ms, std::function<void()> fn) override;
  // Stops the thread; work not yet run is dropped. Idempotent.
  void Stop();

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace micedb::router
