// Internal to src/frontend/resp: from a parsed command to a Plan. Applies the rules that come
// before any handler, in Redis's order: unknown command, arity, authentication, MULTI queueing
// (with EXECABORT for commands that could not be queued), key length; then calls the handler.
// Thread-compatible: one call at a time per session.
#pragma once

#include <string>
#include <vector>

#include "frontend/resp/resp_handlers.h"

namespace micedb::resp {

// "ERR unknown command 'foo', with args beginning with: 'a' 'b' ", as Redis words it (the name
// and the listed arguments are cut to 128 bytes).
std::string UnknownCommandError(const std::vector<std::string>& args);

// The plan for `args` (consumed: arguments may be moved out). `spec_out`, when not null,
// receives the command's spec (null for an unknown command), for per-command counters.
Plan DispatchCommand(Session& session, ServerContext& server, std::vector<std::string>& args,
                     int64_t now_ms, const CommandSpec** spec_out);

}  // namespace micedb::resp
