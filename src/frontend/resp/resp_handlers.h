// Internal to src/frontend/resp: the RESP command handlers and what they are given. A handler
// checks its arguments and fills call.plan: an immediate reply through call.out, or a Command to
// run on the backend (call.Run) with a renderer for its result. Handlers run on the connection's
// executor and may touch the session freely; they never block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "frontend/resp/client_registry.h"
#include "frontend/resp/resp_command_table.h"
#include "frontend/resp/resp_errors.h"
#include "frontend/resp/resp_plan.h"
#include "frontend/resp/resp_session.h"
#include "frontend/resp/resp_writer.h"
#include "frontend/resp/server_options.h"
#include "frontend/resp/server_stats.h"
#include "micedb/kv.pb.h"

namespace micedb::resp {

// What every connection of one server shares.
struct ServerContext {
  const ServerOptions* options;
  const Clock* clock;
  ServerStats* stats;
  ClientRegistry* clients;
  int64_t start_wall_ms = 0;
  uint16_t port = 0;
};

struct CommandCall {
  CommandCall(Session& s, ServerContext& srv, std::vector<std::string>& a, const CommandSpec& sp,
              Plan& p, int64_t now)
      : session(s), server(srv), args(a), spec(sp), plan(p), out(&p.reply, s.resp), now_ms(now) {}

  Session& session;
  ServerContext& server;
  std::vector<std::string>& args;  // args[0] is the command name as the client sent it
  const CommandSpec& spec;
  Plan& plan;
  RespWriter out;  // the immediate reply
  int64_t now_ms;  // the gateway's wall clock for this command

  // Runs `cmd` (stamped with now_ms) on the backend; `render` (RenderResult when null) turns
  // the result into the reply.
  void Run(kv::Command cmd, Renderer render = nullptr);
};

std::string AsciiLower(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// "ERR wrong number of arguments for 'get' command".
std::string WrongArityError(std::string_view full_name);
// "ERR unknown subcommand 'foo'. Try CLIENT HELP."
std::string UnknownSubcommandError(std::string_view container, std::string_view sub);

// What CLIENT LIST shows for `session` at `now_ms` (last_command is left empty).
ClientInfo SessionClientInfo(const Session& session, int64_t now_ms);
// True when `password` matches the configured one (compared in constant time).
bool PasswordMatches(const ServerOptions& options, std::string_view password);

// connection (resp_cmd_connection.cc)
void HandlePing(CommandCall& call);
void HandleEcho(CommandCall& call);
void HandleHello(CommandCall& call);
void HandleAuth(CommandCall& call);
void HandleSelect(CommandCall& call);
void HandleClient(CommandCall& call);
void HandleQuit(CommandCall& call);
void HandleReadOnly(CommandCall& call);
void HandleReadWrite(CommandCall& call);
// server (resp_cmd_server.cc)
void HandleInfo(CommandCall& call);
void HandleCommand(CommandCall& call);
void HandleDbSize(CommandCall& call);
void HandleFlush(CommandCall& call);
void HandleConfig(CommandCall& call);
// strings (resp_cmd_strings.cc)
void HandleGet(CommandCall& call);
void HandleSet(CommandCall& call);
void HandleGetSet(CommandCall& call);
void HandleSetNx(CommandCall& call);
void HandleMGet(CommandCall& call);
void HandleMSet(CommandCall& call);
void HandleMSetNx(CommandCall& call);
void HandleIncrDecr(CommandCall& call);  // INCR, DECR, INCRBY, DECRBY
void HandleAppend(CommandCall& call);
void HandleStrLen(CommandCall& call);
void HandleGetRange(CommandCall& call);
// keys (resp_cmd_keys.cc)
void HandleDel(CommandCall& call);  // DEL, UNLINK
void HandleExists(CommandCall& call);
void HandleExpire(CommandCall& call);  // EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
void HandleTtl(CommandCall& call);     // TTL, PTTL
void HandlePersist(CommandCall& call);
void HandleScan(CommandCall& call);
void HandleKeys(CommandCall& call);
void HandleType(CommandCall& call);
// transactions (resp_cmd_txn.cc)
void HandleMulti(CommandCall& call);
void HandleExec(CommandCall& call);
void HandleDiscard(CommandCall& call);
void HandleWatch(CommandCall& call);
void HandleUnwatch(CommandCall& call);

}  // namespace micedb::resp
