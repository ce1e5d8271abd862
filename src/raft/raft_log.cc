#include "raft/raft_log.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace micedb::raft {

namespace {
// Broken invariants of the log are bugs that would otherwise corrupt replicated state.
[[noreturn]] void Fatal(const char* what) {
  std::fprintf(stderr, "raft log invariant broken: %s\n", what);
  std::abort();
}
}  // namespace

RaftLog::RaftLog(const LogStorage* storage, uint64_t max_applying_bytes)
    : storage_(storage),
      unstable_(storage->LastIndex() + 1),
      committed_(storage->FirstIndex() - 1),
      applying_(storage->FirstIndex() - 1),
      applied_(storage->FirstIndex() - 1),
      max_applying_bytes_(max_applying_bytes) {}

LogIndex RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) {
    return *i;
  }
  return storage_->FirstIndex();
}

LogIndex RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) {
    return *i;
  }
  return storage_->LastIndex();
}

std::optional<Term> RaftLog::TermIfKnown(LogIndex i) const {
  if (auto t = unstable_.MaybeTerm(i)) {
    return *t;
  }
  if (i + 1 < FirstIndex() || i > LastIndex()) {
    return std::nullopt;
  }
  Result<Term> t = storage_->TermAt(i);
  if (!t.ok()) {
    return std::nullopt;
  }
  return *t;
}

Result<Term> RaftLog::TermAt(LogIndex i) const {
  if (auto t = TermIfKnown(i)) {
    return *t;
  }
  if (i + 1 < FirstIndex()) {
    return CompactedError();
  }
  if (i > LastIndex()) {
    return UnavailableError();
  }
  return storage_->TermAt(i);
}

Term RaftLog::TermOrZero(LogIndex i) const { return TermIfKnown(i).value_or(Term(0)); }

bool RaftLog::MatchTerm(LogIndex i, Term t) const {
  std::optional<Term> got = TermIfKnown(i);
  return got && *got == t;
}

bool RaftLog::IsUpToDate(LogIndex last_index, Term last_term) const {
  Term ours = LastTerm();
  return last_term > ours || (last_term == ours && last_index >= LastIndex());
}

LogIndex RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  LogIndex last = LastIndex();
  for (const Entry& e : ents) {
    if (LogIndex(e.index()) > last) {
      return LogIndex(e.index());  // new entries from here on
    }
    if (!MatchTerm(LogIndex(e.index()), Term(e.term()))) {
      return LogIndex(e.index());
    }
  }
  return LogIndex(0);
}

std::pair<LogIndex, Term> RaftLog::FindConflictByTerm(LogIndex index, Term term) const {
  for (;;) {
    std::optional<Term> t = TermIfKnown(index);
    if (!t) {
      return {index, Term(0)};
    }
    if (*t <= term || index.value() == 0) {
      return {index, *t};
    }
    --index;
  }
}

std::optional<LogIndex> RaftLog::MaybeAppend(LogIndex prev_index, Term prev_term,
                                             LogIndex leader_commit, std::vector<Entry> ents) {
  if (!MatchTerm(prev_index, prev_term)) {
    return std::nullopt;
  }
  LogIndex last_new = prev_index + ents.size();
  LogIndex conflict = FindConflict(ents);
  if (conflict.value() != 0) {
    // Rule 3: delete the conflicting entry and all that follow; rule 4: append the new ones.
    if (conflict <= committed_) {
      Fatal("conflicting entry at or below the commit index");
    }
    size_t skip = conflict - (prev_index + 1);
    ents.erase(ents.begin(), ents.begin() + static_cast<std::ptrdiff_t>(skip));
    unstable_.TruncateAndAppend(std::move(ents));
  }
  // Rule 5: commit = min(leaderCommit, index of last new entry).
  CommitTo(std::min(leader_commit, last_new));
  return last_new;
}

LogIndex RaftLog::Append(std::vector<Entry> ents) {
  if (ents.empty()) {
    return LastIndex();
  }
  if (LogIndex(ents.front().index()) <= committed_) {
    Fatal("append below the commit index");
  }
  unstable_.TruncateAndAppend(std::move(ents));
  return LastIndex();
}

void RaftLog::AppendOne(Entry e) {
  if (LogIndex(e.index()) != LastIndex() + 1) {
    Fatal("append leaves a gap");
  }
  if (unstable_.offset() + unstable_.entries().size() == LogIndex(e.index())) {
    unstable_.Append(std::move(e));
  } else {
    std::vector<Entry> one;
    one.push_back(std::move(e));
    unstable_.TruncateAndAppend(std::move(one));
  }
}

Result<std::vector<Entry>> RaftLog::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) {
    return CompactedError();
  }
  if (hi > LastIndex() + 1) {
    return UnavailableError();
  }
  std::vector<Entry> out;
  if (lo >= hi) {
    return out;
  }
  uint64_t bytes = 0;
  LogIndex off = unstable_.offset();
  if (lo < off) {
    LogIndex stop = std::min(hi, off);
    Result<std::vector<Entry>> stored = storage_->Entries(lo, stop, max_bytes);
    if (!stored.ok()) {
      return stored.status();
    }
    out = std::move(stored).value();
    if (out.size() < stop - lo) {
      return out;  // byte limit reached inside the storage
    }
    for (const Entry& e : out) {
      bytes += EntrySize(e);
    }
  }
  if (hi > off) {
    unstable_.Slice(std::max(lo, off), hi, max_bytes, &bytes, &out);
  }
  return out;
}

void RaftLog::CommitTo(LogIndex i) {
  if (i <= committed_) {
    return;
  }
  if (i > LastIndex()) {
    Fatal("commit index past the last index");
  }
  committed_ = i;
}

bool RaftLog::MaybeCommit(LogIndex i, Term t) {
  if (i > committed_ && TermOrZero(i) == t) {
    CommitTo(i);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(LogIndex i) {
  if (i.value() == 0 || i <= applied_) {
    return;
  }
  if (i > committed_) {
    Fatal("applied index past the commit index");
  }
  applied_ = i;
  applying_ = std::max(applying_, i);
}

void RaftLog::Restore(Snapshot snap) {
  committed_ = LogIndex(snap.metadata().index());
  applying_ = std::max(applying_, committed_);
  unstable_.Restore(std::move(snap));
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot()) {
    return *unstable_.snapshot();
  }
  return storage_->GetSnapshot();
}

bool RaftLog::HasNextCommittedEntries() const {
  // Nothing is applied on top of a snapshot the application has not installed yet.
  if (unstable_.snapshot()) {
    return false;
  }
  return committed_ > applying_;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) {
    return {};
  }
  LogIndex lo = std::max(applying_ + 1, FirstIndex());
  Result<std::vector<Entry>> ents = Slice(lo, committed_ + 1, max_applying_bytes_);
  if (!ents.ok()) {
    Fatal("committed entries are missing from the log");
  }
  return std::move(ents).value();
}

void RaftLog::AcceptReady(LogIndex applying) {
  unstable_.AcceptInProgress();
  applying_ = std::max(applying_, applying);
}

}  // namespace micedb::raft
