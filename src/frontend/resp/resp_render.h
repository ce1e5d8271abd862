// Internal to src/frontend/resp: turning backend results into RESP replies.
#pragma once

#include <string>

#include "common/result.h"
#include "common/status.h"
#include "frontend/resp/resp_writer.h"
#include "micedb/kv.pb.h"

namespace micedb::resp {

// Writes `value` as the matching RESP type (arrays recursively).
void RenderValue(const kv::CommandResult& value, RespWriter& out);
// The value when OK; else the Status as an error reply (StatusToRespError).
void RenderResult(const Result<kv::CommandResult>& result, RespWriter& out);
// The error text for a backend failure: "TRYAGAIN ..." when nothing was applied and a retry
// is safe (Unavailable, NotLeader, Busy), "ERR ..." otherwise.
std::string StatusToRespError(const Status& status);

}  // namespace micedb::resp
