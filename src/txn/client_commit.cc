// Txn::Commit: two-phase commit of the buffered writes (docs/transactions.md §3, §7), with
// the rollback of a failed commit, the background commit of the secondaries and the primary's
// heartbeats.
#include <fmt/format.h>

#include "common/logging.h"
#include "txn/client.h"
#include "txn/client_core.h"
#include "txn/mvcc.h"

namespace micedb::txn {

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

// Commits the mutations from `first` on (1: the secondaries, every mutation but the primary;
// 0: all of them, for async commit) at commit_ts, in the background. A refusal here means the
// transaction's atomicity is in danger: logged loudly.
void CommitSecondaries(const std::shared_ptr<ClientCore>& core,
                       std::shared_ptr<std::vector<pb::Mutation>> muts, uint64_t start_ts,
                       uint64_t commit_ts, size_t first = 1) {
  if (muts->size() <= first) return;
  auto rest = std::make_shared<Step>();
  for (size_t i = first; i < muts->size(); ++i) {
    rest->ekeys.push_back(EncodeKey((*muts)[i].key()));
  }
  rest->write = true;
  rest->deadline_ms = core->Deadline();
  rest->make = [muts, start_ts, commit_ts, first](const std::vector<size_t>& items) {
    pb::TxnRequest req;
    pb::CommitRequest* c = req.mutable_commit();
    for (size_t i : items) c->add_keys((*muts)[i + first].key());
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

// An async-commit prewrite failed (§3b): whether the transaction committed is read off its
// keys, since every key locked means committed whatever the client saw (a lost answer), and a
// key that is not locked may still be by a late duplicate. CheckAsyncTxn settles each key;
// then the transaction is committed (answered so), or rolled back (the failure is answered),
// or, when the keys cannot be reached, its outcome is unknown (TimedOut; the locks are left
// to readers).
void FinishFailedAsync(const std::shared_ptr<ClientCore>& core,
                       std::shared_ptr<std::vector<pb::Mutation>> muts, uint64_t start_ts,
                       Status failure, std::function<void(Result<uint64_t>)> done) {
  std::vector<std::string> keys;
  keys.reserve(muts->size());
  for (const pb::Mutation& m : *muts) keys.push_back(m.key());
  CheckAsyncTxn(core, std::move(keys), start_ts, core->Deadline(),
                [core, muts, start_ts, failure = std::move(failure),
                 done = std::move(done)](Result<AsyncOutcome> out) mutable {
                  if (!out.ok()) {
                    return done(Status::TimedOut(fmt::format(
                        "the commit's outcome is unknown: its prewrite failed ({}) and its "
                        "keys could not be checked ({})",
                        failure.ToString(), out.status().ToString())));
                  }
                  if (out->kind == AsyncOutcome::Kind::kCommitted) {
                    core->counters().committed++;
                    core->counters().async_committed++;
                    core->RememberOutcome(start_ts, out->commit_ts);
                    done(out->commit_ts);
                    return CommitSecondaries(core, muts, start_ts, out->commit_ts, 0);
                  }
                  // Rolled back on some key for good, or every key locked with a two-phase
                  // lock among them (the primary decides, and no commit was sent): either
                  // way rolling back, primary first, is safe.
                  core->counters().aborted++;
                  RollBackInBackground(core, muts, start_ts);
                  if (failure.code() == StatusCode::kTimedOut) {
                    failure = Status::Unavailable(
                        fmt::format("not committed (rolled back after: {})", failure.message()));
                  }
                  done(std::move(failure));
                });
}

}  // namespace

uint64_t ClientCore::StartBeating(std::string primary, uint64_t start_ts, size_t keys) {
  const int64_t every = options_.heartbeat_ms;
  uint64_t id = 0;
  bool arm = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = ++next_beating_id_;
    if (every <= 0) return id;
    beating_.emplace(id, Beating{std::move(primary), start_ts, keys, NowMs() + every});
    // A commit started now is due after every other one: an armed timer fires early enough.
    arm = !beat_armed_;
    beat_armed_ = true;
  }
  // (The executor is called with no lock held: its thread may be running Beat.)
  if (arm) After(every, [self = shared_from_this()] { self->Beat(); });
  return id;
}

void ClientCore::StopBeating(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  beating_.erase(id);
}

void ClientCore::Beat() {
  const int64_t every = options_.heartbeat_ms;
  const int64_t now = NowMs();
  std::vector<Beating> due;
  int64_t next = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& entry : beating_) {
      Beating& b = entry.second;
      if (b.due_ms <= now) {
        due.push_back(b);
        b.due_ms = now + every;
      }
      next = next == 0 ? b.due_ms : std::min(next, b.due_ms);
    }
    beat_armed_ = !beating_.empty();
  }
  if (next != 0) {
    After(std::max<int64_t>(next - now, 1), [self = shared_from_this()] { self->Beat(); });
  }
  for (Beating& b : due) {
    const int64_t elapsed =
        std::max<int64_t>(WallMs() - static_cast<int64_t>(PhysicalMs(b.start_ts)), 0);
    const uint64_t ttl = static_cast<uint64_t>(elapsed) + DefaultTtlMs(b.keys);
    auto beat = std::make_shared<Step>();
    beat->ekeys = {EncodeKey(b.primary)};
    beat->write = true;
    beat->deadline_ms = now + every;
    beat->make = [primary = std::move(b.primary), start_ts = b.start_ts,
                  ttl](const std::vector<size_t>&) {
      pb::TxnRequest req;
      pb::HeartBeatRequest* h = req.mutable_heart_beat();
      h->set_primary(primary);
      h->set_start_ts(start_ts);
      h->set_ttl_ms(ttl);
      return req;
    };
    beat->take = [](const std::vector<size_t>&, pb::TxnResponse&) { return Verdict::Done(); };
    beat->done = [](Status) {};  // best effort: a beat that fails changes nothing
    counters_.heartbeats++;
    Run(std::move(beat));
  }
}

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
  // While the commit is under way, the primary's lock is kept alive (TxnHeartBeat).
  const uint64_t beating = core->StartBeating(muts->front().key(), start_ts_, muts->size());
  done = [core, beating, done = std::move(done)](Result<uint64_t> r) {
    core->StopBeating(beating);
    done(std::move(r));
  };

  std::vector<std::string> ekeys;
  ekeys.reserve(muts->size());
  for (const auto& m : *muts) ekeys.push_back(EncodeKey(m.key()));
  if (!core->options().one_pc || muts->size() > ClientCore::kMaxGroupKeys ||
      !InOneRegion(core.get(), ekeys)) {
    const bool async = core->options().async_commit && AsyncFits(*muts);
    if (async) core->counters().async_tried++;
    return self->Prewrite(std::move(muts), std::move(ekeys), 0, async, std::move(done));
  }
  // One phase: a commit_ts drawn now, before the prewrite; the leader admits it only if no
  // read at or above it has been served on these keys (§3a), else it locks them as usual.
  core->counters().one_pc_tried++;
  if (one_pc_ts_ != 0) {
    // Drawn with start_ts (BeginWrite): no other transaction has a timestamp between the two.
    return self->Prewrite(std::move(muts), std::move(ekeys), one_pc_ts_, false, std::move(done));
  }
  core->transport()->GetTimestamp([self, core, muts, ekeys = std::move(ekeys),
                                   done = std::move(done)](Result<uint64_t> ts) mutable {
    if (!ts.ok()) return done(ts.status());
    self->Prewrite(std::move(muts), std::move(ekeys), *ts, false, std::move(done));
  });
}

bool Txn::AsyncFits(const std::vector<pb::Mutation>& muts) {
  if (muts.size() > TxnClientOptions::kAsyncMaxKeys) return false;
  size_t bytes = 0;
  for (const pb::Mutation& m : muts) bytes += m.key().size();
  return bytes <= TxnClientOptions::kAsyncMaxKeyBytes;
}

bool Txn::InOneRegion(ClientCore* core, const std::vector<std::string>& ekeys) {
  // The keys are in order: the first's region holds them all if it holds the last.
  auto r = core->transport()->RegionOf(ekeys.front());
  if (!r) return false;
  return r->second.empty() || ekeys.back() < r->second;
}

void Txn::Prewrite(std::shared_ptr<std::vector<pb::Mutation>> muts, std::vector<std::string> ekeys,
                   uint64_t one_pc_ts, bool async, std::function<void(Result<uint64_t>)> done) {
  auto self = shared_from_this();
  auto core = core_;
  const uint64_t start_ts = start_ts_;
  const std::string primary = muts->front().key();
  // 1. Prewrite every key (all of them at once in one phase, if one_pc_ts is set and they
  // still make one request).
  auto prewrite = std::make_shared<Step>();
  prewrite->ekeys = std::move(ekeys);
  prewrite->write = true;
  prewrite->deadline_ms = core->Deadline();
  auto one_pc = [muts, one_pc_ts](const std::vector<size_t>& items) {
    return one_pc_ts != 0 && items.size() == muts->size();
  };
  prewrite->make = [core, muts, primary, start_ts, one_pc, one_pc_ts,
                    async](const std::vector<size_t>& items) {
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
    if (one_pc(items)) p->set_one_pc_commit_ts(one_pc_ts);
    if (async) {
      p->set_use_async_commit(true);
      // No commit_ts far ahead of the TSO: one would hide this commit from transactions
      // that start after it is acknowledged.
      const uint64_t now = std::max<uint64_t>(
          PhysicalMs(start_ts), static_cast<uint64_t>(std::max<int64_t>(core->WallMs(), 0)));
      p->set_max_commit_ts(ComposeTs(now + TxnClientOptions::kAsyncSafeWindowMs));
      // The request holding the primary (item 0: the smallest key) names every other key.
      if (std::find(items.begin(), items.end(), size_t{0}) != items.end()) {
        for (size_t i = 1; i < muts->size(); ++i) p->add_secondaries((*muts)[i].key());
      }
    }
    return req;
  };
  // Async commit: the largest min_commit_ts answered, and whether any part fell back.
  struct AsyncSeen {
    uint64_t max_min = 0;
    bool fallback = false;
  };
  auto seen = std::make_shared<AsyncSeen>();
  auto committed_at = std::make_shared<uint64_t>(0);
  prewrite->take = [self, muts, one_pc, committed_at, async, seen](const std::vector<size_t>& items,
                                                                   pb::TxnResponse& resp) {
    if (!resp.has_prewrite()) return Verdict::Fail(Status::Internal("no prewrite answer"));
    if (resp.prewrite().one_pc_commit_ts() != 0) {
      *committed_at = resp.prewrite().one_pc_commit_ts();
      return Verdict::Done();
    }
    if (async && static_cast<size_t>(resp.prewrite().errors_size()) < items.size()) {
      // Some keys are locked: by async locks (their largest min_commit_ts), or not.
      if (resp.prewrite().min_commit_ts() == 0) {
        seen->fallback = true;
      } else {
        seen->max_min = std::max(seen->max_min, resp.prewrite().min_commit_ts());
      }
    }
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
    // A refused one-phase commit wrote nothing (nor, had the leader made it a plain
    // prewrite, would all of it be written): every key goes again.
    if (v.kind == Verdict::Kind::kRetry && one_pc(items)) v.items = items;
    return v;
  };
  prewrite->done = [self, core, muts, primary, start_ts, committed_at, async, seen,
                    done = std::move(done)](Status st) mutable {
    if (!st.ok() && async) return FinishFailedAsync(core, muts, start_ts, st, std::move(done));
    if (!st.ok()) {
      core->counters().aborted++;
      // A one-phase commit whose outcome is unknown may have committed: the primary's
      // rollback then finds it so, and commits nothing else (there are no locks).
      RollBackInBackground(core, muts, start_ts);
      return done(std::move(st));
    }
    if (*committed_at != 0) {
      core->counters().committed++;
      core->counters().one_pc_committed++;
      core->RememberOutcome(start_ts, *committed_at);
      return done(*committed_at);
    }
    if (async && !seen->fallback && seen->max_min != 0) {
      // Every key holds an async lock: committed, at the largest min_commit_ts (§3b).
      core->counters().committed++;
      core->counters().async_committed++;
      core->RememberOutcome(start_ts, seen->max_min);
      done(seen->max_min);
      return CommitSecondaries(core, muts, start_ts, seen->max_min, /*first=*/0);
    }
    if (async) core->counters().async_fallbacks++;
    // 2. commit_ts, then the primary's commit: the transaction commits here. Above every
    // async lock's min_commit_ts too (a fallback may have some).
    const uint64_t floor_ts = seen->max_min;
    core->transport()->GetTimestamp([self, core, muts, primary, start_ts, floor_ts,
                                     done = std::move(done)](Result<uint64_t> ts) {
      if (!ts.ok()) {
        RollBackInBackground(core, muts, start_ts);
        return done(ts.status());
      }
      const uint64_t commit_ts = std::max(*ts, floor_ts);
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
        if (resp.commit().has_error()) return Verdict::Fail(FromKeyError(resp.commit().error()));
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

}  // namespace micedb::txn
