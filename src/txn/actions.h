// The Percolator actions on one replica's MVCC records (docs/transactions.md §2-§4): each reads
// through an MvccReader and puts what it changes into the apply round's batch (read the
// reader over the same kv::ApplyBatch, so that later actions of the round see earlier ones);
// the store writes the batch with the round. Every action is idempotent: applied twice, the second
// finds its own work done and changes nothing.
//
// Errors: a Status for the engine (I/O, corrupt records); a refused key is a TxnError in the
// result, not a Status, so that a batch of keys can report each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "kv/apply_batch.h"
#include "txn/mvcc.h"
#include "txn/reader.h"

namespace micedb::txn {

struct TxnError {
  enum class Kind {
    kKeyIsLocked,      // another transaction's lock: resolve it and retry (lock is set)
    kWriteConflict,    // committed after start_ts: retry the transaction (conflict_* set)
    kTxnAborted,       // this transaction was rolled back here
    kTxnLockNotFound,  // commit without a lock or a record: prewrite lost or cleaned up
    kTxnCommitted,     // rollback of a committed key (conflict_commit_ts = its commit_ts)
  };
  Kind kind = Kind::kKeyIsLocked;
  std::string key;        // user key
  uint64_t start_ts = 0;  // the transaction that asked
  Lock lock;              // kKeyIsLocked
  uint64_t conflict_start_ts = 0;
  uint64_t conflict_commit_ts = 0;

  // One line naming the key, the other transaction and what to do.
  std::string Message() const;
  bool operator==(const TxnError&) const = default;
};

// ---- Reads ----

struct GetResult {
  std::optional<std::string> value;  // nullopt: no such key at read_ts
  std::optional<TxnError> locked;    // set: the read cannot decide (kKeyIsLocked)
};
// The value of `key` at `read_ts` (§2).
Result<GetResult> Get(MvccReader& r, std::string_view key, uint64_t read_ts);

struct ScanResult {
  std::vector<std::pair<std::string, std::string>> kvs;  // user key, value; in key order
  std::optional<TxnError> locked;   // the first lock in the way (kvs then end before its key)
  std::optional<std::string> next;  // the user key to go on from; nullopt: the range is done
};
// The keys in [start, end) (end empty: no end) visible at read_ts, at most `limit` of them
// (§2). A lock in the way ends the scan before its key with `locked` set.
Result<ScanResult> Scan(MvccReader& r, std::string_view start, std::string_view end,
                        uint64_t read_ts, size_t limit);

// ---- Two-phase commit ----

struct Mutation {
  enum class Op { kPut, kDelete, kLock };
  Op op = Op::kPut;
  std::string key;
  std::string value;  // kPut
};

struct TxnMeta {
  std::string primary;  // user key
  uint64_t start_ts = 0;
  uint64_t ttl_ms = 0;
  uint64_t txn_size = 0;
  // Async commit (§3b): every lock is marked and carries min_commit_ts (set by the leader
  // before it proposes); the primary's lock also lists the secondaries.
  bool use_async_commit = false;
  uint64_t min_commit_ts = 0;
  std::vector<std::string> secondaries;
};

// §3 Prewrite of one key. Finding the transaction's own commit record (a duplicate of a
// prewrite, or of a one-phase commit, that committed) sets *committed_at to its commit_ts.
// When the key ends up locked by this transaction (now, or by an earlier attempt),
// *async_min_commit_ts gets that lock's min_commit_ts if it is an async-commit lock, else 0:
// the lock in place decides how the key commits, whatever this attempt asked (§3b).
Result<std::optional<TxnError>> Prewrite(MvccReader& r, kv::ApplyBatch* wb, const TxnMeta& txn,
                                         const Mutation& m, uint64_t* committed_at = nullptr,
                                         uint64_t* async_min_commit_ts = nullptr);
// §3 Commit of one key; commit_ts must be above start_ts (InvalidArgument otherwise).
Result<std::optional<TxnError>> Commit(MvccReader& r, kv::ApplyBatch* wb, std::string_view key,
                                       uint64_t start_ts, uint64_t commit_ts);
// §3 Rollback of one key (protect: the record survives GC until the safe point passes).
Result<std::optional<TxnError>> Rollback(MvccReader& r, kv::ApplyBatch* wb, std::string_view key,
                                         uint64_t start_ts, bool protect);

// §3a One-phase commit of all of a transaction's keys (they lie in one region): each is
// checked as Prewrite checks it; when none is refused, each is committed at commit_ts at once,
// no lock written. A refused key (`errors`) writes nothing at all. A key this transaction has
// prewritten already (an earlier attempt that fell back to two phases) makes it a plain
// Prewrite of every key (`committed_at` 0, locks written). A retry of a one-phase commit
// that applied finds its records and answers their commit_ts.
struct OnePcResult {
  uint64_t committed_at = 0;  // 0: not committed (see errors, or prewritten)
  std::vector<TxnError> errors;
};
Result<OnePcResult> OnePc(MvccReader& r, kv::ApplyBatch* wb, const TxnMeta& txn,
                          const std::vector<Mutation>& ms, uint64_t commit_ts);

// ---- Resolving (§4) ----

struct TxnStatus {
  enum class State { kAlive, kCommitted, kRolledBack };
  State state = State::kAlive;
  uint64_t commit_ts = 0;    // kCommitted
  uint64_t ttl_left_ms = 0;  // kAlive
  std::optional<Lock> lock;  // kAlive: the primary's lock
};
// The state of the transaction (primary, start_ts) at `current_ts`, rolling its primary back
// when the lock's TTL has run out, or when neither a lock nor a record exists (so that the
// prewrite can never land later). An async-commit primary lock is never rolled back here: it
// may be committed already (every lock written); past its TTL the answer is kAlive with
// ttl_left_ms 0 and the lock, and the caller checks the secondaries (CheckSecondaryLocks).
// force_sync_commit first turns such a lock into a two-phase one (a secondary fell back, so
// the primary decides), which its TTL then judges as any other.
Result<TxnStatus> CheckTxnStatus(MvccReader& r, kv::ApplyBatch* wb, std::string_view primary,
                                 uint64_t start_ts, uint64_t current_ts,
                                 bool force_sync_commit = false);

// Async commit (§3b): what became of the transaction start_ts on each of `keys` (user keys,
// all in this region): its lock (still under way), its commit, or its rollback -- written
// now, protected, where the key holds neither its lock nor a record of it, so that its
// prewrite can never land later. Results in the order of `keys`.
struct SecondaryStatus {
  enum class State { kLocked, kCommitted, kRolledBack };
  State state = State::kLocked;
  uint64_t commit_ts = 0;    // kCommitted
  std::optional<Lock> lock;  // kLocked
  bool operator==(const SecondaryStatus&) const = default;
};
Result<std::vector<SecondaryStatus>> CheckSecondaryLocks(MvccReader& r, kv::ApplyBatch* wb,
                                                         const std::vector<std::string>& keys,
                                                         uint64_t start_ts);

// Raises the TTL of the primary's lock to `ttl_ms` (never lowers it). Returns the TTL now in
// force, or a TxnError (kTxnLockNotFound) when the lock is gone.
struct HeartBeatResult {
  uint64_t ttl_ms = 0;
  std::optional<TxnError> error;
};
Result<HeartBeatResult> HeartBeat(MvccReader& r, kv::ApplyBatch* wb, std::string_view primary,
                                  uint64_t start_ts, uint64_t ttl_ms);

// Commits (commit_ts > 0) or rolls back (commit_ts == 0) every lock of the transaction
// start_ts among the user keys [begin, end) (end empty: no end), looking at `limit` locks at
// most. `next` is the user key to go on from, or nullopt when the range is done.
struct ResolveResult {
  uint64_t resolved = 0;
  std::optional<std::string> next;
};
Result<ResolveResult> ResolveLocks(MvccReader& r, kv::ApplyBatch* wb, std::string_view begin,
                                   std::string_view end, uint64_t start_ts, uint64_t commit_ts,
                                   size_t limit);

// ---- Garbage collection (§8) ----

// Removes, for the keys with E(K) in [ebegin, eend) (eend empty: to the end of the
// transactional space), what no read at or above `safe_point` can see: every record below a
// key's newest put or delete at or below safe_point, that record too when it is a delete,
// and rollback and lock records at or below safe_point; with each removed put its long value
// in `default`. A key that holds a lock is left alone (its transaction is resolved first).
// Stops at a key boundary once `budget` records were looked at; `next` is the E(K) to go on
// from, or nullopt when the range is done.
struct GcResult {
  uint64_t examined = 0;
  uint64_t deleted = 0;
  std::optional<std::string> next;
};
Result<GcResult> Gc(MvccReader& r, kv::ApplyBatch* wb, std::string_view ebegin,
                    std::string_view eend, uint64_t safe_point, uint64_t budget);

}  // namespace micedb::txn
