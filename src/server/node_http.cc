// The node's HTTP endpoints and the text behind them: /healthz, /readyz, /metrics (Prometheus
// text format), /debug/raft (JSON), and INFO's replication section.
#include <algorithm>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "common/crc32c.h"
#include "frontend/resp/resp_command_table.h"
#include "server/node.h"
#include "store/keys.h"
#include "store/snapshot_files.h"

namespace micedb::server {

namespace {

void Metric(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

void Node::InstallHttpHandlers() {
  http_->Handle("/healthz", [](const std::string&) {
    return HttpResponse{200, "text/plain", "ok\n"};
  });
  http_->Handle("/readyz", [this](const std::string&) {
    if (store_->disk_alarm() != store::DiskAlarm::kNone) {
      return HttpResponse{
          503, "text/plain",
          fmt::format("disk alarm {}: {}\n", store::DiskAlarmName(store_->disk_alarm()),
                      store_->disk_alarm_reason())};
    }
    for (const auto& r : store_->Regions()) {
      if (!r.raft.leader.valid()) {
        return HttpResponse{503, "text/plain",
                            fmt::format("region {} has no leader\n", r.descriptor.id())};
      }
    }
    return HttpResponse{200, "text/plain", "ready\n"};
  });
  http_->Handle("/metrics", [this](const std::string&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", RenderMetrics()};
  });
  // The cluster as the coordinator sees it (docs/coordinator.md).
  for (const char* what : {"cluster", "stores", "regions", "operators"}) {
    http_->HandleAsync(fmt::format("/api/v1/{}", what),
                       [this, what = std::string(what)](const std::string&, HttpReply reply) {
                         ClusterJson(what, [reply = std::move(reply)](std::string body) {
                           const int code = body.rfind("{\"error\"", 0) == 0 ? 503 : 200;
                           reply(HttpResponse{code, "application/json", std::move(body)});
                         });
                       });
  }
  http_->HandleAsync("/debug/tso", [this](const std::string&, HttpReply reply) {
    TsoJson([reply = std::move(reply)](int code, std::string body) {
      reply(HttpResponse{code, "application/json", std::move(body)});
    });
  });
  http_->Handle("/debug/tso-bench", [this](const std::string& query) {
    auto [code, body] = TsoBenchJson(query);
    return HttpResponse{code, "application/json", std::move(body)};
  });
  http_->Handle("/debug/raft", [this](const std::string& query) {
    return HttpResponse{200, "application/json",
                        RenderRaftJson(query.find("hash=1") != std::string::npos)};
  });
}

std::string Node::RenderMetrics() const {
  std::string out;
  const auto& c = store_->counters();
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    Metric(&out, name, "counter", help);
    out += fmt::format("{} {}\n", name, v);
  };
  counter("micedb_raft_proposals_total", "Proposals received by this node's store",
          c.proposals.load());
  counter("micedb_raft_proposals_failed_total", "Proposals that failed or timed out",
          c.proposals_failed.load());
  counter("micedb_raft_entries_committed_total", "Committed entries seen by the apply stage",
          c.entries_committed.load());
  counter("micedb_raft_entries_applied_total", "Entries applied to the state machine",
          c.entries_applied.load());
  counter("micedb_raft_reads_total", "Linearizable reads served", c.reads.load());
  counter("micedb_raft_lease_reads_total",
          "Of those, reads the leader answered under its lease without a raft round",
          c.lease_reads.load());
  counter("micedb_raft_lease_suspensions_total",
          "Clock gaps (a stall, a paused VM) after which the leases waited for a new heartbeat "
          "round",
          c.lease_suspensions.load());
  counter("micedb_raft_leader_changes_total", "Leader changes observed", c.leader_changes.load());
  counter("micedb_raft_elections_total", "Elections (or pre-votes) this node started",
          c.elections_started.load());
  counter("micedb_raft_snapshots_sent_total", "Snapshots sent", c.snapshots_sent.load());
  counter("micedb_raft_snapshots_applied_total", "Snapshots installed", c.snapshots_applied.load());
  counter("micedb_raft_snapshots_refused_total",
          "Snapshots refused: their range overlaps another region here",
          c.snapshots_refused.load());
  counter("micedb_raft_gone_sent_total",
          "Messages telling a replica its region's configuration no longer names its store",
          c.gone_sent.load());
  counter("micedb_raft_gone_replicas_total", "Stale replicas deleted on such a message",
          c.gone_destroyed.load());
  counter("micedb_raft_sync_writes_total", "Synced raft log writes (group commits)",
          c.sync_writes.load());
  counter("micedb_raft_readies_total",
          "Regions' raft Readies handled (one per region with work per loop round)",
          c.readies.load());
  counter("micedb_raft_async_sync_writes_total",
          "Of those, syncs of a leader's log by the raft-sync thread while the loop went on",
          c.async_sync_writes.load());
  counter("micedb_raft_loop_rounds_total", "Raft loop rounds with work", c.loop_rounds.load());
  counter("micedb_raft_slow_rounds_total", "Raft loop rounds longer than half an election timeout",
          c.slow_rounds.load());
  counter(
      "micedb_raft_pulses_total",
      "Heartbeat rounds sent from inside long raft loop work so that followers kept their leader",
      c.pulses.load());
  counter("micedb_raft_hibernations_total",
          "Replicas here that stopped ticking an idle region (leaders once every member stopped)",
          c.sleeps.load());
  counter("micedb_raft_wakes_total", "Sleeping replicas here woken by a request or a message",
          c.wakes.load());
  counter("micedb_raft_silent_leader_wakes_total",
          "Of those, followers woken because their leader's store fell silent",
          c.silent_leader_wakes.load());
  counter("micedb_raft_store_pings_total",
          "Pings sent to stores holding followers of regions asleep here", c.pings_sent.load());
  counter("micedb_region_merges_started_total",
          "Merges the merge checker started for small idle regions led here (--region-merge)",
          merges_started_.load());
  counter("micedb_region_load_splits_total",
          "Splits this node asked for because a region it led stayed hot (--region-split-qps)",
          load_splits_.load());
  counter("micedb_dedup_records_scanned_total",
          "At-most-once request records looked at by the sweep that removes old ones",
          c.dedup_scanned.load());
  counter("micedb_dedup_records_deleted_total", "At-most-once request records removed as old",
          c.dedup_deleted.load());
  counter("micedb_transport_dropped_messages_total", "Raft messages dropped by the transport",
          transport_->dropped_messages());
  counter("micedb_transport_messages_sent_total", "Raft messages handed to the transport",
          transport_->messages_sent());
  counter("micedb_transport_socket_writes_total", "Writes to the raft streams' sockets",
          transport_->socket_writes());
  counter("micedb_router_forwarded_total", "Requests forwarded to a leader on another node",
          backend_->counters().forwarded.load());
  counter("micedb_router_retries_total", "Requests retried after a routing error",
          backend_->counters().retries.load());
  counter("micedb_router_split_requests_total",
          "Commands cut into one region request per region of their keys",
          backend_->counters().split_requests.load());
  counter("micedb_router_cross_region_txns_total",
          "Multi-key writes and MULTI/EXECs run as a two-phase commit over several regions",
          backend_->counters().cross_region_txns.load());
  counter("micedb_router_cross_region_retries_total",
          "Cross-region writes started again (an intent met, a split)",
          backend_->counters().cross_region_retries.load());
  counter("micedb_router_locks_resolved_total",
          "Intents of cross-region writes that commands met and resolved",
          backend_->counters().locks_resolved.load());
  counter("micedb_router_intents_swept_total",
          "Expired intents nobody met that the intent sweep took up (--intent-sweep-interval)",
          backend_->counters().intents_swept.load());
  counter("micedb_store_write_failures_total",
          "Engine writes that failed (the raft round waits for the disk; see micedb_disk_alarm)",
          c.write_failures.load());
  counter("micedb_store_writes_refused_nospace_total",
          "Writes refused because the disk alarm was up", c.writes_refused_no_space.load());
  Metric(&out, "micedb_nospace_alarm", "gauge",
         "1 while the NOSPACE alarm is up: the disk is (nearly) full and writes are refused");
  out += fmt::format("micedb_nospace_alarm {}\n",
                     store_->disk_alarm() == store::DiskAlarm::kNoSpace ? 1 : 0);
  Metric(&out, "micedb_disk_failed", "gauge",
         "1 once a write failed with an I/O error: the node stopped replicating; restart it");
  out += fmt::format("micedb_disk_failed {}\n",
                     store_->disk_alarm() == store::DiskAlarm::kFailed ? 1 : 0);
  counter("micedb_store_requests_refused_total",
          "Region requests refused for a stale epoch, a key outside the region or another region",
          c.requests_refused.load());

  auto regions = store_->Regions();
  Metric(&out, "micedb_regions_asleep", "gauge",
         "Replicas here not ticked because their region is idle (hibernation)");
  out += fmt::format("micedb_regions_asleep {}\n",
                     std::count_if(regions.begin(), regions.end(),
                                   [](const store::RegionInfo& r) { return r.asleep; }));
  Metric(&out, "micedb_region_is_leader", "gauge", "1 when this node leads the region");
  for (const auto& r : regions) {
    out += fmt::format("micedb_region_is_leader{{region=\"{}\"}} {}\n", r.descriptor.id(),
                       r.raft.role == raft::Role::kLeader ? 1 : 0);
  }
  Metric(&out, "micedb_region_term", "gauge", "Current raft term");
  for (const auto& r : regions) {
    out += fmt::format("micedb_region_term{{region=\"{}\"}} {}\n", r.descriptor.id(),
                       r.raft.term.value());
  }
  Metric(&out, "micedb_region_log_entries", "gauge", "Raft log entries held");
  for (const auto& r : regions) {
    out += fmt::format("micedb_region_log_entries{{region=\"{}\"}} {}\n", r.descriptor.id(),
                       r.log_entries);
  }
  Metric(&out, "micedb_region_log_bytes", "gauge", "Raft log bytes held");
  for (const auto& r : regions) {
    out += fmt::format("micedb_region_log_bytes{{region=\"{}\"}} {}\n", r.descriptor.id(),
                       r.log_bytes);
  }
  Metric(&out, "micedb_region_apply_lag", "gauge", "Committed entries not yet applied");
  for (const auto& r : regions) {
    uint64_t commit = r.raft.commit.value();
    out += fmt::format("micedb_region_apply_lag{{region=\"{}\"}} {}\n", r.descriptor.id(),
                       commit > r.applied_index ? commit - r.applied_index : 0);
  }
  Metric(&out, "micedb_storage_bytes", "gauge", "Approximate bytes per column family");
  for (storage::Cf cf : storage::kAllCfs) {
    auto size = engine_->ApproximateSize(cf, "", std::string(8, '\xff'));
    out += fmt::format("micedb_storage_bytes{{cf=\"{}\"}} {}\n", storage::CfName(cf),
                       size.value_or(0));
  }

  const auto& rs = resp_->stats();
  counter("micedb_redis_connections_received_total", "Redis-protocol connections accepted",
          rs.connections_received.load());
  counter("micedb_redis_protocol_errors_total", "Connections closed for malformed input",
          rs.protocol_errors.load());
  Metric(&out, "micedb_redis_commands_total", "counter", "Redis commands processed");
  auto table = resp::CommandTable();
  for (size_t i = 0; i < table.size(); ++i) {
    uint64_t calls = rs.per_command[i].calls.load();
    if (calls) {
      out += fmt::format("micedb_redis_commands_total{{cmd=\"{}\"}} {}\n", table[i].name, calls);
    }
  }
  Metric(&out, "micedb_redis_command_errors_total", "counter",
         "Redis commands answered with an error");
  for (size_t i = 0; i < table.size(); ++i) {
    uint64_t failed = rs.per_command[i].failed.load();
    if (failed) {
      out += fmt::format("micedb_redis_command_errors_total{{cmd=\"{}\"}} {}\n", table[i].name,
                         failed);
    }
  }
  Metric(&out, "micedb_redis_command_seconds_total", "counter",
         "Time spent in Redis commands, dispatch to reply");
  for (size_t i = 0; i < table.size(); ++i) {
    uint64_t us = rs.per_command[i].usec.load();
    if (rs.per_command[i].calls.load()) {
      out += fmt::format("micedb_redis_command_seconds_total{{cmd=\"{}\"}} {:.6f}\n", table[i].name,
                         static_cast<double>(us) / 1e6);
    }
  }
  Metric(&out, "micedb_redis_command_duration_seconds", "histogram",
         "Redis command latency, dispatch to reply");
  for (size_t i = 0; i < table.size(); ++i) {
    auto h = rs.per_command[i].latency_seconds.Read();
    if (h.count == 0) continue;
    for (size_t b = 0; b < h.bounds.size(); ++b) {
      out +=
          fmt::format("micedb_redis_command_duration_seconds_bucket{{cmd=\"{}\",le=\"{}\"}} {}\n",
                      table[i].name, h.bounds[b], h.cumulative[b]);
    }
    out +=
        fmt::format("micedb_redis_command_duration_seconds_bucket{{cmd=\"{}\",le=\"+Inf\"}} {}\n",
                    table[i].name, h.count);
    out += fmt::format("micedb_redis_command_duration_seconds_sum{{cmd=\"{}\"}} {:.6f}\n",
                       table[i].name, h.sum);
    out += fmt::format("micedb_redis_command_duration_seconds_count{{cmd=\"{}\"}} {}\n",
                       table[i].name, h.count);
  }
  if (coordinator_) {
    const auto& k = coordinator_->counters();
    counter("micedb_coordinator_store_heartbeats_total", "Store heartbeats taken as leader",
            k.store_heartbeats.load());
    counter("micedb_coordinator_region_heartbeats_total", "Region heartbeats taken as leader",
            k.region_heartbeats.load());
    counter("micedb_coordinator_stale_heartbeats_total",
            "Region heartbeats refused for an older epoch", k.stale_heartbeats.load());
    counter("micedb_coordinator_tso_requests_total", "TSO requests served (each a batch)",
            k.tso_requests.load());
    counter("micedb_coordinator_tso_timestamps_total", "Timestamps handed out",
            k.tso_timestamps.load());
    Metric(&out, "micedb_coordinator_tso_batch_size", "histogram",
           "Timestamps per TSO request served (a gateway folds its waiting callers into one)");
    uint64_t cumulative = 0;
    const auto& bounds = coordinator::CoordinatorCounters::kTsoBatchBounds;
    for (size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += k.tso_batch[i].load();
      out += fmt::format("micedb_coordinator_tso_batch_size_bucket{{le=\"{}\"}} {}\n",
                         i < bounds.size() ? std::to_string(bounds[i]) : std::string("+Inf"),
                         cumulative);
    }
    out += fmt::format("micedb_coordinator_tso_batch_size_sum {}\n", k.tso_timestamps.load());
    out += fmt::format("micedb_coordinator_tso_batch_size_count {}\n", cumulative);
    counter("micedb_coordinator_tso_leader_checks_total",
            "Raft rounds that confirmed the leadership for timestamps served without a lease",
            k.tso_leader_checks.load());
    counter("micedb_coordinator_tso_bound_saves_total", "TSO upper bounds persisted via raft",
            k.tso_bound_saves.load());
    counter("micedb_coordinator_ids_allocated_total", "Ids handed out", k.ids_allocated.load());
    counter("micedb_coordinator_id_batches_total", "Id batches reserved via raft",
            k.id_batches.load());
    counter("micedb_coordinator_directory_reads_total", "Region directory reads",
            k.directory_reads.load());
    counter("micedb_coordinator_joins_total", "Nodes that joined", k.joins.load());
    counter("micedb_coordinator_operators_created_total",
            "Operators the schedulers (or an operator by hand) started",
            k.operators_created.load());
    counter("micedb_coordinator_operators_done_total", "Operators whose every step was done",
            k.operators_done.load());
    counter("micedb_coordinator_operators_timed_out_total", "Operators given up as timed out",
            k.operators_timed_out.load());
    counter("micedb_coordinator_operators_cancelled_total",
            "Operators cancelled (their region or target store went away)",
            k.operators_cancelled.load());
    counter("micedb_coordinator_operator_steps_sent_total",
            "Operator steps handed to region leaders", k.operators_sent.load());
    counter("micedb_coordinator_stores_tombstoned_total", "Decommissions finished",
            k.stores_tombstoned.load());
    Metric(&out, "micedb_coordinator_operators_running", "gauge", "Operators under way");
    out +=
        fmt::format("micedb_coordinator_operators_running {}\n", coordinator_->RunningOperators());
    counter("micedb_coordinator_leader_terms_total", "Terms this node served as leader",
            k.leader_terms.load());
    Metric(&out, "micedb_coordinator_serving", "gauge",
           "1 while this node is the coordinator's serving leader");
    out += fmt::format("micedb_coordinator_serving {}\n", coordinator_->Serving() ? 1 : 0);
  }
  if (coord_client_) {
    const auto& k = coord_client_->counters();
    counter("micedb_coordinator_client_calls_total", "Calls this node made to the coordinator",
            k.calls.load());
    counter("micedb_coordinator_client_retries_total", "Of those, retries after a backoff",
            k.retries.load());
    counter("micedb_coordinator_client_tso_requests_total",
            "TSO requests this node sent (callers folded into each)", k.tso_requests.load());
    counter("micedb_coordinator_client_tso_timestamps_total", "Timestamps this node's callers got",
            k.tso_timestamps.load());
  }
  counter("micedb_router_directory_lookups_total", "Regions the router asked the coordinator for",
          backend_->counters().directory_lookups.load());
  if (txn_client_) {
    const auto& t = txn_client_->counters();
    counter("micedb_txn_begun_total", "Transactions begun at this node", t.begun.load());
    counter("micedb_txn_committed_total", "Transactions this node committed", t.committed.load());
    counter("micedb_txn_aborted_total", "Commits refused (conflicts, rolled back by others)",
            t.aborted.load());
    counter("micedb_txn_one_pc_tried_total",
            "Commits this node tried in one phase (keys in one region)", t.one_pc_tried.load());
    counter("micedb_txn_one_pc_committed_total", "Of those, committed in one phase",
            t.one_pc_committed.load());
    counter("micedb_txn_locks_resolved_total", "Locks of other transactions this node resolved",
            t.locks_resolved.load());
    counter("micedb_txn_async_tried_total",
            "Commits this node tried asynchronously (keys in several regions)",
            t.async_tried.load());
    counter("micedb_txn_async_committed_total", "Of those, answered once the prewrites applied",
            t.async_committed.load());
    counter("micedb_txn_async_fallbacks_total", "Of those, made two-phase by a leader",
            t.async_fallbacks.load());
    counter("micedb_txn_async_checks_total",
            "Async transactions whose outcome this node read off their keys",
            t.async_checks.load());
    counter("micedb_txn_async_peeks_total",
            "Live async transactions met as locks whose keys this node read for the commit point",
            t.async_peeks.load());
  }
  if (txn_steps_) {
    const auto& o = txn_steps_->one_pc_counters();
    counter("micedb_txn_leader_one_pc_admitted_total",
            "One-phase commits this node's leaders proposed", o.admitted.load());
    Metric(&out, "micedb_txn_leader_one_pc_fallbacks_total", "counter",
           "One-phase commits a leader made two-phase, by reason");
    out += fmt::format("micedb_txn_leader_one_pc_fallbacks_total{{reason=\"not_synced\"}} {}\n",
                       o.not_synced.load());
    out += fmt::format("micedb_txn_leader_one_pc_fallbacks_total{{reason=\"read_above\"}} {}\n",
                       o.read_above.load());
    out += fmt::format("micedb_txn_leader_one_pc_fallbacks_total{{reason=\"key_busy\"}} {}\n",
                       o.key_busy.load());
    counter("micedb_txn_leader_async_admitted_total",
            "Async-commit prewrites this node's leaders proposed with a min_commit_ts",
            o.async_admitted.load());
    counter("micedb_txn_leader_async_fallbacks_total",
            "Async-commit prewrites a leader made two-phase (not synced, key busy)",
            o.async_fallbacks.load());
    Metric(&out, "micedb_txn_gc_safe_point", "gauge",
           "The GC safe point this node knows (a timestamp; reads below it are refused)");
    out += fmt::format("micedb_txn_gc_safe_point {}\n", txn_steps_->safe_point());
    counter("micedb_txn_gc_runs_total", "GC runs over every region led here that finished",
            gc_runs_.load());
    counter("micedb_txn_gc_failures_total", "GC runs that stopped (retried 10 s later)",
            gc_failures_.load());
    counter("micedb_txn_gc_deleted_total", "Records GC runs started here removed",
            gc_deleted_.load());
    counter("micedb_txn_reads_held_total",
            "Transactional reads told to retry behind a one-phase commit on its way",
            o.reads_held.load());
  }
  return out;
}

std::string Node::RenderRaftJson(bool with_hash) const {
  nlohmann::json j;
  j["node_id"] = options_.id.value();
  auto& regions = j["regions"] = nlohmann::json::array();
  for (const auto& r : store_->Regions()) {
    nlohmann::json jr;
    jr["id"] = r.descriptor.id();
    jr["role"] = std::string(raft::RoleName(r.raft.role));
    jr["term"] = r.raft.term.value();
    jr["leader"] = r.raft.leader.value();
    jr["commit"] = r.raft.commit.value();
    jr["applied"] = r.applied_index;
    jr["truncated"] = r.truncated_index;
    jr["log_entries"] = r.log_entries;
    jr["asleep"] = r.asleep;
    jr["voters"] = std::vector<uint64_t>(r.descriptor.conf_state().voters().begin(),
                                         r.descriptor.conf_state().voters().end());
    jr["learners"] = std::vector<uint64_t>(r.descriptor.conf_state().learners().begin(),
                                           r.descriptor.conf_state().learners().end());
    jr["conf_ver"] = r.descriptor.epoch().conf_ver();
    jr["version"] = r.descriptor.epoch().version();
    if (r.descriptor.has_merging()) {
      jr["merging_into"] = r.descriptor.merging().target().id();
    }
    // Engine keys, non-printable bytes as \xNN ("" for the end: +infinity).
    auto printable = [](const std::string& k) {
      const std::string q = store::PrintableKey(k);
      return q.substr(1, q.size() - 2);
    };
    jr["start_key"] = printable(r.descriptor.start_key());
    jr["end_key"] = printable(r.descriptor.end_key());
    if (with_hash) {
      uint32_t crc = 0;
      uint64_t keys = 0;
      uint64_t bytes = 0;
      for (storage::Cf cf : store::kDataCfs) {
        storage::ReadOptions ro;
        ro.lower_bound = r.descriptor.start_key();
        ro.upper_bound = store::EngineRangeEnd(r.descriptor.end_key());
        auto it = engine_->NewIterator(cf, ro);
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
          crc = crc32c::Extend(crc, it->key());
          crc = crc32c::Extend(crc, it->value());
          keys++;
          bytes += it->key().size() + it->value().size();
        }
      }
      jr["data_hash"] = fmt::format("{:08x}", crc);
      jr["data_keys"] = keys;
      jr["data_bytes"] = bytes;
    }
    auto& progress = jr["progress"] = nlohmann::json::object();
    for (const auto& [id, p] : r.raft.progress) {
      progress[std::to_string(id.value())] = {
          {"match", p.match.value()},
          {"next", p.next.value()},
          {"state", std::string(raft::ProgressStateName(p.state))},
          {"learner", p.is_learner},
          {"recent_active", p.recent_active}};
    }
    regions.push_back(std::move(jr));
  }
  auto& addrs = j["addresses"] = nlohmann::json::object();
  for (const auto& [id, a] : store_->Addresses()) addrs[std::to_string(id.value())] = a;
  return j.dump(2) + "\n";
}

std::string Node::ReplicationInfo() const {
  std::string out;
  auto regions = store_->Regions();
  bool leader = false;
  NodeId leader_id;
  Term term;
  for (const auto& r : regions) {
    leader |= r.raft.role == raft::Role::kLeader;
    leader_id = r.raft.leader;
    term = r.raft.term;
  }
  out += fmt::format("role:{}\r\n", leader ? "master" : "slave");
  out += fmt::format("raft_node_id:{}\r\n", options_.id.value());
  out += fmt::format("raft_leader_id:{}\r\n", leader_id.value());
  out += fmt::format("raft_term:{}\r\n", term.value());
  out += fmt::format("raft_regions:{}\r\n", regions.size());
  // "none", "NOSPACE" or "FAILED" (store/disk_alarm.h), and why.
  out += fmt::format("disk_alarm:{}\r\n", store::DiskAlarmName(store_->disk_alarm()));
  if (store_->disk_alarm() != store::DiskAlarm::kNone) {
    out += fmt::format("disk_alarm_reason:{}\r\n", store_->disk_alarm_reason());
  }
  auto addrs = store_->Addresses();
  int i = 0;
  for (const auto& r : regions) {
    for (uint64_t v : r.descriptor.conf_state().voters()) {
      auto p = r.raft.progress.find(NodeId(v));
      out += fmt::format("raft_peer{}:id={},addr={},voter=1,match={}\r\n", i++, v,
                         addrs.count(NodeId(v)) ? addrs[NodeId(v)] : "?",
                         p == r.raft.progress.end() ? 0 : p->second.match.value());
    }
    for (uint64_t v : r.descriptor.conf_state().learners()) {
      out += fmt::format("raft_peer{}:id={},addr={},voter=0\r\n", i++, v,
                         addrs.count(NodeId(v)) ? addrs[NodeId(v)] : "?");
    }
    out += fmt::format("raft_commit_index:{}\r\nraft_applied_index:{}\r\n", r.raft.commit.value(),
                       r.applied_index);
  }
  return out;
}

}  // namespace micedb::server
