#include "raft/memory_storage.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace micedb::raft {

MemoryStorage::MemoryStorage() { ents_.emplace_back(); }

Result<LogStorage::InitialState> MemoryStorage::GetInitialState() const {
  return InitialState{hard_state_, conf_state_};
}

void MemoryStorage::SetHardState(const HardState& hs) { hard_state_ = hs; }
void MemoryStorage::SetConfState(const ConfState& cs) { conf_state_ = cs; }

LogIndex MemoryStorage::FirstIndex() const { return Offset() + 1; }
LogIndex MemoryStorage::LastIndex() const { return Offset() + (ents_.size() - 1); }

Result<Term> MemoryStorage::TermAt(LogIndex i) const {
  if (i < Offset()) {
    return CompactedError();
  }
  if (i > LastIndex()) {
    return UnavailableError();
  }
  return Term(ents_[i - Offset()].term());
}

Result<std::vector<Entry>> MemoryStorage::Entries(LogIndex lo, LogIndex hi,
                                                  uint64_t max_bytes) const {
  if (lo <= Offset()) {
    return CompactedError();
  }
  if (hi > LastIndex() + 1) {
    return UnavailableError();
  }
  std::vector<Entry> out;
  if (lo >= hi) {
    return out;
  }
  out.reserve(std::min<uint64_t>(hi - lo, 1024));
  uint64_t bytes = 0;
  for (LogIndex i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - Offset()];
    bytes += EntrySize(e);
    if (!out.empty() && bytes > max_bytes) {
      break;
    }
    out.push_back(e);
  }
  return out;
}

Result<Snapshot> MemoryStorage::GetSnapshot() const { return snapshot_; }

Status MemoryStorage::ApplySnapshot(const Snapshot& snap) {
  if (snap.metadata().index() < snapshot_.metadata().index()) {
    return Status::InvalidArgument("raft log: snapshot out of date");
  }
  snapshot_ = snap;
  conf_state_ = snap.metadata().conf_state();
  ents_.clear();
  Entry dummy;
  dummy.set_index(snap.metadata().index());
  dummy.set_term(snap.metadata().term());
  ents_.push_back(std::move(dummy));
  return Status::OK();
}

Result<Snapshot> MemoryStorage::CreateSnapshot(LogIndex i, const ConfState* cs, std::string data) {
  if (i < LogIndex(snapshot_.metadata().index()) ||
      (i == LogIndex(snapshot_.metadata().index()) && i.value() != 0)) {
    return Status::InvalidArgument("raft log: snapshot out of date");
  }
  if (i > LastIndex()) {
    return UnavailableError();
  }
  snapshot_.mutable_metadata()->set_index(i.value());
  snapshot_.mutable_metadata()->set_term(ents_[i - Offset()].term());
  if (cs != nullptr) {
    *snapshot_.mutable_metadata()->mutable_conf_state() = *cs;
  }
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

Status MemoryStorage::Compact(LogIndex compact_index) {
  if (compact_index <= Offset()) {
    return CompactedError();
  }
  if (compact_index > LastIndex()) {
    return UnavailableError();
  }
  size_t drop = compact_index - Offset();
  // Keep ents_[drop] as the new placeholder: it carries the compact index and its term.
  ents_.erase(ents_.begin(), ents_.begin() + static_cast<std::ptrdiff_t>(drop));
  ents_[0].clear_data();
  ents_[0].set_type(ENTRY_NORMAL);
  return Status::OK();
}

Result<size_t> MemoryStorage::PrepareAppend(const std::vector<Entry>& entries, bool* skip_all) {
  *skip_all = true;
  if (entries.empty()) {
    return size_t{0};
  }
  for (size_t k = 1; k < entries.size(); ++k) {
    if (entries[k].index() != entries[k - 1].index() + 1) {
      return Status::InvalidArgument("raft log: appended entries are not contiguous");
    }
  }
  LogIndex first = FirstIndex();
  if (LogIndex(entries.back().index()) < first) {
    return size_t{0};  // all in the snapshot
  }
  LogIndex start(entries.front().index());
  if (start > LastIndex() + 1) {
    return Status::InvalidArgument("raft log: append would leave a gap");
  }
  *skip_all = false;
  size_t skip = start < first ? first - start : 0;
  // Everything from the first new entry on is replaced: the new entries win over a
  // conflicting suffix.
  ents_.resize((start + skip) - Offset());
  return skip;
}

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  bool skip_all = false;
  MICEDB_ASSIGN_OR_RETURN(size_t skip, PrepareAppend(entries, &skip_all));
  if (skip_all) {
    return Status::OK();
  }
  ents_.insert(ents_.end(), entries.begin() + static_cast<std::ptrdiff_t>(skip), entries.end());
  return Status::OK();
}

Status MemoryStorage::Append(std::vector<Entry>&& entries) {
  bool skip_all = false;
  MICEDB_ASSIGN_OR_RETURN(size_t skip, PrepareAppend(entries, &skip_all));
  if (skip_all) {
    return Status::OK();
  }
  ents_.insert(ents_.end(),
               std::make_move_iterator(entries.begin() + static_cast<std::ptrdiff_t>(skip)),
               std::make_move_iterator(entries.end()));
  return Status::OK();
}

}  // namespace micedb::raft
