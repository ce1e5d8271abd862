// Reads of the MVCC records of one replica through a kv::ReadView: an engine at a snapshot
// (reads), or an engine plus the apply round's earlier writes (kv::ApplyBatch: the actions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "kv/read_view.h"
#include "txn/mvcc.h"

namespace micedb::txn {

// A write record and the timestamp it is keyed by (commit_ts; start_ts for a rollback).
struct VersionedWrite {
  uint64_t commit_ts = 0;
  Write write;
};

class MvccReader {
 public:
  // `view` is not owned and must outlive the reader.
  explicit MvccReader(kv::ReadView* view) : view_(view) {}

  // Every key argument is E(K) (EncodeKey).
  Result<std::optional<Lock>> LoadLock(std::string_view ekey);
  // The record the transaction that started at `start_ts` left on the key: its commit (a
  // record at or above start_ts naming start_ts) or its rollback. Walks the key's records down
  // to start_ts.
  // A rollback folded into another transaction's commit record (overlapped_rollback) is
  // answered as a protected rollback record at start_ts.
  Result<std::optional<VersionedWrite>> TxnWrite(std::string_view ekey, uint64_t start_ts);
  // What a prewrite asks, in one walk (each walk costs an iterator and a seek): `own` as
  // TxnWrite(ekey, start_ts) answers it, and `change`, the newest record keyed above
  // start_ts that changed the key (put, delete or lock record; rollbacks are skipped).
  struct PrewriteRecords {
    std::optional<VersionedWrite> own;
    std::optional<VersionedWrite> change;
  };
  Result<PrewriteRecords> ForPrewrite(std::string_view ekey, uint64_t start_ts);
  // The write record keyed exactly at E(K) + desc(ts), if any.
  Result<std::optional<Write>> WriteAt(std::string_view ekey, uint64_t ts);
  // The value a committed put wrote: inlined, or from `default` at its start_ts.
  Result<std::string> PutValue(std::string_view ekey, const Write& put);
  // The value visible at `ts` (put: the value; delete or nothing: nullopt), skipping
  // rollbacks and lock records. Ignores locks (the caller checks them).
  Result<std::optional<std::string>> ValueAt(std::string_view ekey, uint64_t ts);

  // Locks with E(K) in [ebegin, eend) (eend empty: no end), at most `limit` of them; `more`
  // tells whether the range holds more.
  struct KeyLock {
    std::string ekey;
    Lock lock;
  };
  Result<std::vector<KeyLock>> ScanLocks(std::string_view ebegin, std::string_view eend,
                                         size_t limit, bool* more);

  // Calls fn(ekey, commit_ts, write) for the write records with E(K) in [ebegin, eend) (eend
  // empty: no end) in key order, each key's newest first, until fn returns false.
  template <typename Fn>
  Status ForEachWrite(std::string_view ebegin, std::string_view eend, Fn fn);

  // Records examined so far (for the callers' work bounds and tests).
  uint64_t steps() const { return steps_; }

 private:
  // The first of the key's write records keyed from hi_ts down to lo_ts (both included),
  // newest first, for which take(record) is true.
  template <typename Take>
  Result<std::optional<VersionedWrite>> FirstWrite(std::string_view ekey, uint64_t hi_ts,
                                                   uint64_t lo_ts, Take take);

  kv::ReadView* view_;
  uint64_t steps_ = 0;
};

template <typename Fn>
Status MvccReader::ForEachWrite(std::string_view ebegin, std::string_view eend, Fn fn) {
  auto it = view_->Scan(storage::Cf::kWrite, ebegin, eend.empty() ? kTxnKeysEnd : eend);
  for (; it->Valid(); it->Next()) {
    ++steps_;
    std::string_view ekey;
    uint64_t ts = 0;
    if (!SplitTs(it->key(), &ekey, &ts))
      return Status::Corruption("write record key does not parse");
    MICEDB_ASSIGN_OR_RETURN(Write w, Write::Decode(it->value()));
    if (!fn(ekey, ts, w)) break;
  }
  return it->status();
}

}  // namespace micedb::txn
