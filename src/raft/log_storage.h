// LogStorage: the read-only view of durable Raft state that the core reads. The application
// owns the storage and writes to it while handling a Ready (append entries, save the hard
// state, install snapshots); the core never writes. MemoryStorage is an in-memory
// implementation for tests, the simulation and the benchmark.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/strong_id.h"
#include "micedb/raft.pb.h"

namespace micedb::raft {

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  struct InitialState {
    HardState hard_state;
    ConfState conf_state;
  };

  // The hard state and membership to restart from. Errors are returned as-is to RawNode::Create.
  virtual Result<InitialState> GetInitialState() const = 0;

  // Entries in [lo, hi). Returns at least one entry when the range is non-empty, and otherwise
  // stops before the total size (EntrySize) would exceed max_bytes.
  // Errors: Compacted (see IsCompacted) if lo <= the snapshot index; Unavailable if hi > last+1.
  virtual Result<std::vector<Entry>> Entries(LogIndex lo, LogIndex hi,
                                             uint64_t max_bytes) const = 0;

  // Term of the entry at i, valid for [FirstIndex()-1, LastIndex()] (FirstIndex()-1 is the
  // snapshot's index). Errors: Compacted below that range, Unavailable above it.
  virtual Result<Term> TermAt(LogIndex i) const = 0;

  // Index of the first entry still held: the snapshot's index + 1.
  virtual LogIndex FirstIndex() const = 0;
  // Index of the last entry held (the snapshot's index when there is no entry after it).
  virtual LogIndex LastIndex() const = 0;

  // The most recent snapshot. Errors: Unavailable while one is being made (the core retries
  // on a later heartbeat).
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

// The error returned for an index that has been compacted away.
Status CompactedError();
// The error returned for an index past the end of the log.
Status UnavailableError();
// True when `s` says the requested index was compacted away (LogStorage contract).
bool IsCompacted(const Status& s);
// True when `s` says the requested index is not (yet) in the log or a snapshot is not ready.
bool IsUnavailable(const Status& s);

// Approximate in-memory / wire size of an entry, used for every byte limit in the core.
inline uint64_t EntrySize(const Entry& e) { return e.data().size() + 16; }

}  // namespace micedb::raft
