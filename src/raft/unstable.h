// Unstable: the tail of the log (and possibly an incoming snapshot) that the core holds but
// the application has not yet persisted. Entries move out once Advance() says they are durable.
#pragma once

#include <optional>
#include <vector>

#include "common/strong_id.h"
#include "micedb/raft.pb.h"

namespace micedb::raft {

class Unstable {
 public:
  explicit Unstable(LogIndex offset) : offset_(offset), offset_in_progress_(offset) {}

  // Index just past the snapshot, if one is pending.
  std::optional<LogIndex> MaybeFirstIndex() const;
  // Last index held here (entries, else the pending snapshot).
  std::optional<LogIndex> MaybeLastIndex() const;
  // Term at i if this tail or the pending snapshot knows it.
  std::optional<Term> MaybeTerm(LogIndex i) const;

  // The application persisted everything up to (i, t). Ignored when the entry at i has been
  // replaced since it was handed out (its term differs).
  void StableTo(LogIndex i, Term t);
  void StableSnapTo(LogIndex i);
  // Replaces everything with a snapshot that still has to be persisted.
  void Restore(Snapshot snap);
  // Appends entries, dropping any held entries they overwrite.
  void TruncateAndAppend(std::vector<Entry> ents);
  void Append(Entry e);

  // Entries in [lo, hi); both must lie within the held tail.
  void Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes, uint64_t* bytes,
             std::vector<Entry>* out) const;

  // Entries and snapshot not yet handed to the application.
  bool HasNextEntries() const { return offset_in_progress_ < offset_ + entries_.size(); }
  std::vector<Entry> NextEntries() const;
  bool HasNextSnapshot() const { return snapshot_.has_value() && !snapshot_in_progress_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  // Marks everything currently held as handed out (in a Ready).
  void AcceptInProgress();

  LogIndex offset() const { return offset_; }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::optional<Snapshot> snapshot_;
  bool snapshot_in_progress_ = false;
  std::vector<Entry> entries_;  // entries_[k] has index offset_ + k
  LogIndex offset_;
  LogIndex offset_in_progress_;  // entries below this index were handed out already
};

}  // namespace micedb::raft
