// KvClient: a small blocking C++ client of the gRPC KV API micedb.kv.v1.Kv
// (docs/kv-grpc.md), used by the tests and `micedb kv`. Point it at any node's peer address;
// the node routes the request to the leader of the key's region.
//
// Every call has a deadline (KvClientOptions::timeout) that covers its retries. A call that
// fails with UNAVAILABLE is sent again a few times with backoff: reads, Put, BatchPut and
// Delete always (they are idempotent, though a repeated Delete may count fewer keys), and
// CompareAndSwap only when the server said nothing was applied. A Scan that breaks off
// resumes after the last key it delivered.
//
// Errors (our Status, from the gRPC status): InvalidArgument for bad input, Unavailable when
// no node or leader could serve, TimedOut when the deadline passed (a write may have been
// applied), Aborted when cancelled, Internal for anything else.
//
// Thread-safe: one client may be used from many threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/result.h"
#include "kv/backend.h"
#include "micedb/kv_service.grpc.pb.h"

namespace micedb::kv {

struct KvClientOptions {
  // Deadline of one call, retries included.
  std::chrono::milliseconds timeout{10000};
  // Attempts at most per call (the first one included).
  int max_attempts = 4;
  // Pause before the first retry; doubled before each further one.
  std::chrono::milliseconds retry_backoff{100};
  // Largest message the client sends or accepts (a 64 MiB value fits).
  int max_message_bytes = 256 << 20;
  // How to connect (TLS with a client certificate, for a secure cluster); null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

struct KvPair {
  std::string key;
  std::string value;

  bool operator==(const KvPair&) const = default;
};

// The `{}` initializers below let callers name only some fields (designated initializers)
// without a missing-initializer warning.
struct KvScanOptions {
  std::string start{};  // first key (inclusive); empty: the beginning of the keyspace
  std::string end{};    // end key (exclusive); empty: the end of the keyspace
  uint64_t limit = 0;   // most pairs; 0: the server's bound (100,000 by default)
  bool keys_only = false;
  ReadMode mode = ReadMode::kLinearizable;
};

struct KvCasOp {
  std::string key{};
  std::optional<std::string> expected{};   // nullopt: the key must be absent
  std::optional<std::string> new_value{};  // nullopt: delete the key when the condition holds
};

struct KvCasResult {
  bool swapped = false;
  std::optional<std::string> previous{};  // the value before the operation; nullopt: absent
};

class KvClient {
 public:
  // Does not connect yet: an unreachable or malformed "host:port" shows up in the first call
  // as Unavailable (or TimedOut).
  explicit KvClient(const std::string& addr, KvClientOptions options = {});

  // The value, or nullopt when the key is absent.
  Result<std::optional<std::string>> Get(std::string_view key,
                                         ReadMode mode = ReadMode::kLinearizable);
  // Writes `value`, expiring after ttl_ms milliseconds (0: never).
  Status Put(std::string_view key, std::string_view value, int64_t ttl_ms = 0);
  // Deletes `keys`; returns how many existed.
  Result<uint64_t> Delete(const std::vector<std::string>& keys);
  // Calls `visit` for each pair in key order as the stream arrives (on the calling thread).
  // A failure after some pairs were visited returns the error; those visits stand.
  Status Scan(const KvScanOptions& options, const std::function<void(KvPair)>& visit);
  // Scan collecting every pair.
  Result<std::vector<KvPair>> Scan(const KvScanOptions& options);
  // One entry per key, in order: the value or nullopt.
  Result<std::vector<std::optional<std::string>>> BatchGet(const std::vector<std::string>& keys,
                                                           ReadMode mode = ReadMode::kLinearizable);
  // Writes every pair atomically, without expiry.
  Status BatchPut(const std::vector<KvPair>& pairs);
  // Swaps (or deletes) the value when it equals op.expected (or is absent); atomic.
  Result<KvCasResult> CompareAndSwap(const KvCasOp& op);

 private:
  // Runs `attempt` with a fresh context per try until it succeeds, fails for good, or the
  // call's deadline passes. `idempotent`: retry any UNAVAILABLE, not only "not applied".
  Status Call(bool idempotent, const std::function<grpc::Status(grpc::ClientContext*)>& attempt);

  const KvClientOptions options_;
  std::unique_ptr<v1::Kv::Stub> stub_;
};

}  // namespace micedb::kv
