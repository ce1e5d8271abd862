#include "cli/start_options.h"

#include <cctype>
#include <charconv>
#include <set>

#include <fmt/format.h>
#include <asio/ip/address.hpp>

namespace micedb::cli {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> ParseHostPort(const std::string& text, bool allow_zero) {
  HostPort hp;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument(fmt::format("'{}' is not [ipv6]:port", text));
    }
    hp.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return Status::InvalidArgument(fmt::format("'{}' has no port (want host:port)", text));
    }
    hp.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return Status::InvalidArgument(
          fmt::format("'{}': write an IPv6 address in brackets, [addr]:port", text));
    }
  }
  if (hp.host.empty()) return Status::InvalidArgument(fmt::format("'{}' has no host", text));
  unsigned long port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port > 65535 || (port == 0 && !allow_zero)) {
    return Status::InvalidArgument(
        fmt::format("'{}' has a bad port '{}' (want 1-65535)", text, port_text));
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

Result<std::vector<PeerSpec>> ParsePeers(const std::string& text) {
  std::vector<PeerSpec> peers;
  std::set<uint64_t> seen;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) {
      if (comma == text.size()) break;
      return Status::InvalidArgument("empty item in peer list");
    }
    size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(fmt::format("peer '{}' is not id=host:port", item));
    }
    uint64_t id = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + eq, id);
    if (ec != std::errc() || ptr != item.data() + eq || id == 0) {
      return Status::InvalidArgument(fmt::format("peer '{}' has a bad id (want >= 1)", item));
    }
    if (!seen.insert(id).second) {
      return Status::InvalidArgument(fmt::format("peer id {} appears twice", id));
    }
    MICEDB_ASSIGN_OR_RETURN(HostPort addr, ParseHostPort(item.substr(eq + 1)));
    peers.push_back(PeerSpec{NodeId(id), addr});
  }
  return peers;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  asio::error_code ec;
  const asio::ip::address a = asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

Result<Roles> ParseRoles(const StartOptions& opts) {
  Roles r;
  r.coordinator = opts.join.empty();
  if (opts.roles.empty()) return r;
  r.coordinator = false;
  r.data = false;
  size_t pos = 0;
  while (pos <= opts.roles.size()) {
    size_t comma = opts.roles.find(',', pos);
    if (comma == std::string::npos) comma = opts.roles.size();
    const std::string role = opts.roles.substr(pos, comma - pos);
    if (role == "coordinator") {
      r.coordinator = true;
    } else if (role == "data") {
      r.data = true;
    } else {
      return Status::InvalidArgument(
          fmt::format("--roles: unknown role '{}' (the roles are coordinator and data)", role));
    }
    pos = comma + 1;
  }
  if (!r.data) {
    return Status::InvalidArgument(
        "--roles must include data (nodes without data are not supported yet)");
  }
  if (r.coordinator && !opts.join.empty()) {
    return Status::InvalidArgument(
        "--roles coordinator is for the initial members (--initial-peers); a node that joins "
        "is made a coordinator with `micedb node add` on the coordinator's region");
  }
  if (!r.coordinator && opts.join.empty()) {
    return Status::InvalidArgument(
        "a node without the coordinator role joins a running cluster: give --join");
  }
  return r;
}

Result<int64_t> ParseDuration(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string unit = text.substr(digits);
  int64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  }
  int64_t n = 0;
  if (digits == 0 || digits > 12 || scale == 0 ||
      std::from_chars(text.data(), text.data() + digits, n).ec != std::errc()) {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a duration (a whole number and ms, s, m or h: 60s)", text));
  }
  return n * scale;
}

Result<uint64_t> ParseSize(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = -1;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "KIB" || unit == "KB" || unit == "K") {
    shift = 10;
  } else if (unit == "MIB" || unit == "MB" || unit == "M") {
    shift = 20;
  } else if (unit == "GIB" || unit == "GB" || unit == "G") {
    shift = 30;
  } else if (unit == "TIB" || unit == "TB" || unit == "T") {
    shift = 40;
  }
  uint64_t n = 0;
  if (digits == 0 || digits > 12 || shift < 0 ||
      std::from_chars(text.data(), text.data() + digits, n).ec != std::errc() ||
      (shift > 0 && n > (uint64_t{1} << (63 - shift)))) {
    return Status::InvalidArgument(fmt::format(
        "'{}' is not a size (a whole number and B, KiB, MiB, GiB or TiB: 96MiB)", text));
  }
  return n << shift;
}

Result<std::map<std::string, std::string>> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> out;
  if (text.empty()) return out;
  auto word_ok = [](std::string_view w) {
    if (w.empty() || w.size() > 64) return false;
    for (char c : w) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        return false;
      }
    }
    return true;
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || !word_ok(std::string_view(item).substr(0, eq)) ||
        !word_ok(std::string_view(item).substr(eq + 1))) {
      return Status::InvalidArgument(fmt::format(
          "--labels: '{}' is not key=value (letters, digits, '-', '_', '.'; at most 64 each)",
          item));
    }
    if (!out.emplace(item.substr(0, eq), item.substr(eq + 1)).second) {
      return Status::InvalidArgument(
          fmt::format("--labels: the key '{}' is given twice", item.substr(0, eq)));
    }
    if (out.size() > 16) return Status::InvalidArgument("--labels: at most 16 labels");
    pos = comma + 1;
  }
  return out;
}

Status Validate(const StartOptions& opts) {
  if (opts.node_id == 0 && opts.join.empty()) {
    return Status::InvalidArgument("--node-id must be at least 1 (or give --join to get one)");
  }
  if (!opts.join.empty() && !opts.initial_peers.empty()) {
    return Status::InvalidArgument(
        "--initial-peers starts a new cluster and --join joins a running one: give one of them");
  }
  if (!opts.join.empty()) {
    size_t pos = 0;
    while (pos <= opts.join.size()) {
      size_t comma = opts.join.find(',', pos);
      if (comma == std::string::npos) comma = opts.join.size();
      auto hp = ParseHostPort(opts.join.substr(pos, comma - pos));
      if (!hp.ok()) {
        return Status::InvalidArgument(fmt::format("--join: {}", hp.status().message()));
      }
      pos = comma + 1;
    }
  }
  if (auto roles = ParseRoles(opts); !roles.ok()) return roles.status();
  if (auto labels = ParseLabels(opts.labels); !labels.ok()) return labels.status();
  if (auto down = ParseDuration(opts.store_down_time); !down.ok()) {
    return Status::InvalidArgument(fmt::format("--store-down-time: {}", down.status().message()));
  } else if (*down < 1000) {
    return Status::InvalidArgument("--store-down-time must be at least 1s");
  }
  if (auto t = ParseDuration(opts.operator_timeout); !t.ok()) {
    return Status::InvalidArgument(fmt::format("--operator-timeout: {}", t.status().message()));
  } else if (*t < 1000) {
    return Status::InvalidArgument("--operator-timeout must be at least 1s");
  }
  if (auto t = ParseDuration(opts.gc_life_time); !t.ok()) {
    return Status::InvalidArgument(fmt::format("--gc-life-time: {}", t.status().message()));
  } else if (*t < 2000) {
    // Above the store heartbeat (1 s), which reports the oldest running transactions.
    return Status::InvalidArgument("--gc-life-time must be at least 2s");
  }
  if (opts.gc_run_interval != "0") {
    if (auto t = ParseDuration(opts.gc_run_interval); !t.ok()) {
      return Status::InvalidArgument(fmt::format("--gc-run-interval: {}", t.status().message()));
    } else if (*t < 100) {
      return Status::InvalidArgument("--gc-run-interval must be at least 100ms (or 0: never)");
    }
  }
  if (opts.intent_sweep_interval != "0") {
    if (auto t = ParseDuration(opts.intent_sweep_interval); !t.ok()) {
      return Status::InvalidArgument(
          fmt::format("--intent-sweep-interval: {}", t.status().message()));
    } else if (*t < 100) {
      return Status::InvalidArgument(
          "--intent-sweep-interval must be at least 100ms (or 0: never)");
    }
  }
  if (opts.schedule_store_limit < 1 || opts.schedule_store_limit > 64) {
    return Status::InvalidArgument("--schedule-store-limit must be 1..64");
  }
  if (opts.schedule_leader_limit > 64) {
    return Status::InvalidArgument("--schedule-leader-limit must be 0..64");
  }
  if (auto size = ParseSize(opts.hot_region_bytes); !size.ok()) {
    return Status::InvalidArgument(fmt::format("--hot-region-bytes: {}", size.status().message()));
  }
  if (auto t = ParseDuration(opts.region_heartbeat_interval); !t.ok()) {
    return Status::InvalidArgument(
        fmt::format("--region-heartbeat-interval: {}", t.status().message()));
  } else if (*t < 200 || *t > 600'000) {
    return Status::InvalidArgument("--region-heartbeat-interval must be 200ms..10m");
  }
  if (auto size = ParseSize(opts.region_split_size); !size.ok()) {
    return Status::InvalidArgument(fmt::format("--region-split-size: {}", size.status().message()));
  } else if (*size < 1024) {
    return Status::InvalidArgument("--region-split-size must be at least 1KiB");
  }
  if (opts.region_split_keys < 16) {
    return Status::InvalidArgument("--region-split-keys must be at least 16");
  }
  if (auto size = ParseSize(opts.region_split_load_bytes); !size.ok()) {
    return Status::InvalidArgument(
        fmt::format("--region-split-load-bytes: {}", size.status().message()));
  }
  if (opts.region_split_load_secs < 1 || opts.region_split_load_secs > 3600) {
    return Status::InvalidArgument("--region-split-load-secs must be 1..3600");
  }
  if (auto size = ParseSize(opts.region_merge_size); !size.ok()) {
    return Status::InvalidArgument(fmt::format("--region-merge-size: {}", size.status().message()));
  }
  if (auto idle = ParseDuration(opts.region_merge_idle); !idle.ok()) {
    return Status::InvalidArgument(fmt::format("--region-merge-idle: {}", idle.status().message()));
  } else if (*idle < 1000) {
    return Status::InvalidArgument("--region-merge-idle must be at least 1s");
  }
  if (auto t = ParseDuration(opts.region_merge_timeout); !t.ok()) {
    return Status::InvalidArgument(fmt::format("--region-merge-timeout: {}", t.status().message()));
  } else if (*t < 1000) {
    return Status::InvalidArgument("--region-merge-timeout must be at least 1s");
  }
  if (opts.data_dir.empty()) return Status::InvalidArgument("--data-dir must not be empty");
  struct {
    const char* flag;
    const std::string& value;
  } addrs[] = {{"--listen-peer", opts.listen_peer},
               {"--listen-redis", opts.listen_redis},
               {"--listen-pg", opts.listen_pg},
               {"--listen-http", opts.listen_http}};
  std::set<std::string> used;
  for (const auto& a : addrs) {
    auto hp = ParseHostPort(a.value, /*allow_zero=*/true);
    if (!hp.ok()) {
      return Status::InvalidArgument(fmt::format("{}: {}", a.flag, hp.status().message()));
    }
    if (hp->port != 0 && !used.insert(hp->ToString()).second) {
      return Status::InvalidArgument(
          fmt::format("{} {} is already used by another --listen flag", a.flag, a.value));
    }
  }
  if (!opts.listen_redis_tls.empty()) {
    auto hp = ParseHostPort(opts.listen_redis_tls, /*allow_zero=*/true);
    if (!hp.ok()) {
      return Status::InvalidArgument(fmt::format("--listen-redis-tls: {}", hp.status().message()));
    }
    if (opts.certs_dir.empty()) {
      return Status::InvalidArgument("--listen-redis-tls needs --certs-dir (see `micedb cert`)");
    }
  }
  if (opts.redis_tls_auth_clients != "yes" && opts.redis_tls_auth_clients != "optional" &&
      opts.redis_tls_auth_clients != "no") {
    return Status::InvalidArgument(
        fmt::format("--redis-tls-auth-clients must be yes, optional or no, not '{}'",
                    opts.redis_tls_auth_clients));
  }
  if (!opts.certs_dir.empty() && opts.insecure) {
    return Status::InvalidArgument("--certs-dir and --insecure contradict each other");
  }
  // Secure by default once a node leaves loopback: nothing reaches data or membership over a
  // plain connection unless the operator says so.
  if (!opts.insecure) {
    auto peer = ParseHostPort(opts.listen_peer, true);
    if (opts.certs_dir.empty() && !IsLoopbackHost(peer->host)) {
      return Status::InvalidArgument(fmt::format(
          "--listen-peer {} is not a loopback address: give --certs-dir (create certificates "
          "with `micedb cert`) or, to run without authentication, --insecure",
          opts.listen_peer));
    }
    auto redis = ParseHostPort(opts.listen_redis, true);
    if (!IsLoopbackHost(redis->host) && opts.requirepass.empty()) {
      return Status::InvalidArgument(fmt::format(
          "--listen-redis {} is not a loopback address and has no password: set --requirepass "
          "(and, for encryption, serve --listen-redis-tls), or give --insecure",
          opts.listen_redis));
    }
  }
  if (!opts.initial_peers.empty()) {
    auto peers = ParsePeers(opts.initial_peers);
    if (!peers.ok()) {
      return Status::InvalidArgument(fmt::format("--initial-peers: {}", peers.status().message()));
    }
    bool self = false;
    for (const auto& p : *peers) self |= p.id.value() == opts.node_id;
    if (!self && opts.node_id != 0) {
      return Status::InvalidArgument(
          fmt::format("--initial-peers does not include this node (id {})", opts.node_id));
    }
  }
  if (opts.max_connections < 1) return Status::InvalidArgument("--max-connections must be >= 1");
  if (opts.max_result_bytes < (uint64_t{1} << 20)) {
    return Status::InvalidArgument("--max-result-bytes must be at least 1 MiB");
  }
  if (opts.max_txn_bytes < (uint64_t{1} << 20)) {
    return Status::InvalidArgument("--max-txn-bytes must be at least 1 MiB");
  }
  if (opts.txn_max_open < 1) return Status::InvalidArgument("--txn-max-open must be >= 1");
  if (opts.txn_idle_timeout_ms < 1000) {
    return Status::InvalidArgument("--txn-idle-timeout-ms must be at least 1000");
  }
  if (opts.client_timeout_ms < 0) {
    return Status::InvalidArgument("--client-timeout-ms must be >= 0");
  }
  if (opts.request_timeout_ms < 100) {
    return Status::InvalidArgument("--request-timeout-ms must be at least 100");
  }
  if (opts.raft_tick_ms < 1 || opts.raft_tick_ms > 10000) {
    return Status::InvalidArgument("--raft-tick-ms must be between 1 and 10000");
  }
  if (opts.raft_log_gc_keep >= opts.raft_log_gc_threshold) {
    return Status::InvalidArgument("--raft-log-gc-keep must be below --raft-log-gc-threshold");
  }
  if (opts.raft_slow_write_mib_per_sec > (uint64_t{1} << 20)) {
    return Status::InvalidArgument("--raft-slow-write-mib-per-sec must be at most 1048576");
  }
  if (opts.election_ticks < 3) return Status::InvalidArgument("--election-ticks must be >= 3");
  if (!(opts.max_clock_drift >= 0 && opts.max_clock_drift <= 0.5)) {
    return Status::InvalidArgument(
        fmt::format("--max-clock-drift must be between 0 and 0.5, not {}", opts.max_clock_drift));
  }
  if (opts.log_format != "text" && opts.log_format != "json") {
    return Status::InvalidArgument(
        fmt::format("--log-format must be text or json, not '{}'", opts.log_format));
  }
  return Status::OK();
}

}  // namespace micedb::cli
