// RESP server commands: INFO, COMMAND (with COUNT, INFO, DOCS, LIST), CONFIG GET, DBSIZE,
// FLUSHDB / FLUSHALL.
#include <fmt/format.h>

#include <iterator>

#include "frontend/resp/resp_handlers.h"
#include "frontend/resp/resp_info.h"
#include "frontend/resp/resp_render.h"
#include "kv/glob.h"

namespace micedb::resp {
namespace {

void WriteFlags(uint32_t flags, RespWriter& out) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kCmdWrite, "write"},     {kCmdReadonly, "readonly"}, {kCmdDenyOom, "denyoom"},
      {kCmdAdmin, "admin"},     {kCmdNoScript, "noscript"}, {kCmdLoading, "loading"},
      {kCmdStale, "stale"},     {kCmdFast, "fast"},         {kCmdNoAuth, "no_auth"},
      {kCmdNoMulti, "no_multi"}};
  size_t n = 0;
  for (const auto& [bit, name] : kNames) n += (flags & bit) ? 1 : 0;
  out.SetHeader(n);
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) out.SimpleString(name);
  }
}

void WriteCategories(std::string_view group, uint32_t flags, RespWriter& out) {
  std::vector<std::string> cats;
  if (group == "string" || group == "generic" || group == "connection" || group == "transactions") {
    cats.push_back(fmt::format("@{}", group == "generic" ? "keyspace" : group));
  }
  if (flags & kCmdWrite) cats.emplace_back("@write");
  if (flags & kCmdReadonly) cats.emplace_back("@read");
  if (flags & kCmdAdmin) cats.emplace_back("@admin");
  cats.emplace_back((flags & kCmdFast) ? "@fast" : "@slow");
  out.SetHeader(cats.size());
  for (const std::string& c : cats) out.SimpleString(c);
}

// One COMMAND INFO entry (the ten fields of Redis 7).
void WriteCommandInfo(const CommandSpec& spec, RespWriter& out) {
  out.ArrayHeader(10);
  out.Bulk(spec.name);
  out.Integer(spec.arity);
  WriteFlags(spec.flags, out);
  out.Integer(spec.first_key);
  out.Integer(spec.last_key);
  out.Integer(spec.key_step);
  WriteCategories(spec.group, spec.flags, out);
  out.ArrayHeader(0);  // tips
  out.ArrayHeader(0);  // key specifications
  out.ArrayHeader(spec.subcommands.size());
  for (const SubcommandSpec& sub : spec.subcommands) {
    out.ArrayHeader(10);
    out.Bulk(fmt::format("{}|{}", spec.name, sub.name));
    out.Integer(sub.arity);
    WriteFlags(sub.flags, out);
    out.Integer(0);
    out.Integer(0);
    out.Integer(0);
    WriteCategories(spec.group, sub.flags, out);
    out.ArrayHeader(0);
    out.ArrayHeader(0);
    out.ArrayHeader(0);
  }
}

void WriteDocFields(std::string_view summary, std::string_view since, std::string_view group,
                    std::string_view complexity, RespWriter& out, size_t extra_pairs) {
  out.MapHeader(4 + extra_pairs);
  out.Bulk("summary");
  out.Bulk(summary);
  out.Bulk("since");
  out.Bulk(since);
  out.Bulk("group");
  out.Bulk(group);
  out.Bulk("complexity");
  out.Bulk(complexity);
}

void WriteCommandDocs(const CommandSpec& spec, RespWriter& out) {
  const bool has_subs = !spec.subcommands.empty();
  WriteDocFields(spec.summary, spec.since, spec.group, spec.complexity, out, has_subs ? 1 : 0);
  if (!has_subs) return;
  out.Bulk("subcommands");
  out.MapHeader(spec.subcommands.size());
  for (const SubcommandSpec& sub : spec.subcommands) {
    out.Bulk(fmt::format("{}|{}", spec.name, sub.name));
    WriteDocFields(sub.summary, sub.since, spec.group, "O(1)", out, 0);
  }
}

void CommandHelp(RespWriter& out) {
  static constexpr std::string_view kLines[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all commands.",
      "COUNT",
      "    Return the total number of commands in this server.",
      "LIST",
      "    Return a list of all commands in this server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple commands.",
      "DOCS [<command-name> ...]",
      "    Return documentation details about multiple commands.",
      "HELP",
      "    Print this help.",
  };
  out.ArrayHeader(std::size(kLines));
  for (std::string_view line : kLines) out.SimpleString(line);
}

}  // namespace

void HandleCommand(CommandCall& call) {
  RespWriter& out = call.out;
  const auto table = CommandTable();
  if (call.args.size() == 1) {
    out.ArrayHeader(table.size());
    for (const CommandSpec& spec : table) WriteCommandInfo(spec, out);
    return;
  }
  const SubcommandSpec* sub = FindSubcommand(call.spec, call.args[1]);
  if (sub == nullptr) {
    out.Error(UnknownSubcommandError("command", call.args[1]));
    return;
  }
  if (!ArityOk(sub->arity, call.args.size())) {
    out.Error(WrongArityError(fmt::format("command|{}", sub->name)));
    return;
  }
  const std::string_view name = sub->name;
  if (name == "count") {
    out.Integer(static_cast<int64_t>(table.size()));
  } else if (name == "list") {
    if (call.args.size() > 2) {
      out.Error(kErrSyntax);
      return;
    }
    out.ArrayHeader(table.size());
    for (const CommandSpec& spec : table) out.Bulk(spec.name);
  } else if (name == "info") {
    if (call.args.size() == 2) {
      out.ArrayHeader(table.size());
      for (const CommandSpec& spec : table) WriteCommandInfo(spec, out);
      return;
    }
    out.ArrayHeader(call.args.size() - 2);
    for (size_t i = 2; i < call.args.size(); ++i) {
      const CommandSpec* spec = FindCommand(call.args[i]);
      if (spec == nullptr) {
        out.NullArray();
      } else {
        WriteCommandInfo(*spec, out);
      }
    }
  } else if (name == "docs") {
    std::vector<const CommandSpec*> specs;
    if (call.args.size() == 2) {
      for (const CommandSpec& spec : table) specs.push_back(&spec);
    } else {
      for (size_t i = 2; i < call.args.size(); ++i) {
        if (const CommandSpec* spec = FindCommand(call.args[i])) specs.push_back(spec);
      }
    }
    out.MapHeader(specs.size());
    for (const CommandSpec* spec : specs) {
      out.Bulk(spec->name);
      WriteCommandDocs(*spec, out);
    }
  } else {
    CommandHelp(out);
  }
}

void HandleInfo(CommandCall& call) {
  auto sections = InfoSectionsFor(call.args);
  if (!sections.contains("keyspace")) {
    call.out.Verbatim("txt", InfoText(call.server, sections, std::nullopt, call.now_ms));
    return;
  }
  kv::Command cmd;
  cmd.mutable_dbsize()->set_count_expires(true);
  const ServerContext* server = &call.server;
  const int64_t now_ms = call.now_ms;
  call.Run(std::move(cmd), [server, sections = std::move(sections), now_ms](
                               const Result<kv::CommandResult>& result, RespWriter& out) {
    std::optional<KeyspaceCounts> keyspace;
    if (result.ok() && result->has_array() && result->array().items_size() == 2) {
      keyspace =
          KeyspaceCounts{result->array().items(0).integer(), result->array().items(1).integer()};
    }
    out.Verbatim("txt", InfoText(*server, sections, keyspace, now_ms));
  });
}

void HandleConfig(CommandCall& call) {
  const SubcommandSpec* sub = FindSubcommand(call.spec, call.args[1]);
  if (sub == nullptr) {
    call.out.Error(UnknownSubcommandError("config", call.args[1]));
    return;
  }
  if (!ArityOk(sub->arity, call.args.size())) {
    call.out.Error(WrongArityError(fmt::format("config|{}", sub->name)));
    return;
  }
  const ServerOptions& o = *call.server.options;
  const std::pair<std::string_view, std::string> params[] = {
      {"appendonly", "no"},
      {"databases", "1"},
      {"maxclients", std::to_string(o.max_connections)},
      {"proto-max-bulk-len", std::to_string(std::max(o.max_key_bytes, o.max_value_bytes))},
      {"save", ""},
      {"timeout", std::to_string(o.idle_timeout.count() / 1000)},
  };
  std::vector<const std::pair<std::string_view, std::string>*> matched;
  for (const auto& param : params) {
    for (size_t i = 2; i < call.args.size(); ++i) {
      if (kv::GlobMatch(call.args[i], param.first, /*nocase=*/true)) {
        matched.push_back(&param);
        break;
      }
    }
  }
  call.out.MapHeader(matched.size());
  for (const auto* param : matched) {
    call.out.Bulk(param->first);
    call.out.Bulk(param->second);
  }
}

void HandleDbSize(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_dbsize();
  call.Run(std::move(cmd));
}

void HandleFlush(CommandCall& call) {
  if (call.args.size() > 2 || (call.args.size() == 2 && !EqualsIgnoreCase(call.args[1], "async") &&
                               !EqualsIgnoreCase(call.args[1], "sync"))) {
    call.out.Error(kErrSyntax);
    return;
  }
  kv::Command cmd;
  cmd.mutable_flushall();
  call.Run(std::move(cmd));
}

}  // namespace micedb::resp
