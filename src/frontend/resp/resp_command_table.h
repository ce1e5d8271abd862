// Internal to src/frontend/resp: the RESP commands the server knows, with Redis's metadata (arity,
// flags, key positions, documentation) as COMMAND and COMMAND DOCS report it, and the handler that
// runs each one. Arity follows Redis: positive means exactly that many arguments (counting the
// command name), negative means at least that many.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace micedb::resp {

struct CommandCall;
using CommandHandler = void (*)(CommandCall& call);

enum CommandFlag : uint32_t {
  kCmdWrite = 1 << 0,
  kCmdReadonly = 1 << 1,
  kCmdFast = 1 << 2,
  kCmdNoAuth = 1 << 3,   // allowed before AUTH
  kCmdNoMulti = 1 << 4,  // refused inside MULTI
  kCmdAdmin = 1 << 5,
  kCmdDenyOom = 1 << 6,
  kCmdLoading = 1 << 7,
  kCmdStale = 1 << 8,
  kCmdNoScript = 1 << 9,
  kCmdTxnControl = 1 << 10,  // runs at once even inside MULTI (EXEC, DISCARD, ...)
};

struct SubcommandSpec {
  std::string_view name;  // lowercase, e.g. "setname"
  int arity;              // counting the container and subcommand names
  uint32_t flags;
  std::string_view summary;
  std::string_view since;
};

struct CommandSpec {
  std::string_view name;  // lowercase
  int arity;
  uint32_t flags;
  int first_key;  // 0: no keys
  int last_key;   // -1: the last argument
  int key_step;
  std::string_view group;  // "string", "generic", "connection", "server", "transactions"
  std::string_view since;
  std::string_view summary;
  std::string_view complexity;
  CommandHandler handler;
  std::span<const SubcommandSpec> subcommands;
};

// Every command, in a fixed order (the index is used for per-command counters).
std::span<const CommandSpec> CommandTable();
// The command called `name` (any case), or null.
const CommandSpec* FindCommand(std::string_view name);
// Position of `spec` in CommandTable().
size_t CommandIndex(const CommandSpec& spec);
// The subcommand `name` (any case) of `spec`, or null.
const SubcommandSpec* FindSubcommand(const CommandSpec& spec, std::string_view name);

// True when `argc` arguments satisfy `arity`.
constexpr bool ArityOk(int arity, size_t argc) {
  return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
}

}  // namespace micedb::resp
