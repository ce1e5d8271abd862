#include "kv/region_state_machine.h"

#include <cstdio>
#include <cstdlib>

#include "common/logging.h"
#include "kv/apply_batch.h"
#include "kv/command_keys.h"
#include "kv/value_format.h"

namespace micedb::kv {

namespace {

[[noreturn]] void StorageFailure(const Status& st) {
  // A replica whose state machine cannot read its own engine must stop: continuing could
  // make its state differ from the other replicas'.
  GetLogger("kv")->critical("state machine storage failure: {}", st.ToString());
  std::fprintf(stderr, "micedb: fatal: state machine storage failure: %s\n", st.ToString().c_str());
  std::abort();
}

class Round final : public store::ApplyRound {
 public:
  Round(KvStateMachine sm, const store::RegionDescriptor& region, const TxnBodies* txn,
        storage::Engine* engine, storage::WriteBatch* out)
      : sm_(std::move(sm)), region_(&region), txn_(txn), batch_(engine, out) {}

  void SetRegion(const store::RegionDescriptor& region) override {
    sm_.set_range(UserRangeOf(region));
    region_ = &region;
  }

  txn::pb::TxnResponse ApplyTxn(const txn::pb::TxnRequest& req, LogIndex index) override {
    (void)index;
    if (txn_ == nullptr) return store::ApplyRound::ApplyTxn(req, index);
    return txn_->Apply(*region_, req, &batch_);
  }

  CommandResult ApplyKv(const Command& cmd, LogIndex index, bool answering) override {
    auto r = sm_.Apply(cmd, index, batch_, answering ? TxnReads::kCompute : TxnReads::kSkip);
    if (!r.ok()) StorageFailure(r.status());
    return std::move(r).value();
  }

 private:
  KvStateMachine sm_;
  // The store's descriptor of the region (BeginRound's and SetRegion's argument: it outlives
  // the round).
  const store::RegionDescriptor* region_;
  const TxnBodies* txn_;
  ApplyBatch batch_;  // writes straight into the store's batch
};

}  // namespace

KeyRange UserRangeOf(const store::RegionDescriptor& region) {
  KeyRange r;
  const std::string& s = region.start_key();
  const std::string& e = region.end_key();
  if (s.size() > 1 && s[0] == kRawKeyPrefix) r.start = s.substr(1);
  if (!e.empty() && e.size() > 1 && e[0] == kRawKeyPrefix) r.end = e.substr(1);
  if (!e.empty() && e <= std::string(1, kRawKeyPrefix)) r.end = std::string(1, '\0');
  return r;
}

std::unique_ptr<store::ApplyRound> RegionStateMachine::BeginRound(
    const store::RegionDescriptor& region, storage::Engine* engine, storage::WriteBatch* wb) {
  return std::make_unique<Round>(KvStateMachine(UserRangeOf(region), options_), region, txn_,
                                 engine, wb);
}

txn::pb::TxnResponse RegionStateMachine::ReadTxn(const store::RegionDescriptor& region,
                                                 storage::Engine* engine,
                                                 const storage::Snapshot* snapshot,
                                                 const txn::pb::TxnRequest& req) {
  if (txn_ == nullptr) return store::StateMachine::ReadTxn(region, engine, snapshot, req);
  EngineView view(engine, snapshot);
  return txn_->Read(region, req, &view);
}

CommandResult RegionStateMachine::ReadKv(const store::RegionDescriptor& region,
                                         storage::Engine* engine, const storage::Snapshot* snapshot,
                                         const Command& cmd) {
  KvStateMachine sm(UserRangeOf(region), options_);
  auto r = sm.Read(cmd, engine, snapshot, cmd.now_ms());
  if (!r.ok()) StorageFailure(r.status());
  return std::move(r).value();
}

void RegionStateMachine::EngineKeys(const Command& cmd, std::vector<std::string>* keys) const {
  const size_t first = keys->size();
  UserKeys(cmd, keys);
  for (size_t i = first; i < keys->size(); ++i) (*keys)[i] = EncodeRawKey((*keys)[i]);
}

}  // namespace micedb::kv
