// RaftLog: the log as the core sees it — the application's durable storage followed by the
// unstable tail — plus the commit and apply positions.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/strong_id.h"
#include "raft/log_storage.h"
#include "raft/unstable.h"

namespace micedb::raft {

class RaftLog {
 public:
  // Reads first/last index from storage; committed and applied start at the snapshot index.
  RaftLog(const LogStorage* storage, uint64_t max_applying_bytes);

  LogIndex FirstIndex() const;
  LogIndex LastIndex() const;
  // Term at i for i in [FirstIndex()-1, LastIndex()]; Compacted below, Unavailable above.
  Result<Term> TermAt(LogIndex i) const;
  // Term at i, or 0 when i is outside the log (compacted or past the end).
  Term TermOrZero(LogIndex i) const;
  Term LastTerm() const { return TermOrZero(LastIndex()); }
  bool MatchTerm(LogIndex i, Term t) const;

  // §5.4.1: is a log ending at (last_index, last_term) at least as up to date as ours?
  bool IsUpToDate(LogIndex last_index, Term last_term) const;

  // Figure 2, AppendEntries receiver rules 2–5. Returns the index of the last new entry, or
  // nullopt if the log does not contain an entry at prev_index whose term is prev_term.
  std::optional<LogIndex> MaybeAppend(LogIndex prev_index, Term prev_term, LogIndex leader_commit,
                                      std::vector<Entry> ents);
  // Appends at the end (the leader's own proposals). Returns the new last index.
  LogIndex Append(std::vector<Entry> ents);
  void AppendOne(Entry e);

  // The first entry in ents whose term differs from ours (or that we lack); 0 if none.
  LogIndex FindConflict(const std::vector<Entry>& ents) const;
  // The largest index <= index whose term is <= term, with that term. Used on both sides of
  // a rejected MSG_APP to skip a whole term at a time (fast backtracking, §5.3 end).
  std::pair<LogIndex, Term> FindConflictByTerm(LogIndex index, Term term) const;

  // Entries in [lo, hi) up to max_bytes (at least one). Errors: Compacted if lo is below
  // FirstIndex(); Unavailable if hi is past the end.
  Result<std::vector<Entry>> Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes) const;
  Result<std::vector<Entry>> EntriesFrom(LogIndex lo, uint64_t max_bytes) const {
    return Slice(lo, LastIndex() + 1, max_bytes);
  }

  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  LogIndex applying() const { return applying_; }
  void CommitTo(LogIndex i);
  // Commits up to i if the entry at i has term t (leaders only commit their own term's
  // entries by counting, Figure 8). Returns whether the commit index moved.
  bool MaybeCommit(LogIndex i, Term t);
  void AppliedTo(LogIndex i);

  // Replaces the log with an incoming snapshot (to be persisted by the application).
  void Restore(Snapshot snap);
  // The latest snapshot: the pending one if any, else the storage's.
  Result<Snapshot> GetSnapshot() const;

  // Ready plumbing.
  bool HasNextUnstableEntries() const { return unstable_.HasNextEntries(); }
  std::vector<Entry> NextUnstableEntries() const { return unstable_.NextEntries(); }
  bool HasNextUnstableSnapshot() const { return unstable_.HasNextSnapshot(); }
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_.snapshot(); }
  bool HasNextCommittedEntries() const;
  // Committed entries not yet handed out, within max_applying_bytes (at least one).
  std::vector<Entry> NextCommittedEntries() const;
  // Marks entries/snapshot up to the current tail and committed entries up to `applying` as
  // handed out.
  void AcceptReady(LogIndex applying);
  void StableTo(LogIndex i, Term t) { unstable_.StableTo(i, t); }
  void StableSnapTo(LogIndex i) { unstable_.StableSnapTo(i); }

 private:
  // TermAt without building an error Status (hot path).
  std::optional<Term> TermIfKnown(LogIndex i) const;

  const LogStorage* storage_;
  Unstable unstable_;
  LogIndex committed_;
  LogIndex applying_;  // highest index handed out in committed_entries
  LogIndex applied_;
  uint64_t max_applying_bytes_;
};

}  // namespace micedb::raft
