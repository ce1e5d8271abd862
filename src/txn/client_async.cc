// Async commit's resolution (docs/transactions.md §3b): what became of a transaction whose
// primary lock is an async-commit lock is read off all of its keys at once.
#include <fmt/format.h>

#include "txn/client_core.h"
#include "txn/mvcc.h"

namespace micedb::txn {

void CheckAsyncTxn(const std::shared_ptr<ClientCore>& core, std::vector<std::string> keys,
                   uint64_t start_ts, int64_t deadline_ms,
                   std::function<void(Result<AsyncOutcome>)> done) {
  core->counters().async_checks++;
  struct Seen {
    bool rolled_back = false;
    bool two_phase = false;
    uint64_t committed_at = 0;  // a commit record found
    uint64_t max_min = 0;       // the largest min_commit_ts of the async locks
    size_t answered = 0;
  };
  auto seen = std::make_shared<Seen>();
  auto all = std::make_shared<std::vector<std::string>>(std::move(keys));
  auto step = std::make_shared<Step>();
  step->ekeys.reserve(all->size());
  for (const std::string& k : *all) step->ekeys.push_back(EncodeKey(k));
  step->write = true;  // it may write rollback records
  step->deadline_ms = deadline_ms;
  step->make = [all, start_ts](const std::vector<size_t>& items) {
    pb::TxnRequest req;
    pb::CheckSecondaryLocksRequest* c = req.mutable_check_secondary_locks();
    for (size_t i : items) c->add_keys((*all)[i]);
    c->set_start_ts(start_ts);
    return req;
  };
  step->take = [seen](const std::vector<size_t>& items, pb::TxnResponse& resp) {
    if (!resp.has_check_secondary_locks() ||
        static_cast<size_t>(resp.check_secondary_locks().keys_size()) != items.size()) {
      return Verdict::Fail(Status::Internal("no answer to check_secondary_locks"));
    }
    for (const pb::SecondaryLock& k : resp.check_secondary_locks().keys()) {
      seen->answered++;
      switch (k.state()) {
        case pb::SecondaryLock::COMMITTED:
          seen->committed_at = k.commit_ts();
          break;
        case pb::SecondaryLock::ROLLED_BACK:
          seen->rolled_back = true;
          break;
        default:
          if (k.lock().use_async_commit()) {
            seen->max_min = std::max(seen->max_min, k.lock().min_commit_ts());
          } else {
            seen->two_phase = true;
          }
      }
    }
    return Verdict::Done();
  };
  step->done = [seen, all, done = std::move(done)](Status st) {
    if (!st.ok()) return done(std::move(st));
    AsyncOutcome out;
    if (seen->committed_at != 0) {
      // A commit record decides: every key commits at the same timestamp.
      out.kind = AsyncOutcome::Kind::kCommitted;
      out.commit_ts = seen->committed_at;
    } else if (seen->rolled_back) {
      out.kind = AsyncOutcome::Kind::kRolledBack;
    } else if (seen->two_phase) {
      out.kind = AsyncOutcome::Kind::kTwoPhase;
    } else if (seen->answered == all->size() && seen->max_min != 0) {
      out.kind = AsyncOutcome::Kind::kCommitted;
      out.commit_ts = seen->max_min;
    } else {
      return done(Status::Internal("check_secondary_locks: keys left unanswered"));
    }
    done(out);
  };
  core->Run(std::move(step));
}

void PeekAsyncTxn(const std::shared_ptr<ClientCore>& core, std::vector<std::string> keys,
                  uint64_t start_ts, uint64_t floor, int64_t deadline_ms,
                  std::function<void(Result<std::optional<uint64_t>>)> done) {
  if (keys.empty()) return done(std::optional<uint64_t>(floor));
  struct Seen {
    size_t locked = 0;
    uint64_t max_min = 0;
  };
  auto seen = std::make_shared<Seen>();
  seen->max_min = floor;
  auto all = std::make_shared<std::vector<std::string>>(std::move(keys));
  auto step = std::make_shared<Step>();
  step->ekeys.reserve(all->size());
  for (const std::string& k : *all) step->ekeys.push_back(EncodeKey(k));
  step->deadline_ms = deadline_ms;
  // The locks over [first key, last key] of the part (one region's), older transactions'
  // included: the ones of start_ts on the part's keys count.
  step->make = [all, start_ts](const std::vector<size_t>& items) {
    std::string lo = (*all)[items.front()], hi = lo;
    for (size_t i : items) {
      lo = std::min(lo, (*all)[i]);
      hi = std::max(hi, (*all)[i]);
    }
    hi.push_back('\0');
    pb::TxnRequest req;
    pb::ScanLockRequest* s = req.mutable_scan_lock();
    s->set_start(std::move(lo));
    s->set_end(std::move(hi));
    s->set_max_start_ts(start_ts + 1);
    s->set_limit(static_cast<uint32_t>(std::min<size_t>(4 * items.size() + 16, 10000)));
    return req;
  };
  step->take = [all, seen, start_ts](const std::vector<size_t>& items, pb::TxnResponse& resp) {
    if (!resp.has_scan_lock()) return Verdict::Fail(Status::Internal("no scan_lock answer"));
    for (const pb::LockInfo& l : resp.scan_lock().locks()) {
      if (l.start_ts() != start_ts || !l.use_async_commit()) continue;
      for (size_t i : items) {
        if ((*all)[i] == l.key()) {
          seen->locked++;
          seen->max_min = std::max(seen->max_min, l.min_commit_ts());
          break;
        }
      }
    }
    return Verdict::Done();
  };
  step->done = [seen, all, done = std::move(done)](Status st) {
    if (!st.ok()) return done(std::move(st));
    if (seen->locked == all->size()) return done(std::optional<uint64_t>(seen->max_min));
    done(std::optional<uint64_t>());
  };
  core->Run(std::move(step));
}

}  // namespace micedb::txn
