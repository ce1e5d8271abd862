#include "kv/active_expiry.h"

#include <pthread.h>

#include <algorithm>
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
  std::vector<LedRegion> led = led_();
  std::sort(led.begin(), led.end(),
            [](const LedRegion& a, const LedRegion& b) { return a.id < b.id; });
  // Regions no longer led are forgotten.
  std::map<uint64_t, RegionState> kept;
  for (const LedRegion& r : led) {
    if (auto it = regions_.find(r.id); it != regions_.end()) {
      kept.emplace(r.id, std::move(it->second));
    }
  }
  regions_ = std::move(kept);
  if (led.empty()) return 0;
  // In turn from where the last pass stopped.
  const auto first = std::find_if(led.begin(), led.end(),
                                  [this](const LedRegion& r) { return r.id >= next_region_; });
  std::rotate(led.begin(), first, led.end());
  size_t budget = options_.examine_per_pass;
  last_examined_ = 0;
  const int64_t now = clock_->NowWallMillis();
  next_region_ = 0;
  for (const LedRegion& region : led) {
    if (budget == 0) {
      next_region_ = region.id;  // the next pass starts here
      break;
    }
    RegionState& st = regions_[region.id];
    if (st.clean && region.writes != 0 && region.writes == st.clean_writes) continue;
    if (st.resume.empty()) st.saw_expiry = false;  // a new walk over the region
    KvStateMachine sm(region.range);
    EngineView view(engine_);
    KvStateMachine::ExpiryScan scan;
    scan.max_examined = std::min(budget, options_.batch * 20);
    auto cmd = sm.CollectExpired(view, now, options_.batch, &st.resume, &scan);
    budget -= std::min(budget, std::max<size_t>(scan.examined, 1));
    last_examined_ += scan.examined;
    if (!cmd.ok()) continue;
    st.saw_expiry |= scan.saw_expiry;
    if (st.resume.empty()) {
      // The walk reached the region's end: remember whether it met any key with a TTL.
      st.clean = !st.saw_expiry;
      st.clean_writes = region.writes;
    }
    if (cmd->delete_expired().keys_size() == 0) continue;
    sent += static_cast<size_t>(cmd->delete_expired().keys_size());
    cmd->set_now_ms(now);
    backend_->Execute(std::move(*cmd), ReadMode::kLinearizable,
                      [](const Result<CommandResult>&) {});
  }
  return sent;
}

}  // namespace micedb::kv
