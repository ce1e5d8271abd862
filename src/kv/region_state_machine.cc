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
  Round(KvStateMachine sm, storage::Engine* engine, storage::WriteBatch* out)
      : sm_(std::move(sm)), batch_(engine, out) {}

  void SetRegion(const store::RegionDescriptor& region) override {
    sm_.set_range(UserRangeOf(region));
  }

  CommandResult ApplyKv(const Command& cmd, LogIndex index, bool answering) override {
    auto r = sm_.Apply(cmd, index, batch_, answering ? TxnReads::kCompute : TxnReads::kSkip);
    if (!r.ok()) StorageFailure(r.status());
    return std::move(r).value();
  }

 private:
  KvStateMachine sm_;
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
  return std::make_unique<Round>(KvStateMachine(UserRangeOf(region), options_), engine, wb);
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
