#include <algorithm>

#include <fmt/format.h>

#include "common/pulse.h"
#include "kv/command_result.h"
#include "kv/ops.h"
#include "kv/value_format.h"

namespace micedb::kv::ops {

Result<std::optional<Record>> LoadAny(OpContext& ctx, std::string_view key) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                          ctx.view->Get(storage::Cf::kDefault, EncodeRawKey(key)));
  if (!stored.has_value()) return std::optional<Record>();
  StoredValue decoded;
  MICEDB_RETURN_IF_ERROR(DecodeValue(*stored, &decoded));
  Record record;
  record.expire_at_ms = decoded.expire_at_ms;
  record.revision = decoded.revision;
  record.value.assign(decoded.value);
  return std::optional<Record>(std::move(record));
}

Result<std::optional<Record>> LoadLive(OpContext& ctx, std::string_view key) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadAny(ctx, key));
  if (record.has_value() && record->expire_at_ms != 0 && record->expire_at_ms <= ctx.now_ms) {
    return std::optional<Record>();
  }
  return record;
}

void StoreValue(OpContext& ctx, std::string_view key, std::string_view value,
                int64_t expire_at_ms) {
  if (expire_at_ms != 0 && expire_at_ms <= ctx.now_ms) {
    RemoveKey(ctx, key);
    return;
  }
  ctx.batch->PutOwned(storage::Cf::kDefault, EncodeRawKey(key),
                      EncodeValue(ValueType::kString, expire_at_ms, ctx.revision, value));
}

void RemoveKey(OpContext& ctx, std::string_view key) {
  ctx.batch->Delete(storage::Cf::kDefault, EncodeRawKey(key));
}

StorageBounds BoundsFor(const KeyRange& range, std::string_view start, std::string_view end) {
  StorageBounds bounds;
  bounds.lower = EncodeRawKey(std::max<std::string_view>(range.start, start));
  std::string_view upper;
  if (range.end.empty()) {
    upper = end;
  } else if (end.empty()) {
    upper = range.end;
  } else {
    upper = std::min<std::string_view>(range.end, end);
  }
  bounds.upper = RawKeyRangeEnd(upper);
  return bounds;
}

bool ChargeReply(OpContext& ctx, size_t bytes) {
  // A value was just loaded: long reads on a raft loop (a MULTI/EXEC's at apply) heartbeat.
  Pulse();
  if (ctx.reply_budget == nullptr) return true;
  if (*ctx.reply_budget < bytes) {
    // Spent: every later read of this reply is refused before it loads anything, so a
    // reply costs at most its budget plus one value of loading.
    *ctx.reply_budget = 0;
    return false;
  }
  *ctx.reply_budget -= bytes;
  return true;
}

bool ReplySpent(const OpContext& ctx) {
  return ctx.reply_budget != nullptr && *ctx.reply_budget == 0;
}

CommandResult ReplyTooLarge(const OpContext& ctx) {
  return ErrorResult(KvError::RESULT_TOO_LARGE,
                     fmt::format("the reply would exceed {} bytes (--max-result-bytes)",
                                 ctx.options->max_result_bytes));
}

}  // namespace micedb::kv::ops
