#include "txn/concurrency.h"

#include <algorithm>

namespace micedb::txn {

bool ConcurrencyManager::BlockedLocked(std::string_view ekey, uint64_t read_ts) const {
  auto [lo, hi] = locks_.equal_range(ekey);
  for (auto it = lo; it != hi; ++it) {
    if (it->second <= read_ts) return true;
  }
  return false;
}

bool ConcurrencyManager::ReadKey(std::string_view ekey, uint64_t read_ts) {
  std::lock_guard<std::mutex> l(mu_);
  max_ts_ = std::max(max_ts_, read_ts);
  return locks_.empty() || !BlockedLocked(ekey, read_ts);
}

bool ConcurrencyManager::ReadRange(std::string_view begin, std::string_view end, uint64_t read_ts) {
  std::lock_guard<std::mutex> l(mu_);
  max_ts_ = std::max(max_ts_, read_ts);
  for (auto it = locks_.lower_bound(begin); it != locks_.end(); ++it) {
    if (!end.empty() && it->first >= end) break;
    if (it->second <= read_ts) return false;
  }
  return true;
}

bool ConcurrencyManager::Synced(std::unique_lock<std::mutex>* l, uint64_t region, uint64_t term,
                                uint64_t version) {
  const std::pair<uint64_t, uint64_t> key{term, version};
  auto s = synced_.find(region);
  if (s != synced_.end() && s->second == key) return true;
  // Not (yet) known to cover this leadership's predecessors' reads. The fetch's answer takes
  // mu_: start it once this call has let go.
  if (!fetch_) return false;
  auto it = syncing_.find(region);
  if (it != syncing_.end() && it->second == key) return false;
  syncing_[region] = key;
  l->unlock();
  fetch_([this, region, key](Result<uint64_t> ts) {
    std::lock_guard<std::mutex> g(mu_);
    auto sy = syncing_.find(region);
    if (sy != syncing_.end() && sy->second == key) syncing_.erase(sy);
    if (!ts.ok()) return;  // the next admission asks again
    max_ts_ = std::max(max_ts_, *ts);
    auto& done = synced_[region];
    done = std::max(done, key);
  });
  return false;
}

uint64_t ConcurrencyManager::Hold(const std::vector<std::string>& ekeys, uint64_t ts) {
  const uint64_t t = next_token_++;
  Held& h = held_[t];
  h.commit_ts = ts;
  h.keys = ekeys;
  for (const std::string& k : ekeys) locks_.emplace(k, ts);
  return t;
}

ConcurrencyManager::Refusal ConcurrencyManager::Admissible(std::unique_lock<std::mutex>* l,
                                                           uint64_t region, uint64_t term,
                                                           uint64_t version,
                                                           const std::vector<std::string>& ekeys) {
  if (!Synced(l, region, term, version)) return Refusal::kNotSynced;
  for (const std::string& k : ekeys) {
    if (locks_.find(k) != locks_.end()) return Refusal::kKeyBusy;
  }
  return Refusal::kNone;
}

ConcurrencyManager::Refusal ConcurrencyManager::TryLock(uint64_t region, uint64_t term,
                                                        uint64_t version,
                                                        const std::vector<std::string>& ekeys,
                                                        uint64_t commit_ts, uint64_t* token) {
  std::unique_lock<std::mutex> l(mu_);
  if (Refusal r = Admissible(&l, region, term, version, ekeys); r != Refusal::kNone) return r;
  if (max_ts_ >= commit_ts) return Refusal::kReadAbove;
  *token = Hold(ekeys, commit_ts);
  return Refusal::kNone;
}

ConcurrencyManager::Refusal ConcurrencyManager::TryLockAsync(
    uint64_t region, uint64_t term, uint64_t version, const std::vector<std::string>& ekeys,
    uint64_t start_ts, uint64_t max_commit_ts, uint64_t* min_commit_ts, uint64_t* token) {
  std::unique_lock<std::mutex> l(mu_);
  if (Refusal r = Admissible(&l, region, term, version, ekeys); r != Refusal::kNone) return r;
  const uint64_t above = std::max(max_ts_, start_ts);
  if (above == UINT64_MAX) return Refusal::kReadAbove;  // no timestamp above it
  if (max_commit_ts != 0 && above + 1 > max_commit_ts) return Refusal::kReadAbove;
  *min_commit_ts = above + 1;
  *token = Hold(ekeys, *min_commit_ts);
  return Refusal::kNone;
}

void ConcurrencyManager::Unlock(uint64_t token) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = held_.find(token);
  if (it == held_.end()) return;
  for (const std::string& k : it->second.keys) {
    auto [lo, hi] = locks_.equal_range(k);
    for (auto m = lo; m != hi; ++m) {
      if (m->second == it->second.commit_ts) {
        locks_.erase(m);
        break;
      }
    }
  }
  held_.erase(it);
}

void ConcurrencyManager::Observe(uint64_t ts) {
  std::lock_guard<std::mutex> l(mu_);
  max_ts_ = std::max(max_ts_, ts);
}

uint64_t ConcurrencyManager::max_ts() const {
  std::lock_guard<std::mutex> l(mu_);
  return max_ts_;
}

size_t ConcurrencyManager::memory_locks() const {
  std::lock_guard<std::mutex> l(mu_);
  return locks_.size();
}

}  // namespace micedb::txn
