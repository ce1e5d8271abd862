// Runs the raw key-value state machine (src/kv) as a store's per-region state machine: log
// entries and read commands are serialized kv.Command messages, results serialized
// kv.CommandResult messages.
#pragma once

#include "kv/state_machine.h"
#include "store/state_machine.h"

namespace micedb::server {

// The user-key range of a region, from its engine-key range: raw keys are stored as
// 'r' + user key (docs/kv-format.md).
kv::KeyRange UserRangeOf(const store::RegionDescriptor& region);

class KvStateMachineAdapter : public store::StateMachine {
 public:
  explicit KvStateMachineAdapter(kv::StateMachineOptions options = {}) : options_(options) {}

  std::unique_ptr<store::ApplyRound> BeginRound(const store::RegionDescriptor& region,
                                                storage::Engine* engine,
                                                storage::WriteBatch* wb) override;
  std::string Read(const store::RegionDescriptor& region, storage::Engine* engine,
                   const storage::Snapshot* snapshot, std::string_view command) override;
  std::string ErrorResult(std::string_view message) override;

 private:
  kv::StateMachineOptions options_;
};

}  // namespace micedb::server
