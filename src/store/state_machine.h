// What a store runs on top of each region's log: the interface between the replication layer
// (src/store) and the data model (src/kv for raw key-value; later src/txn).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/strong_id.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb::store {

// One apply round of one region: entries are applied in order and their writes collected in
// one WriteBatch, which the store writes together with the region's applied index.
class ApplyRound {
 public:
  virtual ~ApplyRound() = default;
  // Applies one committed command (the data of a normal log entry) and returns the encoded
  // result for the proposer. Deterministic: every replica computes the same writes from the
  // same entries. Never fails: a command that cannot be applied produces an error result.
  virtual std::string Apply(std::string_view command, LogIndex index) = 0;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Starts a round over `region`; reads see `engine` plus the round's own earlier writes; the
  // round's writes go to `wb`. The round lives until the store writes `wb`.
  virtual std::unique_ptr<ApplyRound> BeginRound(const RegionDescriptor& region,
                                                 storage::Engine* engine,
                                                 storage::WriteBatch* wb) = 0;
  // Executes a read-only command on `region` at `snapshot` (null: the engine's current state)
  // and returns its encoded result. Thread-safe: called from the raft loop, and from client
  // threads for lease and stale reads, which pass a snapshot so that a command reading several
  // keys does not see half of a concurrent apply.
  virtual std::string Read(const RegionDescriptor& region, storage::Engine* engine,
                           const storage::Snapshot* snapshot, std::string_view command) = 0;
  // The encoded result a proposer gets when its command could not run (for example: the
  // region's range does not contain a key). Used by the store when rejecting at apply.
  virtual std::string ErrorResult(std::string_view message) = 0;
};

}  // namespace micedb::store
