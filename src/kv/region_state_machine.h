// The raw key-value state machine (kv/state_machine.h) as a store's state machine for kv
// bodies of region requests (store/state_machine.h), with the transactional bodies handed to
// a TxnBodies (src/txn) so that kv does not depend on txn. Engine keys are 'r' + user key
// (docs/kv-format.md); a region's user range follows from its engine range.
//
// Thread-safety: as store::StateMachine (no mutable state).
#pragma once

#include "kv/apply_batch.h"
#include "kv/read_view.h"
#include "kv/state_machine.h"
#include "store/state_machine.h"

namespace micedb::kv {

// The user-key range of a region, from its engine-key range.
KeyRange UserRangeOf(const store::RegionDescriptor& region);

// The transactional bodies of region requests (src/txn implements them: txn/region_steps.h).
// Thread-safe.
class TxnBodies {
 public:
  virtual ~TxnBodies() = default;
  // Applies one step of a raft entry on the round's batch (it reads through it too).
  virtual txn::pb::TxnResponse Apply(const store::RegionDescriptor& region,
                                     const txn::pb::TxnRequest& req, ApplyBatch* batch) const = 0;
  // Serves a read (get, batch_get, scan) through `view`.
  virtual txn::pb::TxnResponse Read(const store::RegionDescriptor& region,
                                    const txn::pb::TxnRequest& req, ReadView* view) const = 0;
  virtual void EngineKeys(const txn::pb::TxnRequest& req, std::vector<std::string>* keys) const = 0;
  // Before a read takes its snapshot (store::StateMachine::TxnReadWait).
  virtual uint64_t ReadWait(const txn::pb::TxnRequest& req) const {
    (void)req;
    return 0;
  }
  // On the leader, before a write step is proposed (store::StateMachine::BeforeProposeTxn).
  virtual std::function<void()> BeforePropose(const store::RegionDescriptor& region, uint64_t term,
                                              txn::pb::TxnRequest* req,
                                              store::TxnRefusal* refused) const {
    (void)region;
    (void)term;
    (void)req;
    (void)refused;
    return nullptr;
  }
};

class RegionStateMachine final : public store::StateMachine {
 public:
  // `txn`: the transactional bodies (not owned; outlives this); null: they are refused.
  explicit RegionStateMachine(StateMachineOptions options = {}, const TxnBodies* txn = nullptr)
      : options_(options), txn_(txn) {}

  std::unique_ptr<store::ApplyRound> BeginRound(const store::RegionDescriptor& region,
                                                storage::Engine* engine,
                                                storage::WriteBatch* wb) override;
  // Reads at the command's now_ms (set by the gateway).
  CommandResult ReadKv(const store::RegionDescriptor& region, storage::Engine* engine,
                       const storage::Snapshot* snapshot, const Command& cmd) override;
  txn::pb::TxnResponse ReadTxn(const store::RegionDescriptor& region, storage::Engine* engine,
                               const storage::Snapshot* snapshot,
                               const txn::pb::TxnRequest& req) override;
  void EngineKeys(const Command& cmd, std::vector<std::string>* keys) const override;
  void TxnEngineKeys(const txn::pb::TxnRequest& req,
                     std::vector<std::string>* keys) const override {
    if (txn_) txn_->EngineKeys(req, keys);
  }
  uint64_t TxnReadWait(const store::RegionDescriptor& region,
                       const txn::pb::TxnRequest& req) override {
    (void)region;
    return txn_ ? txn_->ReadWait(req) : 0;
  }
  std::function<void()> BeforeProposeTxn(const store::RegionDescriptor& region, uint64_t term,
                                         txn::pb::TxnRequest* req,
                                         store::TxnRefusal* refused) override {
    return txn_ ? txn_->BeforePropose(region, term, req, refused) : nullptr;
  }
  CommandResult ForRetry(const Command& cmd, CommandResult result) const override {
    return KvStateMachine::ForRetry(cmd, std::move(result));
  }

 private:
  StateMachineOptions options_;
  const TxnBodies* txn_;
};

}  // namespace micedb::kv
