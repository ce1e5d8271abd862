// KvApi: the requests of the gRPC KV API (proto/micedb/kv_service.proto) served on a
// KvBackend, with no gRPC in sight: each request is checked, turned into one kv Command
// (proto/micedb/kv.proto) stamped with the wall clock, and the backend's CommandResult is
// turned back into the response. KvGrpcService (kv/grpc/service.h) is the thin layer that
// puts it on the wire; tests drive it directly with a fake backend. Limits and error
// meanings are in docs/kv-grpc.md.
//
// Thread-safety: const and stateless apart from its options; any number of threads may call
// it at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "kv/backend.h"
#include "micedb/kv.pb.h"
#include "micedb/kv_service.pb.h"

namespace micedb::kv {

struct KvApiOptions {
  // Longest key (also the longest scan bound); a longer one is InvalidArgument.
  size_t max_key_bytes = size_t{64} << 10;
  // Longest value a request may carry; a longer one is InvalidArgument.
  size_t max_value_bytes = size_t{64} << 20;
  // Most keys or pairs in one Delete, BatchGet or BatchPut.
  size_t max_batch_keys = 10000;
  // What a Scan with limit 0 returns at most, and the most any Scan returns.
  uint64_t max_scan_limit = 100000;
  // Most keys one backend scan examines; fewer when values are large (scan_page_bytes).
  size_t scan_page_keys = 256;
  // Rough bytes of keys and values one backend scan aims at.
  size_t scan_page_bytes = size_t{4} << 20;
  // A ScanResponse is closed once it holds this many bytes (it always holds at least one pair).
  size_t scan_message_bytes = size_t{1} << 20;
  // Wall clock for now_ms (not owned); SystemClock when null.
  const Clock* clock = nullptr;
};

// The Status for a command the state machine refused: InvalidArgument for a refusal about
// the request's contents (NOT_INTEGER, INTEGER_OVERFLOW, VALUE_TOO_BIG, INVALID_ARGUMENT);
// Internal for the rest, which mean the API built a command the store cannot run or the
// store is broken. The message is the KvError's.
Status KvErrorStatus(const KvError& error);

class KvApi {
 public:
  // Called exactly once with the outcome; the response has been filled when it is OK.
  using Done = std::function<void(Status)>;

  // `backend` is not owned and must outlive the KvApi.
  explicit KvApi(KvBackend* backend, KvApiOptions options = {});

  // Each method checks `req` first: bad input calls done(InvalidArgument) before returning and
  // never reaches the backend. Otherwise it runs one Command on the backend and calls `done`
  // from the backend's callback (any thread, possibly before returning) once `*resp` is
  // filled. `req` and `*resp` are not owned and must stay valid until `done` runs; on a
  // non-OK status the response's contents are unspecified. Errors passed through from the backend:
  // Unavailable or NotLeader (nothing applied), TimedOut (a write may have been applied), others
  // internal.
  void Get(const v1::GetRequest& req, v1::GetResponse* resp, Done done) const;
  void Put(const v1::PutRequest& req, v1::PutResponse* resp, Done done) const;
  void Delete(const v1::DeleteRequest& req, v1::DeleteResponse* resp, Done done) const;
  void BatchGet(const v1::BatchGetRequest& req, v1::BatchGetResponse* resp, Done done) const;
  void BatchPut(const v1::BatchPutRequest& req, v1::BatchPutResponse* resp, Done done) const;
  void CompareAndSwap(const v1::CompareAndSwapRequest& req, v1::CompareAndSwapResponse* resp,
                      Done done) const;

  // InvalidArgument naming `what` when `key` is empty or longer than max_key_bytes.
  Status CheckKey(std::string_view key, std::string_view what) const;
  // InvalidArgument naming `what` when `value` is longer than max_value_bytes.
  Status CheckValue(std::string_view value, std::string_view what) const;
  // The backend's read mode for `c`; InvalidArgument for a value the proto does not define.
  static Result<ReadMode> ReadModeOf(v1::ReadConsistency c);

  // Unix milliseconds by the options' clock.
  int64_t NowMs() const;
  KvBackend* backend() const { return backend_; }
  const KvApiOptions& options() const { return options_; }

 private:
  // Runs `cmd` (now_ms set here unless already set) and passes an OK result to `on_result`, which
  // fills the response and returns the final status; a failed Status or an error CommandResult goes
  // straight to `done`.
  void Run(Command cmd, ReadMode mode, std::function<Status(const CommandResult&)> on_result,
           Done done) const;

  KvBackend* const backend_;
  const KvApiOptions options_;
};

}  // namespace micedb::kv
