#include "txn/client.h"

#include <fmt/format.h>

#include "common/logging.h"
#include "txn/client_core.h"
#include "txn/mvcc.h"

namespace micedb::txn {

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
    // with_primary: the primary's lock too (an async transaction's outcome found through its
    // keys: later readers then find it at the primary).
    auto resolve_key = [self, finish, deadline_ms, met = std::move(txn_locks)](
                           const pb::LockInfo& lk, uint64_t commit_ts, bool with_primary) {
      std::vector<pb::LockInfo> keys = met;
      if (with_primary && std::none_of(keys.begin(), keys.end(), [&](const pb::LockInfo& k) {
            return k.key() == lk.primary();
          })) {
        keys.emplace_back().set_key(lk.primary());
      }
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
      resolve_key(lock, *known, false);
      continue;
    }
    // The primary's state, asked at current_ts (force: an async primary becomes two-phase).
    auto check = [self, lock, deadline_ms](
                     uint64_t current_ts, bool force,
                     std::function<void(Result<pb::CheckTxnStatusResponse>)> then) {
      self->counters_.status_checks++;
      auto step = std::make_shared<Step>();
      step->ekeys = {EncodeKey(lock.primary())};
      step->write = true;  // it may roll the primary back
      step->deadline_ms = deadline_ms;
      step->make = [lock, current_ts, force](const std::vector<size_t>&) {
        pb::TxnRequest req;
        pb::CheckTxnStatusRequest* c = req.mutable_check_txn_status();
        c->set_primary(lock.primary());
        c->set_start_ts(lock.start_ts());
        c->set_current_ts(current_ts);
        c->set_force_sync_commit(force);
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
      step->done = [answer, then = std::move(then)](Status s) {
        if (!s.ok()) return then(std::move(s));
        then(std::move(*answer));
      };
      self->Run(std::move(step));
    };
    // What to do with the primary's state: resolve the locks met, or wait.
    auto decide = [self, lock, attempt, finish, resolve_key](const pb::CheckTxnStatusResponse& a) {
      switch (a.state()) {
        case pb::CheckTxnStatusResponse::COMMITTED:
          self->RememberOutcome(lock.start_ts(), a.commit_ts());
          return resolve_key(lock, a.commit_ts(), false);
        case pb::CheckTxnStatusResponse::ROLLED_BACK:
          self->RememberOutcome(lock.start_ts(), 0);
          return resolve_key(lock, 0, false);
        default: {
          // Alive: wait (not past its TTL), then try again.
          self->counters_.lock_waits++;
          const TxnClientOptions& o = self->options();
          int64_t wait =
              std::min<int64_t>(o.min_backoff_ms << std::min(attempt, 16), o.max_backoff_ms);
          wait = std::min<int64_t>(wait, static_cast<int64_t>(a.ttl_left_ms()) + 1);
          return finish(Status::OK(), std::max<int64_t>(wait, 1));
        }
      }
    };
    // Alive and async: committed already if every key holds its lock (its commits on their
    // way), which leader reads can tell without waiting for them or for its TTL.
    auto alive = [self, lock, deadline_ms, decide,
                  resolve_key](const pb::CheckTxnStatusResponse& a) {
      if (a.state() != pb::CheckTxnStatusResponse::ALIVE || !a.lock().use_async_commit()) {
        return decide(a);
      }
      std::vector<std::string> keys(a.lock().secondaries().begin(), a.lock().secondaries().end());
      self->counters_.async_peeks++;
      // A region it cannot reach must not hold the reader up past what a wait would.
      const int64_t peek_deadline =
          std::min<int64_t>(deadline_ms, self->NowMs() + self->options().max_backoff_ms);
      PeekAsyncTxn(self, std::move(keys), lock.start_ts(), a.lock().min_commit_ts(), peek_deadline,
                   [self, lock, decide, resolve_key, a](Result<std::optional<uint64_t>> at) {
                     if (!at.ok() || !*at) return decide(a);
                     self->RememberOutcome(lock.start_ts(), **at);
                     resolve_key(lock, **at, true);
                   });
    };
    transport_->GetTimestamp([self, lock, deadline_ms, finish, resolve_key, check, decide,
                              alive](Result<uint64_t> now) mutable {
      if (!now.ok()) return finish(now.status(), 0);
      const uint64_t current_ts = *now;
      check(current_ts, false,
            [self, lock, deadline_ms, finish, resolve_key, check, decide, alive,
             current_ts](Result<pb::CheckTxnStatusResponse> a) {
              if (!a.ok()) return finish(a.status(), 0);
              const bool async_expired = a->state() == pb::CheckTxnStatusResponse::ALIVE &&
                                         a->lock().use_async_commit() && a->ttl_left_ms() == 0;
              if (!async_expired) return alive(*a);
              // An async primary past its TTL: committed exactly when every key is locked (§3b).
              std::vector<std::string> keys{lock.primary()};
              for (const std::string& k : a->lock().secondaries()) keys.push_back(k);
              CheckAsyncTxn(self, std::move(keys), lock.start_ts(), deadline_ms,
                            [self, lock, finish, resolve_key, check, decide,
                             current_ts](Result<AsyncOutcome> out) {
                              if (!out.ok()) return finish(out.status(), 0);
                              switch (out->kind) {
                                case AsyncOutcome::Kind::kCommitted:
                                  self->RememberOutcome(lock.start_ts(), out->commit_ts);
                                  return resolve_key(lock, out->commit_ts, true);
                                case AsyncOutcome::Kind::kRolledBack:
                                  self->RememberOutcome(lock.start_ts(), 0);
                                  return resolve_key(lock, 0, true);
                                case AsyncOutcome::Kind::kTwoPhase:
                                  // A part fell back: the primary decides, as a two-phase lock.
                                  return check(current_ts, true, [finish, decide](auto b) {
                                    if (!b.ok()) return finish(b.status(), 0);
                                    decide(*b);
                                  });
                              }
                            });
            });
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

// ---- TxnClient ----

TxnClient::TxnClient(TxnTransport* transport, Executor* executor, const Clock* clock,
                     TxnClientOptions options)
    : core_(std::make_shared<ClientCore>(transport, executor, clock, options)) {}

TxnClient::~TxnClient() = default;

Txn::Txn(std::shared_ptr<ClientCore> core, uint64_t start_ts, bool read_only, uint64_t one_pc_ts)
    : core_(std::move(core)), start_ts_(start_ts), read_only_(read_only), one_pc_ts_(one_pc_ts) {
  core_->Track(start_ts_);
}

Txn::~Txn() { core_->Untrack(start_ts_); }

uint64_t TxnClient::OldestRunning() const { return core_->OldestRunning(); }

void TxnClient::RaiseSafePoint(uint64_t sp) {
  std::atomic<uint64_t>& cur = core_->safe_point();
  uint64_t v = cur.load();
  while (v < sp && !cur.compare_exchange_weak(v, sp)) {
  }
}

void TxnClient::Begin(std::function<void(Result<std::shared_ptr<Txn>>)> done) {
  auto core = core_;
  core->transport()->GetTimestamp([core, done = std::move(done)](Result<uint64_t> ts) {
    if (!ts.ok()) return done(ts.status());
    core->counters().begun++;
    done(std::shared_ptr<Txn>(new Txn(core, *ts, /*read_only=*/false)));
  });
}

void TxnClient::BeginWrite(std::function<void(Result<std::shared_ptr<Txn>>)> done) {
  auto core = core_;
  core->transport()->GetTimestamps(2, [core, done = std::move(done)](Result<uint64_t> ts) {
    if (!ts.ok()) return done(ts.status());
    core->counters().begun++;
    done(std::shared_ptr<Txn>(new Txn(core, *ts, /*read_only=*/false, *ts + 1)));
  });
}

void TxnClient::BeginAt(uint64_t read_ts, std::function<void(Result<std::shared_ptr<Txn>>)> done) {
  if (read_ts == 0) return done(Status::InvalidArgument("read_ts is 0"));
  if (const uint64_t sp = core_->safe_point().load(); read_ts < sp) {
    return done(Status::InvalidArgument(fmt::format(
        "snapshot too old: read_ts {} is below the GC safe point {} (versions older than "
        "--gc-life-time may be gone)",
        read_ts, sp)));
  }
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
