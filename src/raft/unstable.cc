#include "raft/unstable.h"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <utility>

#include "raft/log_storage.h"

namespace micedb::raft {

std::optional<LogIndex> Unstable::MaybeFirstIndex() const {
  if (snapshot_) {
    return LogIndex(snapshot_->metadata().index() + 1);
  }
  return std::nullopt;
}

std::optional<LogIndex> Unstable::MaybeLastIndex() const {
  if (!entries_.empty()) {
    return offset_ + (entries_.size() - 1);
  }
  if (snapshot_) {
    return LogIndex(snapshot_->metadata().index());
  }
  return std::nullopt;
}

std::optional<Term> Unstable::MaybeTerm(LogIndex i) const {
  if (i < offset_) {
    if (snapshot_ && snapshot_->metadata().index() == i.value()) {
      return Term(snapshot_->metadata().term());
    }
    return std::nullopt;
  }
  if (i - offset_ >= entries_.size()) {
    return std::nullopt;
  }
  return Term(entries_[i - offset_].term());
}

void Unstable::StableTo(LogIndex i, Term t) {
  std::optional<Term> got = MaybeTerm(i);
  if (!got || *got != t || i < offset_) {
    return;
  }
  size_t n = (i - offset_) + 1;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
  offset_ = i + 1;
  offset_in_progress_ = std::max(offset_in_progress_, offset_);
}

void Unstable::StableSnapTo(LogIndex i) {
  if (snapshot_ && snapshot_->metadata().index() == i.value()) {
    snapshot_.reset();
    snapshot_in_progress_ = false;
  }
}

void Unstable::Restore(Snapshot snap) {
  offset_ = LogIndex(snap.metadata().index() + 1);
  offset_in_progress_ = offset_;
  entries_.clear();
  snapshot_ = std::move(snap);
  snapshot_in_progress_ = false;
}

void Unstable::Append(Entry e) {
  assert(e.index() == offset_.value() + entries_.size());
  entries_.push_back(std::move(e));
}

void Unstable::TruncateAndAppend(std::vector<Entry> ents) {
  if (ents.empty()) {
    return;
  }
  LogIndex from(ents.front().index());
  if (from == offset_ + entries_.size()) {
    // The common case: a plain append.
  } else if (from <= offset_) {
    // Replaces the whole tail (and overrides the persisted log from `from` on).
    offset_ = from;
    offset_in_progress_ = from;
    entries_.clear();
  } else {
    entries_.resize(from - offset_);
    offset_in_progress_ = std::min(offset_in_progress_, from);
  }
  if (entries_.empty()) {
    entries_ = std::move(ents);
  } else {
    entries_.insert(entries_.end(), std::make_move_iterator(ents.begin()),
                    std::make_move_iterator(ents.end()));
  }
}

void Unstable::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes, uint64_t* bytes,
                     std::vector<Entry>* out) const {
  assert(lo >= offset_ && hi <= offset_ + entries_.size());
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset_];
    uint64_t sz = EntrySize(e);
    if (!out->empty() && *bytes + sz > max_bytes) {
      return;
    }
    *bytes += sz;
    out->push_back(e);
  }
}

std::vector<Entry> Unstable::NextEntries() const {
  size_t start = offset_in_progress_ - offset_;
  return std::vector<Entry>(entries_.begin() + static_cast<std::ptrdiff_t>(start), entries_.end());
}

void Unstable::AcceptInProgress() {
  offset_in_progress_ = offset_ + entries_.size();
  if (snapshot_) {
    snapshot_in_progress_ = true;
  }
}

}  // namespace micedb::raft
