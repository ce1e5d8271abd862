#include "txn/client.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "common/logging.h"
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
  uint64_t caller_start_ts = 0;  // the transaction that meets locks
  int64_t deadline_ms = 0;       // monotonic
  std::function<pb::TxnRequest(const std::vector<size_t>&)> make;
  // Called with the step's lock held (one answer at a time).
  std::function<Verdict(const std::vector<size_t>&, pb::TxnResponse&)> take;
  std::function<void(Status)> done;  // once, after every part finished

  std::mutex mu;
  size_t parts = 0;  // parts not finished
  Status failure;    // the first failure
};

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

  // Resolves `locks` met by the transaction caller_start_ts: `done` gets how long to wait
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
  std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> outcomes_;  // start_ts -> commit_ts (0: rolled back)
  std::deque<uint64_t> order_;                       // outcomes_ keys, oldest first
};

namespace {

Status FromKeyError(const pb::KeyError& e) {
  switch (e.kind()) {
    case pb::KeyError::WRITE_CONFLICT:
    case pb::KeyError::TXN_ABORTED:
    case pb::KeyError::TXN_LOCK_NOT_FOUND:
      return Status::Aborted(e.message());
    case pb::KeyError::TXN_COMMITTED:
    case pb::KeyError::KEY_IS_LOCKED:
    default:
      return Status::Internal(e.message());
  }
}

}  // namespace

void ClientCore::Resolve(std::vector<pb::LockInfo> locks, int attempt, int64_t deadline_ms,
                         std::function<void(Result<int64_t>)> done) {
  counters_.locks_met += locks.size();
  if (locks.empty()) return done(int64_t{0});
  struct State {
    std::mutex mu;
    size_t left = 0;
    int64_t wait = 0;
    Status failure;
    std::function<void(Result<int64_t>)> done;
  };
  // One status check per transaction, however many of its locks were met.
  std::map<uint64_t, std::vector<pb::LockInfo>> by_txn;
  for (pb::LockInfo& lock : locks) by_txn[lock.start_ts()].push_back(std::move(lock));
  auto st = std::make_shared<State>();
  st->left = by_txn.size();
  st->done = std::move(done);
  auto finish = [st](Status s, int64_t wait) {
    bool last = false;
    {
      std::lock_guard<std::mutex> l(st->mu);
      if (!s.ok() && st->failure.ok()) st->failure = std::move(s);
      st->wait = std::max(st->wait, wait);
      last = --st->left == 0;
    }
    if (!last) return;
    if (!st->failure.ok()) return st->done(st->failure);
    st->done(st->wait);
  };
  auto self = shared_from_this();
  for (auto& [start_ts, txn_locks] : by_txn) {
    const pb::LockInfo lock = txn_locks.front();  // its primary and start_ts stand for all
    // Resolves the transaction's locks met, once its outcome is known (one request per region).
    auto resolve_key = [self, finish, deadline_ms, keys = std::move(txn_locks)](
                           const pb::LockInfo& lk, uint64_t commit_ts) {
      auto step = std::make_shared<Step>();
      for (const pb::LockInfo& k : keys) step->ekeys.push_back(EncodeKey(k.key()));
      step->write = true;
      step->deadline_ms = deadline_ms;
      step->make = [keys, start = lk.start_ts(), commit_ts](const std::vector<size_t>& items) {
        pb::TxnRequest req;
        pb::ResolveLockRequest* r = req.mutable_resolve_lock();
        r->set_start_ts(start);
        r->set_commit_ts(commit_ts);
        for (size_t i : items) r->add_keys(keys[i].key());
        return req;
      };
      step->take = [self](const std::vector<size_t>&, pb::TxnResponse& resp) {
        if (!resp.has_resolve_lock()) return Verdict::Fail(Status::Internal("no resolve answer"));
        self->counters_.locks_resolved += resp.resolve_lock().resolved();
        return Verdict::Done();
      };
      step->done = [finish](Status s) { finish(std::move(s), 0); };
      self->Run(std::move(step));
    };
    if (auto known = KnownOutcome(lock.start_ts())) {
      resolve_key(lock, *known);
      continue;
    }
    transport_->GetTimestamp(
        [self, lock, attempt, deadline_ms, finish, resolve_key](Result<uint64_t> now) mutable {
          if (!now.ok()) return finish(now.status(), 0);
          self->counters_.status_checks++;
          auto step = std::make_shared<Step>();
          step->ekeys = {EncodeKey(lock.primary())};
          step->write = true;  // it may roll the primary back
          step->deadline_ms = deadline_ms;
          const uint64_t current_ts = *now;
          step->make = [lock, current_ts](const std::vector<size_t>&) {
            pb::TxnRequest req;
            pb::CheckTxnStatusRequest* c = req.mutable_check_txn_status();
            c->set_primary(lock.primary());
            c->set_start_ts(lock.start_ts());
            c->set_current_ts(current_ts);
            return req;
          };
          auto answer = std::make_shared<pb::CheckTxnStatusResponse>();
          step->take = [answer](const std::vector<size_t>&, pb::TxnResponse& resp) {
            if (!resp.has_check_txn_status()) {
              return Verdict::Fail(Status::Internal("no status answer"));
            }
            *answer = std::move(*resp.mutable_check_txn_status());
            return Verdict::Done();
          };
          step->done = [self, lock, attempt, finish, resolve_key, answer](Status s) {
            if (!s.ok()) return finish(std::move(s), 0);
            switch (answer->state()) {
              case pb::CheckTxnStatusResponse::COMMITTED:
                self->RememberOutcome(lock.start_ts(), answer->commit_ts());
                return resolve_key(lock, answer->commit_ts());
              case pb::CheckTxnStatusResponse::ROLLED_BACK:
                self->RememberOutcome(lock.start_ts(), 0);
                return resolve_key(lock, 0);
              default: {
                // Alive: wait (not past its TTL), then try again.
                self->counters_.lock_waits++;
                const TxnClientOptions& o = self->options();
                int64_t wait =
                    std::min<int64_t>(o.min_backoff_ms << std::min(attempt, 16), o.max_backoff_ms);
                wait = std::min<int64_t>(wait, static_cast<int64_t>(answer->ttl_left_ms()) + 1);
                return finish(Status::OK(), std::max<int64_t>(wait, 1));
              }
            }
          };
          self->Run(std::move(step));
        });
  }
}

// ---- Txn ----

void Txn::Get(std::string key, std::function<void(Result<std::optional<std::string>>)> done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (auto it = writes_.find(key); it != writes_.end()) return done(it->second);
  }
  auto value = std::make_shared<std::optional<std::string>>();
  auto step = std::make_shared<Step>();
  step->ekeys = {EncodeKey(key)};
  step->caller_start_ts = start_ts_;
  step->deadline_ms = core_->Deadline();
  step->make = [key, ts = start_ts_](const std::vector<size_t>&) {
    pb::TxnRequest req;
    req.mutable_get()->set_key(key);
    req.mutable_get()->set_read_ts(ts);
    return req;
  };
  step->take = [value](const std::vector<size_t>&, pb::TxnResponse& resp) {
    if (!resp.has_get()) return Verdict::Fail(Status::Internal("no get answer"));
    pb::GetResponse& g = *resp.mutable_get();
    if (g.has_locked()) {
      Verdict v;
      v.kind = Verdict::Kind::kRetry;
      v.locks.push_back(g.locked().lock());
      return v;
    }
    if (g.found()) *value = std::move(*g.mutable_value());
    return Verdict::Done();
  };
  step->done = [value, done = std::move(done)](Status st) {
    if (!st.ok()) return done(std::move(st));
    done(std::move(*value));
  };
  core_->Run(std::move(step));
}

void Txn::BatchGet(std::vector<std::string> keys, std::function<void(Result<Pairs>)> done) {
  auto found = std::make_shared<std::map<std::string, std::string>>();
  auto step = std::make_shared<Step>();
  std::vector<std::string> wanted;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& k : keys) {
      auto it = writes_.find(k);
      if (it == writes_.end()) {
        wanted.push_back(k);
      } else if (it->second) {
        (*found)[k] = *it->second;
      }
    }
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  for (const std::string& k : wanted) step->ekeys.push_back(EncodeKey(k));
  step->caller_start_ts = start_ts_;
  step->deadline_ms = core_->Deadline();
  step->make = [wanted, ts = start_ts_](const std::vector<size_t>& items) {
    pb::TxnRequest req;
    for (size_t i : items) req.mutable_batch_get()->add_keys(wanted[i]);
    req.mutable_batch_get()->set_read_ts(ts);
    return req;
  };
  step->take = [found, wanted](const std::vector<size_t>& items, pb::TxnResponse& resp) {
    if (!resp.has_batch_get()) return Verdict::Fail(Status::Internal("no batch_get answer"));
    pb::BatchGetResponse& b = *resp.mutable_batch_get();
    for (pb::KvPair& kv : *b.mutable_pairs()) (*found)[kv.key()] = std::move(*kv.mutable_value());
    if (b.locked_size() == 0) return Verdict::Done();
    Verdict v;
    v.kind = Verdict::Kind::kRetry;
    for (const pb::KeyError& e : b.locked()) {
      v.locks.push_back(e.lock());
      for (size_t i : items) {
        if (wanted[i] == e.key()) v.items.push_back(i);
      }
    }
    if (v.items.empty()) return Verdict::Fail(Status::Internal("a lock on a key not asked for"));
    return v;
  };
  step->done = [found, keys = std::move(keys), done = std::move(done)](Status st) {
    if (!st.ok()) return done(std::move(st));
    Pairs out;
    for (const std::string& k : keys) {
      if (auto it = found->find(k); it != found->end()) out.emplace_back(k, it->second);
    }
    done(std::move(out));
  };
  core_->Run(std::move(step));
}

namespace {

// A scan walking the regions in key order from `cursor`.
struct ScanWalk {
  std::shared_ptr<ClientCore> core;
  uint64_t read_ts = 0;
  std::string cursor;
  std::string end;
  size_t want = 0;  // pairs to gather from the cluster
  int64_t deadline_ms = 0;
  int attempt = 0;
  Txn::Pairs got;
  bool complete = false;  // the range is done
  std::function<void(Status)> done;
};

void ScanNext(std::shared_ptr<ScanWalk> w) {
  if (w->complete || w->got.size() >= w->want) return w->done(Status::OK());
  // Routed by the cursor; the region serves its own part of the range and says where the
  // next region starts.
  auto step = std::make_shared<Step>();
  step->ekeys = {EncodeKey(w->cursor)};
  step->deadline_ms = w->deadline_ms;
  const uint32_t limit = static_cast<uint32_t>(
      std::min<size_t>(w->want - w->got.size(), w->core->options().scan_page));
  step->make = [w, limit](const std::vector<size_t>&) {
    pb::TxnRequest req;
    pb::ScanRequest* s = req.mutable_scan();
    s->set_start(w->cursor);
    s->set_end(w->end);
    s->set_read_ts(w->read_ts);
    s->set_limit(limit);
    return req;
  };
  auto locked = std::make_shared<std::optional<pb::LockInfo>>();
  step->take = [w, locked](const std::vector<size_t>&, pb::TxnResponse& resp) {
    if (!resp.has_scan()) return Verdict::Fail(Status::Internal("no scan answer"));
    pb::ScanResponse& s = *resp.mutable_scan();
    for (pb::KvPair& kv : *s.mutable_pairs()) {
      w->got.emplace_back(std::move(*kv.mutable_key()), std::move(*kv.mutable_value()));
    }
    if (s.has_locked()) {
      *locked = s.locked().lock();
      w->cursor = s.locked().key();
    } else if (s.done()) {
      w->complete = true;
    } else {
      w->cursor = s.resume_key();
    }
    return Verdict::Done();
  };
  step->done = [w, locked](Status st) {
    if (!st.ok()) return w->done(std::move(st));
    if (!*locked) {
      w->attempt = 0;
      // Through the executor: an answer given on this thread (a lease read) would otherwise
      // nest one call deeper per page.
      return w->core->After(0, [w] { ScanNext(w); });
    }
    if (w->core->NowMs() >= w->deadline_ms) {
      return w->done(Status::Unavailable(
          fmt::format("a lock on {:?} was not released in time", (*locked)->key())));
    }
    w->core->Resolve({**locked}, w->attempt++, w->deadline_ms, [w](Result<int64_t> wait) {
      if (!wait.ok()) return w->done(wait.status());
      w->core->After(*wait, [w] { ScanNext(w); });
    });
  };
  w->core->Run(std::move(step));
}

}  // namespace

void Txn::Scan(std::string start, std::string end, size_t limit,
               std::function<void(Result<Pairs>)> done) {
  if (limit == 0) return done(Status::InvalidArgument("scan: limit is 0"));
  // The buffered writes in the range: deletes hide cluster keys, so ask for that many more.
  std::map<std::string, std::optional<std::string>> mine;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = writes_.lower_bound(start);
    for (; it != writes_.end() && (end.empty() || it->first < end); ++it) mine.insert(*it);
  }
  size_t deletes = 0;
  for (const auto& [k, v] : mine) deletes += v ? 0 : 1;
  auto w = std::make_shared<ScanWalk>();
  w->core = core_;
  w->read_ts = start_ts_;
  w->cursor = std::move(start);
  w->end = std::move(end);
  w->want = limit + deletes;
  w->deadline_ms = core_->Deadline();
  w->done = [w, limit, mine = std::move(mine), done = std::move(done)](Status st) {
    if (!st.ok()) return done(std::move(st));
    // Up to where the cluster's answer is known, the buffered writes take precedence.
    std::map<std::string, std::string> merged;
    for (auto& [k, v] : w->got) merged[k] = std::move(v);
    const std::optional<std::string> known_to =
        w->complete || w->got.empty() ? std::nullopt : std::optional(w->got.back().first);
    for (const auto& [k, v] : mine) {
      if (known_to && k > *known_to) break;
      if (v) {
        merged[k] = *v;
      } else {
        merged.erase(k);
      }
    }
    Pairs out;
    for (auto& [k, v] : merged) {
      if (out.size() >= limit) break;
      if (known_to && k > *known_to) break;
      out.emplace_back(k, std::move(v));
    }
    done(std::move(out));
  };
  w->done = [inner = w->done, w](Status st) mutable {
    auto f = std::move(inner);
    w->done = nullptr;  // breaks the cycle w -> done -> w
    f(std::move(st));
  };
  ScanNext(w);
}

Status Txn::Put(std::string key, std::string value) {
  if (read_only_)
    return Status::InvalidArgument("a snapshot read at a chosen timestamp cannot write");
  std::lock_guard<std::mutex> l(mu_);
  if (finished_) return Status::InvalidArgument("the transaction is finished");
  writes_[std::move(key)] = std::move(value);
  return Status::OK();
}

Status Txn::Delete(std::string key) {
  if (read_only_)
    return Status::InvalidArgument("a snapshot read at a chosen timestamp cannot write");
  std::lock_guard<std::mutex> l(mu_);
  if (finished_) return Status::InvalidArgument("the transaction is finished");
  writes_[std::move(key)] = std::nullopt;
  return Status::OK();
}

size_t Txn::pending_writes() const {
  std::lock_guard<std::mutex> l(mu_);
  return writes_.size();
}

void Txn::Rollback() {
  std::lock_guard<std::mutex> l(mu_);
  writes_.clear();
  finished_ = true;
}

std::optional<Conflict> Txn::conflict() const {
  std::lock_guard<std::mutex> l(mu_);
  return conflict_;
}

namespace {

// Rolls back what a failed commit may have prewritten, in the background (the primary's
// record protected). Best effort: locks left behind are resolved by their readers.
// Commits the secondaries (every mutation but the first, the primary) at commit_ts, in the
// background. A refusal here means the transaction's atomicity is in danger: logged loudly.
void CommitSecondaries(const std::shared_ptr<ClientCore>& core,
                       std::shared_ptr<std::vector<pb::Mutation>> muts, uint64_t start_ts,
                       uint64_t commit_ts) {
  if (muts->size() < 2) return;
  auto rest = std::make_shared<Step>();
  for (size_t i = 1; i < muts->size(); ++i) rest->ekeys.push_back(EncodeKey((*muts)[i].key()));
  rest->write = true;
  rest->deadline_ms = core->Deadline();
  rest->make = [muts, start_ts, commit_ts](const std::vector<size_t>& items) {
    pb::TxnRequest req;
    pb::CommitRequest* c = req.mutable_commit();
    for (size_t i : items) c->add_keys((*muts)[i + 1].key());
    c->set_start_ts(start_ts);
    c->set_commit_ts(commit_ts);
    return req;
  };
  rest->take = [start_ts](const std::vector<size_t>&, pb::TxnResponse& resp) {
    if (resp.has_commit() && resp.commit().has_error()) {
      GetLogger("txn")->error("secondary of committed transaction {} refused its commit: {}",
                              start_ts, resp.commit().error().message());
    }
    return Verdict::Done();
  };
  rest->done = [start_ts](Status s) {
    if (!s.ok()) {
      GetLogger("txn")->info("secondary commit of transaction {} left locks for readers: {}",
                             start_ts, s.ToString());
    }
  };
  core->Run(std::move(rest));
}

// Rolls back what a failed commit may have prewritten, in the background: the primary first
// (its record protected), the secondaries only once the primary is rolled back -- so that a
// secondary is never rolled back while its primary may be committed. Should the primary turn
// out committed after all, the secondaries are committed instead. Best effort: locks left
// behind are resolved by their readers.
void RollBackInBackground(const std::shared_ptr<ClientCore>& core,
                          std::shared_ptr<std::vector<pb::Mutation>> muts, uint64_t start_ts) {
  auto primary = std::make_shared<Step>();
  primary->ekeys = {EncodeKey(muts->front().key())};
  primary->write = true;
  primary->deadline_ms = core->Deadline();
  primary->make = [muts, start_ts](const std::vector<size_t>&) {
    pb::TxnRequest req;
    pb::RollbackRequest* r = req.mutable_rollback();
    r->set_start_ts(start_ts);
    r->add_keys(muts->front().key());
    r->set_protect(true);
    return req;
  };
  auto committed_at = std::make_shared<uint64_t>(0);
  primary->take = [committed_at](const std::vector<size_t>&, pb::TxnResponse& resp) {
    if (resp.has_rollback() && resp.rollback().error().kind() == pb::KeyError::TXN_COMMITTED &&
        resp.rollback().has_error()) {
      *committed_at = resp.rollback().error().conflict_commit_ts();
    }
    return Verdict::Done();
  };
  primary->done = [core, muts, start_ts, committed_at](Status st) {
    if (!st.ok()) {
      GetLogger("txn")->info("rollback of transaction {} left locks behind: {}", start_ts,
                             st.ToString());
      return;
    }
    if (*committed_at != 0) {
      GetLogger("txn")->warn("transaction {} was committed at {} after all: committing its rest",
                             start_ts, *committed_at);
      return CommitSecondaries(core, muts, start_ts, *committed_at);
    }
    if (muts->size() < 2) return;
    auto rest = std::make_shared<Step>();
    for (size_t i = 1; i < muts->size(); ++i) rest->ekeys.push_back(EncodeKey((*muts)[i].key()));
    rest->write = true;
    rest->deadline_ms = core->Deadline();
    rest->make = [muts, start_ts](const std::vector<size_t>& items) {
      pb::TxnRequest req;
      pb::RollbackRequest* r = req.mutable_rollback();
      r->set_start_ts(start_ts);
      for (size_t i : items) r->add_keys((*muts)[i + 1].key());
      return req;
    };
    rest->take = [](const std::vector<size_t>&, pb::TxnResponse&) { return Verdict::Done(); };
    rest->done = [start_ts](Status s) {
      if (!s.ok()) {
        GetLogger("txn")->info("rollback of transaction {} left locks behind: {}", start_ts,
                               s.ToString());
      }
    };
    core->Run(std::move(rest));
  };
  core->Run(std::move(primary));
}

// Every heartbeat_ms while *committing: raises the primary's lock TTL to cover the time so
// far plus a fresh default TTL. Best effort: a beat that fails changes nothing.
void KeepAlive(std::shared_ptr<ClientCore> core, std::string primary, uint64_t start_ts,
               size_t keys, std::shared_ptr<std::atomic<bool>> committing) {
  const int64_t every = core->options().heartbeat_ms;
  if (every <= 0) return;
  core->After(
      every, [core, primary = std::move(primary), start_ts, keys, committing, every]() mutable {
        if (!committing->load()) return;
        const int64_t elapsed =
            std::max<int64_t>(core->WallMs() - static_cast<int64_t>(PhysicalMs(start_ts)), 0);
        const uint64_t ttl = static_cast<uint64_t>(elapsed) + DefaultTtlMs(keys);
        auto beat = std::make_shared<Step>();
        beat->ekeys = {EncodeKey(primary)};
        beat->write = true;
        beat->deadline_ms = core->NowMs() + every;
        beat->make = [primary, start_ts, ttl](const std::vector<size_t>&) {
          pb::TxnRequest req;
          pb::HeartBeatRequest* h = req.mutable_heart_beat();
          h->set_primary(primary);
          h->set_start_ts(start_ts);
          h->set_ttl_ms(ttl);
          return req;
        };
        beat->take = [](const std::vector<size_t>&, pb::TxnResponse&) { return Verdict::Done(); };
        beat->done = [](Status) {};
        core->counters().heartbeats++;
        core->Run(std::move(beat));
        KeepAlive(core, std::move(primary), start_ts, keys, std::move(committing));
      });
}

}  // namespace

void Txn::Commit(std::function<void(Result<uint64_t>)> done) {
  auto muts = std::make_shared<std::vector<pb::Mutation>>();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (finished_) return done(Status::InvalidArgument("the transaction is finished"));
    finished_ = true;
    for (auto& [k, v] : writes_) {
      pb::Mutation& m = muts->emplace_back();
      m.set_key(k);
      if (v) {
        m.set_op(pb::Mutation::PUT);
        m.set_value(*v);
      } else {
        m.set_op(pb::Mutation::DELETE);
      }
    }
    writes_.clear();
  }
  if (muts->empty()) return done(uint64_t{0});
  auto self = shared_from_this();
  auto core = core_;
  // While the commit is under way, the primary's lock is kept alive (TxnHeartBeat), so that
  // a commit slowed by retries is not rolled back by a reader as if its client had died.
  auto committing = std::make_shared<std::atomic<bool>>(true);
  done = [committing, done = std::move(done)](Result<uint64_t> r) {
    committing->store(false);
    done(std::move(r));
  };
  KeepAlive(core, muts->front().key(), start_ts_, muts->size(), committing);
  const uint64_t start_ts = start_ts_;
  const std::string primary = muts->front().key();  // the smallest key

  // 1. Prewrite every key.
  auto prewrite = std::make_shared<Step>();
  for (const auto& m : *muts) prewrite->ekeys.push_back(EncodeKey(m.key()));
  prewrite->write = true;
  prewrite->caller_start_ts = start_ts;
  prewrite->deadline_ms = core->Deadline();
  prewrite->make = [core, muts, primary, start_ts](const std::vector<size_t>& items) {
    pb::TxnRequest req;
    pb::PrewriteRequest* p = req.mutable_prewrite();
    for (size_t i : items) *p->add_mutations() = (*muts)[i];
    p->set_primary(primary);
    p->set_start_ts(start_ts);
    p->set_txn_size(muts->size());
    // The TTL counts from start_ts: cover the time the transaction has lived so far.
    const int64_t lived =
        std::max<int64_t>(core->WallMs() - static_cast<int64_t>(PhysicalMs(start_ts)), 0);
    p->set_ttl_ms(static_cast<uint64_t>(lived) + DefaultTtlMs(muts->size()));
    return req;
  };
  prewrite->take = [self, muts](const std::vector<size_t>& items, pb::TxnResponse& resp) {
    if (!resp.has_prewrite()) return Verdict::Fail(Status::Internal("no prewrite answer"));
    Verdict v;
    for (const pb::KeyError& e : resp.prewrite().errors()) {
      if (e.kind() != pb::KeyError::KEY_IS_LOCKED) {
        if (e.kind() == pb::KeyError::WRITE_CONFLICT) {
          std::lock_guard<std::mutex> l(self->mu_);
          self->conflict_ = Conflict{e.key(), e.conflict_start_ts(), e.conflict_commit_ts()};
        }
        return Verdict::Fail(FromKeyError(e));
      }
      v.kind = Verdict::Kind::kRetry;
      v.locks.push_back(e.lock());
      for (size_t i : items) {
        if ((*muts)[i].key() == e.key()) v.items.push_back(i);
      }
    }
    return v;
  };
  prewrite->done = [self, core, muts, primary, start_ts, done = std::move(done)](Status st) {
    if (!st.ok()) {
      core->counters().aborted++;
      RollBackInBackground(core, muts, start_ts);
      return done(std::move(st));
    }
    // 2. commit_ts, then the primary's commit: the transaction commits here.
    core->transport()->GetTimestamp(
        [self, core, muts, primary, start_ts, done = std::move(done)](Result<uint64_t> ts) {
          if (!ts.ok()) {
            RollBackInBackground(core, muts, start_ts);
            return done(ts.status());
          }
          const uint64_t commit_ts = *ts;
          auto commit = std::make_shared<Step>();
          commit->ekeys = {EncodeKey(primary)};
          commit->write = true;
          commit->deadline_ms = core->Deadline();
          commit->make = [primary, start_ts, commit_ts](const std::vector<size_t>&) {
            pb::TxnRequest req;
            pb::CommitRequest* c = req.mutable_commit();
            c->add_keys(primary);
            c->set_start_ts(start_ts);
            c->set_commit_ts(commit_ts);
            return req;
          };
          commit->take = [](const std::vector<size_t>&, pb::TxnResponse& resp) {
            if (!resp.has_commit()) return Verdict::Fail(Status::Internal("no commit answer"));
            if (resp.commit().has_error())
              return Verdict::Fail(FromKeyError(resp.commit().error()));
            return Verdict::Done();
          };
          commit->done = [core, muts, start_ts, commit_ts, done = std::move(done)](Status st) {
            if (!st.ok()) {
              if (st.code() == StatusCode::kAborted) {
                core->counters().aborted++;
              } else if (st.code() == StatusCode::kUnavailable) {
                // Not applied: the transaction did not commit; take its locks away.
                RollBackInBackground(core, muts, start_ts);
              }
              return done(std::move(st));
            }
            core->counters().committed++;
            core->RememberOutcome(start_ts, commit_ts);
            done(commit_ts);
            // 3. The secondaries, in the background.
            CommitSecondaries(core, muts, start_ts, commit_ts);
          };
          core->Run(std::move(commit));
        });
  };
  core->Run(std::move(prewrite));
}

// ---- TxnClient ----

TxnClient::TxnClient(TxnTransport* transport, Executor* executor, const Clock* clock,
                     TxnClientOptions options)
    : core_(std::make_shared<ClientCore>(transport, executor, clock, options)) {}

TxnClient::~TxnClient() = default;

void TxnClient::Begin(std::function<void(Result<std::shared_ptr<Txn>>)> done) {
  auto core = core_;
  core->transport()->GetTimestamp([core, done = std::move(done)](Result<uint64_t> ts) {
    if (!ts.ok()) return done(ts.status());
    core->counters().begun++;
    done(std::shared_ptr<Txn>(new Txn(core, *ts, /*read_only=*/false)));
  });
}

void TxnClient::BeginAt(uint64_t read_ts, std::function<void(Result<std::shared_ptr<Txn>>)> done) {
  if (read_ts == 0) return done(Status::InvalidArgument("read_ts is 0"));
  auto core = core_;
  core->transport()->GetTimestamp([core, read_ts, done = std::move(done)](Result<uint64_t> now) {
    if (!now.ok()) return done(now.status());
    if (read_ts > *now) {
      return done(Status::InvalidArgument(fmt::format(
          "read_ts {} is in the future (the oracle is at {}); a snapshot must be in the past",
          read_ts, *now)));
    }
    core->counters().begun++;
    done(std::shared_ptr<Txn>(new Txn(core, read_ts, /*read_only=*/true)));
  });
}

const TxnClientCounters& TxnClient::counters() const { return core_->counters(); }

}  // namespace micedb::txn
