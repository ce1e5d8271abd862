// PeerStorage: the raft log of one region peer, held in memory for the core to read and
// written to the `raft` column family through the store's WriteBatch (group commit).
//
// Not thread-safe: owned and used by the store's raft loop thread only.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "micedb/store.pb.h"
#include "raft/log_storage.h"
#include "storage/engine.h"

namespace micedb::store {

class PeerStorage : public raft::LogStorage {
 public:
  // Produces the snapshot the core asks for (see RegionPeer); set before the node runs.
  using SnapshotProvider = std::function<Result<raft::Snapshot>()>;

  PeerStorage(uint64_t region_id, raft::ConfState conf_state);

  // Loads the hard state, apply state and log of `region_id` from `engine`. Corruption naming
  // the region and index when a stored entry fails its checksum.
  Status Load(storage::Engine* engine);

  // ---- Writes, recorded in `wb` and applied to the in-memory view at once ----

  // Appends entries from the core's Ready, dropping any suffix they replace. Takes each
  // entry's data (a big value is not copied again); index, term and type stay.
  void Append(std::vector<raft::Entry>* entries, storage::WriteBatch* wb);
  void SetHardState(const raft::HardState& hs, storage::WriteBatch* wb);
  // Forgets the whole log: the next entry follows (index, term), as after a snapshot install.
  void ResetToSnapshot(uint64_t index, uint64_t term, storage::WriteBatch* wb);
  // Drops entries up to and including `index` (which must be applied). No-op when already
  // truncated that far.
  void CompactTo(uint64_t index, storage::WriteBatch* wb);

  void set_conf_state(const raft::ConfState& cs) { conf_state_ = cs; }
  void set_snapshot_provider(SnapshotProvider p) { provider_ = std::move(p); }
  const raft::HardState& hard_state() const { return hard_state_; }
  uint64_t truncated_index() const { return truncated_index_; }
  uint64_t truncated_term() const { return truncated_term_; }
  size_t entry_count() const { return entries_.size(); }
  uint64_t log_bytes() const { return log_bytes_; }

  // raft::LogStorage
  Result<InitialState> GetInitialState() const override;
  Result<std::vector<raft::Entry>> Entries(LogIndex lo, LogIndex hi,
                                           uint64_t max_bytes) const override;
  Result<Term> TermAt(LogIndex i) const override;
  LogIndex FirstIndex() const override;
  LogIndex LastIndex() const override;
  Result<raft::Snapshot> GetSnapshot() const override;

  // The record format of a log entry: masked CRC32C of the entry bytes, then the bytes.
  static std::string EncodeEntry(const raft::Entry& e);
  static Status DecodeEntry(std::string_view value, raft::Entry* e);

 private:
  uint64_t region_id_;
  raft::HardState hard_state_;
  raft::ConfState conf_state_;
  uint64_t truncated_index_ = 0;
  uint64_t truncated_term_ = 0;
  std::deque<raft::Entry> entries_;  // (truncated_index_, last]
  uint64_t log_bytes_ = 0;
  SnapshotProvider provider_;
};

}  // namespace micedb::store
