#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "cli/admin.h"
#include "cli/kv_command.h"
#include "cli/local_cluster.h"
#include "cli/node_process.h"
#include "cli/start_options.h"
#include "cli/txn_command.h"
#include "cli/version.h"

namespace micedb::cli {
namespace {

void AddStartFlags(CLI::App* cmd, StartOptions* o) {
  cmd->add_option("--node-id", o->node_id,
                  "Id of this node, at least 1 (a node that joins gets one from the cluster)");
  cmd->add_option("--data-dir", o->data_dir, "Directory for this node's data (created if absent)")
      ->required();
  cmd->add_option("--listen-peer", o->listen_peer, "host:port for raft and internal gRPC")
      ->capture_default_str();
  cmd->add_option("--listen-redis", o->listen_redis, "host:port for the Redis protocol")
      ->capture_default_str();
  cmd->add_option("--listen-pg", o->listen_pg, "host:port for the PostgreSQL protocol")
      ->capture_default_str();
  cmd->add_option("--listen-http", o->listen_http, "host:port for /metrics, /healthz, console")
      ->capture_default_str();
  cmd->add_option("--initial-peers", o->initial_peers,
                  "Initial members and coordinators of a new cluster, "
                  "id=host:port[,id=host:port...] (list only this node for a cluster of one)");
  cmd->add_option("--join", o->join,
                  "Join a running cluster through these nodes' peer ports, host:port[,...]");
  cmd->add_option("--roles", o->roles,
                  "coordinator,data (initial members) or data (nodes that join)");
  cmd->add_option("--labels", o->labels,
                  "Where this node stands, key=value[,key=value...] (e.g. zone=a,rack=r1)");
  cmd->add_option("--store-down-time", o->store_down_time,
                  "A store silent this long counts as down (e.g. 60s, 5m; at least 1s)")
      ->capture_default_str();
  cmd->add_option("--region-split-size", o->region_split_size,
                  "Split a region that grows past this size (e.g. 96MiB, 64KiB)")
      ->capture_default_str();
  cmd->add_option("--region-split-keys", o->region_split_keys,
                  "Split a region that holds more keys than this")
      ->capture_default_str();
  cmd->add_option("--region-split-qps", o->region_split_qps,
                  "Split a region serving more keys a second than this (reads and writes) for "
                  "--region-split-load-secs where its load halves; 0: never")
      ->capture_default_str();
  cmd->add_option("--region-split-load-bytes", o->region_split_load_bytes,
                  "Likewise for a region serving more bytes a second than this (e.g. 30MiB)")
      ->capture_default_str();
  cmd->add_option("--region-split-load-secs", o->region_split_load_secs,
                  "How many seconds in a row a region must be that hot to be split")
      ->capture_default_str();
  cmd->add_flag("--region-merge,!--no-region-merge", o->region_merge,
                "Merge small idle regions into a neighbour (on by default; --no-region-merge "
                "turns it off)");
  cmd->add_option("--region-merge-size", o->region_merge_size,
                  "With --region-merge: regions smaller than this merge (e.g. 20MiB)")
      ->capture_default_str();
  cmd->add_option("--region-merge-keys", o->region_merge_keys,
                  "With --region-merge: ... and holding fewer keys than this")
      ->capture_default_str();
  cmd->add_option("--region-merge-idle", o->region_merge_idle,
                  "With --region-merge: ... once unused for this long (e.g. 60s)")
      ->capture_default_str();
  cmd->add_option("--region-merge-timeout", o->region_merge_timeout,
                  "Roll a merge back when a member of the source has not taken the freeze after "
                  "this long (a store down; e.g. 20s)")
      ->capture_default_str();
  cmd->add_option("--operator-timeout", o->operator_timeout,
                  "Give up an operator that moves a replica after this long (e.g. 10m)")
      ->capture_default_str();
  cmd->add_option("--gc-life-time", o->gc_life_time,
                  "Keep the versions reads this far back may need (transactions; e.g. 10m); "
                  "older ones are collected, and reads below them refused")
      ->capture_default_str();
  cmd->add_option("--gc-run-interval", o->gc_run_interval,
                  "Move the GC safe point up and collect this often (0: never)")
      ->capture_default_str();
  cmd->add_option("--intent-sweep-interval", o->intent_sweep_interval,
                  "Resolve expired Redis cross-region intents nobody met, in the regions led "
                  "here, this often (0: never)")
      ->capture_default_str();
  cmd->add_option("--schedule-store-limit", o->schedule_store_limit,
                  "Replicas being added to one store at a time (each a snapshot)")
      ->capture_default_str();
  cmd->add_option("--schedule-leader-limit", o->schedule_leader_limit,
                  "Leaderships moved at once to balance the stores' leader counts (0: no "
                  "leader balancing)")
      ->capture_default_str();
  cmd->add_option("--hot-region-bytes", o->hot_region_bytes,
                  "A region with this much traffic a second is hot, and hot regions are spread "
                  "over the stores (0: off)")
      ->capture_default_str();
  cmd->add_option("--region-heartbeat-interval", o->region_heartbeat_interval,
                  "Each region's leader reports its size and traffic this often (e.g. 10s)")
      ->capture_default_str();
  cmd->add_option("--log-level", o->log_level, "e.g. info, or info,raft=debug")
      ->capture_default_str();
  cmd->add_option("--log-format", o->log_format, "text or json")->capture_default_str();
  cmd->add_option("--max-connections", o->max_connections, "Most Redis-protocol clients at once")
      ->capture_default_str();
  cmd->add_option("--requirepass", o->requirepass, "Password Redis clients must AUTH with");
  cmd->add_option("--certs-dir", o->certs_dir,
                  "Certificates (ca.crt, node.crt, node.key; see `micedb cert`): mutual TLS "
                  "between nodes and for gRPC clients")
      ->envname("MICEDB_CERTS_DIR");
  cmd->add_flag("--insecure", o->insecure,
                "Serve plain connections on non-loopback addresses (no authentication)");
  cmd->add_option("--listen-redis-tls", o->listen_redis_tls,
                  "host:port for the Redis protocol over TLS (needs --certs-dir)");
  cmd->add_option("--redis-tls-auth-clients", o->redis_tls_auth_clients,
                  "Redis TLS clients must present a certificate: yes, optional or no")
      ->capture_default_str();
  cmd->add_option("--max-result-bytes", o->max_result_bytes,
                  "Most value bytes one reply carries, same on every node (e.g. 128MiB)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false));
  cmd->add_option("--max-txn-bytes", o->max_txn_bytes,
                  "Most bytes one transaction holds: the commands queued in one MULTI, the "
                  "writes buffered in one micedb.txn.v1 transaction (e.g. 128MiB)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false));
  cmd->add_option("--txn-max-open", o->txn_max_open,
                  "Most micedb.txn.v1 transactions open at once on this node")
      ->capture_default_str();
  cmd->add_option("--txn-1pc", o->txn_one_pc,
                  "Commit transactions whose keys lie in one region in one raft round (false: "
                  "always two phases)")
      ->capture_default_str();
  cmd->add_option("--txn-async-commit", o->txn_async_commit,
                  "Answer a transaction over several regions once its prewrites applied (async "
                  "commit: one raft round and one timestamp instead of two each; false: two "
                  "phases)")
      ->capture_default_str();
  cmd->add_option("--txn-idle-timeout-ms", o->txn_idle_timeout_ms,
                  "An open micedb.txn.v1 transaction with no call for this long is dropped")
      ->capture_default_str();
  cmd->add_option("--client-timeout-ms", o->client_timeout_ms,
                  "Close a Redis connection whose request or reply stalls this long")
      ->capture_default_str();
  cmd->add_option("--request-timeout-ms", o->request_timeout_ms,
                  "A request that cannot be served in this time fails")
      ->capture_default_str();
  cmd->add_option("--raft-tick-ms", o->raft_tick_ms, "Length of one raft tick")
      ->capture_default_str();
  cmd->add_option("--election-ticks", o->election_ticks, "Election timeout in raft ticks")
      ->capture_default_str();
  cmd->add_option("--block-cache-mb", o->block_cache_mb, "RocksDB block cache size")
      ->capture_default_str();
  cmd->add_option("--raft-log-gc-threshold", o->raft_log_gc_threshold,
                  "Truncate a region's log when it holds more applied entries than this")
      ->capture_default_str();
  cmd->add_option("--raft-log-gc-keep", o->raft_log_gc_keep,
                  "Applied entries kept after truncation, for slow followers")
      ->capture_default_str();
  cmd->add_option("--raft-log-max-lag", o->raft_log_max_lag,
                  "A follower further behind than this is caught up by snapshot")
      ->capture_default_str();
  cmd->add_option("--raft-async-leader-sync", o->raft_async_leader_sync,
                  "A leader syncs its own log on a separate thread and goes on replicating "
                  "meanwhile (writes stay durable on a majority before they are acknowledged)")
      ->capture_default_str();
  cmd->add_option("--raft-lazy-commit", o->raft_lazy_commit,
                  "Followers learn a new commit index from the leader's next append or "
                  "heartbeat (they apply up to a heartbeat interval later; splits, merges and "
                  "membership changes are sent at once); false: an append of its own, as soon "
                  "as it moves")
      ->capture_default_str();
  cmd->add_option("--raft-lease-reads", o->raft_lease_reads,
                  "The leader answers linearizable reads alone while its lease holds, without "
                  "a heartbeat round (assumes every node's clock runs within "
                  "--max-clock-drift of true time); false: every read is confirmed by a quorum")
      ->capture_default_str();
  cmd->add_option("--hibernate-regions", o->hibernate_regions,
                  "Regions with nothing to do stop ticking on every replica until a request or "
                  "a message wakes them, so that idle regions cost next to nothing")
      ->capture_default_str();
  cmd->add_option("--max-clock-drift", o->max_clock_drift,
                  "The most a node's clock may run fast or slow, as a fraction (0.1: 10%); "
                  "leases are shortened to hold under it. NTP daemons slew clocks by up to "
                  "8.3% while correcting an offset")
      ->capture_default_str();
  cmd->add_option("--raft-slow-write-mib-per-sec", o->raft_slow_write_mib_per_sec,
                  "The slowest rate at which a node may write and apply raft entries. After "
                  "an entry of B bytes, nodes wait B / this rate longer before they hold an "
                  "election or a leader steps down: a big entry holds every replica for a "
                  "while, and none should depose a leader that is only busy. 0: no allowance")
      ->capture_default_str();
  cmd->add_option("--min-free-disk-mb", o->min_free_disk_mb,
                  "Below this much free space on the data directory's disk the NOSPACE alarm "
                  "refuses writes (reads go on) until space is freed; 0: only a full disk")
      ->capture_default_str();
  // Not for users: breaks linearizability on purpose so the fault tests can show that their
  // checker catches stale reads (docs/fault-testing.md).
  cmd->add_flag("--testing-unsafe-local-reads", o->testing_unsafe_local_reads,
                "UNSAFE, tests only: serve reads from local state without ReadIndex")
      ->group("");
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"MiceDB: a distributed SQL and key-value database", "micedb"};
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionString());

  app.add_subcommand("version", "Print the version and exit");

  StartOptions start_opts;
  CLI::App* start = app.add_subcommand("start", "Run one node");
  AddStartFlags(start, &start_opts);

  LocalClusterOptions local_opts;
  CLI::App* local = app.add_subcommand(
      "start-local", "Run a local cluster of separate node processes on loopback");
  local->add_option("--nodes", local_opts.nodes, "Number of nodes (1-9)")->capture_default_str();
  local->add_option("--data-dir", local_opts.data_dir, "Parent directory of the nodes' data")
      ->capture_default_str();
  local->add_option("--host", local_opts.host, "Address to listen on")->capture_default_str();
  local
      ->add_option("--port-offset", local_opts.port_offset,
                   "Added to every port, to run clusters side by side")
      ->capture_default_str();
  local
      ->add_option("--certs-dir", local_opts.certs_dir,
                   "Certificates for the nodes (see `micedb cert`): mutual TLS, Redis over TLS")
      ->envname("MICEDB_CERTS_DIR");
  local->add_flag("--insecure", local_opts.insecure,
                  "Let nodes serve plain connections on a non-loopback --host");
  local->add_option("--store-down-time", local_opts.store_down_time,
                    "Passed to every node: a store silent this long counts as down (e.g. 10s)");
  local->add_option("--region-split-size", local_opts.region_split_size,
                    "Passed to every node: split regions past this size (e.g. 64KiB)");
  local->add_option("--region-split-keys", local_opts.region_split_keys,
                    "Passed to every node: split regions holding more keys than this");
  local->add_option("--region-merge-size", local_opts.region_merge_size,
                    "Passed to every node: small idle regions below this merge (e.g. 20MiB)");
  local->add_option("--region-merge-idle", local_opts.region_merge_idle,
                    "Passed to every node: a region idle this long may merge (e.g. 60s)");
  local->add_flag("--no-region-merge", local_opts.no_region_merge,
                  "Passed to every node: no merge checker");

  AdminOptions admin_opts;
  CLI::App* node_cmd = app.add_subcommand("node", "Change the membership of a running cluster");
  node_cmd
      ->add_option("op", admin_opts.op,
                   "add | promote | remove | transfer-leader | decommission | recommission")
      ->required();
  node_cmd->add_option("--id", admin_opts.node_id, "The node to act on")->required();
  node_cmd->add_option("--peer-addr", admin_opts.peer_addr, "For add: the new node's peer address");
  node_cmd->add_flag("--through-coordinator", admin_opts.through_coordinator,
                     "Schedule it as a coordinator operator (run by the region's leader at its "
                     "next heartbeat)");
  node_cmd
      ->add_option("--region", admin_opts.region_id,
                   "The region whose membership changes (2: the coordinator's)")
      ->capture_default_str();
  node_cmd->add_option("--via", admin_opts.via, "Peer address of any node of the cluster")
      ->capture_default_str();
  node_cmd->add_option("--timeout", admin_opts.timeout_s, "Seconds to keep trying")
      ->capture_default_str();
  node_cmd
      ->add_option("--wait", admin_opts.wait_s,
                   "decommission: seconds to wait for the store to be empty, showing progress "
                   "(0: do not wait)")
      ->capture_default_str();

  AdminOptions region_opts;
  region_opts.op = "split";
  CLI::App* region_cmd = app.add_subcommand("region", "Act on the regions of a running cluster");
  CLI::App* split_cmd = region_cmd->add_subcommand(
      "split", "Split the region holding KEY there: a new region takes the keys from KEY on");
  region_cmd->require_subcommand(1);
  split_cmd->add_option("key", region_opts.split_key, "A key (raw keyspace)")->required();
  split_cmd->add_option("--via", region_opts.via, "Peer address of any node of the cluster")
      ->capture_default_str();
  split_cmd->add_option("--timeout", region_opts.timeout_s, "Seconds to keep trying")
      ->capture_default_str();
  AddClientSecurityFlags(split_cmd, &region_opts.security);
  AdminOptions merge_opts;
  merge_opts.op = "merge";
  CLI::App* merge_cmd = region_cmd->add_subcommand(
      "merge",
      "Merge region SOURCE into its neighbour TARGET (both must have the same members): SOURCE "
      "freezes, then TARGET takes its keys over");
  merge_cmd->add_option("source", merge_opts.region_id, "The region that goes")->required();
  merge_cmd->add_option("target", merge_opts.target_region_id, "Its neighbour that stays")
      ->required();
  merge_cmd->add_option("--via", merge_opts.via, "Peer address of any node of the cluster")
      ->capture_default_str();
  merge_cmd->add_option("--timeout", merge_opts.timeout_s, "Seconds to keep trying")
      ->capture_default_str();
  AddClientSecurityFlags(merge_cmd, &merge_opts.security);

  StatusOptions status_opts;
  CLI::App* status_cmd = app.add_subcommand("status", "Show the nodes of a running cluster");
  status_cmd->add_option("--via", status_opts.via, "Peer address of any node of the cluster")
      ->capture_default_str();
  status_cmd->add_flag("--hash", status_opts.with_hash, "Also hash each replica's data");
  status_cmd->add_flag("--json", status_opts.json, "Also print every node's raw status");

  AddClientSecurityFlags(node_cmd, &admin_opts.security);
  AddClientSecurityFlags(status_cmd, &status_opts.security);

  CertCommandOptions cert_opts;
  CLI::App* cert_cmd = AddCertCommand(&app, &cert_opts);

  KvCommandOptions kv_opts;
  CLI::App* kv_cmd = AddKvCommand(&app, &kv_opts);

  TxnCommandOptions txn_opts;
  CLI::App* txn_cmd = AddTxnCommand(&app, &txn_opts);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    bool known = false;
    for (const auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      known |= argc > 1 && sub->get_name() == argv[1];
    }
    if (argc > 1 && argv[1][0] != '-' && !known) {
      what = fmt::format("unknown command '{}' (see micedb --help)", argv[1]);
    } else if (what.empty() || what == "A subcommand is required") {
      what =
          "a command is required: start, start-local, node, status, kv, txn, cert or version (see "
          "micedb --help)";
    }
    std::fprintf(stderr, "micedb: error: %s\n", what.c_str());
    return 2;
  }

  if (app.got_subcommand("version")) {
    std::printf("%s\n", VersionString().c_str());
    return 0;
  }
  if (app.got_subcommand(start)) return RunNode(start_opts);
  if (app.got_subcommand(local)) return RunLocalCluster(local_opts, argv[0]);
  if (app.got_subcommand(node_cmd)) {
    if (admin_opts.op == "decommission" || admin_opts.op == "recommission") {
      return RunDecommission(admin_opts);
    }
    return RunAdmin(admin_opts);
  }
  if (app.got_subcommand(region_cmd)) {
    return RunAdmin(region_cmd->got_subcommand(merge_cmd) ? merge_opts : region_opts);
  }
  if (app.got_subcommand(status_cmd)) return RunStatus(status_opts);
  if (app.got_subcommand(kv_cmd)) return RunKv(kv_opts);
  if (app.got_subcommand(txn_cmd)) return RunTxn(txn_opts);
  if (app.got_subcommand(cert_cmd)) return RunCert(cert_opts);
  return 2;
}

}  // namespace micedb::cli
