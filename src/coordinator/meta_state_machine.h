// The coordinator's replicated state (DESIGN §5, docs/coordinator.md): the state machine of the
// meta region, which the coordinator-role nodes host as a region like any other (same raft
// core, same store, same snapshots). Its commands (coordinator.proto MetaCommand) are applied
// in log order on every replica; its reads run on any replica's engine, linearizably when the
// store serves them at the leader.
//
// State, in the meta region's engine range (store/keys.h kMetaRangeStart) of the default
// column family:
//   C             -> ClusterMeta (present once bootstrapped)
//   I             -> fixed64 id high-water mark
//   T             -> fixed64 TSO upper bound (ms)
//   G             -> fixed64 GC safe point
//   V name        -> setting value
//   S id(8 BE)    -> StoreMeta
//   R id(8 BE)    -> RegionMeta
//   E 0x01 end    -> fixed64 region id: the region whose range ends at `end`
//   E 0x02        -> the region ending at +infinity
// The E index finds the region holding a key with one seek (the first region ending above it).
//
// Thread-safety: ReadMeta is thread-safe; an apply round runs on the store's loop thread.
#pragma once

#include <memory>

#include "micedb/coordinator.pb.h"
#include "store/keys.h"
#include "store/state_machine.h"

namespace micedb::coordinator {

// Most regions one ScanRegions returns.
inline constexpr uint32_t kMaxScanRegions = 1024;
// Most ids one AllocIds reserves.
inline constexpr uint64_t kMaxAllocIds = uint64_t{1} << 20;

class MetaStateMachine final : public store::StateMachine {
 public:
  std::unique_ptr<store::ApplyRound> BeginRound(const store::RegionDescriptor& region,
                                                storage::Engine* engine,
                                                storage::WriteBatch* wb) override;
  MetaResult ReadMeta(const store::RegionDescriptor& region, storage::Engine* engine,
                      const storage::Snapshot* snapshot, const MetaCommand& cmd) override;
  // The meta region holds no key-value data.
  kv::CommandResult ReadKv(const store::RegionDescriptor& region, storage::Engine* engine,
                           const storage::Snapshot* snapshot, const kv::Command& cmd) override;
  void EngineKeys(const kv::Command& cmd, std::vector<std::string>* keys) const override;
};

// The state machine of a node's store: the meta region's commands go to `meta`, every other
// region's to `data`. Not owning.
class NodeStateMachine final : public store::StateMachine {
 public:
  NodeStateMachine(store::StateMachine* data, store::StateMachine* meta)
      : data_(data), meta_(meta) {}

  std::unique_ptr<store::ApplyRound> BeginRound(const store::RegionDescriptor& region,
                                                storage::Engine* engine,
                                                storage::WriteBatch* wb) override;
  kv::CommandResult ReadKv(const store::RegionDescriptor& region, storage::Engine* engine,
                           const storage::Snapshot* snapshot, const kv::Command& cmd) override;
  MetaResult ReadMeta(const store::RegionDescriptor& region, storage::Engine* engine,
                      const storage::Snapshot* snapshot, const MetaCommand& cmd) override;
  txn::pb::TxnResponse ReadTxn(const store::RegionDescriptor& region, storage::Engine* engine,
                               const storage::Snapshot* snapshot,
                               const txn::pb::TxnRequest& req) override;
  void EngineKeys(const kv::Command& cmd, std::vector<std::string>* keys) const override {
    data_->EngineKeys(cmd, keys);
  }
  void TxnEngineKeys(const txn::pb::TxnRequest& req,
                     std::vector<std::string>* keys) const override {
    data_->TxnEngineKeys(req, keys);
  }
  uint64_t TxnReadWait(const store::RegionDescriptor& region,
                       const txn::pb::TxnRequest& req) override {
    if (store::IsMetaRegion(region.id())) return 0;
    return data_->TxnReadWait(region, req);
  }
  std::function<void()> BeforeProposeTxn(const store::RegionDescriptor& region, uint64_t term,
                                         txn::pb::TxnRequest* req,
                                         store::TxnRefusal* refused) override {
    if (store::IsMetaRegion(region.id())) return nullptr;
    return data_->BeforeProposeTxn(region, term, req, refused);
  }
  kv::CommandResult ForRetry(const kv::Command& cmd, kv::CommandResult result) const override {
    return data_->ForRetry(cmd, std::move(result));
  }

 private:
  store::StateMachine* data_;
  store::StateMachine* meta_;
};

// True when epoch `a` is older than `b`: either counter behind. (Neither ahead nor behind,
// or ahead in one and behind in the other, is not "older": a split bumps only version, a
// membership change only conf_ver.)
bool EpochOlder(const store::RegionEpoch& a, const store::RegionEpoch& b);

}  // namespace micedb::coordinator
