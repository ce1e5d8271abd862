#include "cli/admin.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "common/status.h"
#include "micedb/transport.grpc.pb.h"

namespace micedb::cli {

namespace {

std::unique_ptr<transport::NodeService::Stub> Connect(
    const std::string& addr, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  return transport::NodeService::NewStub(grpc::CreateChannel(addr, creds));
}

// The credentials the flags ask for, or nullptr after printing why there are none.
std::shared_ptr<grpc::ChannelCredentials> CredentialsOrComplain(const ClientSecurity& s) {
  auto creds = ClientCredentials(s);
  if (!creds.ok()) {
    std::fprintf(stderr, "micedb: error: %s\n", std::string(creds.status().message()).c_str());
    return nullptr;
  }
  return *creds;
}

std::chrono::system_clock::time_point Deadline(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// The coordinator's view of the cluster, from any node.
std::optional<coordinator::ClusterResponse> FetchCluster(
    const std::string& via, const std::shared_ptr<grpc::ChannelCredentials>& creds,
    std::string* error) {
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(5));
  transport::ForwardRequest req;
  req.mutable_coord()->mutable_cluster();
  transport::ForwardResponse resp;
  grpc::Status st = Connect(via, creds)->Forward(&ctx, req, &resp);
  if (!st.ok() || !resp.coord().has_cluster()) {
    *error = !st.ok() ? st.error_message() : resp.coord().error().message();
    return std::nullopt;
  }
  return resp.coord().cluster();
}

// Replicas (voters and learners) the coordinator's directory places on `store`, the meta
// region's included.
size_t ReplicasOn(const coordinator::ClusterResponse& c, uint64_t store) {
  size_t n = 0;
  auto on = [store](const auto& ids) {
    return std::find(ids.begin(), ids.end(), store) != ids.end();
  };
  for (const auto& r : c.regions()) {
    const auto& cs = r.meta().region().conf_state();
    n += on(cs.voters()) || on(cs.learners());
  }
  for (const auto& m : c.coordinators()) n += m.node_id() == store;
  return n;
}

}  // namespace

int RunDecommission(const AdminOptions& opts) {
  if (opts.node_id == 0) {
    std::fprintf(stderr, "micedb: error: --id must be at least 1\n");
    return 2;
  }
  auto creds = CredentialsOrComplain(opts.security);
  if (!creds) return 2;
  const bool cancel = opts.op == "recommission";
  transport::ForwardRequest fr;
  coordinator::SetStoreStateRequest* set = fr.mutable_coord()->mutable_set_store_state();
  set->set_store_id(opts.node_id);
  set->set_state(cancel ? coordinator::STORE_UP : coordinator::STORE_OFFLINE);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(opts.timeout_s);
  std::string last_error;
  bool marked = false;
  while (!marked && std::chrono::steady_clock::now() < give_up) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(5));
    transport::ForwardResponse resp;
    grpc::Status st = Connect(opts.via, creds)->Forward(&ctx, fr, &resp);
    if (st.ok() && resp.coord().has_set_store_state()) {
      marked = true;
      break;
    }
    last_error = !st.ok() ? st.error_message() : resp.coord().error().message();
    if (st.ok() && !resp.coord().error().retry() && !resp.coord().error().not_leader()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  if (!marked) {
    std::fprintf(stderr, "micedb: error: node %s %llu failed: %s\n", opts.op.c_str(),
                 static_cast<unsigned long long>(opts.node_id), last_error.c_str());
    return 1;
  }
  if (cancel) {
    std::printf("store %llu is up again: replicas stay on it (and may move back)\n",
                static_cast<unsigned long long>(opts.node_id));
    return 0;
  }
  if (opts.wait_s <= 0) {
    std::printf("store %llu is offline: its replicas are moving off it (see micedb status)\n",
                static_cast<unsigned long long>(opts.node_id));
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::seconds(opts.wait_s);
  size_t first = 0, last_left = SIZE_MAX;
  auto last_print = start - std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < until) {
    std::string err;
    auto c = FetchCluster(opts.via, creds, &err);
    if (c) {
      std::string status;
      for (const auto& s : c->stores()) {
        if (s.meta().id() == opts.node_id) status = s.status();
      }
      if (status == "tombstone") {
        std::printf(
            "store %llu is decommissioned: it holds no replica and is a tombstone; its "
            "process can be stopped\n",
            static_cast<unsigned long long>(opts.node_id));
        return 0;
      }
      const size_t left = ReplicasOn(*c, opts.node_id);
      if (first == 0) first = left;
      const auto now = std::chrono::steady_clock::now();
      if (left != last_left || now - last_print >= std::chrono::seconds(5)) {
        const double secs = std::chrono::duration<double>(now - start).count();
        const size_t moved = first > left ? first - left : 0;
        std::string eta = "estimating";
        if (left == 0) {
          eta = "waiting for the store to drop its last replica";
        } else if (moved > 0 && secs > 0) {
          eta = fmt::format("about {:.0f}s left",
                            static_cast<double>(left) * secs / static_cast<double>(moved));
        }
        std::printf("store %llu: %zu replicas left, %zu moved in %.0fs (%s)\n",
                    static_cast<unsigned long long>(opts.node_id), left, moved, secs, eta.c_str());
        std::fflush(stdout);
        last_left = left;
        last_print = now;
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::fprintf(stderr,
               "micedb: error: store %llu still holds replicas after %ds; the decommission goes "
               "on (see micedb status)\n",
               static_cast<unsigned long long>(opts.node_id), opts.wait_s);
  return 1;
}

int RunAdmin(const AdminOptions& opts) {
  transport::AdminRequest req;
  if (opts.op == "add") {
    req.set_op(transport::AdminRequest::ADD_LEARNER);
  } else if (opts.op == "promote") {
    req.set_op(transport::AdminRequest::PROMOTE);
  } else if (opts.op == "remove") {
    req.set_op(transport::AdminRequest::REMOVE);
  } else if (opts.op == "transfer-leader") {
    req.set_op(transport::AdminRequest::TRANSFER_LEADER);
  } else if (opts.op == "split") {
    req.set_op(transport::AdminRequest::SPLIT);
  } else if (opts.op == "merge") {
    req.set_op(transport::AdminRequest::MERGE);
    req.set_target_region_id(opts.target_region_id);
  } else {
    std::fprintf(stderr, "micedb: error: unknown node operation '%s'\n", opts.op.c_str());
    return 2;
  }
  if (opts.op == "split" && opts.split_key.empty()) {
    std::fprintf(stderr, "micedb: error: region split needs a key\n");
    return 2;
  }
  if (opts.node_id == 0 && opts.op != "split" && opts.op != "merge") {
    std::fprintf(stderr, "micedb: error: --id must be at least 1\n");
    return 2;
  }
  if (opts.op == "add" && opts.peer_addr.empty()) {
    std::fprintf(stderr, "micedb: error: node add needs --peer-addr of the new node\n");
    return 2;
  }
  auto creds = CredentialsOrComplain(opts.security);
  if (!creds) return 2;
  req.set_node_id(opts.node_id);
  req.set_peer_addr(opts.peer_addr);
  req.set_region_id(opts.region_id);
  req.set_split_key(opts.split_key);
  if (opts.through_coordinator) {
    // The coordinator hands the change to the region's leader with its next heartbeat.
    transport::ForwardRequest fr;
    coordinator::Operator* op = fr.mutable_coord()->mutable_add_operator()->mutable_op();
    op->set_region_id(opts.region_id);
    op->set_store_id(opts.node_id);
    op->set_peer_addr(opts.peer_addr);
    op->set_kind(
        req.op() == transport::AdminRequest::ADD_LEARNER ? coordinator::Operator::ADD_LEARNER
        : req.op() == transport::AdminRequest::PROMOTE   ? coordinator::Operator::PROMOTE
        : req.op() == transport::AdminRequest::REMOVE    ? coordinator::Operator::REMOVE_PEER
                                                         : coordinator::Operator::TRANSFER_LEADER);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(opts.timeout_s));
    transport::ForwardResponse resp;
    grpc::Status st = Connect(opts.via, creds)->Forward(&ctx, fr, &resp);
    if (!st.ok() || !resp.coord().has_add_operator()) {
      std::fprintf(stderr, "micedb: error: the coordinator did not take the operator: %s\n",
                   !st.ok() ? st.error_message().c_str() : resp.coord().error().message().c_str());
      return 1;
    }
    std::printf("operator %llu scheduled: region %llu's leader runs it at its next heartbeat\n",
                static_cast<unsigned long long>(resp.coord().add_operator().id()),
                static_cast<unsigned long long>(opts.region_id));
    return 0;
  }

  std::string target = opts.via;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(opts.timeout_s);
  std::string last_error;
  // After an attempt that timed out or lost its connection, the change may have been applied
  // without our hearing of it; a retry then finds it done and must not call that a failure.
  bool maybe_applied = false;
  const std::string already_done = opts.op == "remove"    ? "node is not a member"
                                   : opts.op == "promote" ? "node is already a voter"
                                   : opts.op == "add"     ? "node is already a learner"
                                   : opts.op == "split"   ? "already a region boundary"
                                   : opts.op == "merge"   ? "is merging into region"
                                                          : "";
  while (std::chrono::steady_clock::now() < give_up) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(5));
    transport::AdminResponse resp;
    grpc::Status st = Connect(target, creds)->Admin(&ctx, req, &resp);
    if (!st.ok()) {
      last_error = fmt::format("{}: {}", target, st.error_message());
      target = opts.via;
      maybe_applied = true;
    } else if (resp.code() == 0 ||
               (opts.op == "split" &&
                resp.code() == static_cast<uint32_t>(StatusCode::kAlreadyExists)) ||
               (maybe_applied && !already_done.empty() &&
                resp.message().find(already_done) != std::string::npos)) {
      if (opts.op == "split") {
        // A split at a key that is a boundary already changes nothing: not an error.
        std::printf("%s\n", resp.message().c_str());
      } else if (opts.op == "merge") {
        std::printf("region %llu is frozen for a merge into region %llu; its leader completes it\n",
                    static_cast<unsigned long long>(opts.region_id),
                    static_cast<unsigned long long>(opts.target_region_id));
      } else {
        std::printf("node %s %llu: done\n", opts.op.c_str(),
                    static_cast<unsigned long long>(opts.node_id));
      }
      return 0;
    } else {
      last_error = resp.message();
      // "leader is node N at host:port": go there next.
      std::smatch m;
      if (std::regex_search(last_error, m, std::regex("leader is node [0-9]+ at ([^ ]+:[0-9]+)"))) {
        target = m[1];
      } else {
        auto code = static_cast<StatusCode>(resp.code());
        bool transient = code == StatusCode::kUnavailable || code == StatusCode::kAborted ||
                         code == StatusCode::kBusy || code == StatusCode::kTimedOut ||
                         last_error.find("leader is node 0") != std::string::npos;
        if (!transient) break;
        maybe_applied = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (opts.op == "split" || opts.op == "merge") {
    std::fprintf(stderr, "micedb: error: region %s failed: %s\n", opts.op.c_str(),
                 last_error.c_str());
  } else {
    std::fprintf(stderr, "micedb: error: node %s %llu failed: %s\n", opts.op.c_str(),
                 static_cast<unsigned long long>(opts.node_id), last_error.c_str());
  }
  return 1;
}

namespace {

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) {
    return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1 << 30));
  }
  if (n >= (uint64_t{1} << 20)) {
    return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  }
  return fmt::format("{} B", n);
}

void PrintCluster(const std::string& via, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  std::string error;
  const std::optional<coordinator::ClusterResponse> got = FetchCluster(via, creds, &error);
  if (!got) {
    std::printf("\ncoordinator: no answer (%s)\n", error.c_str());
    return;
  }
  const coordinator::ClusterResponse& c = *got;
  std::string members;
  for (const auto& m : c.coordinators()) {
    members += fmt::format("{}{}", members.empty() ? "" : ",", m.node_id());
  }
  std::printf("\ncluster %016llx  coordinator leader: node %llu  coordinators: %s\n",
              static_cast<unsigned long long>(c.state().cluster().cluster_id()),
              static_cast<unsigned long long>(c.leader()), members.c_str());
  std::printf("%-6s %-22s %-13s %10s %10s %10s %7s %7s %-8s %s\n", "store", "address", "status",
              "capacity", "available", "used", "regions", "leaders", "version", "labels");
  for (const auto& s : c.stores()) {
    std::map<std::string, std::string> sorted(s.meta().labels().begin(), s.meta().labels().end());
    std::string labels;
    for (const auto& [k, v] : sorted) {
      labels += fmt::format("{}{}={}", labels.empty() ? "" : ",", k, v);
    }
    std::printf("%-6llu %-22s %-13s %10s %10s %10s %7u %7u %-8s %s\n",
                static_cast<unsigned long long>(s.meta().id()), s.meta().peer_addr().c_str(),
                s.status().c_str(), Bytes(s.stats().capacity()).c_str(),
                Bytes(s.stats().available()).c_str(), Bytes(s.stats().used()).c_str(),
                s.stats().region_count(), s.stats().leader_count(), s.meta().version().c_str(),
                labels.c_str());
  }
  size_t with_leader = 0, pending = 0, reported = 0, down = 0;
  for (const auto& r : c.regions()) {
    with_leader += r.meta().leader() != 0;
    pending += r.last().pending_peers_size() > 0;
    down += r.last().down_peers_size() > 0;
    reported += r.has_last();
  }
  std::printf(
      "regions: %d known, %zu with a leader, %zu reported since this leader took over, "
      "%zu with peers catching up, %zu with down peers\n",
      c.regions_size(), with_leader, reported, pending, down);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto print_ops = [now_ms](const auto& ops, bool running) {
    for (const auto& op : ops) {
      const int64_t at = running ? op.created_ms() : op.finished_ms();
      std::printf("  %-6llu %-7llu %-16s %2u/%-2d %6.1fs  %-9s %s; %s\n",
                  static_cast<unsigned long long>(op.id()),
                  static_cast<unsigned long long>(op.region_id()), op.name().c_str(), op.step(),
                  op.steps_size(), static_cast<double>(now_ms - at) / 1000.0, op.state().c_str(),
                  op.reason().c_str(), op.note().c_str());
    }
  };
  std::printf("operators: %d running, %d ended lately\n", c.operators_size(),
              c.finished_operators_size());
  if (c.operators_size() + c.finished_operators_size() > 0) {
    std::printf("  %-6s %-7s %-16s %5s %7s  %-9s %s\n", "id", "region", "operator", "step", "age",
                "state", "reason; now");
  }
  print_ops(c.operators(), true);
  // The last few that ended, newest last.
  const int from = std::max(0, c.finished_operators_size() - 5);
  print_ops(std::vector<coordinator::OperatorView>(c.finished_operators().begin() + from,
                                                   c.finished_operators().end()),
            false);
}

}  // namespace

int RunStatus(const StatusOptions& opts) {
  auto creds = CredentialsOrComplain(opts.security);
  if (!creds) return 2;
  std::string last_error;
  auto fetch = [&](const std::string& addr) -> std::optional<nlohmann::json> {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(3));
    transport::StatusRequest req;
    req.set_with_hash(opts.with_hash);
    transport::StatusResponse resp;
    grpc::Status st = Connect(addr, creds)->Status(&ctx, req, &resp);
    if (!st.ok()) {
      last_error = st.error_message();
      return std::nullopt;
    }
    return nlohmann::json::parse(resp.json(), nullptr, false);
  };
  auto first = fetch(opts.via);
  if (!first || first->is_discarded()) {
    std::fprintf(stderr, "micedb: error: no answer from %s: %s\n", opts.via.c_str(),
                 last_error.c_str());
    return 1;
  }
  std::map<uint64_t, std::string> addrs;
  for (auto& [id, a] : (*first)["addresses"].items()) addrs[std::stoull(id)] = a;
  nlohmann::json all = nlohmann::json::array();
  std::printf("%-5s %-22s %-6s %-10s %6s %7s %9s %9s %6s%s\n", "node", "address", "region", "role",
              "term", "leader", "commit", "applied", "lag", opts.with_hash ? "  hash" : "");
  int rc = 0;
  for (const auto& [id, addr] : addrs) {
    auto j = fetch(addr);
    if (!j || j->is_discarded()) {
      std::printf("%-5llu %-22s %-10s\n", static_cast<unsigned long long>(id), addr.c_str(),
                  "DOWN");
      rc = 1;
      continue;
    }
    all.push_back(*j);
    for (const auto& r : (*j)["regions"]) {
      uint64_t commit = r["commit"], applied = r["applied"];
      std::printf("%-5llu %-22s %-6llu %-10s %6llu %7llu %9llu %9llu %6llu%s\n",
                  static_cast<unsigned long long>(id), addr.c_str(),
                  static_cast<unsigned long long>(r["id"].get<uint64_t>()),
                  r["role"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(r["term"].get<uint64_t>()),
                  static_cast<unsigned long long>(r["leader"].get<uint64_t>()),
                  static_cast<unsigned long long>(commit), static_cast<unsigned long long>(applied),
                  static_cast<unsigned long long>(commit > applied ? commit - applied : 0),
                  opts.with_hash ? ("  " + r.value("data_hash", std::string())).c_str() : "");
    }
    if ((*j)["regions"].empty()) {
      std::printf("%-5llu %-22s %-10s\n", static_cast<unsigned long long>(id), addr.c_str(),
                  "no-replica");
    }
  }
  PrintCluster(opts.via, creds);
  if (opts.json) std::printf("%s\n", all.dump(2).c_str());
  return rc;
}

}  // namespace micedb::cli
