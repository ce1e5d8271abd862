// The simulation's replicated state machine: a map from key to value, changed by put and
// compare-and-set entries. It also keeps the chain digest of every entry it applied, which is
// saved in its snapshots so that a restored state can be compared with the common history.
//
// Entry payloads are text, one operation each:
//   put <op id> <key> <value>
//   cas <op id> <key> <expected value or -> <new value>
//   get <op id> <key>                      (a read through the log; changes nothing)
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/strong_id.h"
#include "micedb/raft.pb.h"

namespace micedb::sim {

enum class KvOpKind { kPut, kCas, kGet };

struct KvOp {
  KvOpKind kind = KvOpKind::kPut;
  uint64_t id = 0;
  std::string key;
  std::string value;   // put, cas: the new value (no spaces)
  std::string expect;  // cas: the value required, "" meaning "absent"
};

std::string EncodeKvOp(const KvOp& op);
// nullopt when `data` is not an operation (e.g. an empty no-op entry).
std::optional<KvOp> DecodeKvOp(std::string_view data);

class KvStateMachine {
 public:
  // Applies one committed entry: normal entries holding an operation change the map; every
  // entry (no-ops and conf changes too) extends the digest and moves applied().
  void Apply(const raft::Entry& e);

  // Replaces the whole state with the one saved in `snap` (data from Serialize(), or empty for
  // the empty state at index 0). Errors: Corruption when the data does not parse.
  Status Restore(const raft::Snapshot& snap);

  // The state as snapshot data.
  std::string Serialize() const;

  std::optional<std::string> Get(const std::string& key) const;
  LogIndex applied() const { return applied_; }
  uint64_t digest() const { return digest_; }

 private:
  std::map<std::string, std::string> data_;
  LogIndex applied_;
  uint64_t digest_ = 0;
};

}  // namespace micedb::sim
