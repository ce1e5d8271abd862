#include "frontend/resp/resp_render.h"

#include <fmt/format.h>

#include "frontend/resp/resp_errors.h"

namespace micedb::resp {

void RenderValue(const kv::CommandResult& value, RespWriter& out) {
  switch (value.kind_case()) {
    case kv::CommandResult::kNil:
      out.Null();
      return;
    case kv::CommandResult::kInteger:
      out.Integer(value.integer());
      return;
    case kv::CommandResult::kBulk:
      out.Bulk(value.bulk());
      return;
    case kv::CommandResult::kArray:
      out.ArrayHeader(static_cast<size_t>(value.array().items_size()));
      for (const kv::CommandResult& item : value.array().items()) RenderValue(item, out);
      return;
    case kv::CommandResult::kOk:
      out.Ok();
      return;
    case kv::CommandResult::kStatus:
      out.SimpleString(value.status());
      return;
    case kv::CommandResult::kError:
      out.Error(KvErrorText(value.error()));
      return;
    case kv::CommandResult::kAborted:
      out.NullArray();
      return;
    case kv::CommandResult::KIND_NOT_SET:
      break;
  }
  out.Error("ERR empty result");
}

void RenderResult(const Result<kv::CommandResult>& result, RespWriter& out) {
  if (result.ok()) {
    RenderValue(*result, out);
  } else {
    out.Error(StatusToRespError(result.status()));
  }
}

std::string StatusToRespError(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kNotLeader:
    case StatusCode::kBusy:
      return fmt::format("TRYAGAIN {}", status.message());
    case StatusCode::kTimedOut:
      return fmt::format("ERR timed out, the command may or may not have been applied: {}",
                         status.message());
    case StatusCode::kResourceExhausted:
      // The only way it reaches a client: a write refused by the disk alarm (Redis's own
      // wording for its disk errors is MISCONF; etcd's alarm is NOSPACE).
      return fmt::format("NOSPACE {}", status.message());
    default:
      return fmt::format("ERR {}", status.ToString());
  }
}

}  // namespace micedb::resp
