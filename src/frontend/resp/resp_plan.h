// Internal to src/frontend/resp: what a RESP command handler decides to do with one command. Either
// the reply is known at once (PING, syntax errors, CLIENT ...), or a Command must run on the
// KvBackend first and the reply is rendered from its result. Plans queued by MULTI are run
// together by EXEC.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "frontend/resp/resp_writer.h"
#include "micedb/kv.pb.h"

namespace micedb::resp {

// Turns a backend result into the RESP reply. Runs on the connection's executor.
using Renderer = std::function<void(const Result<kv::CommandResult>& result, RespWriter& out)>;

struct Plan {
  // The RESP-encoded reply when `command` is empty.
  std::string reply;
  // When set: run this on the backend, then call `render` (RenderResult when unset).
  std::optional<kv::Command> command;
  Renderer render;
  // Close the connection once the reply is sent (QUIT).
  bool close_after = false;
};

}  // namespace micedb::resp
