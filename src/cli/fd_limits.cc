#include "cli/fd_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace micedb::cli {

size_t ReservedDescriptors(int rocksdb_files) {
  // RocksDB: its table files plus WAL, MANIFEST, LOG, LOCK and files being compacted; the
  // rest: listening sockets, peer streams both ways, gRPC channels, HTTP, snapshot staging.
  const size_t rocks = rocksdb_files < 0 ? 4096 : static_cast<size_t>(rocksdb_files);
  return rocks + 64 + 256;
}

Result<FdPlan> PlanDescriptors(uint64_t soft, uint64_t hard, size_t wanted_connections,
                               int rocksdb_files) {
  constexpr size_t kMinClients = 16;
  FdPlan plan;
  plan.rocksdb_files = rocksdb_files;
  size_t reserved = ReservedDescriptors(rocksdb_files);
  plan.soft_limit = std::max(soft, std::min<uint64_t>(wanted_connections + reserved, hard));
  if (plan.soft_limit < reserved + kMinClients && rocksdb_files > 64) {
    // A short limit: RocksDB keeps fewer table files open (slower reads of a large data set,
    // but the node runs).
    plan.rocksdb_files = static_cast<int>(std::max<uint64_t>(64, plan.soft_limit / 2));
    plan.rocksdb_files = std::min(plan.rocksdb_files, rocksdb_files);
    reserved = ReservedDescriptors(plan.rocksdb_files);
  }
  if (plan.soft_limit < reserved + kMinClients) {
    return Status::InvalidArgument(fmt::format(
        "the open file limit ({} hard) is too low: a node keeps {} descriptors for RocksDB and "
        "its peers and needs room for at least {} clients; raise it (ulimit -Hn, or "
        "LimitNOFILE= under systemd)",
        hard, reserved, kMinClients));
  }
  plan.max_connections =
      std::min<size_t>(wanted_connections, static_cast<size_t>(plan.soft_limit - reserved));
  if (plan.max_connections < wanted_connections || plan.rocksdb_files < rocksdb_files) {
    plan.warning = fmt::format(
        "the open file limit is {}: --max-connections {} lowered to {}, RocksDB keeps {} table "
        "files open (raise the hard limit to allow more)",
        plan.soft_limit, wanted_connections, plan.max_connections, plan.rocksdb_files);
  }
  return plan;
}

Result<FdPlan> RaiseDescriptorLimit(size_t wanted_connections, int rocksdb_files) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return Status::IoError(fmt::format("getrlimit(RLIMIT_NOFILE): {}", std::strerror(errno)));
  }
  const uint64_t hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : rl.rlim_max;
  MICEDB_ASSIGN_OR_RETURN(FdPlan plan,
                          PlanDescriptors(rl.rlim_cur, hard, wanted_connections, rocksdb_files));
  if (plan.soft_limit != rl.rlim_cur) {
    rl.rlim_cur = plan.soft_limit;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      return Status::IoError(
          fmt::format("setrlimit(RLIMIT_NOFILE, {}): {}", plan.soft_limit, std::strerror(errno)));
    }
  }
  return plan;
}

}  // namespace micedb::cli
