// MemoryStorage: a LogStorage held in memory. Used by unit tests, the deterministic simulation
// (where a crash keeps only what was written here) and the benchmark. Not thread-safe: the
// caller serialises access.
#pragma once

#include <vector>

#include "raft/log_storage.h"

namespace micedb::raft {

class MemoryStorage : public LogStorage {
 public:
  // An empty log with no members; bootstrap a group with SetConfState (or ApplySnapshot).
  MemoryStorage();

  // Appends entries, truncating any existing suffix that they overwrite. Entries must be
  // contiguous and must not leave a gap after the current last index. Entries at or below the
  // snapshot index are skipped. Errors: InvalidArgument on a gap or non-contiguous input.
  Status Append(const std::vector<Entry>& entries);
  // As above, moving the entries in.
  Status Append(std::vector<Entry>&& entries);

  // Replaces the whole log and membership with a snapshot. Errors: InvalidArgument (a
  // "snapshot out of date" message) if it is older than the snapshot already held.
  Status ApplySnapshot(const Snapshot& snap);

  // Records a snapshot of the state machine at index i (which must be in
  // [snapshot index, LastIndex()]); cs replaces the membership when not null. Entries are kept
  // until Compact. Errors: InvalidArgument ("snapshot out of date") if i is not above the
  // current snapshot index (i == 0 is allowed on an empty log), Unavailable if i > LastIndex().
  Result<Snapshot> CreateSnapshot(LogIndex i, const ConfState* cs, std::string data);

  // Discards entries up to and including compact_index (which must be <= LastIndex()).
  // Errors: Compacted if already compacted that far; Unavailable past the last index.
  Status Compact(LogIndex compact_index);

  void SetHardState(const HardState& hs);
  // The membership returned by GetInitialState. Call it when a conf change is applied (and to
  // bootstrap a new group) so that a restart sees the current members.
  void SetConfState(const ConfState& cs);

  const HardState& hard_state() const { return hard_state_; }

  Result<InitialState> GetInitialState() const override;
  Result<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(LogIndex i) const override;
  LogIndex FirstIndex() const override;
  LogIndex LastIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

 private:
  // Index of the entry in ents_[0] (the snapshot's index; ents_[0] is a placeholder holding
  // the snapshot's index and term).
  LogIndex Offset() const { return LogIndex(ents_[0].index()); }
  // Checks entries and returns how many leading ones are already covered by the snapshot, or
  // an error. *skip_all when every entry is.
  Result<size_t> PrepareAppend(const std::vector<Entry>& entries, bool* skip_all);

  HardState hard_state_;
  ConfState conf_state_;
  Snapshot snapshot_;
  std::vector<Entry> ents_;
};

}  // namespace micedb::raft
