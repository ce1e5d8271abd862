// Writes (and MULTI/EXEC) whose keys span regions, run atomically as a two-phase commit on the
// raw keyspace (docs/kv-format.md "Intents", docs/sharding.md §4), and the resolution of the
// intents other commands meet.
//
// The gateway cuts the command into one part per region. The part holding the first key (the
// primary) is prepared first, then the others at once; each prepare runs its part as it would
// run alone but leaves intents instead of writing. Once all ran, the primary's region commits
// with `decide`, which succeeds only while the primary still holds its intent: from that entry
// on the transaction is committed. The client is answered, then the other regions commit and
// the commit record at the primary is dropped. Because the primary is prepared before any
// other part, an intent anywhere else implies one at the primary (or a decision there): a
// reader that finds neither may roll the intent back.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "kv/command_keys.h"
#include "kv/command_result.h"
#include "kv/value_format.h"
#include "router/router.h"

namespace micedb::router {

namespace {

bool IsLocked(const kv::CommandResult& r) {
  return r.has_error() && r.error().code() == kv::KvError::LOCKED && r.error().has_lock();
}

// True when a part's prepare ran its body (and so left intents): a refusal, an aborted txn and
// MSETNX's 0 wrote nothing (the state machine's own rule, ops_intents.cc).
bool PartRan(const kv::Command& body, const kv::CommandResult& r) {
  if (r.has_error() || r.has_aborted()) return false;
  if (body.has_msetnx() && r.has_integer() && r.integer() == 0) return false;
  if (body.has_txn() && (!r.has_array() || r.array().items_size() != body.txn().commands_size())) {
    return false;
  }
  return true;
}

}  // namespace

struct Router::CrossTxn {
  kv::Command cmd;
  Callback done;
  int64_t deadline_ms = 0;  // monotonic
  int attempt = 0;
  uint64_t txn_id = 0;
  // When the write first began (kept across its attempts): its age, for wait-die.
  int64_t birth_ms = 0;
  std::string primary;

  struct Part {
    kv::Command body;
    std::vector<std::string> keys;  // user keys the body names
    std::vector<size_t> positions;  // a cut command's: its keys' positions in the command
    int waits = 0;                  // times its prepare waited on a younger write's intent
    kv::CommandResult result;
    bool ran = false;
    std::optional<Status> failure;
  };
  std::vector<Part> parts;  // parts[0] holds the primary
  // MULTI/EXEC: where each command's result is found: (part, index in that part's txn, the
  // command's key positions in that part when the command was cut).
  struct Piece {
    size_t part;
    int index;
    std::vector<size_t> positions;
  };
  std::vector<std::vector<Piece>> pieces;

  // The commit at the primary's region names the primary alone (a split cut its part).
  bool decide_alone = false;

  std::mutex mu;
  size_t remaining = 0;
};

void Router::SendKv(kv::Command cmd, std::function<void(Result<kv::CommandResult>)> done) {
  if (cmd.now_ms() == 0) cmd.set_now_ms(clock_->NowWallMillis());
  std::vector<std::string> keys;
  kv::UserKeys(cmd, &keys);
  for (std::string& k : keys) k = kv::EncodeRawKey(k);
  region::RegionRequest req;
  req.mutable_header()->set_request_id(options_.request_id_base + next_request_.fetch_add(1));
  req.mutable_header()->set_request_ts_ms(clock_->NowWallMillis());
  *req.mutable_kv() = std::move(cmd);
  std::string route = keys.empty() ? std::string(1, kv::kRawKeyPrefix) : keys.front();
  Send(std::move(req), std::move(route), std::move(keys), true,
       [done = std::move(done)](Result<region::RegionResponse> r) {
         if (!r.ok()) return done(r.status());
         done(std::move(*r->mutable_kv()));
       });
}

void Router::ResolveLock(const kv::LockInfo& lock, std::function<void(bool)> then) {
  counters_.locks_resolved++;
  kv::Command check;
  check.mutable_check_intent()->set_txn_id(lock.txn_id());
  check.mutable_check_intent()->set_primary(lock.primary());
  SendKv(std::move(check), [this, lock, then = std::move(then)](Result<kv::CommandResult> r) {
    // Committed: [1, the keys of its other intents]; rolled back: 0; pending: 2.
    const bool committed = r.ok() && r->has_array() && r->array().items_size() > 0 &&
                           r->array().items(0).integer() == 1;
    if (!committed && (!r.ok() || !r->has_integer() || r->integer() != 0)) return then(false);
    std::vector<std::string> others;
    if (committed) {
      for (int i = 1; i < r->array().items_size(); ++i)
        others.push_back(r->array().items(i).bulk());
    }
    ResolveKeys(lock.txn_id(), {lock.key()}, committed,
                [this, lock, committed, others = std::move(others),
                 then = std::move(then)](bool ok) mutable {
                  then(ok);
                  // A committed transaction whose gateway did not finish (it died, or its
                  // last steps failed): finished here, and its commit record dropped.
                  if (ok && committed && !others.empty()) FinishCommitted(lock, std::move(others));
                });
  });
}

void Router::FinishCommitted(const kv::LockInfo& lock, std::vector<std::string> others) {
  ResolveKeys(lock.txn_id(), std::move(others), true, [this, lock](bool ok) {
    if (!ok) return;
    kv::Command forget;
    forget.mutable_forget_decision()->set_txn_id(lock.txn_id());
    forget.mutable_forget_decision()->set_primary(lock.primary());
    SendKv(std::move(forget), [](Result<kv::CommandResult>) {});
  });
}

// Cuts the command into parts by region (primary's first); false when a key's region is not
// known yet; a refusal in *refused when the command cannot be cut.
bool Router::PlanCross(CrossTxn& t, std::optional<kv::CommandResult>* refused) {
  t.parts.clear();
  t.pieces.clear();
  std::map<uint64_t, size_t> part_of;  // region -> index in t.parts
  bool known = true;
  auto region_of = [&](const std::string& key) -> std::optional<uint64_t> {
    auto route = Route(kv::EncodeRawKey(key));
    if (!route) {
      known = false;
      return std::nullopt;
    }
    return route->desc.id();
  };
  auto part = [&](uint64_t region) -> CrossTxn::Part& {
    auto [it, added] = part_of.emplace(region, t.parts.size());
    if (added) {
      t.parts.emplace_back();
      t.parts.back().body.set_now_ms(t.cmd.now_ms());
      if (t.cmd.has_txn()) t.parts.back().body.mutable_txn();
    }
    return t.parts[it->second];
  };
  std::vector<std::string> keys;
  kv::UserKeys(t.cmd, &keys);
  if (keys.empty()) return true;
  t.primary = keys.front();
  auto first = region_of(keys.front());
  if (!first) return false;
  part(*first);
  if (!t.cmd.has_txn()) {
    std::map<uint64_t, std::vector<size_t>> by_region;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto r = region_of(keys[i]);
      if (!r) return false;
      by_region[*r].push_back(i);
    }
    for (auto& [region, positions] : by_region) {
      CrossTxn::Part& p = part(region);
      const int64_t now = p.body.now_ms();
      p.body = kv::PartOf(t.cmd, positions);
      p.body.set_now_ms(now);
      p.positions = positions;
    }
  } else {
    for (const kv::WatchedKey& w : t.cmd.txn().watched()) {
      auto r = region_of(w.key());
      if (!r) return false;
      *part(*r).body.mutable_txn()->add_watched() = w;
    }
    t.pieces.resize(static_cast<size_t>(t.cmd.txn().commands_size()));
    for (int i = 0; i < t.cmd.txn().commands_size(); ++i) {
      const kv::Command& inner = t.cmd.txn().commands(i);
      std::vector<std::string> inner_keys;
      kv::UserKeys(inner, &inner_keys);
      std::map<uint64_t, std::vector<size_t>> by_region;
      for (size_t k = 0; k < inner_keys.size(); ++k) {
        auto r = region_of(inner_keys[k]);
        if (!r) return false;
        by_region[*r].push_back(k);
      }
      if (by_region.empty()) by_region[*first];  // keyless: with the primary
      auto add = [&](uint64_t region, kv::Command c, std::vector<size_t> positions) {
        const size_t index = part_of.count(region) ? part_of[region] : t.parts.size();
        kv::Txn* body = part(region).body.mutable_txn();
        t.pieces[static_cast<size_t>(i)].push_back(
            {index, body->commands_size(), std::move(positions)});
        *body->add_commands() = std::move(c);
      };
      if (by_region.size() == 1) {
        add(by_region.begin()->first, inner, {});
        continue;
      }
      if (!kv::Splittable(inner) && !inner.has_mset() && !inner.has_del()) {
        *refused = kv::ErrorResult(
            kv::KvError::CROSS_REGION,
            fmt::format("command {} of the transaction cannot be cut by region and its keys "
                        "lie in several; keep its keys in one region",
                        i + 1));
        return true;
      }
      for (auto& [region, positions] : by_region) {
        add(region, kv::PartOf(inner, positions), positions);
      }
    }
  }
  for (CrossTxn::Part& p : t.parts) kv::UserKeys(p.body, &p.keys);
  return true;
}

void Router::StartCrossRegion(kv::Command cmd, Callback done) {
  auto t = std::make_shared<CrossTxn>();
  t->cmd = std::move(cmd);
  t->done = std::move(done);
  t->deadline_ms = NowMs() + options_.request_timeout_ms;
  t->birth_ms = clock_->NowWallMillis();
  counters_.cross_region_txns++;
  CrossAttempt(std::move(t));
}

void Router::CrossAttempt(std::shared_ptr<CrossTxn> t) {
  t->attempt++;
  if (NowMs() >= t->deadline_ms) {
    return t->done(Status::Unavailable(
        "a write across regions could not take its keys' locks in time; nothing was written"));
  }
  std::optional<kv::CommandResult> refused;
  if (!PlanCross(*t, &refused)) return CrossRetry(std::move(t), nullptr);
  if (refused) return t->done(std::move(*refused));
  t->txn_id = options_.request_id_base + next_request_.fetch_add(1);
  t->decide_alone = false;
  CrossPrepare(t, 0);
}

void Router::CrossRetry(std::shared_ptr<CrossTxn> t, const kv::LockInfo* lock) {
  counters_.cross_region_retries++;
  // Spread by transaction (a fixed hash: no randomness below the front ends) so that two
  // transactions that met each other's intents do not meet again in step.
  const int64_t cap = std::min<int64_t>(int64_t{4} << std::min(t->attempt, 5), 100);
  const int64_t delay = 1 + static_cast<int64_t>((t->txn_id * 0x9E3779B97F4A7C15ull) >> 40) % cap;
  auto again = [this, t, delay](bool) { executor_->After(delay, [this, t] { CrossAttempt(t); }); };
  if (lock != nullptr) return ResolveLock(*lock, std::move(again));
  again(false);
}

kv::Command Router::PrepareOf(const CrossTxn& t, size_t i) const {
  kv::Command c;
  c.set_now_ms(clock_->NowWallMillis());
  kv::Prepare* p = c.mutable_prepare();
  p->set_txn_id(t.txn_id);
  p->set_primary(t.primary);
  p->set_lock_expire_at_ms(c.now_ms() + options_.cross_region_lock_ttl_ms);
  p->set_birth_ms(t.birth_ms);
  *p->mutable_body() = t.parts[i].body;
  return c;
}

void Router::CrossPrepare(std::shared_ptr<CrossTxn> t, size_t first) {
  // The primary's part alone first, then every other part at once.
  const size_t end = first == 0 ? 1 : t->parts.size();
  {
    std::lock_guard<std::mutex> l(t->mu);
    t->remaining = end - first;
  }
  for (size_t i = first; i < end; ++i) PreparePart(t, i, first);
}

void Router::PreparePart(std::shared_ptr<CrossTxn> t, size_t i, size_t first) {
  SendKv(PrepareOf(*t, i), [this, t, i, first](Result<kv::CommandResult> r) {
    // Met an intent of a younger transaction: wait for it (keeping what is prepared), as
    // wait-die has it -- the older waits, the younger gives way -- so that no two wait for
    // each other and the oldest always gets through.
    if (r.ok() && IsLocked(*r) && Older(*t, r->error().lock()) && NowMs() < t->deadline_ms) {
      const kv::LockInfo lock = r->error().lock();
      int waits = 0;
      {
        std::lock_guard<std::mutex> l(t->mu);
        waits = ++t->parts[i].waits;
      }
      // Each look at the holder is a raft write at its primary: back off (2 ms doubling to
      // 64), never past the holder's lock.
      const int64_t delay =
          std::clamp<int64_t>(std::min<int64_t>(int64_t{2} << std::min(waits, 5),
                                                lock.expire_at_ms() - clock_->NowWallMillis()),
                              1, 64);
      return ResolveLock(lock, [this, t, i, first, delay](bool progressed) {
        executor_->After(progressed ? 0 : delay, [this, t, i, first] { PreparePart(t, i, first); });
      });
    }
    {
      std::lock_guard<std::mutex> l(t->mu);
      CrossTxn::Part& p = t->parts[i];
      if (!r.ok()) {
        p.failure = r.status();
        // A prepare whose answer was lost may have left intents: rolled back with the rest.
        p.ran = true;
      } else {
        p.result = std::move(r).value();
        p.ran = PartRan(p.body, p.result);
      }
      if (--t->remaining != 0) return;
    }
    CrossPrepared(t, first);
  });
}

bool Router::Older(const CrossTxn& t, const kv::LockInfo& holder) const {
  return t.birth_ms != holder.birth_ms() ? t.birth_ms < holder.birth_ms()
                                         : t.txn_id < holder.txn_id();
}

void Router::CrossPrepared(std::shared_ptr<CrossTxn> t, size_t first) {
  const size_t end = first == 0 ? 1 : t->parts.size();
  bool all_ran = true;
  for (size_t i = first; i < end; ++i) {
    const CrossTxn::Part& p = t->parts[i];
    if (p.failure || !p.ran) all_ran = false;
  }
  if (all_ran) {
    if (first == 0 && t->parts.size() > 1) return CrossPrepare(t, 1);
    return CrossCommit(t);
  }
  // Something did not run: undo what did, then answer or start again.
  CrossRollback(t, [this, t, first, end] {
    std::optional<kv::LockInfo> lock;
    bool again = false;
    for (size_t i = first; i < end; ++i) {
      const CrossTxn::Part& p = t->parts[i];
      if (p.failure) {
        if (p.failure->code() == StatusCode::kAborted) {
          again = true;  // its keys are in several regions now (a split)
          continue;
        }
        return t->done(Status::Unavailable(fmt::format(
            "a write across regions could not prepare every region ({}); nothing was written",
            p.failure->message())));
      }
      if (IsLocked(p.result)) {
        if (!lock) lock = p.result.error().lock();
        again = true;
      } else if (p.result.has_error() && (p.result.error().code() == kv::KvError::INTENT_LOST ||
                                          p.result.error().code() == kv::KvError::UNAVAILABLE)) {
        again = true;
      }
    }
    if (again) return CrossRetry(t, lock ? &*lock : nullptr);
    // A part that refused or ran nothing decides the answer: an error, MSETNX's 0, an
    // aborted EXEC.
    for (size_t i = first; i < end; ++i) {
      if (!t->parts[i].ran) return t->done(std::move(t->parts[i].result));
    }
    t->done(Status::Internal("cross-region write: no part explains the abort"));
  });
}

void Router::ResolveKeys(uint64_t txn_id, std::vector<std::string> keys, bool commit,
                         std::function<void(bool)> then) {
  kv::Command c;
  kv::ResolveIntents* op = c.mutable_resolve_intents();
  op->set_txn_id(txn_id);
  for (const std::string& k : keys) op->add_keys(k);
  op->set_commit(commit);
  SendKv(std::move(c), [this, txn_id, keys = std::move(keys), commit,
                        then = std::move(then)](Result<kv::CommandResult> r) mutable {
    if (r.ok()) return then(!r->has_error());
    if (r.status().code() != StatusCode::kAborted || keys.size() < 2) return then(false);
    // A split put the keys in several regions since they were prepared: regrouped by the
    // regions the cache knows now (one key at a time where it knows none).
    std::map<uint64_t, std::vector<std::string>> by_region;
    std::vector<std::vector<std::string>> groups;
    for (std::string& k : keys) {
      auto route = Route(kv::EncodeRawKey(k));
      if (route) {
        by_region[route->desc.id()].push_back(std::move(k));
      } else {
        groups.push_back({std::move(k)});
      }
    }
    if (by_region.size() == 1 && groups.empty()) {
      // The cache has not heard of the split yet: one key at a time.
      for (std::string& k : by_region.begin()->second) groups.push_back({std::move(k)});
    } else {
      for (auto& [region, ks] : by_region) groups.push_back(std::move(ks));
    }
    auto left = std::make_shared<std::atomic<size_t>>(groups.size());
    auto ok = std::make_shared<std::atomic<bool>>(true);
    auto next = std::make_shared<std::function<void(bool)>>(std::move(then));
    for (std::vector<std::string>& g : groups) {
      ResolveKeys(txn_id, std::move(g), commit, [left, ok, next](bool one) {
        if (!one) ok->store(false);
        if (left->fetch_sub(1) == 1) (*next)(ok->load());
      });
    }
  });
}

void Router::CrossRollback(std::shared_ptr<CrossTxn> t, std::function<void()> then) {
  auto left = std::make_shared<std::atomic<size_t>>(t->parts.size());
  auto next = std::make_shared<std::function<void()>>(std::move(then));
  for (const CrossTxn::Part& p : t->parts) {
    // Best effort: an intent a rollback misses is rolled back by the first reader that meets
    // it once its lock expires (the primary's intent is gone or expired by then).
    ResolveKeys(t->txn_id, p.keys, false, [left, next](bool) {
      if (left->fetch_sub(1) == 1) (*next)();
    });
  }
}

kv::CommandResult Router::CrossJoin(const CrossTxn& t) const {
  if (!t.cmd.has_txn()) {
    std::vector<std::vector<size_t>> positions;
    std::vector<kv::CommandResult> results;
    std::vector<std::string> keys;
    kv::UserKeys(t.cmd, &keys);
    for (const CrossTxn::Part& p : t.parts) {
      positions.push_back(p.positions);
      results.push_back(p.result);
    }
    return kv::JoinParts(t.cmd, keys.size(), positions, results);
  }
  kv::CommandResult all = kv::ArrayResult();
  for (size_t i = 0; i < t.pieces.size(); ++i) {
    const auto& pieces = t.pieces[i];
    const kv::Command& inner = t.cmd.txn().commands(static_cast<int>(i));
    if (pieces.size() == 1 && pieces[0].positions.empty()) {
      *all.mutable_array()->add_items() =
          t.parts[pieces[0].part].result.array().items(pieces[0].index);
      continue;
    }
    std::vector<std::string> inner_keys;
    kv::UserKeys(inner, &inner_keys);
    std::vector<std::vector<size_t>> positions;
    std::vector<kv::CommandResult> results;
    for (const CrossTxn::Piece& piece : pieces) {
      positions.push_back(piece.positions);
      results.push_back(t.parts[piece.part].result.array().items(piece.index));
    }
    *all.mutable_array()->add_items() = kv::JoinParts(inner, inner_keys.size(), positions, results);
  }
  return all;
}

std::vector<std::string> Router::CrossOthers(const CrossTxn& t) const {
  std::vector<std::string> out;
  if (t.decide_alone) {
    for (const std::string& k : t.parts[0].keys) {
      if (k != t.primary) out.push_back(k);
    }
  }
  for (size_t i = 1; i < t.parts.size(); ++i) {
    out.insert(out.end(), t.parts[i].keys.begin(), t.parts[i].keys.end());
  }
  return out;
}

void Router::CrossCommit(std::shared_ptr<CrossTxn> t) {
  kv::Command c;
  kv::ResolveIntents* op = c.mutable_resolve_intents();
  op->set_txn_id(t->txn_id);
  if (t->decide_alone) {
    op->add_keys(t->primary);
  } else {
    for (const std::string& k : t->parts[0].keys) op->add_keys(k);
  }
  op->set_commit(true);
  op->set_primary(t->primary);
  // Always decided against the primary's intent (a reader may have rolled the transaction
  // back); recorded when intents elsewhere remain, with their keys.
  op->set_decide(true);
  for (std::string& k : CrossOthers(*t)) op->add_others(std::move(k));
  op->set_record(op->others_size() > 0);
  SendKv(std::move(c), [this, t](Result<kv::CommandResult> r) {
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kAborted && !t->decide_alone) {
        // A split cut the primary's part (and nothing was sent): the primary decides alone,
        // the rest follow.
        t->decide_alone = true;
        return CrossCommit(t);
      }
      if (r.status().code() == StatusCode::kTimedOut) {
        t->done(Status::TimedOut(fmt::format(
            "the commit of a write across regions got no answer in time; it may or may not "
            "have been applied ({})",
            r.status().message())));
        return CrossSettle(t, 0);
      }
      // Not applied (Unavailable): nothing committed; undo the rest.
      return CrossRollback(t, [t, st = r.status()] {
        t->done(Status::Unavailable(fmt::format(
            "a write across regions could not commit ({}); nothing was written", st.message())));
      });
    }
    if (r->has_error()) {
      // INTENT_LOST: a reader rolled the primary back after its lock expired (asked again at
      // the primary, to be sure it is not committed after all); start again.
      return CrossStatus(t, [this, t](int state) {
        if (state == 1) {
          t->done(CrossJoin(*t));
          return CrossFinish(t);
        }
        CrossRollback(t, [this, t] { CrossRetry(t, nullptr); });
      });
    }
    t->done(CrossJoin(*t));
    CrossFinish(t);
  });
}

void Router::CrossStatus(std::shared_ptr<CrossTxn> t, std::function<void(int)> then) {
  kv::Command check;
  check.mutable_check_intent()->set_txn_id(t->txn_id);
  check.mutable_check_intent()->set_primary(t->primary);
  SendKv(std::move(check), [then = std::move(then)](Result<kv::CommandResult> r) {
    if (!r.ok()) return then(-1);
    if (r->has_array() && r->array().items_size() > 0) return then(1);
    then(r->has_integer() ? static_cast<int>(r->integer()) : -1);
  });
}

void Router::CrossSettle(std::shared_ptr<CrossTxn> t, int round) {
  // The commit's outcome is unknown to the client; this gateway still finishes what it can,
  // once the lock has had time to expire, so that no intent or record is left behind.
  if (round >= 5) return;
  executor_->After(options_.cross_region_lock_ttl_ms, [this, t, round] {
    CrossStatus(t, [this, t, round](int state) {
      if (state == 1) return CrossFinish(t);
      if (state == 0) return CrossRollback(t, [] {});
      CrossSettle(t, round + 1);
    });
  });
}

void Router::CrossFinish(std::shared_ptr<CrossTxn> t) {
  // The other keys commit; once all have, the commit record at the primary is dropped (an
  // intent that could not be reached keeps it, for the readers that will resolve it).
  std::vector<std::string> others = CrossOthers(*t);
  if (others.empty()) return;
  ResolveKeys(t->txn_id, std::move(others), true, [this, t](bool ok) {
    if (!ok) return;
    kv::Command forget;
    forget.mutable_forget_decision()->set_txn_id(t->txn_id);
    forget.mutable_forget_decision()->set_primary(t->primary);
    SendKv(std::move(forget), [](Result<kv::CommandResult>) {});
  });
}

}  // namespace micedb::router
