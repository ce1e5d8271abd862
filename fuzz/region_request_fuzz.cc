// libFuzzer target for region requests as raft entries (src/store/apply.h): any entry data is
// decoded, checked against the region (epoch, key range) and applied by the real kv state
// machine, with the transactional steps of src/txn (txn::RegionSteps), over a MemEngine, or
// refused with an error; nothing crashes, asserts or overflows (a storage failure in a
// transactional step aborts: over a MemEngine that is a finding too). Checks that apply is
// deterministic: two replicas, one answering the client and one not (TxnReads::kSkip), end
// every round with equal engines. Each entry is also served on the read path (ServeRead)
// after its round, as a leader would: transactional reads wait (TxnReadWait) first.
//
// Built requests are proposed as a leader would: a transactional write that passes
// CheckRequest goes through BeforeProposeTxn (one-phase and async commits take memory locks
// in a txn::ConcurrencyManager, or fall back to two phases), and one it refuses is not
// applied; the memory locks are released once the round is applied. The manager's timestamp
// fetch answers at once, with what byte 0 picks, so that regions become synced.
//
// Input: byte 0 picks the region's range (bits 0-1: any key; raw user keys "b" <= k < "m";
// transactional user keys "b" <= k < "m"; the same with a start that is not an encoded key),
// the fetch's answer (bits 2-3: now, a small timestamp, a failure, a minute ahead), whether
// RegionSteps judges timestamps by a clock fixed at now (bit 4), and whether memory locks are
// released before the round's reads are served or after (bit 5). Then entries, each a 2-byte
// little-endian head and as many bytes as its low 14 bits say: the entry's data, or with bit
// 14 set the choices from which fuzz/request_builder.h builds a well-formed request. Bit 15
// ends the apply round after the entry.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "common/clock.h"
#include "common/logging.h"
#include "kv/region_state_machine.h"
#include "request_builder.h"
#include "storage/mem_engine.h"
#include "store/apply.h"
#include "txn/concurrency.h"
#include "txn/mvcc.h"
#include "txn/region_steps.h"

namespace {

using micedb::LogIndex;
using micedb::storage::MemEngine;
using micedb::storage::WriteBatch;
using micedb::txn::ComposeTs;

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

// The timestamp of the builder's now (fuzz/request_builder.h).
constexpr uint64_t kNowTs = ComposeTs(static_cast<uint64_t>(micedb::fuzz::kNowMs));

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
  switch (data[0] & 3) {
    case 1:
      // Raw user keys "b" <= k < "m" (engine keys are 'r' + user key).
      region.set_start_key("rb");
      region.set_end_key("rm");
      break;
    case 2:
      // Transactional user keys "b" <= k < "m".
      region.set_start_key(micedb::txn::EncodeKey("b"));
      region.set_end_key(micedb::txn::EncodeKey("m"));
      break;
    case 3:
      // A start inside the transactional keys that is no E(K): range steps refuse it.
      region.set_start_key("tb");
      region.set_end_key(micedb::txn::EncodeKey("m"));
      break;
  }
  // What the TSO answers the concurrency manager's fetch (at once, on this thread).
  const int fetch = (data[0] >> 2) & 3;
  micedb::txn::ConcurrencyManager cm([fetch](std::function<void(micedb::Result<uint64_t>)> done) {
    switch (fetch) {
      case 0:
        return done(kNowTs);
      case 1:
        return done(uint64_t{5});
      case 2:
        return done(micedb::Status::Unavailable("fuzz: no TSO"));
      default:
        return done(kNowTs + ComposeTs(60'000));
    }
  });
  // Fixed at now, when chosen: reads and GC safe points far ahead are refused.
  micedb::ManualClock clock(std::chrono::nanoseconds(0),
                            std::chrono::milliseconds(micedb::fuzz::kNowMs));
  micedb::txn::RegionStepsOptions steps_options;
  steps_options.default_scan_limit = 4;
  steps_options.max_scan_limit = 64;
  steps_options.max_request_keys = 16;
  if (data[0] & 0x10) steps_options.clock = &clock;
  const bool release_before_reads = (data[0] & 0x20) != 0;
  const micedb::txn::RegionSteps steps(steps_options, &cm);
  // Small limits keep each run fast; the checks are the same at any size.
  micedb::kv::StateMachineOptions options;
  options.max_value_bytes = 64 << 10;
  options.max_result_bytes = 64 << 10;
  micedb::kv::RegionStateMachine sm(options, &steps);

  Replica replicas[2];  // [0] answers the client, [1] does not
  std::vector<std::string_view> round;
  std::deque<std::string> built;  // entries made by RequestBuilder (stable addresses)
  // What releases the memory locks BeforeProposeTxn took for the round's entries.
  std::vector<std::function<void()>> releases;
  auto release = [&] {
    for (auto& r : releases) r();
    releases.clear();
  };
  auto end_round = [&] {
    for (Replica& r : replicas) {
      r.applier.reset();
      if (!r.engine.Write(r.wb, {}).ok()) std::abort();
      r.wb.Clear();
    }
    if (Dump(replicas[0].engine) != Dump(replicas[1].engine)) std::abort();
    if (release_before_reads) release();
    for (std::string_view e : round) {
      micedb::region::RegionRequest req;
      if (micedb::store::DecodeEntry(e, &req) == micedb::store::EntryFormat::kBad) continue;
      if (req.has_txn()) (void)sm.TxnReadWait(region, req.txn());
      auto resp = micedb::store::ServeRead(&sm, region, &replicas[0].engine, nullptr, req);
      (void)resp.ByteSizeLong();
    }
    release();
    if (cm.memory_locks() != 0) std::abort();  // every admitted entry let go of its keys
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
    bool propose = true;
    if ((head & 0x4000) != 0) {
      micedb::fuzz::RequestBuilder builder(entry);
      micedb::region::RegionRequest req = builder.Build();
      if (req.has_txn() && !micedb::store::CheckRequest(region, req, sm)) {
        // As the leader proposes it; one it refuses is answered and never proposed.
        micedb::store::TxnRefusal refused;
        auto unlock = sm.BeforeProposeTxn(region, builder.term(), req.mutable_txn(), &refused);
        if (!refused.message.empty()) {
          if (unlock) std::abort();  // refused, yet holding memory locks
          propose = false;
        } else if (unlock) {
          releases.push_back(std::move(unlock));
        }
      }
      built.push_back(micedb::store::EncodeEntry(std::move(req)));
      entry = built.back();
    }
    if (propose) {
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
    }
    if ((head & 0x8000) != 0) end_round();
  }
  if (!round.empty()) end_round();
  return 0;
}
