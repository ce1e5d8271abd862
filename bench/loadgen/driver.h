// The two ways the load generator talks to a system: RESP (MiceDB, Redis) and etcd's v3 gRPC
// KV API. Both run the same closed loop: each client has exactly one request outstanding and
// sends its next one as soon as the reply arrives; clients share connections (a RESP
// connection then carries a pipeline of up to clients/connections requests; a gRPC channel
// multiplexes them as HTTP/2 streams).
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
};

struct LoadOptions {
  std::vector<Endpoint> endpoints;
  int clients = 16;
  int connections = 4;
  int threads = 1;
  uint64_t first = 0;  // key indexes first..first+count-1
  uint64_t count = 0;
  int batch = 100;  // keys per MSET (RESP); etcd writes one key per Put
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

}  // namespace micedb::bench
