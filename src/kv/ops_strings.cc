// String commands of the state machine: GET, MGET, STRLEN, GETRANGE, SET, MSET, MSETNX,
// INCRBY, APPEND and compare-and-swap, with Redis's semantics.
#include <limits>
#include <string>

#include <fmt/format.h>

#include "kv/command_result.h"
#include "kv/number.h"
#include "kv/ops.h"

namespace micedb::kv::ops {
namespace {

CommandResult ValueOrNil(const std::optional<Record>& record) {
  return record.has_value() ? BulkResult(record->value) : NilResult();
}

bool TooBig(const OpContext& ctx, size_t size) { return size > ctx.options->max_value_bytes; }

CommandResult TooBigResult(const OpContext& ctx) {
  return ErrorResult(KvError::VALUE_TOO_BIG, fmt::format("value would exceed the limit of {} bytes",
                                                         ctx.options->max_value_bytes));
}

}  // namespace

Result<CommandResult> DoGet(OpContext& ctx, const Get& op) {
  if (ReplySpent(ctx)) return ReplyTooLarge(ctx);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  if (record.has_value() && !ChargeReply(ctx, record->value.size())) return ReplyTooLarge(ctx);
  return ValueOrNil(record);
}

Result<CommandResult> DoMGet(OpContext& ctx, const MGet& op) {
  CommandResult result = ArrayResult();
  for (const std::string& key : op.keys()) {
    if (ReplySpent(ctx)) return ReplyTooLarge(ctx);
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, key));
    if (!ChargeReply(ctx, record.has_value() ? record->value.size() : 0)) {
      return ReplyTooLarge(ctx);
    }
    *result.mutable_array()->add_items() = ValueOrNil(record);
  }
  return result;
}

Result<CommandResult> DoStrLen(OpContext& ctx, const StrLen& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  return IntResult(record.has_value() ? static_cast<int64_t>(record->value.size()) : 0);
}

Result<CommandResult> DoGetRange(OpContext& ctx, const GetRange& op) {
  if (ReplySpent(ctx)) return ReplyTooLarge(ctx);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  if (!record.has_value()) return BulkResult("");
  int64_t start = op.start();
  int64_t end = op.end();
  // Both offsets counted from the end, in the wrong order: nothing.
  if (start < 0 && end < 0 && start > end) return BulkResult("");
  const auto len = static_cast<int64_t>(record->value.size());
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return BulkResult("");
  if (!ChargeReply(ctx, static_cast<size_t>(end - start + 1))) return ReplyTooLarge(ctx);
  return BulkResult(std::string_view(record->value)
                        .substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

Result<CommandResult> DoSet(OpContext& ctx, const Set& op) {
  if (TooBig(ctx, op.value().size())) return TooBigResult(ctx);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> old, LoadLive(ctx, op.key()));
  bool write = true;
  if (op.condition() == SET_IF_ABSENT) write = !old.has_value();
  if (op.condition() == SET_IF_PRESENT) write = old.has_value();
  if (write) {
    const int64_t expire_at =
        op.keep_ttl() ? (old.has_value() ? old->expire_at_ms : 0) : op.expire_at_ms();
    StoreValue(ctx, op.key(), op.value(), expire_at);
  }
  if (op.return_old()) return ValueOrNil(old);
  return write ? OkResult() : NilResult();
}

Result<CommandResult> DoMSet(OpContext& ctx, const MSet& op) {
  for (const KeyValue& kv : op.pairs()) {
    if (TooBig(ctx, kv.value().size())) return TooBigResult(ctx);
  }
  for (const KeyValue& kv : op.pairs()) StoreValue(ctx, kv.key(), kv.value(), 0);
  return OkResult();
}

Result<CommandResult> DoMSetNx(OpContext& ctx, const MSetNx& op) {
  for (const KeyValue& kv : op.pairs()) {
    if (TooBig(ctx, kv.value().size())) return TooBigResult(ctx);
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> old, LoadLive(ctx, kv.key()));
    if (old.has_value()) return IntResult(0);
  }
  for (const KeyValue& kv : op.pairs()) StoreValue(ctx, kv.key(), kv.value(), 0);
  return IntResult(1);
}

Result<CommandResult> DoIncrBy(OpContext& ctx, const IncrBy& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> old, LoadLive(ctx, op.key()));
  int64_t current = 0;
  if (old.has_value() && !ParseInt64(old->value, &current)) {
    return ErrorResult(KvError::NOT_INTEGER, "value is not an integer or out of range");
  }
  const int64_t delta = op.delta();
  if ((delta > 0 && current > std::numeric_limits<int64_t>::max() - delta) ||
      (delta < 0 && current < std::numeric_limits<int64_t>::min() - delta)) {
    return ErrorResult(KvError::INTEGER_OVERFLOW, "increment or decrement would overflow");
  }
  const int64_t next = current + delta;
  StoreValue(ctx, op.key(), std::to_string(next), old.has_value() ? old->expire_at_ms : 0);
  return IntResult(next);
}

Result<CommandResult> DoAppend(OpContext& ctx, const Append& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> old, LoadLive(ctx, op.key()));
  const size_t old_size = old.has_value() ? old->value.size() : 0;
  if (TooBig(ctx, old_size + op.value().size())) return TooBigResult(ctx);
  if (!old.has_value()) {
    StoreValue(ctx, op.key(), op.value(), 0);
    return IntResult(static_cast<int64_t>(op.value().size()));
  }
  old->value.append(op.value());
  StoreValue(ctx, op.key(), old->value, old->expire_at_ms);
  return IntResult(static_cast<int64_t>(old->value.size()));
}

Result<CommandResult> DoCompareAndSwap(OpContext& ctx, const CompareAndSwap& op) {
  if (op.expect_case() == CompareAndSwap::EXPECT_NOT_SET) {
    return ErrorResult(KvError::INVALID_ARGUMENT,
                       "compare-and-swap needs an expected value or expect_absent");
  }
  if (!op.delete_key() && TooBig(ctx, op.new_value().size())) return TooBigResult(ctx);
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> old, LoadLive(ctx, op.key()));
  const bool matches = op.expect_case() == CompareAndSwap::kExpectAbsent
                           ? !old.has_value()
                           : old.has_value() && old->value == op.expected_value();
  if (matches) {
    if (op.delete_key()) {
      if (old.has_value()) RemoveKey(ctx, op.key());
    } else {
      StoreValue(ctx, op.key(), op.new_value(), 0);
    }
  }
  CommandResult result = ArrayResult();
  *result.mutable_array()->add_items() = IntResult(matches ? 1 : 0);
  *result.mutable_array()->add_items() = ValueOrNil(old);
  return result;
}

}  // namespace micedb::kv::ops
