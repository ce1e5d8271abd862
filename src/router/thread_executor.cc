#include "router/thread_executor.h"

#include <pthread.h>

#include <memory>

namespace micedb::router {

ThreadExecutor::ThreadExecutor() : work_(io_.get_executor()) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "router");
    io_.run();
  });
}

ThreadExecutor::~ThreadExecutor() { Stop(); }

void ThreadExecutor::Stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  io_.stop();
  thread_.join();
}

void ThreadExecutor::After(int64_t delay_ms, std::function<void()> fn) {
  if (delay_ms <= 0) {
    asio::post(io_, std::move(fn));
    return;
  }
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(delay_ms));
  timer->async_wait([timer, fn = std::move(fn)](std::error_code ec) {
    if (!ec) fn();
  });
}

}  // namespace micedb::router
