// Keyspace commands of the state machine: EXISTS, TTL, TYPE, DEL, EXPIREAT, PERSIST, SCAN,
// DBSIZE, FLUSHALL, plus the revisions WATCH reads and the deletions of active expiry.
#include <limits>
#include <string>

#include "kv/command_result.h"
#include "kv/glob.h"
#include "kv/ops.h"
#include "kv/value_format.h"

namespace micedb::kv::ops {

Result<CommandResult> DoExists(OpContext& ctx, const Exists& op) {
  int64_t count = 0;
  for (const std::string& key : op.keys()) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, key));
    if (record.has_value()) ++count;
  }
  return IntResult(count);
}

Result<CommandResult> DoTtl(OpContext& ctx, const Ttl& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  if (!record.has_value()) return IntResult(-2);
  if (record->expire_at_ms == 0) return IntResult(-1);
  // A live key expires after now, so this is positive; it saturates for a reader's clock far
  // in the past (a now_ms before 1970 once overflowed here).
  int64_t remaining = 0;
  if (__builtin_sub_overflow(record->expire_at_ms, ctx.now_ms, &remaining)) {
    remaining = std::numeric_limits<int64_t>::max();
  }
  if (op.millis()) return IntResult(remaining);
  return IntResult(remaining / 1000 + (remaining % 1000 >= 500 ? 1 : 0));  // nearest second
}

Result<CommandResult> DoType(OpContext& ctx, const Type& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  return StatusResult(record.has_value() ? "string" : "none");
}

Result<CommandResult> DoRevisions(OpContext& ctx, const Revisions& op) {
  CommandResult result = ArrayResult();
  for (const std::string& key : op.keys()) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, key));
    *result.mutable_array()->add_items() =
        IntResult(record.has_value() ? static_cast<int64_t>(record->revision) : 0);
  }
  return result;
}

Result<CommandResult> DoDel(OpContext& ctx, const Del& op) {
  int64_t deleted = 0;
  for (const std::string& key : op.keys()) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadAny(ctx, key));
    if (!record.has_value()) continue;
    // An expired key is removed too, but it did not exist as far as the client knows.
    if (record->expire_at_ms == 0 || record->expire_at_ms > ctx.now_ms) ++deleted;
    RemoveKey(ctx, key);
  }
  return IntResult(deleted);
}

Result<CommandResult> DoExpireAt(OpContext& ctx, const ExpireAt& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  if (!record.has_value()) return IntResult(0);
  const int64_t current = record->expire_at_ms;  // 0: none, which counts as infinitely late
  const int64_t wanted = op.expire_at_ms();
  const bool apply = (!op.nx() || current == 0) && (!op.xx() || current != 0) &&
                     (!op.gt() || (current != 0 && wanted > current)) &&
                     (!op.lt() || current == 0 || wanted < current);
  if (!apply) return IntResult(0);
  StoreValue(ctx, op.key(), record->value, wanted);
  return IntResult(1);
}

Result<CommandResult> DoPersist(OpContext& ctx, const Persist& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadLive(ctx, op.key()));
  if (!record.has_value() || record->expire_at_ms == 0) return IntResult(0);
  StoreValue(ctx, op.key(), record->value, 0);
  return IntResult(1);
}

Result<CommandResult> DoDeleteExpired(OpContext& ctx, const DeleteExpired& op) {
  int64_t deleted = 0;
  for (const ExpiredKey& expired : op.keys()) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<Record> record, LoadAny(ctx, expired.key()));
    // Only when nobody changed the key's expiry since it was seen, and it is really due.
    if (!record.has_value() || record->expire_at_ms == 0 ||
        record->expire_at_ms != expired.expire_at_ms() || record->expire_at_ms > ctx.now_ms) {
      continue;
    }
    RemoveKey(ctx, expired.key());
    ++deleted;
  }
  return IntResult(deleted);
}

Result<CommandResult> DoScan(OpContext& ctx, const Scan& op) {
  CommandResult result = ArrayResult();
  CommandResult* next = result.mutable_array()->add_items();
  CommandResult* items = result.mutable_array()->add_items();
  items->mutable_array();
  *next = NilResult();
  const StorageBounds bounds = BoundsFor(*ctx.range, op.start(), op.end());
  if (bounds.empty()) return result;
  std::unique_ptr<ScanCursor> cursor =
      ctx.view->Scan(storage::Cf::kDefault, bounds.lower, bounds.upper);
  uint64_t examined = 0;
  for (; cursor->Valid(); cursor->Next()) {
    const std::string_view user_key = DecodeRawKey(cursor->key());
    if (op.limit() != 0 && examined == op.limit()) {
      *next = BulkResult(user_key);
      break;
    }
    ++examined;
    StoredValue stored;
    MICEDB_RETURN_IF_ERROR(DecodeValue(cursor->value(), &stored));
    if (stored.ExpiredAt(ctx.now_ms)) continue;
    if (op.has_type() && op.type() != "string") continue;
    if (op.has_match() && !GlobMatch(op.match(), user_key)) continue;
    *items->mutable_array()->add_items() = BulkResult(user_key);
    if (op.with_values()) *items->mutable_array()->add_items() = BulkResult(stored.value);
  }
  MICEDB_RETURN_IF_ERROR(cursor->status());
  return result;
}

Result<CommandResult> DoDbSize(OpContext& ctx, const DbSize& op) {
  StorageBounds bounds = BoundsFor(*ctx.range, "", "");
  if (bounds.empty()) bounds.upper = bounds.lower;
  std::unique_ptr<ScanCursor> cursor =
      ctx.view->Scan(storage::Cf::kDefault, bounds.lower, bounds.upper);
  int64_t count = 0;
  int64_t expires = 0;
  for (; cursor->Valid(); cursor->Next()) {
    StoredValue stored;
    MICEDB_RETURN_IF_ERROR(DecodeValue(cursor->value(), &stored));
    if (stored.ExpiredAt(ctx.now_ms)) continue;
    ++count;
    if (stored.HasExpiry()) ++expires;
  }
  MICEDB_RETURN_IF_ERROR(cursor->status());
  if (!op.count_expires()) return IntResult(count);
  CommandResult result = ArrayResult();
  *result.mutable_array()->add_items() = IntResult(count);
  *result.mutable_array()->add_items() = IntResult(expires);
  return result;
}

Result<CommandResult> DoFlushAll(OpContext& ctx, const FlushAll&) {
  const StorageBounds bounds = BoundsFor(*ctx.range, "", "");
  if (bounds.empty()) return OkResult();
  // A cross-region write's intent would bring its key back after the flush: resolved first
  // (the router resolves it and sends the FLUSHALL again).
  MICEDB_ASSIGN_OR_RETURN(std::optional<CommandResult> locked, FirstIntentIn(ctx, bounds));
  if (locked.has_value()) return std::move(*locked);
  ctx.batch->DeleteRange(storage::Cf::kDefault, bounds.lower, bounds.upper);
  return OkResult();
}

}  // namespace micedb::kv::ops
