#include "frontend/resp/resp_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>

#include "frontend/resp/resp_command_table.h"

#ifndef MICEDB_VERSION
#define MICEDB_VERSION "unknown"
#endif

namespace micedb::resp {
namespace {

void ServerSection(const ServerContext& server, int64_t now_ms, std::string* out) {
  struct utsname name {};
  std::string os = "unknown";
  if (uname(&name) == 0) os = fmt::format("{} {} {}", name.sysname, name.release, name.machine);
  const int64_t uptime = (now_ms - server.start_wall_ms) / 1000;
  fmt::format_to(std::back_inserter(*out),
                 "# Server\r\n"
                 "redis_version:7.0.0\r\n"
                 "micedb_version:{}\r\n"
                 "redis_mode:standalone\r\n"
                 "os:{}\r\n"
                 "arch_bits:{}\r\n"
                 "multiplexing_api:epoll\r\n"
                 "process_id:{}\r\n"
                 "tcp_port:{}\r\n"
                 "uptime_in_seconds:{}\r\n"
                 "uptime_in_days:{}\r\n"
                 "io_threads_active:{}\r\n",
                 MICEDB_VERSION, os, sizeof(void*) * 8, getpid(), server.port, uptime,
                 uptime / 86400, server.options->io_threads);
}

void ClientsSection(const ServerContext& server, std::string* out) {
  fmt::format_to(std::back_inserter(*out),
                 "# Clients\r\n"
                 "connected_clients:{}\r\n"
                 "maxclients:{}\r\n"
                 "blocked_clients:0\r\n",
                 server.clients->size(), server.clients->max_clients());
}

void ReplicationSection(const ServerContext& server, std::string* out) {
  out->append("# Replication\r\n");
  if (server.options->replication_info) {
    out->append(server.options->replication_info());
  } else {
    out->append("role:master\r\nconnected_slaves:0\r\n");
  }
}

void StatsSection(const ServerContext& server, std::string* out) {
  const ServerStats& s = *server.stats;
  fmt::format_to(std::back_inserter(*out),
                 "# Stats\r\n"
                 "total_connections_received:{}\r\n"
                 "total_commands_processed:{}\r\n"
                 "total_net_input_bytes:{}\r\n"
                 "total_net_output_bytes:{}\r\n"
                 "rejected_connections:{}\r\n"
                 "keyspace_hits:{}\r\n"
                 "keyspace_misses:{}\r\n"
                 "total_error_replies:{}\r\n"
                 "protocol_errors:{}\r\n"
                 "timed_out_clients:{}\r\n"
                 "backend_errors:{}\r\n",
                 s.connections_received.load(), s.commands_processed.load(),
                 s.net_input_bytes.load(), s.net_output_bytes.load(), s.rejected_connections.load(),
                 s.keyspace_hits.load(), s.keyspace_misses.load(), s.error_replies.load(),
                 s.protocol_errors.load(), s.timed_out_clients.load(), s.backend_errors.load());
}

void CommandStatsSection(const ServerContext& server, std::string* out) {
  out->append("# Commandstats\r\n");
  const auto table = CommandTable();
  for (size_t i = 0; i < table.size(); ++i) {
    const CommandCounters& c = server.stats->per_command[i];
    const uint64_t calls = c.calls.load();
    if (calls == 0) continue;
    const uint64_t usec = c.usec.load();
    fmt::format_to(std::back_inserter(*out),
                   "cmdstat_{}:calls={},usec={},usec_per_call={:.2f},rejected_calls=0,"
                   "failed_calls={}\r\n",
                   table[i].name, calls, usec, static_cast<double>(usec) / calls, c.failed.load());
  }
}

void KeyspaceSection(std::optional<KeyspaceCounts> keyspace, std::string* out) {
  out->append("# Keyspace\r\n");
  if (keyspace.has_value() && keyspace->keys > 0) {
    fmt::format_to(std::back_inserter(*out), "db0:keys={},expires={},avg_ttl=0\r\n", keyspace->keys,
                   keyspace->expires);
  }
}

}  // namespace

std::set<std::string, std::less<>> InfoSectionsFor(const std::vector<std::string>& args) {
  std::set<std::string, std::less<>> sections;
  bool defaults = args.size() <= 1;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string name = AsciiLower(args[i]);
    if (name == "default") {
      defaults = true;
    } else if (name == "all" || name == "everything") {
      for (std::string_view s : kInfoSections) sections.emplace(s);
    } else {
      sections.insert(name);
    }
  }
  if (defaults) {
    for (std::string_view s : kInfoSections) {
      if (s != "commandstats") sections.emplace(s);
    }
  }
  return sections;
}

std::string InfoText(const ServerContext& server,
                     const std::set<std::string, std::less<>>& sections,
                     std::optional<KeyspaceCounts> keyspace, int64_t now_ms) {
  std::string out;
  for (std::string_view section : kInfoSections) {
    if (!sections.contains(section)) continue;
    if (!out.empty()) out.append("\r\n");
    if (section == "server") ServerSection(server, now_ms, &out);
    if (section == "clients") ClientsSection(server, &out);
    if (section == "replication") ReplicationSection(server, &out);
    if (section == "stats") StatsSection(server, &out);
    if (section == "commandstats") CommandStatsSection(server, &out);
    if (section == "keyspace") KeyspaceSection(keyspace, &out);
  }
  return out;
}

}  // namespace micedb::resp
