#include "server/kv_state_machine_adapter.h"

#include <cstdio>
#include <cstdlib>

#include "common/clock.h"
#include "common/logging.h"
#include "common/memcomparable.h"
#include "kv/apply_batch.h"
#include "kv/command_result.h"

namespace micedb::server {

namespace {

[[noreturn]] void StorageFailure(const Status& st) {
  // A replica whose state machine cannot read its own engine must stop: continuing could
  // make its state differ from the other replicas'.
  GetLogger("kv")->critical("state machine storage failure: {}", st.ToString());
  std::fprintf(stderr, "micedb: fatal: state machine storage failure: %s\n", st.ToString().c_str());
  std::abort();
}

// Results of recent requests, for deduplication: 'd' + big-endian request_ts_ms + request_id
// in the default column family (below every raw key, which starts with 'r').
constexpr char kDedupPrefix = 'd';
constexpr int64_t kDedupWindowMs = 10 * 60 * 1000;
constexpr uint64_t kDedupGcEvery = 1024;

std::string DedupKey(int64_t ts_ms, uint64_t request_id) {
  std::string k(1, kDedupPrefix);
  memcomparable::AppendUint64(&k, static_cast<uint64_t>(ts_ms));
  memcomparable::AppendUint64(&k, request_id);
  return k;
}

class Round : public store::ApplyRound {
 public:
  Round(kv::KvStateMachine sm, storage::Engine* engine, storage::WriteBatch* out)
      : sm_(std::move(sm)), batch_(engine), out_(out) {}

  ~Round() override {
    // Hand the round's writes to the store's batch, which also carries the applied index.
    for (const auto& op : batch_.write_batch().ops()) {
      switch (op.type) {
        case storage::WriteBatch::OpType::kPut:
          out_->Put(op.cf, op.key, op.value);
          break;
        case storage::WriteBatch::OpType::kDelete:
          out_->Delete(op.cf, op.key);
          break;
        case storage::WriteBatch::OpType::kDeleteRange:
          out_->DeleteRange(op.cf, op.key, op.value);
          break;
      }
    }
  }

  std::string Apply(std::string_view command, LogIndex index) override {
    kv::Command cmd;
    if (!cmd.ParseFromArray(command.data(), static_cast<int>(command.size()))) {
      return kv::ErrorResult(kv::KvError::INTERNAL, "log entry is not a command")
          .SerializeAsString();
    }
    if (cmd.request_id() == 0) {
      auto r = sm_.Apply(cmd, index, batch_);
      if (!r.ok()) StorageFailure(r.status());
      return r->SerializeAsString();
    }
    // At most once: a request id seen before gets the result it got then.
    std::string key = DedupKey(cmd.request_ts_ms(), cmd.request_id());
    auto seen = batch_.Get(storage::Cf::kDefault, key);
    if (!seen.ok()) StorageFailure(seen.status());
    if (seen->has_value()) return **seen;
    auto r = sm_.Apply(cmd, index, batch_);
    if (!r.ok()) StorageFailure(r.status());
    std::string encoded = r->SerializeAsString();
    batch_.Put(storage::Cf::kDefault, key, encoded);
    if (index.value() % kDedupGcEvery == 0 && cmd.now_ms() > kDedupWindowMs) {
      // Forget requests older than the window; deterministic, as now_ms is in the entry.
      batch_.DeleteRange(storage::Cf::kDefault, std::string(1, kDedupPrefix),
                         DedupKey(cmd.now_ms() - kDedupWindowMs, 0));
    }
    return encoded;
  }

 private:
  kv::KvStateMachine sm_;
  kv::ApplyBatch batch_;
  storage::WriteBatch* out_;
};

}  // namespace

kv::KeyRange UserRangeOf(const store::RegionDescriptor& region) {
  kv::KeyRange r;
  const std::string& s = region.start_key();
  const std::string& e = region.end_key();
  if (s.size() > 1 && s[0] == 'r') r.start = s.substr(1);
  if (!e.empty() && e.size() > 1 && e[0] == 'r') r.end = e.substr(1);
  if (!e.empty() && e <= "r") r.end = std::string(1, '\0');  // no raw keys in this region
  return r;
}

std::unique_ptr<store::ApplyRound> KvStateMachineAdapter::BeginRound(
    const store::RegionDescriptor& region, storage::Engine* engine, storage::WriteBatch* wb) {
  return std::make_unique<Round>(kv::KvStateMachine(UserRangeOf(region), options_), engine, wb);
}

std::string KvStateMachineAdapter::Read(const store::RegionDescriptor& region,
                                        storage::Engine* engine, const storage::Snapshot* snapshot,
                                        std::string_view command) {
  kv::Command cmd;
  if (!cmd.ParseFromArray(command.data(), static_cast<int>(command.size()))) {
    return ErrorResult("not a command");
  }
  kv::KvStateMachine sm(UserRangeOf(region), options_);
  auto r = sm.Read(cmd, engine, snapshot, SystemClock::Get()->NowWallMillis());
  if (!r.ok()) StorageFailure(r.status());
  return r->SerializeAsString();
}

std::string KvStateMachineAdapter::ErrorResult(std::string_view message) {
  return kv::ErrorResult(kv::KvError::INTERNAL, message).SerializeAsString();
}

}  // namespace micedb::server
