#include "txn/actions.h"

#include <limits>

#include <fmt/format.h>

namespace micedb::txn {

using storage::Cf;

namespace {

TxnError Locked(std::string_view key, uint64_t start_ts, Lock lock) {
  TxnError e;
  e.kind = TxnError::Kind::kKeyIsLocked;
  e.key = std::string(key);
  e.start_ts = start_ts;
  e.lock = std::move(lock);
  return e;
}

TxnError Simple(TxnError::Kind kind, std::string_view key, uint64_t start_ts) {
  TxnError e;
  e.kind = kind;
  e.key = std::string(key);
  e.start_ts = start_ts;
  return e;
}

WriteKind WriteKindOf(LockKind k) {
  switch (k) {
    case LockKind::kPut:
      return WriteKind::kPut;
    case LockKind::kDelete:
      return WriteKind::kDelete;
    case LockKind::kLock:
      return WriteKind::kLock;
  }
  return WriteKind::kLock;
}

// Whether a lock stops a read at read_ts: a lock-only one never does; one of a transaction
// that started after read_ts, or (async commit) that will commit above it, cannot commit at
// or below read_ts.
bool StopsRead(const Lock& lock, uint64_t read_ts) {
  if (lock.kind == LockKind::kLock || lock.start_ts > read_ts) return false;
  return !(lock.use_async_commit && lock.min_commit_ts > read_ts);
}

// Turns `lock` (held by its own transaction) into its write record at commit_ts. A computed
// commit_ts (async commit) may be another transaction's start_ts, whose rollback record may
// stand there already: the commit record takes its place and keeps it (§3b).
Status CommitLock(MvccReader& r, kv::ApplyBatch* wb, const std::string& ekey, const Lock& lock,
                  uint64_t commit_ts) {
  Write w;
  w.kind = WriteKindOf(lock.kind);
  w.start_ts = lock.start_ts;
  w.short_value = lock.short_value;
  if (lock.use_async_commit) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<Write> there, r.WriteAt(ekey, commit_ts));
    if (there && there->kind == WriteKind::kRollback) w.overlapped_rollback = true;
  }
  wb->Delete(Cf::kLock, ekey);
  wb->Put(Cf::kWrite, KeyWithTs(ekey, commit_ts), w.Encode());
  return Status::OK();
}

// Removes `lock` (held by its own transaction) from E(K), with its value in `default`.
void DropLock(kv::ApplyBatch* wb, const std::string& ekey, const Lock& lock) {
  wb->Delete(Cf::kLock, ekey);
  if (lock.kind == LockKind::kPut && !lock.short_value) {
    wb->Delete(Cf::kDefault, KeyWithTs(ekey, lock.start_ts));
  }
}

// The rollback record of start_ts. Where another transaction's commit record already stands
// at start_ts (an async commit's computed commit_ts), that record is kept and marked instead
// (§3b).
Status PutRollback(MvccReader& r, kv::ApplyBatch* wb, const std::string& ekey, uint64_t start_ts,
                   bool protect) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Write> there, r.WriteAt(ekey, start_ts));
  if (there && there->kind != WriteKind::kRollback && there->start_ts != start_ts) {
    if (!there->overlapped_rollback) {
      there->overlapped_rollback = true;
      wb->Put(Cf::kWrite, KeyWithTs(ekey, start_ts), there->Encode());
    }
    return Status::OK();
  }
  Write w;
  w.kind = WriteKind::kRollback;
  w.start_ts = start_ts;
  w.protected_rollback = protect || (there && there->protected_rollback);
  wb->Put(Cf::kWrite, KeyWithTs(ekey, start_ts), w.Encode());
  return Status::OK();
}

// What a prewrite of `key` by `txn` finds (§3 steps 1-3).
struct KeyState {
  enum class Kind { kFree, kOwnLock, kOwnCommit, kRefused };
  Kind kind = Kind::kFree;
  uint64_t commit_ts = 0;         // kOwnCommit
  std::optional<TxnError> error;  // kRefused
  std::optional<Lock> own;        // kOwnLock
};
Result<KeyState> CheckForPrewrite(MvccReader& r, const TxnMeta& txn, const std::string& key,
                                  const std::string& ekey) {
  KeyState st;
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
  if (held) {
    if (held->start_ts == txn.start_ts) {
      st.kind = KeyState::Kind::kOwnLock;
      st.own = std::move(held);
    } else {
      st.kind = KeyState::Kind::kRefused;
      st.error = Locked(key, txn.start_ts, std::move(*held));
    }
    return st;
  }
  // One walk over the key's records down to start_ts answers the next two questions.
  MICEDB_ASSIGN_OR_RETURN(MvccReader::PrewriteRecords recs, r.ForPrewrite(ekey, txn.start_ts));
  // A record of this transaction: a late duplicate of a prewrite that committed, or one that
  // a rollback (a reader resolving an expired lock) must keep out.
  if (const std::optional<VersionedWrite>& own = recs.own) {
    if (own->write.kind == WriteKind::kRollback) {
      st.kind = KeyState::Kind::kRefused;
      st.error = Simple(TxnError::Kind::kTxnAborted, key, txn.start_ts);
    } else {
      st.kind = KeyState::Kind::kOwnCommit;
      st.commit_ts = own->commit_ts;
    }
    return st;
  }
  // A change committed after start_ts: the snapshot this transaction read is stale. (Other
  // transactions' rollbacks change nothing.) One committed at start_ts itself -- only an
  // async commit's computed commit_ts can fall there -- is in that snapshot: a read at
  // start_ts sees it, or waits for it (§3b).
  if (const std::optional<VersionedWrite>& change = recs.change) {
    TxnError e = Simple(TxnError::Kind::kWriteConflict, key, txn.start_ts);
    e.conflict_start_ts = change->write.start_ts;
    e.conflict_commit_ts = change->commit_ts;
    st.kind = KeyState::Kind::kRefused;
    st.error = std::move(e);
  }
  return st;
}

}  // namespace

std::string TxnError::Message() const {
  switch (kind) {
    case Kind::kKeyIsLocked:
      return fmt::format(
          "key {:?} is locked by the transaction that started at {} (primary {:?}, TTL {} ms); "
          "resolve the lock and retry",
          key, lock.start_ts, lock.primary, lock.ttl_ms);
    case Kind::kWriteConflict:
      return fmt::format(
          "write conflict on key {:?}: the transaction that started at {} committed it at {}, "
          "after this transaction's start at {}; retry the transaction",
          key, conflict_start_ts, conflict_commit_ts, start_ts);
    case Kind::kTxnAborted:
      return fmt::format(
          "the transaction that started at {} was rolled back (key {:?}); retry the transaction",
          start_ts, key);
    case Kind::kTxnLockNotFound:
      return fmt::format(
          "the transaction that started at {} holds no lock on key {:?} (never prewritten, or "
          "cleaned up); retry the transaction",
          start_ts, key);
    case Kind::kTxnCommitted:
      return fmt::format(
          "the transaction that started at {} committed key {:?} at {}; it cannot be rolled back",
          start_ts, key, conflict_commit_ts);
  }
  return "transaction error";
}

Result<GetResult> Get(MvccReader& r, std::string_view key, uint64_t read_ts) {
  const std::string ekey = EncodeKey(key);
  GetResult out;
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> lock, r.LoadLock(ekey));
  if (lock && StopsRead(*lock, read_ts)) {
    out.locked = Locked(key, 0, std::move(*lock));
    return out;
  }
  MICEDB_ASSIGN_OR_RETURN(out.value, r.ValueAt(ekey, read_ts));
  return out;
}

Result<ScanResult> Scan(MvccReader& r, std::string_view start, std::string_view end,
                        uint64_t read_ts, size_t limit) {
  ScanResult out;
  if (limit == 0) return Status::InvalidArgument("scan: limit is 0");
  const std::string ebegin = EncodeKey(start);
  const std::string eend = end.empty() ? std::string() : EncodeKey(end);
  // The keys: each key's newest put or delete at or below read_ts decides. The walk stops
  // after `limit` keys taken, or at a key boundary once it has looked at more records than a
  // budget allows (deleted keys and old versions take no room in the answer).
  const uint64_t budget = uint64_t{limit} * 64 + 1024;
  uint64_t examined = 0;
  std::string current;     // the key being looked at (E(K))
  bool decided = false;    // its version is found
  std::string stop_after;  // E(K) of the last key taken once `limit` is reached
  std::string resume_at;   // E(K) the budget stopped before
  Status st = Status::OK();
  Status walked =
      r.ForEachWrite(ebegin, eend, [&](std::string_view ekey, uint64_t ts, const Write& w) {
        if (ekey != current) {
          if (!stop_after.empty()) return false;  // a key past the last one taken
          if (examined >= budget) {
            resume_at.assign(ekey);
            return false;
          }
          current.assign(ekey);
          decided = false;
        }
        ++examined;
        if (decided || ts > read_ts) return true;
        if (w.kind != WriteKind::kPut && w.kind != WriteKind::kDelete) return true;
        decided = true;
        if (w.kind == WriteKind::kPut) {
          Result<std::string> v = r.PutValue(ekey, w);
          Result<std::string> k = DecodeKey(ekey);
          if (!v.ok() || !k.ok()) {
            st = !v.ok() ? v.status() : k.status();
            return false;
          }
          out.kvs.emplace_back(std::move(k).value(), std::move(v).value());
          if (out.kvs.size() == limit) stop_after = current;
        }
        return true;
      });
  MICEDB_RETURN_IF_ERROR(st);
  MICEDB_RETURN_IF_ERROR(walked);
  // The locks over what was scanned: one from a transaction that started at or before
  // read_ts may commit below it, so the scan stops before it.
  std::string lock_end = eend;
  if (!stop_after.empty()) {
    lock_end = stop_after;
    lock_end.push_back('\0');
  } else if (!resume_at.empty()) {
    lock_end = resume_at;
  }
  bool more_locks = true;
  std::string from = ebegin;
  while (more_locks) {
    MICEDB_ASSIGN_OR_RETURN(std::vector<MvccReader::KeyLock> locks,
                            r.ScanLocks(from, lock_end, 256, &more_locks));
    for (auto& kl : locks) {
      if (!StopsRead(kl.lock, read_ts)) continue;
      MICEDB_ASSIGN_OR_RETURN(std::string key, DecodeKey(kl.ekey));
      std::erase_if(out.kvs, [&](const auto& kv) { return kv.first >= key; });
      out.locked = Locked(key, 0, std::move(kl.lock));
      out.next = key;
      return out;
    }
    if (more_locks) {
      from = locks.back().ekey;
      from.push_back('\0');
    }
  }
  if (!stop_after.empty()) {
    MICEDB_ASSIGN_OR_RETURN(std::string last, DecodeKey(stop_after));
    last.push_back('\0');
    out.next = std::move(last);
  } else if (!resume_at.empty()) {
    MICEDB_ASSIGN_OR_RETURN(out.next, DecodeKey(resume_at));
  }
  return out;
}

Result<std::optional<TxnError>> Prewrite(MvccReader& r, kv::ApplyBatch* wb, const TxnMeta& txn,
                                         const Mutation& m, uint64_t* committed_at,
                                         uint64_t* async_min_commit_ts) {
  using Out = std::optional<TxnError>;
  if (txn.start_ts == 0) return Status::InvalidArgument("prewrite: start_ts is 0");
  if (txn.use_async_commit && txn.min_commit_ts <= txn.start_ts) {
    return Status::InvalidArgument(
        fmt::format("prewrite: async commit with min_commit_ts {} not above start_ts {}",
                    txn.min_commit_ts, txn.start_ts));
  }
  const std::string ekey = EncodeKey(m.key);
  MICEDB_ASSIGN_OR_RETURN(KeyState st, CheckForPrewrite(r, txn, m.key, ekey));
  switch (st.kind) {
    case KeyState::Kind::kOwnLock:
      // Prewritten already: the lock in place says how it commits, not this request.
      if (async_min_commit_ts != nullptr) {
        *async_min_commit_ts = st.own->use_async_commit ? st.own->min_commit_ts : 0;
      }
      return Out();
    case KeyState::Kind::kOwnCommit:
      if (committed_at != nullptr) *committed_at = st.commit_ts;
      return Out();
    case KeyState::Kind::kRefused:
      return st.error;
    case KeyState::Kind::kFree:
      break;
  }
  Lock lock;
  switch (m.op) {
    case Mutation::Op::kPut:
      lock.kind = LockKind::kPut;
      break;
    case Mutation::Op::kDelete:
      lock.kind = LockKind::kDelete;
      break;
    case Mutation::Op::kLock:
      lock.kind = LockKind::kLock;
      break;
  }
  lock.primary = txn.primary;
  lock.start_ts = txn.start_ts;
  lock.ttl_ms = txn.ttl_ms;
  lock.txn_size = txn.txn_size;
  if (txn.use_async_commit) {
    lock.use_async_commit = true;
    lock.min_commit_ts = txn.min_commit_ts;
    if (m.key == txn.primary) lock.secondaries = txn.secondaries;
  }
  if (m.op == Mutation::Op::kPut) {
    if (m.value.size() <= kShortValueMax) {
      lock.short_value = m.value;
    } else {
      wb->Put(Cf::kDefault, KeyWithTs(ekey, txn.start_ts), m.value);
    }
  }
  wb->Put(Cf::kLock, ekey, lock.Encode());
  if (async_min_commit_ts != nullptr) {
    *async_min_commit_ts = lock.use_async_commit ? lock.min_commit_ts : 0;
  }
  return Out();
}

Result<OnePcResult> OnePc(MvccReader& r, kv::ApplyBatch* wb, const TxnMeta& txn,
                          const std::vector<Mutation>& ms, uint64_t commit_ts) {
  if (txn.start_ts == 0) return Status::InvalidArgument("1pc: start_ts is 0");
  if (commit_ts <= txn.start_ts) {
    return Status::InvalidArgument(
        fmt::format("1pc: commit_ts {} is not above start_ts {}", commit_ts, txn.start_ts));
  }
  OnePcResult out;
  bool prewritten = false;  // a lock of this transaction: an earlier attempt fell back
  uint64_t done_at = 0;     // a commit record of this transaction: an earlier attempt applied
  std::vector<bool> free(ms.size(), false);
  for (size_t i = 0; i < ms.size(); ++i) {
    MICEDB_ASSIGN_OR_RETURN(KeyState st, CheckForPrewrite(r, txn, ms[i].key, EncodeKey(ms[i].key)));
    switch (st.kind) {
      case KeyState::Kind::kOwnLock:
        prewritten = true;
        break;
      case KeyState::Kind::kOwnCommit:
        done_at = st.commit_ts;
        break;
      case KeyState::Kind::kRefused:
        out.errors.push_back(std::move(*st.error));
        break;
      case KeyState::Kind::kFree:
        free[i] = true;
        break;
    }
  }
  if (!out.errors.empty()) return out;
  if (prewritten) {
    // Two phases after all: lock what is not locked yet (Prewrite is idempotent).
    for (const Mutation& m : ms) {
      MICEDB_ASSIGN_OR_RETURN(std::optional<TxnError> e, Prewrite(r, wb, txn, m));
      if (e) out.errors.push_back(std::move(*e));
    }
    return out;
  }
  // A retry of an applied one-phase commit finds its records: they decide the timestamp, and
  // nothing is written (a key found free then lost its record to GC: newer versions hide it,
  // and commit_ts was not admitted for these keys).
  if (done_at != 0) {
    out.committed_at = done_at;
    return out;
  }
  const uint64_t at = commit_ts;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (!free[i]) continue;
    const Mutation& m = ms[i];
    const std::string ekey = EncodeKey(m.key);
    Write w;
    w.start_ts = txn.start_ts;
    switch (m.op) {
      case Mutation::Op::kPut:
        w.kind = WriteKind::kPut;
        if (m.value.size() <= kShortValueMax) {
          w.short_value = m.value;
        } else {
          wb->Put(Cf::kDefault, KeyWithTs(ekey, txn.start_ts), m.value);
        }
        break;
      case Mutation::Op::kDelete:
        w.kind = WriteKind::kDelete;
        break;
      case Mutation::Op::kLock:
        w.kind = WriteKind::kLock;
        break;
    }
    wb->Put(Cf::kWrite, KeyWithTs(ekey, at), w.Encode());
  }
  out.committed_at = at;
  return out;
}

Result<std::optional<TxnError>> Commit(MvccReader& r, kv::ApplyBatch* wb, std::string_view key,
                                       uint64_t start_ts, uint64_t commit_ts) {
  using Out = std::optional<TxnError>;
  if (commit_ts <= start_ts) {
    return Status::InvalidArgument(
        fmt::format("commit: commit_ts {} is not above start_ts {}", commit_ts, start_ts));
  }
  const std::string ekey = EncodeKey(key);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
  if (held && held->start_ts == start_ts) {
    MICEDB_RETURN_IF_ERROR(CommitLock(r, wb, ekey, *held, commit_ts));
    return Out();
  }
  MICEDB_ASSIGN_OR_RETURN(std::optional<VersionedWrite> own, r.TxnWrite(ekey, start_ts));
  if (own) {
    if (own->write.kind == WriteKind::kRollback) {
      return Out(Simple(TxnError::Kind::kTxnAborted, key, start_ts));
    }
    return Out();  // committed already
  }
  return Out(Simple(TxnError::Kind::kTxnLockNotFound, key, start_ts));
}

Result<std::optional<TxnError>> Rollback(MvccReader& r, kv::ApplyBatch* wb, std::string_view key,
                                         uint64_t start_ts, bool protect) {
  using Out = std::optional<TxnError>;
  const std::string ekey = EncodeKey(key);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
  if (held && held->start_ts == start_ts) {
    DropLock(wb, ekey, *held);
    MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, ekey, start_ts, protect));
    return Out();
  }
  MICEDB_ASSIGN_OR_RETURN(std::optional<VersionedWrite> own, r.TxnWrite(ekey, start_ts));
  if (own) {
    if (own->write.kind == WriteKind::kRollback) return Out();  // rolled back already
    TxnError e = Simple(TxnError::Kind::kTxnCommitted, key, start_ts);
    e.conflict_commit_ts = own->commit_ts;
    return Out(std::move(e));
  }
  // Neither lock nor record (or another transaction's lock): the record makes sure a prewrite
  // of this transaction arriving later fails.
  MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, ekey, start_ts, protect));
  return Out();
}

Result<TxnStatus> CheckTxnStatus(MvccReader& r, kv::ApplyBatch* wb, std::string_view primary,
                                 uint64_t start_ts, uint64_t current_ts, bool force_sync_commit) {
  const std::string ekey = EncodeKey(primary);
  TxnStatus st;
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
  if (held && held->start_ts == start_ts && held->use_async_commit && force_sync_commit) {
    // A secondary fell back to two phases: the primary decides, as for any two-phase lock.
    held->use_async_commit = false;
    held->min_commit_ts = 0;
    held->secondaries.clear();
    wb->Put(Cf::kLock, ekey, held->Encode());
  }
  if (held && held->start_ts == start_ts) {
    const uint64_t expires_ms = PhysicalMs(start_ts) + held->ttl_ms;
    if (PhysicalMs(current_ts) >= expires_ms && held->use_async_commit) {
      st.state = TxnStatus::State::kAlive;  // committed or not: the secondaries tell
      st.ttl_left_ms = 0;
      st.lock = std::move(held);
      return st;
    }
    if (PhysicalMs(current_ts) >= expires_ms) {
      DropLock(wb, ekey, *held);
      MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, ekey, start_ts, /*protect=*/true));
      st.state = TxnStatus::State::kRolledBack;
      return st;
    }
    st.state = TxnStatus::State::kAlive;
    st.ttl_left_ms = expires_ms - PhysicalMs(current_ts);
    st.lock = std::move(held);
    return st;
  }
  MICEDB_ASSIGN_OR_RETURN(std::optional<VersionedWrite> own, r.TxnWrite(ekey, start_ts));
  if (own) {
    if (own->write.kind == WriteKind::kRollback) {
      st.state = TxnStatus::State::kRolledBack;
    } else {
      st.state = TxnStatus::State::kCommitted;
      st.commit_ts = own->commit_ts;
    }
    return st;
  }
  // The primary's prewrite has not arrived (or was lost): it never will be accepted now.
  MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, ekey, start_ts, /*protect=*/true));
  st.state = TxnStatus::State::kRolledBack;
  return st;
}

Result<std::vector<SecondaryStatus>> CheckSecondaryLocks(MvccReader& r, kv::ApplyBatch* wb,
                                                         const std::vector<std::string>& keys,
                                                         uint64_t start_ts) {
  std::vector<SecondaryStatus> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) {
    const std::string ekey = EncodeKey(key);
    SecondaryStatus st;
    MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
    if (held && held->start_ts == start_ts) {
      st.state = SecondaryStatus::State::kLocked;
      st.lock = std::move(held);
      out.push_back(std::move(st));
      continue;
    }
    MICEDB_ASSIGN_OR_RETURN(std::optional<VersionedWrite> own, r.TxnWrite(ekey, start_ts));
    if (own && own->write.kind != WriteKind::kRollback) {
      st.state = SecondaryStatus::State::kCommitted;
      st.commit_ts = own->commit_ts;
    } else {
      st.state = SecondaryStatus::State::kRolledBack;
      // Neither its lock nor a record: its prewrite has not landed, and now never will.
      if (!own) MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, ekey, start_ts, /*protect=*/true));
    }
    out.push_back(std::move(st));
  }
  return out;
}

Result<HeartBeatResult> HeartBeat(MvccReader& r, kv::ApplyBatch* wb, std::string_view primary,
                                  uint64_t start_ts, uint64_t ttl_ms) {
  const std::string ekey = EncodeKey(primary);
  HeartBeatResult out;
  MICEDB_ASSIGN_OR_RETURN(std::optional<Lock> held, r.LoadLock(ekey));
  if (!held || held->start_ts != start_ts) {
    out.error = Simple(TxnError::Kind::kTxnLockNotFound, primary, start_ts);
    return out;
  }
  if (ttl_ms > held->ttl_ms) {
    held->ttl_ms = ttl_ms;
    wb->Put(Cf::kLock, ekey, held->Encode());
  }
  out.ttl_ms = held->ttl_ms;
  return out;
}

Result<ResolveResult> ResolveLocks(MvccReader& r, kv::ApplyBatch* wb, std::string_view begin,
                                   std::string_view end, uint64_t start_ts, uint64_t commit_ts,
                                   size_t limit) {
  if (commit_ts != 0 && commit_ts <= start_ts) {
    return Status::InvalidArgument(
        fmt::format("resolve: commit_ts {} is not above start_ts {}", commit_ts, start_ts));
  }
  ResolveResult out;
  bool more = false;
  const std::string ebegin = EncodeKey(begin);
  const std::string eend = end.empty() ? std::string() : EncodeKey(end);
  MICEDB_ASSIGN_OR_RETURN(std::vector<MvccReader::KeyLock> locks,
                          r.ScanLocks(ebegin, eend, limit, &more));
  for (const auto& kl : locks) {
    if (kl.lock.start_ts != start_ts) continue;
    if (commit_ts != 0) {
      MICEDB_RETURN_IF_ERROR(CommitLock(r, wb, kl.ekey, kl.lock, commit_ts));
    } else {
      DropLock(wb, kl.ekey, kl.lock);
      MICEDB_RETURN_IF_ERROR(PutRollback(r, wb, kl.ekey, start_ts, /*protect=*/false));
    }
    ++out.resolved;
  }
  if (more && !locks.empty()) {
    MICEDB_ASSIGN_OR_RETURN(std::string last, DecodeKey(locks.back().ekey));
    last.push_back('\0');  // the next user key after it
    out.next = std::move(last);
  }
  return out;
}

Result<GcResult> Gc(MvccReader& r, kv::ApplyBatch* wb, std::string_view ebegin,
                    std::string_view eend, uint64_t safe_point, uint64_t budget) {
  GcResult out;
  std::string current;   // E(K) of the key being looked at
  bool locked = false;   // it holds a lock: left alone
  bool decided = false;  // its newest put or delete at or below safe_point was met
  Status st = Status::OK();
  auto remove = [&](std::string_view ekey, uint64_t ts, const Write& w) {
    wb->Delete(Cf::kWrite, KeyWithTs(ekey, ts));
    if (w.kind == WriteKind::kPut && !w.short_value) {
      wb->Delete(Cf::kDefault, KeyWithTs(ekey, w.start_ts));
    }
    ++out.deleted;
  };
  Status walked =
      r.ForEachWrite(ebegin, eend, [&](std::string_view ekey, uint64_t ts, const Write& w) {
        if (ekey != current) {
          if (out.examined >= budget) {
            out.next = std::string(ekey);
            return false;
          }
          current.assign(ekey);
          decided = false;
          Result<std::optional<Lock>> lock = r.LoadLock(current);
          if (!lock.ok()) {
            st = lock.status();
            return false;
          }
          locked = lock->has_value();
        }
        ++out.examined;
        if (locked || ts > safe_point) return true;
        if (decided) {
          remove(ekey, ts, w);
          return true;
        }
        switch (w.kind) {
          case WriteKind::kPut:
            decided = true;  // the value reads at safe_point see: kept
            break;
          case WriteKind::kDelete:
            decided = true;  // nothing older is visible, and neither is the delete itself
            remove(ekey, ts, w);
            break;
          case WriteKind::kLock:
          case WriteKind::kRollback:
            remove(ekey, ts, w);
            break;
        }
        return true;
      });
  MICEDB_RETURN_IF_ERROR(st);
  MICEDB_RETURN_IF_ERROR(walked);
  return out;
}

}  // namespace micedb::txn
