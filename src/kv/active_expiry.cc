#include "kv/active_expiry.h"

#include <pthread.h>

#include <chrono>

#include "kv/read_view.h"

namespace micedb::kv {

ActiveExpiry::ActiveExpiry(Options options, KvBackend* backend, storage::Engine* engine,
                           LedRegions led, const Clock* clock)
    : options_(options), backend_(backend), engine_(engine), led_(std::move(led)), clock_(clock) {}

ActiveExpiry::~ActiveExpiry() { Stop(); }

void ActiveExpiry::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "expiry");
    std::unique_lock<std::mutex> l(mu_);
    while (!cv_.wait_for(l, std::chrono::milliseconds(options_.interval_ms),
                         [this]() REQUIRES(mu_) { return stop_; })) {
      l.unlock();
      RunOnce();
      l.lock();
    }
  });
}

void ActiveExpiry::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

size_t ActiveExpiry::RunOnce() {
  size_t sent = 0;
  std::map<uint64_t, std::string> resume;
  for (const LedRegion& region : led_()) {
    std::string& at = resume[region.id];
    if (auto it = resume_.find(region.id); it != resume_.end()) at = it->second;
    KvStateMachine sm(region.range);
    EngineView view(engine_);
    const int64_t now = clock_->NowWallMillis();
    auto cmd = sm.CollectExpired(view, now, options_.batch, &at);
    if (!cmd.ok() || cmd->delete_expired().keys_size() == 0) continue;
    sent += static_cast<size_t>(cmd->delete_expired().keys_size());
    cmd->set_now_ms(now);
    backend_->Execute(std::move(*cmd), ReadMode::kLinearizable,
                      [](const Result<CommandResult>&) {});
  }
  resume_ = std::move(resume);  // regions no longer led are forgotten
  return sent;
}

}  // namespace micedb::kv
