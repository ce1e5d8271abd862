// libFuzzer target for region requests as raft entries (src/store/apply.h): any entry data is
// decoded, checked against the region (epoch, key range) and applied by the real kv state
// machine over a MemEngine, or refused with an error; nothing crashes, asserts or overflows.
// Checks that apply is deterministic: two replicas, one answering the client and one not
// (TxnReads::kSkip), end every round with equal engines. Each entry is also served on the
// read path (ServeRead) after its round.
//
// Input: byte 0 picks the region's range; then entries, each a 2-byte little-endian head and
// as many bytes as its low 14 bits say: the entry's data, or with bit 14 set the choices from
// which fuzz/request_builder.h builds a well-formed request. Bit 15 ends the apply round after
// the entry.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "common/logging.h"
#include "kv/region_state_machine.h"
#include "request_builder.h"
#include "storage/mem_engine.h"
#include "store/apply.h"

namespace {

using micedb::LogIndex;
using micedb::storage::MemEngine;
using micedb::storage::WriteBatch;

using Contents = std::map<std::string, std::string>;

// Every key of every column family, prefixed by the family's number.
Contents Dump(MemEngine& engine) {
  Contents out;
  for (micedb::storage::Cf cf : micedb::storage::kAllCfs) {
    auto it = engine.NewIterator(cf, {});
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key(1, static_cast<char>(cf));
      key.append(it->key());
      out.emplace(std::move(key), std::string(it->value()));
    }
    if (!it->status().ok()) std::abort();
  }
  return out;
}

struct Replica {
  MemEngine engine;
  WriteBatch wb;
  std::unique_ptr<micedb::store::Applier> applier;
};

}  // namespace

// Refused entries are logged, and strings that are not UTF-8 make protobuf log an error per
// parse; quiet, the fuzzer's own output stays readable.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  if (!micedb::SetLogLevels("off").ok()) std::abort();
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  micedb::store::RegionDescriptor region;
  region.set_id(7);
  region.mutable_epoch()->set_conf_ver(2);
  region.mutable_epoch()->set_version(3);
  if (data[0] & 1) {
    // Raw user keys "b" <= k < "m" (engine keys are 'r' + user key).
    region.set_start_key("rb");
    region.set_end_key("rm");
  }
  // Small limits keep each run fast; the checks are the same at any size.
  micedb::kv::StateMachineOptions options;
  options.max_value_bytes = 64 << 10;
  options.max_result_bytes = 64 << 10;
  micedb::kv::RegionStateMachine sm(options);

  Replica replicas[2];  // [0] answers the client, [1] does not
  std::vector<std::string_view> round;
  std::deque<std::string> built;  // entries made by RequestBuilder (stable addresses)
  auto end_round = [&] {
    for (Replica& r : replicas) {
      r.applier.reset();
      if (!r.engine.Write(r.wb, {}).ok()) std::abort();
      r.wb.Clear();
    }
    if (Dump(replicas[0].engine) != Dump(replicas[1].engine)) std::abort();
    for (std::string_view e : round) {
      micedb::region::RegionRequest req;
      if (micedb::store::DecodeEntry(e, &req) == micedb::store::EntryFormat::kBad) continue;
      auto resp = micedb::store::ServeRead(&sm, region, &replicas[0].engine, nullptr, req);
      (void)resp.ByteSizeLong();
    }
    round.clear();
  };

  uint64_t index = 1;
  size_t off = 1;
  while (off + 2 <= size) {
    const size_t head = data[off] | (size_t{data[off + 1]} << 8);
    off += 2;
    const size_t len = std::min(head & 0x3fff, size - off);
    std::string_view entry(reinterpret_cast<const char*>(data) + off, len);
    off += len;
    if ((head & 0x4000) != 0) {
      built.push_back(micedb::store::EncodeEntry(micedb::fuzz::RequestBuilder(entry).Build()));
      entry = built.back();
    }
    for (size_t i = 0; i < 2; ++i) {
      Replica& r = replicas[i];
      if (!r.applier) {
        r.applier = std::make_unique<micedb::store::Applier>(&sm, region, &r.engine, &r.wb);
      }
      micedb::region::RegionResponse resp = r.applier->Apply(entry, LogIndex(index), i == 0);
      (void)resp.ByteSizeLong();
    }
    ++index;
    round.push_back(entry);
    if ((head & 0x8000) != 0) end_round();
  }
  if (!round.empty()) end_round();
  return 0;
}
