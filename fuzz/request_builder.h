// For fuzz/region_request_fuzz.cc: builds a well-formed region request from fuzzer bytes, so
// that the fuzzer spends its time on what the state machine does with valid commands (keys
// that collide, expiries around now, numbers at their limits, retried request ids, txns with
// watched revisions) rather than on protobuf's wire format, which raw entries cover. Some
// requests carry a transactional step instead (proto/micedb/txn.proto): prewrites (two-phase,
// one-phase, async commit), commits, rollbacks, status checks, resolves, heartbeats, GC and
// the reads, on the same few user keys, with timestamps that transactions share and some
// around now, so that locks meet other transactions and their TTLs have or have not run out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "micedb/region.pb.h"

namespace micedb::fuzz {

// The time every built request runs at, give or take the offsets the bytes pick.
inline constexpr int64_t kNowMs = 1'700'000'000'000;

// Reads choices from `bytes`; past the end every choice is 0. Never fails.
class RequestBuilder {
 public:
  explicit RequestBuilder(std::string_view bytes) : bytes_(bytes) {}

  // A request for region 7 at epoch {conf_ver 2, version 3} (now and then another region or
  // a stale epoch), with one kv command (a txn holds up to four) or one transactional step.
  region::RegionRequest Build();
  // The raft term the leader proposes the built request in (1 or 2: a new leadership, which
  // must fetch a timestamp again before it admits one-phase or async commits).
  uint64_t term() const { return term_; }

 private:
  uint8_t Byte();
  std::string Key();
  std::string Value();
  int64_t Number();
  int64_t Time();
  // One command; `in_txn` forbids nesting further.
  kv::Command Cmd(bool in_txn);
  // Transaction timestamps; After(ts): mostly a little above ts (a valid commit_ts).
  uint64_t Ts();
  uint64_t After(uint64_t ts);
  uint64_t TtlMs();
  std::string TxnValue();
  uint32_t Limit();
  txn::pb::TxnRequest TxnBody();

  std::string_view bytes_;
  size_t pos_ = 0;
  uint64_t term_ = 1;
};

}  // namespace micedb::fuzz
