#include "cli/node_process.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include <fmt/format.h>

#include "cli/data_dir.h"
#include "cli/fd_limits.h"
#include "cli/version.h"
#include "common/logging.h"
#include "server/node.h"
#include "storage/rocks_options.h"

namespace micedb::cli {

namespace {

int Refuse(const Status& st) {
  std::fprintf(stderr, "micedb: error: %s\n", std::string(st.message()).c_str());
  return 2;
}

// Exit code 4: the data directory cannot be opened, read or written. A supervisor that
// restarts on failure would only repeat this: fix the disk first (docs/operations.md).
int DataDirUnusable(const std::string& dir, const std::string& why = "") {
  std::fprintf(stderr,
               "micedb: error: the data directory %s cannot be used%s%s (a full or failing disk, "
               "permissions, or damaged data); fix it before restarting\n",
               dir.c_str(), why.empty() ? "" : ": ", why.c_str());
  return 4;
}

}  // namespace

int RunNode(const StartOptions& opts) {
  if (Status st = Validate(opts); !st.ok()) return Refuse(st);

  // Block the stop signals before any library starts a thread, so that only sigwait below
  // receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  LogOptions log_opts;
  log_opts.levels = opts.log_level;
  log_opts.format = *ParseLogFormat(opts.log_format);
  if (Status st = InitLogging(log_opts); !st.ok()) return Refuse(st);

  // Descriptors: as many as the hard limit allows for the clients asked for, beside what
  // RocksDB and the peers keep; fewer clients (with a warning) when the limit is short.
  auto fds = RaiseDescriptorLimit(opts.max_connections, storage::RocksOptions{}.max_open_files);
  if (!fds.ok()) return Refuse(fds.status());
  if (!fds->warning.empty()) GetLogger("server")->warn("{}", fds->warning);

  auto lock = DataDirLock::Acquire(opts.data_dir);
  if (!lock.ok()) {
    // In use by another process, or not a directory: a mistake in the command (2). Anything
    // else is the disk's doing (4).
    if (lock.status().code() == StatusCode::kBusy ||
        lock.status().code() == StatusCode::kInvalidArgument) {
      return Refuse(lock.status());
    }
    return DataDirUnusable(opts.data_dir, std::string(lock.status().message()));
  }

  server::NodeOptions no;
  no.id = NodeId(opts.node_id);
  no.data_dir = opts.data_dir;
  no.listen_peer = opts.listen_peer;
  no.listen_http = opts.listen_http;
  auto redis = ParseHostPort(opts.listen_redis, /*allow_zero=*/true);
  no.redis_host = redis->host;
  no.redis_port = redis->port;
  if (!opts.initial_peers.empty()) {
    auto peers = ParsePeers(opts.initial_peers);
    for (const auto& p : *peers) {
      no.initial_peers.emplace_back(p.id, p.addr.ToString());
    }
  }
  for (size_t pos = 0; !opts.join.empty() && pos <= opts.join.size();) {
    size_t comma = opts.join.find(',', pos);
    if (comma == std::string::npos) comma = opts.join.size();
    no.join.push_back(opts.join.substr(pos, comma - pos));
    pos = comma + 1;
  }
  no.coordinator_role = ParseRoles(opts)->coordinator;
  no.labels = *ParseLabels(opts.labels);
  no.store_down_ms = *ParseDuration(opts.store_down_time);
  no.operator_timeout_ms = *ParseDuration(opts.operator_timeout);
  no.gc_life_time_ms = *ParseDuration(opts.gc_life_time);
  no.gc_run_interval_ms = opts.gc_run_interval == "0" ? 0 : *ParseDuration(opts.gc_run_interval);
  no.intent_sweep_interval_ms =
      opts.intent_sweep_interval == "0" ? 0 : *ParseDuration(opts.intent_sweep_interval);
  no.schedule_store_limit = opts.schedule_store_limit;
  no.schedule_leader_limit = opts.schedule_leader_limit;
  no.hot_region_bytes = *ParseSize(opts.hot_region_bytes);
  no.region_heartbeat_ms = *ParseDuration(opts.region_heartbeat_interval);
  no.region_split_size = *ParseSize(opts.region_split_size);
  no.region_split_keys = opts.region_split_keys;
  no.region_split_qps = opts.region_split_qps;
  no.region_split_bytes_per_sec = *ParseSize(opts.region_split_load_bytes);
  no.region_split_load_secs = opts.region_split_load_secs;
  no.region_merge = opts.region_merge;
  no.region_merge_size = *ParseSize(opts.region_merge_size);
  no.region_merge_keys = opts.region_merge_keys;
  no.region_merge_idle_ms = *ParseDuration(opts.region_merge_idle);
  no.region_merge_timeout_ms = *ParseDuration(opts.region_merge_timeout);
  no.version = VersionString();
  no.resp.max_connections = fds->max_connections;
  no.rocksdb_max_open_files = fds->rocksdb_files;
  no.resp.password = opts.requirepass;
  no.certs_dir = opts.certs_dir;
  if (!opts.listen_redis_tls.empty()) {
    auto tls = ParseHostPort(opts.listen_redis_tls, /*allow_zero=*/true);
    no.redis_tls = true;
    no.redis_tls_host = tls->host;
    no.redis_tls_port = tls->port;
    no.redis_tls_auth_clients = opts.redis_tls_auth_clients == "no" ? security::ClientAuth::kNone
                                : opts.redis_tls_auth_clients == "optional"
                                    ? security::ClientAuth::kOptional
                                    : security::ClientAuth::kRequire;
  }
  if (opts.certs_dir.empty()) {
    GetLogger("server")->warn("running insecure: the peer port has no TLS and no authentication{}",
                              opts.insecure ? " (--insecure)" : "; it listens on loopback only");
  }
  no.resp.max_txn_bytes = opts.max_txn_bytes;
  no.max_result_bytes = opts.max_result_bytes;
  no.txn_service.max_txn_bytes = opts.max_txn_bytes;
  no.txn_service.max_open = opts.txn_max_open;
  no.txn_service.idle_timeout_ms = opts.txn_idle_timeout_ms;
  no.txn_one_pc = opts.txn_one_pc;
  no.txn_async_commit = opts.txn_async_commit;
  no.resp.request_timeout = std::chrono::milliseconds(opts.client_timeout_ms);
  no.router.request_timeout_ms = opts.request_timeout_ms;
  no.router.slow_write_bytes_per_sec = opts.raft_slow_write_mib_per_sec << 20;
  no.router.unsafe_local_reads = opts.testing_unsafe_local_reads;
  no.store.request_timeout_ms = opts.request_timeout_ms;
  no.store.tick_ms = opts.raft_tick_ms;
  no.store.election_tick = opts.election_ticks;
  no.block_cache_mb = opts.block_cache_mb;
  no.store.log_gc_threshold = opts.raft_log_gc_threshold;
  no.store.log_gc_keep = opts.raft_log_gc_keep;
  no.store.log_gc_max_lag = opts.raft_log_max_lag;
  no.store.async_leader_sync = opts.raft_async_leader_sync;
  no.store.raft_lazy_commit = opts.raft_lazy_commit;
  no.store.lease_reads = opts.raft_lease_reads;
  no.store.hibernate = opts.hibernate_regions;
  no.store.max_clock_drift = opts.max_clock_drift;
  no.store.slow_write_bytes_per_sec = opts.raft_slow_write_mib_per_sec << 20;
  no.store.min_free_bytes = opts.min_free_disk_mb << 20;

  // Refused by a peer (a replaced data directory, another cluster): stop, exit code 3.
  static std::atomic<bool> refused{false};
  no.on_refused = [](const std::string& reason) {
    std::fprintf(stderr, "micedb: error: refused by the cluster: %s\n", reason.c_str());
    refused = true;
    kill(getpid(), SIGTERM);
  };
  server::Node node(no);
  if (Status st = node.Start(); !st.ok()) {
    std::fprintf(stderr, "micedb: error: node %llu cannot start: %s\n",
                 static_cast<unsigned long long>(node.id().value()), st.ToString().c_str());
    node.Stop();
    if (node.failed_on_storage()) return DataDirUnusable(opts.data_dir);
    return st.code() == StatusCode::kIoError && st.message().find("listen") != std::string::npos
               ? 2
               : 1;
  }

  std::printf("micedb node %llu running (pid %d)\n",
              static_cast<unsigned long long>(node.id().value()), getpid());
  std::printf("  data:   %s\n", opts.data_dir.c_str());
  std::printf("  redis:  redis-cli -h %s -p %u\n", no.redis_host.c_str(), node.redis_port());
  if (no.redis_tls) {
    std::printf(
        "  redis over TLS: redis-cli --tls --cacert %s/ca.crt%s -h %s -p %u\n",
        opts.certs_dir.c_str(),
        opts.redis_tls_auth_clients == "no"
            ? ""
            : fmt::format(" --cert {0}/client.root.crt --key {0}/client.root.key", opts.certs_dir)
                  .c_str(),
        no.redis_tls_host.c_str(), node.redis_tls_port());
  }
  std::printf("  security: %s\n",
              opts.certs_dir.empty() ? "insecure (no TLS, no authentication on the peer port)"
                                     : "mutual TLS on the peer port (certificates in --certs-dir)");
  std::printf("  http:   http://%s/metrics  /healthz  /readyz  /debug/raft\n",
              opts.listen_http.c_str());
  std::printf("  peer:   %s\n", opts.listen_peer.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::printf("micedb node %llu: stopping on %s\n",
              static_cast<unsigned long long>(node.id().value()),
              sig == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  node.Stop();
  return refused ? 3 : 0;
}

}  // namespace micedb::cli
