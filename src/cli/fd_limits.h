// Descriptor budget of a node process: raises RLIMIT_NOFILE as far as the hard limit allows
// and derives how many Redis-protocol clients fit beside what RocksDB and the peers need (as
// Redis lowers maxclients when the limit is short).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace micedb::cli {

struct FdPlan {
  uint64_t soft_limit = 0;     // RLIMIT_NOFILE to set
  size_t max_connections = 0;  // clients that fit
  int rocksdb_files = 0;       // table files RocksDB may keep open (RocksOptions)
  std::string warning;         // why max_connections is below what was asked, if it is
};

// Descriptors a node keeps for itself besides client connections: RocksDB's table files
// (`rocksdb_files`) plus its WAL, logs and locks, the peer port and its streams, gRPC, HTTP
// connections, snapshot files and spare.
size_t ReservedDescriptors(int rocksdb_files);

// The plan for `wanted_connections` clients under limits (soft, hard). When the hard limit is
// short, clients get what is left beside the reserve, and below that RocksDB keeps fewer
// table files open (at least 64; half the limit). InvalidArgument when not even 16 clients
// fit (raise the hard limit: ulimit -Hn, LimitNOFILE=).
Result<FdPlan> PlanDescriptors(uint64_t soft, uint64_t hard, size_t wanted_connections,
                               int rocksdb_files);

// Applies PlanDescriptors to this process: reads RLIMIT_NOFILE, raises the soft limit.
Result<FdPlan> RaiseDescriptorLimit(size_t wanted_connections, int rocksdb_files);

}  // namespace micedb::cli
