// Counters of the RESP server, shown by INFO stats / commandstats and read by the metrics
// exporter. Lock-free; any thread may bump or read them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/metrics.h"

namespace micedb::resp {

struct CommandCounters {
  CommandCounters() : latency_seconds(DefaultLatencyBuckets()) {}
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> failed{0};  // replies that were errors
  std::atomic<uint64_t> usec{0};    // total time from dispatch to reply
  Histogram latency_seconds;        // the same time, per call (for /metrics)
};

struct ServerStats {
  explicit ServerStats(size_t num_commands)
      : per_command(std::make_unique<CommandCounters[]>(num_commands)) {}

  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> rejected_connections{0};    // over max_connections
  std::atomic<uint64_t> tls_handshake_failures{0};  // on the TLS port
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> error_replies{0};      // commands answered with an error, known or not
  std::atomic<uint64_t> protocol_errors{0};    // connections closed for malformed input
  std::atomic<uint64_t> timed_out_clients{0};  // closed by request or idle timeout
  std::atomic<uint64_t> keyspace_hits{0};
  std::atomic<uint64_t> keyspace_misses{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::atomic<uint64_t> backend_errors{0};  // commands the backend could not serve
  // Backend calls whose callback has not finished yet; RespServer::Stop waits for zero so
  // that no callback still holds a handle into the server's io_context when it is destroyed.
  std::atomic<int64_t> backend_inflight{0};
  // Indexed like CommandTable() (frontend/resp/resp_command_table.h).
  std::unique_ptr<CommandCounters[]> per_command;
};

}  // namespace micedb::resp
