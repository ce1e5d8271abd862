#include "store/peer_storage.h"

#include <fmt/format.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "store/keys.h"

namespace micedb::store {

using storage::Cf;

PeerStorage::PeerStorage(uint64_t region_id, raft::ConfState conf_state)
    : region_id_(region_id), conf_state_(std::move(conf_state)) {}

std::string PeerStorage::EncodeEntry(const raft::Entry& e) {
  // The crc, then the entry serialized in place: one copy of a big entry, not two.
  const size_t size = e.ByteSizeLong();
  std::string out(4 + size, '\0');
  e.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + 4));
  EncodeFixed32(out.data(), crc32c::Mask(crc32c::Value(std::string_view(out).substr(4))));
  return out;
}

Status PeerStorage::DecodeEntry(std::string_view value, raft::Entry* e) {
  uint32_t masked = 0;
  if (!GetFixed32(&value, &masked)) return Status::Corruption("log record shorter than its crc");
  if (crc32c::Unmask(masked) != crc32c::Value(value)) {
    return Status::Corruption("log record checksum mismatch");
  }
  if (!e->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Status::Corruption("log record does not parse");
  }
  return Status::OK();
}

Status PeerStorage::Load(storage::Engine* engine) {
  auto hs = engine->Get(Cf::kRaft, HardStateKey(region_id_));
  if (hs.ok()) {
    if (!hard_state_.ParseFromString(*hs)) {
      return Status::Corruption(fmt::format("region {}: hard state does not parse", region_id_));
    }
  } else if (!hs.status().IsNotFound()) {
    return hs.status();
  }
  auto as = engine->Get(Cf::kRaft, ApplyStateKey(region_id_));
  if (as.ok()) {
    ApplyState st;
    if (!st.ParseFromString(*as)) {
      return Status::Corruption(fmt::format("region {}: apply state does not parse", region_id_));
    }
    truncated_index_ = st.truncated_index();
    truncated_term_ = st.truncated_term();
  } else if (!as.status().IsNotFound()) {
    return as.status();
  }
  entries_.clear();
  log_bytes_ = 0;
  storage::ReadOptions ro;
  ro.lower_bound = RaftLogKey(region_id_, truncated_index_ + 1);
  ro.upper_bound = RaftLogPrefixEnd(region_id_);
  auto it = engine->NewIterator(Cf::kRaft, ro);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t region = 0, index = 0;
    if (!DecodeRaftLogKey(it->key(), &region, &index) || region != region_id_) break;
    raft::Entry e;
    Status st = DecodeEntry(it->value(), &e);
    if (!st.ok()) {
      return Status::Corruption(
          fmt::format("region {} log index {}: {}", region_id_, index, st.message()));
    }
    uint64_t expect = truncated_index_ + entries_.size() + 1;
    if (index != expect || e.index() != index) {
      return Status::Corruption(fmt::format("region {}: log has a gap at index {} (found {})",
                                            region_id_, expect, index));
    }
    log_bytes_ += raft::EntrySize(e);
    entries_.push_back(std::move(e));
  }
  return it->status();
}

void PeerStorage::Append(std::vector<raft::Entry>* new_entries, storage::WriteBatch* wb) {
  std::vector<raft::Entry>& entries = *new_entries;
  if (entries.empty()) return;
  uint64_t first_new = entries.front().index();
  uint64_t old_last = LastIndex().value();
  // Drop the in-memory suffix the new entries replace (paper Figure 2, AppendEntries rule 3).
  while (!entries_.empty() && entries_.back().index() >= first_new) {
    log_bytes_ -= raft::EntrySize(entries_.back());
    entries_.pop_back();
  }
  for (auto& e : entries) {
    wb->PutOwned(Cf::kRaft, RaftLogKey(region_id_, e.index()), EncodeEntry(e));
    log_bytes_ += raft::EntrySize(e);
    raft::Entry& kept = entries_.emplace_back();
    kept.set_term(e.term());
    kept.set_index(e.index());
    kept.set_type(e.type());
    kept.mutable_data()->swap(*e.mutable_data());
  }
  uint64_t new_last = entries.back().index();
  if (old_last > new_last) {
    wb->DeleteRange(Cf::kRaft, RaftLogKey(region_id_, new_last + 1),
                    RaftLogKey(region_id_, old_last + 1));
  }
}

void PeerStorage::SetHardState(const raft::HardState& hs, storage::WriteBatch* wb) {
  hard_state_ = hs;
  wb->Put(Cf::kRaft, HardStateKey(region_id_), hs.SerializeAsString());
}

void PeerStorage::ResetToSnapshot(uint64_t index, uint64_t term, storage::WriteBatch* wb) {
  wb->DeleteRange(Cf::kRaft, RaftLogPrefixBegin(region_id_), RaftLogPrefixEnd(region_id_));
  entries_.clear();
  log_bytes_ = 0;
  truncated_index_ = index;
  truncated_term_ = term;
}

void PeerStorage::CompactTo(uint64_t index, storage::WriteBatch* wb) {
  if (index <= truncated_index_ || index > LastIndex().value()) return;
  auto term = TermAt(LogIndex(index));
  wb->DeleteRange(Cf::kRaft, RaftLogKey(region_id_, truncated_index_ + 1),
                  RaftLogKey(region_id_, index + 1));
  while (!entries_.empty() && entries_.front().index() <= index) {
    log_bytes_ -= raft::EntrySize(entries_.front());
    entries_.pop_front();
  }
  truncated_term_ = term.ok() ? term->value() : truncated_term_;
  truncated_index_ = index;
}

Result<raft::LogStorage::InitialState> PeerStorage::GetInitialState() const {
  return InitialState{hard_state_, conf_state_};
}

Result<std::vector<raft::Entry>> PeerStorage::Entries(LogIndex lo, LogIndex hi,
                                                      uint64_t max_bytes) const {
  if (lo.value() <= truncated_index_) return raft::CompactedError();
  if (hi > LastIndex() + 1) return raft::UnavailableError();
  std::vector<raft::Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = lo.value(); i < hi.value(); ++i) {
    const raft::Entry& e = entries_[i - truncated_index_ - 1];
    bytes += raft::EntrySize(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> PeerStorage::TermAt(LogIndex i) const {
  if (i.value() == truncated_index_) return Term(truncated_term_);
  if (i.value() < truncated_index_) return raft::CompactedError();
  if (i > LastIndex()) return raft::UnavailableError();
  return Term(entries_[i.value() - truncated_index_ - 1].term());
}

LogIndex PeerStorage::FirstIndex() const { return LogIndex(truncated_index_ + 1); }

LogIndex PeerStorage::LastIndex() const { return LogIndex(truncated_index_ + entries_.size()); }

Result<raft::Snapshot> PeerStorage::GetSnapshot() const {
  if (!provider_) return raft::UnavailableError();
  return provider_();
}

}  // namespace micedb::store
