// Internal to src/txn (client.cc, client_commit.cc): the machinery under TxnClient. A Step is
// one Percolator step sent for a set of keys, one request per region; ClientCore groups the
// keys by region, sends, resolves locks met and cuts groups again after splits.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "txn/client.h"
#include "txn/mvcc.h"

namespace micedb::txn {

// What one region's answer to a step means for the items it carried.
struct Verdict {
  enum class Kind { kDone, kRetry, kFail };
  Kind kind = Kind::kDone;
  Status status;                    // kFail
  std::vector<pb::LockInfo> locks;  // kRetry: to resolve first
  std::vector<size_t> items;        // kRetry: the items to send again (empty: all of them)

  static Verdict Done() { return {}; }
  static Verdict Fail(Status st) {
    Verdict v;
    v.kind = Kind::kFail;
    v.status = std::move(st);
    return v;
  }
};

// A step sent for a set of keys, one request per region: how to build the request for some of
// the keys (items: indexes into the keys) and what to make of the answer.
struct Step {
  std::vector<std::string> ekeys;  // engine keys, one per item
  bool write = false;
  int64_t deadline_ms = 0;  // monotonic
  std::function<pb::TxnRequest(const std::vector<size_t>&)> make;
  // Called with the step's lock held (one answer at a time).
  std::function<Verdict(const std::vector<size_t>&, pb::TxnResponse&)> take;
  std::function<void(Status)> done;  // once, after every part finished

  std::mutex mu;
  size_t parts = 0;  // parts not finished
  Status failure;    // the first failure
};

// What CheckSecondaryLocks over every key of an async-commit transaction found (§3b).
struct AsyncOutcome {
  enum class Kind {
    kCommitted,   // some key is committed, or every key holds an async lock: at commit_ts
    kRolledBack,  // some key is rolled back (now for good): the transaction never commits
    kTwoPhase,    // every key locked, some by a two-phase lock: the primary decides
  };
  Kind kind = Kind::kRolledBack;
  uint64_t commit_ts = 0;  // kCommitted
};
class ClientCore;
// Asks the regions of `keys` (user keys: the primary and every secondary) what became of the
// async-commit transaction start_ts (client_async.cc). A key holding neither its lock nor a
// record gets a rollback record, so the answer is final.
void CheckAsyncTxn(const std::shared_ptr<ClientCore>& core, std::vector<std::string> keys,
                   uint64_t start_ts, int64_t deadline_ms,
                   std::function<void(Result<AsyncOutcome>)> done);

// Whether the async-commit transaction start_ts is committed already, read without writing:
// `done` gets its commit_ts when every one of `keys` (the secondaries; user keys) holds an
// async lock of it -- the commit point (§3b) -- with `floor` (the primary's min_commit_ts)
// counted in; nullopt when some key holds none (not prewritten yet, or committed or rolled
// back already: a later check tells). Leader reads (ScanLock), so a lock seen is there.
void PeekAsyncTxn(const std::shared_ptr<ClientCore>& core, std::vector<std::string> keys,
                  uint64_t start_ts, uint64_t floor, int64_t deadline_ms,
                  std::function<void(Result<std::optional<uint64_t>>)> done);

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  static constexpr size_t kMaxGroupKeys = 1000;
  ClientCore(TxnTransport* transport, Executor* executor, const Clock* clock,
             TxnClientOptions options)
      : transport_(transport), executor_(executor), clock_(clock), options_(options) {}

  TxnTransport* transport() { return transport_; }
  const TxnClientOptions& options() const { return options_; }
  TxnClientCounters& counters() { return counters_; }

  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
  }
  int64_t Deadline() const { return NowMs() + options_.op_timeout_ms; }
  int64_t WallMs() const { return clock_->NowWallMillis(); }

  // Runs `step` over all its keys: groups them by region, sends each group, resolves locks
  // and cuts groups again as the answers say.
  void Run(std::shared_ptr<Step> step) {
    std::vector<size_t> all(step->ekeys.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    if (all.empty()) return step->done(Status::OK());
    std::vector<std::vector<size_t>> groups = Group(*step, std::move(all));
    {
      std::lock_guard<std::mutex> l(step->mu);
      step->parts = groups.size();
    }
    for (auto& g : groups) SendPart(step, std::move(g), 0, 0);
  }

  // Resolves `locks` met by a step: `done` gets how long to wait
  // before trying again (0: at once; a live lock's wait grows with `attempt`).
  void Resolve(std::vector<pb::LockInfo> locks, int attempt, int64_t deadline_ms,
               std::function<void(Result<int64_t>)> done);

  // Remembers what became of a transaction (commit_ts; 0: rolled back).
  void RememberOutcome(uint64_t start_ts, uint64_t commit_ts) {
    std::lock_guard<std::mutex> l(mu_);
    if (outcomes_.emplace(start_ts, commit_ts).second) {
      order_.push_back(start_ts);
      while (order_.size() > options_.status_cache_entries) {
        outcomes_.erase(order_.front());
        order_.pop_front();
      }
    }
  }
  std::optional<uint64_t> KnownOutcome(uint64_t start_ts) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = outcomes_.find(start_ts);
    if (it == outcomes_.end()) return std::nullopt;
    return it->second;
  }

  void After(int64_t ms, std::function<void()> fn) { executor_->After(ms, std::move(fn)); }

  // The transactions alive here (start_ts), for GC's safe point.
  void Track(uint64_t ts) {
    std::lock_guard<std::mutex> l(mu_);
    running_.insert(ts);
  }
  void Untrack(uint64_t ts) {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = running_.find(ts); it != running_.end()) running_.erase(it);
  }
  uint64_t OldestRunning() {
    std::lock_guard<std::mutex> l(mu_);
    return running_.empty() ? 0 : *running_.begin();
  }
  std::atomic<uint64_t>& safe_point() { return safe_point_; }

  // A commit under way keeps its primary's lock alive: a TxnHeartBeat every heartbeat_ms,
  // raising the TTL to the time lived so far plus a fresh default TTL, so that a commit
  // slowed by retries is not rolled back by a reader as if its client had died. One timer
  // serves every commit (client_commit.cc): one per commit cost more than the rest of a
  // one-phase commit's client work. StartBeating answers the id StopBeating takes.
  uint64_t StartBeating(std::string primary, uint64_t start_ts, size_t keys);
  void StopBeating(uint64_t id);

 private:
  // Items in key order cut where the cached regions end; an item whose region the cache does
  // not know goes alone.
  std::vector<std::vector<size_t>> Group(const Step& step, std::vector<size_t> items) {
    std::sort(items.begin(), items.end(),
              [&](size_t a, size_t b) { return step.ekeys[a] < step.ekeys[b]; });
    std::vector<std::vector<size_t>> out;
    std::optional<std::pair<std::string, std::string>> region;
    for (size_t i : items) {
      const std::string& k = step.ekeys[i];
      const bool fits =
          region && k >= region->first && (region->second.empty() || k < region->second);
      // A request holds at most kMaxGroupKeys keys: one raft entry stays small, and a
      // region with more keys takes several.
      if (!out.empty() && fits && out.back().size() < kMaxGroupKeys) {
        out.back().push_back(i);
        continue;
      }
      region = transport_->RegionOf(k);
      out.push_back({i});
    }
    return out;
  }

  void FinishPart(const std::shared_ptr<Step>& step, Status st) {
    bool last = false;
    {
      std::lock_guard<std::mutex> l(step->mu);
      if (!st.ok() && step->failure.ok()) step->failure = std::move(st);
      last = --step->parts == 0;
    }
    if (last) step->done(step->failure);
  }

  void SendPart(std::shared_ptr<Step> step, std::vector<size_t> items, int attempt, int recuts) {
    if (attempt > 0 || recuts > 0) {
      std::unique_lock<std::mutex> l(step->mu);
      // Another part failed: the step's outcome is decided, no need to try again.
      if (!step->failure.ok()) {
        l.unlock();
        return FinishPart(step, Status::OK());
      }
    }
    std::vector<std::string> keys;
    keys.reserve(items.size());
    for (size_t i : items) keys.push_back(step->ekeys[i]);
    std::string route = keys.front();
    pb::TxnRequest req = step->make(items);
    auto self = shared_from_this();
    const int64_t left = std::max<int64_t>(step->deadline_ms - NowMs(), 1);
    transport_->Send(std::move(req), std::move(route), std::move(keys), step->write, left,
                     [self, step, items, attempt, recuts](Result<pb::TxnResponse> r) mutable {
                       self->OnPart(std::move(step), std::move(items), attempt, recuts,
                                    std::move(r));
                     });
  }

  void OnPart(std::shared_ptr<Step> step, std::vector<size_t> items, int attempt, int recuts,
              Result<pb::TxnResponse> r) {
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAborted && recuts < options_.max_recuts &&
          NowMs() < step->deadline_ms) {
        // The keys span regions now: cut again by the (refreshed) cache.
        counters_.recuts++;
        std::vector<std::vector<size_t>> groups = Group(*step, std::move(items));
        {
          std::lock_guard<std::mutex> l(step->mu);
          step->parts += groups.size() - 1;
        }
        for (auto& g : groups) SendPart(step, std::move(g), attempt, recuts + 1);
        return;
      }
      if (r.status().code() == StatusCode::kAborted) {
        return FinishPart(
            step, Status::Unavailable(fmt::format(
                      "the regions kept changing under the request ({})", r.status().message())));
      }
      return FinishPart(step, r.status());
    }
    Verdict v;
    {
      std::lock_guard<std::mutex> l(step->mu);
      v = step->take(items, *r);
    }
    switch (v.kind) {
      case Verdict::Kind::kDone:
        return FinishPart(step, Status::OK());
      case Verdict::Kind::kFail:
        return FinishPart(step, std::move(v.status));
      case Verdict::Kind::kRetry:
        break;
    }
    std::vector<size_t> again = v.items.empty() ? std::move(items) : std::move(v.items);
    if (NowMs() >= step->deadline_ms) {
      return FinishPart(step, Status::Unavailable(fmt::format(
                                  "locks held by other transactions were not released in time "
                                  "(first: {})",
                                  v.locks.empty() ? std::string("?") : v.locks.front().key())));
    }
    auto self = shared_from_this();
    Resolve(std::move(v.locks), attempt, step->deadline_ms,
            [self, step, again = std::move(again), attempt, recuts](Result<int64_t> wait) mutable {
              if (!wait.ok()) return self->FinishPart(step, wait.status());
              auto resend = [self, step, again = std::move(again), attempt, recuts]() mutable {
                self->SendPart(step, std::move(again), attempt + 1, recuts);
              };
              if (*wait == 0) return resend();
              self->After(*wait, std::move(resend));
            });
  }

  TxnTransport* transport_;
  Executor* executor_;
  const Clock* clock_;
  const TxnClientOptions options_;
  TxnClientCounters counters_;
  std::atomic<uint64_t> safe_point_{0};
  // The heartbeat timer's round: beats the commits due, and arms itself for the next one.
  void Beat();

  std::mutex mu_;
  struct Beating {
    std::string primary;
    uint64_t start_ts = 0;
    size_t keys = 0;
    int64_t due_ms = 0;  // the next beat
  };
  std::map<uint64_t, Beating> beating_;  // by StartBeating's id
  uint64_t next_beating_id_ = 0;
  bool beat_armed_ = false;
  std::multiset<uint64_t> running_;
  std::unordered_map<uint64_t, uint64_t> outcomes_;  // start_ts -> commit_ts (0: rolled back)
  std::deque<uint64_t> order_;                       // outcomes_ keys, oldest first
};

}  // namespace micedb::txn
