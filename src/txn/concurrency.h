// What a store's leaders must know before they let a transaction commit in one phase
// (docs/transactions.md §3a): the largest timestamp any transactional read served here has
// read at (max_ts), the keys of one-phase commits on their way through raft (memory locks),
// and, per region, whether max_ts covers the reads that region's earlier leaders served.
//
// A one-phase commit at commit_ts is safe when no read at or above commit_ts has been served
// on its keys, nor will be before it applies. TryLock takes memory locks on the keys first and
// then compares commit_ts with max_ts; a read raises max_ts first and then looks for memory
// locks; one mutex orders the two, so either the read sees the lock (and is retried after the
// commit applied) or the commit sees the read (and falls back to two phases).
//
// Reads served by another store (an earlier leader of the region) are not in this max_ts.
// A region is "synced" for a (term, epoch version) once a timestamp fetched from the TSO after
// that leadership began has been folded into max_ts: every read an earlier leader served had
// its timestamp drawn before that leader's lease ended, so before this fetch. Until then the
// region's one-phase commits fall back to two phases (and a fetch is started).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/thread_annotations.h"

namespace micedb::txn {

class ConcurrencyManager {
 public:
  // Asks the TSO for a fresh timestamp; `done` may run on any thread. Null: regions never
  // sync, and every one-phase commit falls back.
  using FetchTs = std::function<void(std::function<void(Result<uint64_t>)>)>;
  explicit ConcurrencyManager(FetchTs fetch) : fetch_(std::move(fetch)) {}

  // A read at read_ts of the engine keys [begin, end) (end empty: `begin` alone) is about to
  // be served. Returns false when one of them is memory-locked by a one-phase commit at or
  // below read_ts: the read must wait and retry. max_ts is raised either way.
  bool ReadKey(std::string_view ekey, uint64_t read_ts) EXCLUDES(mu_);
  bool ReadRange(std::string_view begin, std::string_view end, uint64_t read_ts) EXCLUDES(mu_);

  enum class Refusal { kNone, kNotSynced, kReadAbove, kKeyBusy };
  // On the leader of `region` (in `term`, epoch version `version`), before a one-phase commit
  // of the engine keys `ekeys` at commit_ts is proposed. kNone: the keys are memory-locked
  // under `*token` (Unlock it once the entry applied or can no longer apply); otherwise the
  // commit must fall back to two phases.
  Refusal TryLock(uint64_t region, uint64_t term, uint64_t version,
                  const std::vector<std::string>& ekeys, uint64_t commit_ts, uint64_t* token)
      EXCLUDES(mu_);
  // Async commit (docs/transactions.md §3b), before the prewrite of `ekeys` by the transaction
  // start_ts is proposed: kNone sets *min_commit_ts = max(max_ts + 1, start_ts + 1) and
  // memory-locks the keys at it under `*token` (a read at or above it waits until Unlock), so
  // that no read at or above min_commit_ts is served on them before the locks are written.
  // kReadAbove when min_commit_ts would pass max_commit_ts (0: no bound; a read ahead of the
  // TSO raised max_ts), or max_ts is the largest timestamp there is.
  Refusal TryLockAsync(uint64_t region, uint64_t term, uint64_t version,
                       const std::vector<std::string>& ekeys, uint64_t start_ts,
                       uint64_t max_commit_ts, uint64_t* min_commit_ts, uint64_t* token)
      EXCLUDES(mu_);
  void Unlock(uint64_t token) EXCLUDES(mu_);

  // Folds a timestamp known to be above every read served so far into max_ts.
  void Observe(uint64_t ts) EXCLUDES(mu_);

  uint64_t max_ts() const EXCLUDES(mu_);
  size_t memory_locks() const EXCLUDES(mu_);

 private:
  struct Held {
    uint64_t commit_ts = 0;
    std::vector<std::string> keys;
  };
  // Whether `region` is synced for (term, version); if not, starts a fetch (unless one is
  // under way). May let go of *l.
  bool Synced(std::unique_lock<std::mutex>* l, uint64_t region, uint64_t term, uint64_t version)
      REQUIRES(mu_);
  // What both admissions check first: the region synced (kNotSynced, and *l maybe let go,
  // if not) and no memory lock on `ekeys` (kKeyBusy); kNone when both hold.
  Refusal Admissible(std::unique_lock<std::mutex>* l, uint64_t region, uint64_t term,
                     uint64_t version, const std::vector<std::string>& ekeys) REQUIRES(mu_);
  // Memory-locks `ekeys` at ts; returns the token.
  uint64_t Hold(const std::vector<std::string>& ekeys, uint64_t ts) REQUIRES(mu_);
  // Whether a memory lock on `ekey` commits at or below read_ts.
  bool BlockedLocked(std::string_view ekey, uint64_t read_ts) const REQUIRES(mu_);

  const FetchTs fetch_;
  mutable std::mutex mu_;
  uint64_t max_ts_ GUARDED_BY(mu_) = 0;
  uint64_t next_token_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Held> held_ GUARDED_BY(mu_);                            // token ->
  std::multimap<std::string, uint64_t, std::less<>> locks_ GUARDED_BY(mu_);  // key -> commit_ts
  // region -> the (term, version) whose sync completed / is under way.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> synced_ GUARDED_BY(mu_);
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> syncing_ GUARDED_BY(mu_);
};

}  // namespace micedb::txn
