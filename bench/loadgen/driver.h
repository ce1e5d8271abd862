// The ways the load generator talks to a system: RESP (MiceDB, Redis), etcd's v3 gRPC KV API,
// and MiceDB's transactional gRPC API micedb.txn.v1. All run the same closed loop: each client
// has exactly one request outstanding and sends its next one as soon as the reply arrives;
// clients share connections (a RESP connection then carries a pipeline of up to
// clients/connections requests; a gRPC channel multiplexes them as HTTP/2 streams).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stats.h"
#include "workload.h"

namespace micedb::bench {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string str() const { return host + ":" + std::to_string(port); }
};

// "host:port,host:port" -> endpoints; throws std::invalid_argument on a malformed entry.
std::vector<Endpoint> ParseEndpoints(std::string_view csv);

struct RunOptions {
  std::vector<Endpoint> endpoints;  // connections are spread over these round-robin
  int clients = 16;
  int connections = 16;  // at most `clients`
  int threads = 1;       // I/O (RESP) or completion-queue (gRPC) threads
  double warmup_s = 1;
  double duration_s = 10;
  int timeout_ms = 10000;  // a request unanswered this long after the end counts as an error
  uint64_t seed = 1;
};

struct RunOutcome {
  Stats stats;
  Window window;
  double cpu_s = 0;  // the load generator's own CPU time over the window (user + system)
  std::vector<std::string> notes;  // lines to print after the figures (the bank's total)
  bool check_failed = false;       // a check after the run found the data wrong
};

struct LoadOptions {
  std::vector<Endpoint> endpoints;
  int clients = 16;
  int connections = 4;
  int threads = 1;
  uint64_t first = 0;  // key indexes first..first+count-1
  uint64_t count = 0;
  int batch = 100;  // keys per MSET (RESP) or one-shot Commit (txn); etcd: one key per Put
  int timeout_ms = 30000;
  uint64_t seed = 1;
};

struct LoadOutcome {
  uint64_t keys = 0;  // keys acknowledged
  double seconds = 0;
  uint64_t errors = 0;
  std::string first_error;
};

RunOutcome RunResp(const RunOptions& opts, const Workload& wl);
LoadOutcome LoadResp(const LoadOptions& opts, const Workload& wl);
RunOutcome RunEtcd(const RunOptions& opts, const Workload& wl);
LoadOutcome LoadEtcd(const LoadOptions& opts, const Workload& wl);
// MiceDB's raw key-value API over gRPC (micedb.kv.v1 Put and Get, at peer ports).
RunOutcome RunKv(const RunOptions& opts, const Workload& wl);
LoadOutcome LoadKv(const LoadOptions& opts, const Workload& wl);

// The transactional workloads (micedb.txn.v1; every operation is one transaction, its latency
// the whole transaction's):
//   kWrite   one one-shot Commit (txn_id 0) with one PUT of a random key;
//   kMulti4  one one-shot Commit with 4 PUTs: two keys of [span_lo, span_at), two of
//            [span_at, span_hi) (so that they span exactly two regions when a region boundary
//            lies at span_at and none inside either range);
//   kBank    Begin, BatchGet of two distinct random accounts, Put of both (a random amount of
//            up to 100 moved, no balance below 0), Commit. ABORTED counts as an abort, not an
//            error. After the run one snapshot reads every account and checks the total.
enum class TxnWorkload { kWrite, kMulti4, kBank };
struct TxnOptions {
  TxnWorkload workload = TxnWorkload::kWrite;
  // kMulti4's key ranges; all 0: [0, keys / 2) and [keys / 2, keys).
  uint64_t span_lo = 0, span_at = 0, span_hi = 0;
  int64_t balance = 1000;  // kBank: each account's balance as loaded (values are decimal)
};
// Throws std::invalid_argument for a key space too small for the workload, or multi4 ranges
// that do not hold two keys each inside it.
RunOutcome RunTxn(const RunOptions& opts, const Workload& wl, const TxnOptions& txn);
// One-shot Commits of `batch` keys each; kBank writes `balance` as every value.
LoadOutcome LoadTxn(const LoadOptions& opts, const Workload& wl, const TxnOptions& txn);

}  // namespace micedb::bench
