// Options of `micedb start` and their validation. Validation touches nothing on disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/strong_id.h"

namespace micedb::cli {

// A "host:port" listen or peer address.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
};

// Parses "host:port" or "[v6]:port". Port must be 1..65535 (0 only if `allow_zero`, meaning
// "pick a free port"). Errors: InvalidArgument naming the text and what is wrong with it.
Result<HostPort> ParseHostPort(const std::string& text, bool allow_zero = false);

struct StartOptions {
  uint64_t node_id = 0;
  std::string data_dir;
  std::string listen_peer = "127.0.0.1:20160";  // raft and internal gRPC
  std::string listen_redis = "127.0.0.1:6380";  // RESP
  std::string listen_pg = "127.0.0.1:5433";     // PostgreSQL wire protocol
  std::string listen_http = "127.0.0.1:8080";   // metrics, health, console
  // Security (docs/security.md): the certificates directory; without one, every listen
  // address must be loopback unless `insecure` says that plain connections are intended.
  std::string certs_dir;
  bool insecure = false;
  // The Redis protocol over TLS, host:port (Redis's tls-port); empty: none.
  std::string listen_redis_tls;
  std::string redis_tls_auth_clients = "yes";  // yes | optional | no (as Redis's setting)
  // Initial cluster members as "id=host:port", comma separated; empty means a single node.
  std::string initial_peers;
  // Nodes of a running cluster to join, "host:port[,host:port...]" (their peer ports): the
  // coordinator gives this node its id (unless --node-id is set) and checks its cluster.
  std::string join;
  // "coordinator,data" (the default for initial members) or "data" (the default, and the only
  // choice for now, for a node that joins). docs/coordinator.md.
  std::string roles;
  // Where this node stands, "key=value[,key=value...]" (e.g. zone=a,rack=r1): shown by the
  // coordinator; the placement of replicas will use them.
  std::string labels;
  // How long a store may send no heartbeat before the coordinator counts it down (and, with the
  // sharding issue's replica checker, replaces its replicas): a duration with a unit.
  std::string store_down_time = "60s";
  // A region that grows past this many bytes (a size with a unit: 96MiB, 64KiB) or this many
  // keys is split in two (docs/sharding.md).
  std::string region_split_size = "96MiB";
  uint64_t region_split_keys = 960'000;
  // A region serving more than this many keys a second (0: no load split) or this many bytes a
  // second (a size with a unit) for this many seconds in a row is split where its load halves.
  uint64_t region_split_qps = 3000;
  std::string region_split_load_bytes = "30MiB";
  int region_split_load_secs = 10;
  // The merge checker (docs/sharding.md §2; on since the twelfth session's fault runs). A
  // region smaller than this (a size with a unit) with fewer keys than this, unused for this
  // long (a duration), merges into a neighbour with the same members.
  bool region_merge = true;
  std::string region_merge_size = "20MiB";
  uint64_t region_merge_keys = 200'000;
  std::string region_merge_idle = "60s";
  // A merge whose source has a member without the freeze this long (a store down) is refused
  // at the target and rolled back.
  std::string region_merge_timeout = "20s";
  // The coordinator's schedulers (docs/sharding.md §3): an operator that moves a replica is
  // given up after this long (a duration with a unit), and at most this many replicas are
  // being added to one store at a time.
  std::string operator_timeout = "10m";
  // GC of transactional versions (docs/transactions.md §8): kept for gc_life_time, collected
  // every gc_run_interval ("0": never). Durations with a unit.
  std::string gc_life_time = "10m";
  std::string gc_run_interval = "10m";
  // Redis cross-region intents whose lock expired and that nobody met are looked for in the
  // regions led here this often, and resolved (a duration; "0": never).
  std::string intent_sweep_interval = "1m";
  uint32_t schedule_store_limit = 4;
  // Leaderships being moved at once to even out the stores' leader counts (0: no leader
  // balancing, e.g. to keep leaders where an operator put them).
  uint32_t schedule_leader_limit = 4;
  // Hot regions: a region with this much traffic a second (a size with a unit; 0 turns the
  // hot-region balancer off) is hot; every region led here reports this often (a duration).
  std::string hot_region_bytes = "1MiB";
  std::string region_heartbeat_interval = "10s";
  std::string log_level = "info";
  std::string log_format = "text";
  // Limits and tuning (see docs/operations.md).
  size_t max_connections = 10000;                   // Redis-protocol clients
  std::string requirepass;                          // Redis AUTH password; empty: no AUTH
  uint64_t max_result_bytes = uint64_t{128} << 20;  // value bytes in one reply
  uint64_t max_txn_bytes = uint64_t{128} << 20;     // queued in one MULTI, buffered in one txn
  size_t txn_max_open = 10000;                      // open gRPC transactions on one node
  bool txn_one_pc = true;                           // --txn-1pc
  bool txn_async_commit = true;                     // --txn-async-commit
  int64_t txn_idle_timeout_ms = 60000;  // an open gRPC transaction idle this long is dropped
  int64_t client_timeout_ms = 30000;    // a partly sent request or unread reply closes after this
  int64_t request_timeout_ms = 8000;    // a request that cannot be served by then fails
  int raft_tick_ms = 100;               // one raft tick
  int election_ticks = 10;              // election timeout, in ticks
  uint64_t block_cache_mb = 64;         // RocksDB block cache
  uint64_t raft_log_gc_threshold = 4096;
  uint64_t raft_log_gc_keep = 1024;
  uint64_t raft_log_max_lag = 65536;
  bool raft_async_leader_sync = true;        // StoreOptions::async_leader_sync
  bool raft_lazy_commit = true;              // StoreOptions::raft_lazy_commit
  bool raft_lease_reads = true;              // StoreOptions::lease_reads
  bool hibernate_regions = true;             // StoreOptions::hibernate
  double max_clock_drift = 0.1;              // StoreOptions::max_clock_drift
  uint64_t raft_slow_write_mib_per_sec = 8;  // StoreOptions::slow_write_bytes_per_sec
  // Below this much free disk space the NOSPACE alarm refuses writes (StoreOptions).
  uint64_t min_free_disk_mb = 256;
  // Deliberately broken, for the fault tests only: serve reads from this replica's local state
  // without ReadIndex, so a lagging follower or deposed leader returns stale data.
  bool testing_unsafe_local_reads = false;
};

struct PeerSpec {
  NodeId id;
  HostPort addr;
};

// The roles of `opts` (after defaults): whether it is a coordinator and whether it holds data.
struct Roles {
  bool coordinator = false;
  bool data = true;
};
Result<Roles> ParseRoles(const StartOptions& opts);

// Parses a duration with its unit: "500ms", "60s", "10m", "1h" (a whole number). Errors:
// InvalidArgument. Returns milliseconds.
Result<int64_t> ParseDuration(const std::string& text);
// "96MiB", "64KiB", "1GiB", "512B" or a plain number of bytes (KB/MB/GB mean the same powers
// of two, as RocksDB's and TiKV's settings do); InvalidArgument otherwise.
Result<uint64_t> ParseSize(const std::string& text);

// Parses --labels "zone=a,rack=r1": keys and values of letters, digits, '-', '_' and '.',
// at most 64 characters each and 16 labels, no key twice. Errors: InvalidArgument.
Result<std::map<std::string, std::string>> ParseLabels(const std::string& text);

// Parses "1=127.0.0.1:20160,2=127.0.0.1:20161". Errors: InvalidArgument naming the bad item.
Result<std::vector<PeerSpec>> ParsePeers(const std::string& text);

// Whether `host` is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool IsLoopbackHost(const std::string& host);

// Checks every field; returns the first problem as InvalidArgument with a message that names
// the flag, e.g. "--node-id must be at least 1". Does not create or open anything.
Status Validate(const StartOptions& opts);

}  // namespace micedb::cli
