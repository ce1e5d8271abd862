// Internal to src/kv: the per-command functions behind KvStateMachine and what they share.
// Each function evaluates one command at ctx.now_ms; writes require ctx.batch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kv/apply_batch.h"
#include "kv/read_view.h"
#include "kv/state_machine.h"
#include "micedb/kv.pb.h"

namespace micedb::kv::ops {

struct OpContext {
  ReadView* view;
  ApplyBatch* batch;  // null on the read path
  int64_t now_ms;
  uint64_t revision;  // stamped on every key written
  const KeyRange* range;
  const StateMachineOptions* options;
  // Bytes of values the reply may still carry (reads charge it as they copy values); null:
  // no limit.
  size_t* reply_budget = nullptr;
  // Apply on a replica that does not answer the client (never set on the read path): a
  // txn's reads are not run.
  bool skip_txn_reads = false;
};

// Takes `bytes` from ctx.reply_budget; false when it has less (the budget is then spent).
bool ChargeReply(OpContext& ctx, size_t bytes);
// True once the budget is spent: a read that copies values is refused without loading them.
bool ReplySpent(const OpContext& ctx);
// The error a read gets when its reply would pass the budget.
CommandResult ReplyTooLarge(const OpContext& ctx);

// A decoded stored value.
struct Record {
  int64_t expire_at_ms = 0;
  uint64_t revision = 0;
  std::string value;
};

// The key's record when present and not expired at ctx.now_ms; nullopt otherwise.
Result<std::optional<Record>> LoadLive(OpContext& ctx, std::string_view key);
// The key's record even when expired.
Result<std::optional<Record>> LoadAny(OpContext& ctx, std::string_view key);
// Writes `value` with `expire_at_ms` and the current revision; an expiry not after now
// deletes the key instead, as it would be gone at once.
void StoreValue(OpContext& ctx, std::string_view key, std::string_view value, int64_t expire_at_ms);
void RemoveKey(OpContext& ctx, std::string_view key);

// Storage key bounds of the region range intersected with user keys [start, end).
struct StorageBounds {
  std::string lower;
  std::string upper;
  bool empty() const { return lower >= upper; }
};
StorageBounds BoundsFor(const KeyRange& range, std::string_view start, std::string_view end);

// Strings (ops_strings.cc).
Result<CommandResult> DoGet(OpContext& ctx, const Get& op);
Result<CommandResult> DoMGet(OpContext& ctx, const MGet& op);
Result<CommandResult> DoStrLen(OpContext& ctx, const StrLen& op);
Result<CommandResult> DoGetRange(OpContext& ctx, const GetRange& op);
Result<CommandResult> DoSet(OpContext& ctx, const Set& op);
Result<CommandResult> DoMSet(OpContext& ctx, const MSet& op);
Result<CommandResult> DoMSetNx(OpContext& ctx, const MSetNx& op);
Result<CommandResult> DoIncrBy(OpContext& ctx, const IncrBy& op);
Result<CommandResult> DoAppend(OpContext& ctx, const Append& op);
Result<CommandResult> DoCompareAndSwap(OpContext& ctx, const CompareAndSwap& op);

// Keys and the keyspace (ops_keys.cc).
Result<CommandResult> DoExists(OpContext& ctx, const Exists& op);
Result<CommandResult> DoTtl(OpContext& ctx, const Ttl& op);
Result<CommandResult> DoType(OpContext& ctx, const Type& op);
Result<CommandResult> DoRevisions(OpContext& ctx, const Revisions& op);
Result<CommandResult> DoDel(OpContext& ctx, const Del& op);
Result<CommandResult> DoExpireAt(OpContext& ctx, const ExpireAt& op);
Result<CommandResult> DoPersist(OpContext& ctx, const Persist& op);
Result<CommandResult> DoDeleteExpired(OpContext& ctx, const DeleteExpired& op);
Result<CommandResult> DoScan(OpContext& ctx, const Scan& op);
Result<CommandResult> DoDbSize(OpContext& ctx, const DbSize& op);
Result<CommandResult> DoFlushAll(OpContext& ctx, const FlushAll& op);

// Intents: writes whose keys span regions (ops_intents.cc, docs/kv-format.md "Intents").
// Whether `cmd` must find its keys free of other transactions' intents before it runs.
bool NeedsLockCheck(const Command& cmd);
// A LOCKED result when a key `cmd` names holds an intent of another transaction than
// `own_txn` (0: any); nullopt when every key is free.
Result<std::optional<CommandResult>> CheckLocks(OpContext& ctx, const Command& cmd,
                                                uint64_t own_txn);
// A LOCKED result for the first intent in `bounds` (raw storage keys), nullopt when none.
Result<std::optional<CommandResult>> FirstIntentIn(OpContext& ctx, const StorageBounds& bounds);
// `run` evaluates op.body() in ctx (as the state machine would alone).
Result<CommandResult> DoPrepare(OpContext& ctx, const Prepare& op,
                                const std::function<Result<CommandResult>(OpContext&)>& run);
Result<CommandResult> DoResolveIntents(OpContext& ctx, const ResolveIntents& op);
Result<CommandResult> DoCheckIntent(OpContext& ctx, const CheckIntent& op);
Result<CommandResult> DoForgetDecision(OpContext& ctx, const ForgetDecision& op);

}  // namespace micedb::kv::ops
