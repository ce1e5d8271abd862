// The raw key-value state machine (kv/state_machine.h) as a store's state machine for kv
// bodies of region requests (store/state_machine.h). Engine keys are 'r' + user key
// (docs/kv-format.md); a region's user range follows from its engine range.
//
// Thread-safety: as store::StateMachine (no mutable state).
#pragma once

#include "kv/state_machine.h"
#include "store/state_machine.h"

namespace micedb::kv {

// The user-key range of a region, from its engine-key range.
KeyRange UserRangeOf(const store::RegionDescriptor& region);

class RegionStateMachine final : public store::StateMachine {
 public:
  explicit RegionStateMachine(StateMachineOptions options = {}) : options_(options) {}

  std::unique_ptr<store::ApplyRound> BeginRound(const store::RegionDescriptor& region,
                                                storage::Engine* engine,
                                                storage::WriteBatch* wb) override;
  // Reads at the command's now_ms (set by the gateway).
  CommandResult ReadKv(const store::RegionDescriptor& region, storage::Engine* engine,
                       const storage::Snapshot* snapshot, const Command& cmd) override;
  void EngineKeys(const Command& cmd, std::vector<std::string>* keys) const override;
  CommandResult ForRetry(const Command& cmd, CommandResult result) const override {
    return KvStateMachine::ForRetry(cmd, std::move(result));
  }

 private:
  StateMachineOptions options_;
};

}  // namespace micedb::kv
