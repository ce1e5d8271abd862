// Intents: the raw keyspace's two-phase commit for writes whose keys span regions
// (docs/kv-format.md "Intents"; proto/micedb/kv.proto Prepare .. ForgetDecision).
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "kv/command_keys.h"
#include "kv/command_result.h"
#include "kv/ops.h"
#include "kv/value_format.h"

namespace micedb::kv::ops {
namespace {

// More commit records than this at one primary key: a new transaction naming it as primary
// is refused until some are forgotten (they are, as soon as their intents are resolved).
constexpr int kMaxCommitRecords = 1024;
// A commit record keeps the keys of the transaction's other intents up to this many bytes
// (a larger transaction's record keeps none: only its own gateway can finish it).
constexpr size_t kMaxRecordedKeyBytes = 64 << 10;

Result<std::optional<IntentRecord>> LoadIntent(OpContext& ctx, std::string_view key) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                          ctx.view->Get(storage::Cf::kLock, EncodeRawKey(key)));
  if (!stored.has_value()) return std::optional<IntentRecord>();
  IntentRecord rec;
  if (!rec.ParseFromString(*stored)) {
    return Status::Corruption(fmt::format("intent record of {:?} does not decode", key));
  }
  return std::optional<IntentRecord>(std::move(rec));
}

void SaveIntent(OpContext& ctx, std::string_view key, const IntentRecord& rec) {
  if (rec.txn_id() == 0 && rec.decisions_size() == 0) {
    ctx.batch->Delete(storage::Cf::kLock, EncodeRawKey(key));
  } else {
    ctx.batch->PutOwned(storage::Cf::kLock, EncodeRawKey(key), rec.SerializeAsString());
  }
}

void ClearIntent(IntentRecord* rec) {
  rec->set_txn_id(0);
  rec->clear_primary();
  rec->set_expire_at_ms(0);
  rec->set_birth_ms(0);
  rec->set_staged(IntentRecord::UNCHANGED);
  rec->clear_value();
}

CommandResult LockedResult(std::string_view key, const IntentRecord& rec) {
  CommandResult r = ErrorResult(
      KvError::LOCKED,
      fmt::format("key {:?} holds an intent of cross-region transaction {:x}", key, rec.txn_id()));
  LockInfo* info = r.mutable_error()->mutable_lock();
  info->set_key(std::string(key));
  info->set_txn_id(rec.txn_id());
  info->set_primary(rec.primary());
  info->set_expire_at_ms(rec.expire_at_ms());
  info->set_birth_ms(rec.birth_ms());
  return r;
}

bool Keyless(const Command& c) { return c.has_scan() || c.has_dbsize() || c.has_flushall(); }

bool IsIntentOp(const Command& c) {
  return c.has_prepare() || c.has_resolve_intents() || c.has_check_intent() ||
         c.has_forget_decision();
}

// What a prepare's body may be: keyed commands (a txn's too), none of the intent steps.
bool PreparableBody(const Command& c) {
  if (c.op_case() == Command::OP_NOT_SET || Keyless(c) || IsIntentOp(c)) return false;
  if (c.has_delete_expired()) return false;
  if (c.has_txn()) {
    if (c.txn().pipeline()) return false;
    for (const Command& inner : c.txn().commands()) {
      if (inner.has_txn() || !PreparableBody(inner)) return false;
    }
  }
  return true;
}

// True when the body ran and may have written: a refusal, an aborted txn and MSETNX's 0 wrote
// nothing.
bool BodyRan(const Command& body, const CommandResult& r) {
  if (r.kind_case() == CommandResult::kError || r.kind_case() == CommandResult::kAborted) {
    return false;
  }
  if (body.has_msetnx() && r.has_integer() && r.integer() == 0) return false;
  return true;
}

}  // namespace

bool NeedsLockCheck(const Command& cmd) {
  return !Keyless(cmd) && !IsIntentOp(cmd) && !cmd.has_delete_expired() &&
         cmd.op_case() != Command::OP_NOT_SET;
}

Result<std::optional<CommandResult>> CheckLocks(OpContext& ctx, const Command& cmd,
                                                uint64_t own_txn) {
  std::vector<std::string> keys;
  UserKeys(cmd, &keys);
  for (const std::string& key : keys) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> rec, LoadIntent(ctx, key));
    if (rec.has_value() && rec->txn_id() != 0 && rec->txn_id() != own_txn) {
      return std::optional<CommandResult>(LockedResult(key, *rec));
    }
  }
  return std::optional<CommandResult>();
}

Result<std::optional<CommandResult>> FirstIntentIn(OpContext& ctx, const StorageBounds& bounds) {
  std::unique_ptr<ScanCursor> it = ctx.view->Scan(storage::Cf::kLock, bounds.lower, bounds.upper);
  for (; it->Valid(); it->Next()) {
    IntentRecord rec;
    if (!rec.ParseFromString(std::string(it->value()))) {
      return Status::Corruption("an intent record does not decode");
    }
    if (rec.txn_id() != 0) {
      return std::optional<CommandResult>(LockedResult(std::string(DecodeRawKey(it->key())), rec));
    }
  }
  MICEDB_RETURN_IF_ERROR(it->status());
  return std::optional<CommandResult>();
}

Result<CommandResult> DoPrepare(OpContext& ctx, const Prepare& op,
                                const std::function<Result<CommandResult>(OpContext&)>& run) {
  if (op.txn_id() == 0 || !PreparableBody(op.body())) {
    return ErrorResult(KvError::INVALID_ARGUMENT,
                       "a prepare needs a transaction id, a primary key and a keyed body");
  }
  if (op.lock_expire_at_ms() <= ctx.now_ms) {
    // Late: its transaction may already have been rolled back by a reader.
    return ErrorResult(KvError::INTENT_LOST, "the prepare arrived after its lock expired");
  }
  MICEDB_ASSIGN_OR_RETURN(std::optional<CommandResult> locked,
                          CheckLocks(ctx, op.body(), op.txn_id()));
  if (locked.has_value()) return std::move(*locked);
  std::vector<std::string> names;
  UserKeys(op.body(), &names);
  std::set<std::string> keys(names.begin(), names.end());
  if (keys.count(op.primary()) != 0) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> prim, LoadIntent(ctx, op.primary()));
    if (prim.has_value() && prim->decisions_size() >= kMaxCommitRecords) {
      return ErrorResult(KvError::UNAVAILABLE,
                         "too many cross-region transactions on this primary key are settling");
    }
  }
  // The body runs as it would alone; what it wrote is then moved into intents and the keys
  // are put back as they were.
  std::vector<std::optional<std::string>> before;
  before.reserve(keys.size());
  for (const std::string& key : keys) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> v,
                            ctx.view->Get(storage::Cf::kDefault, EncodeRawKey(key)));
    before.push_back(std::move(v));
  }
  MICEDB_ASSIGN_OR_RETURN(CommandResult result, run(ctx));
  if (!BodyRan(op.body(), result)) return result;
  size_t i = 0;
  for (const std::string& key : keys) {
    const std::optional<std::string>& old = before[i++];
    const std::string raw = EncodeRawKey(key);
    MICEDB_ASSIGN_OR_RETURN(std::optional<std::string> now,
                            ctx.view->Get(storage::Cf::kDefault, raw));
    MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> prev, LoadIntent(ctx, key));
    IntentRecord rec = prev.value_or(IntentRecord());
    rec.set_txn_id(op.txn_id());
    rec.set_primary(op.primary());
    rec.set_expire_at_ms(op.lock_expire_at_ms());
    rec.set_birth_ms(op.birth_ms());
    rec.clear_value();
    if (now == old) {
      rec.set_staged(IntentRecord::UNCHANGED);
    } else if (now.has_value()) {
      rec.set_staged(IntentRecord::PUT);
      rec.set_value(*now);
    } else {
      rec.set_staged(IntentRecord::DELETE);
    }
    if (now != old) {
      if (old.has_value()) {
        ctx.batch->Put(storage::Cf::kDefault, raw, *old);
      } else {
        ctx.batch->Delete(storage::Cf::kDefault, raw);
      }
    }
    SaveIntent(ctx, key, rec);
  }
  return result;
}

Result<CommandResult> DoResolveIntents(OpContext& ctx, const ResolveIntents& op) {
  if (op.txn_id() == 0) return ErrorResult(KvError::INVALID_ARGUMENT, "no transaction id");
  if (op.decide()) {
    if (!op.commit()) {
      return ErrorResult(KvError::INVALID_ARGUMENT, "only a commit naming its primary decides");
    }
    MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> prim, LoadIntent(ctx, op.primary()));
    if (!prim.has_value() || prim->txn_id() != op.txn_id()) {
      return ErrorResult(KvError::INTENT_LOST,
                         "the transaction's intent at its primary is gone (rolled back after "
                         "its lock expired); nothing was committed");
    }
  }
  std::set<std::string> keys(op.keys().begin(), op.keys().end());
  if (op.decide()) keys.insert(op.primary());
  for (const std::string& key : keys) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> rec, LoadIntent(ctx, key));
    if (!rec.has_value() || rec->txn_id() != op.txn_id()) continue;
    if (op.commit()) {
      const std::string raw = EncodeRawKey(key);
      if (rec->staged() == IntentRecord::PUT) {
        StoredValue v;
        MICEDB_RETURN_IF_ERROR(DecodeValue(rec->value(), &v));
        ctx.batch->PutOwned(storage::Cf::kDefault, raw,
                            EncodeValue(v.type, v.expire_at_ms, ctx.revision, v.value));
      } else if (rec->staged() == IntentRecord::DELETE) {
        ctx.batch->Delete(storage::Cf::kDefault, raw);
      }
    }
    ClearIntent(&*rec);
    if (op.decide() && op.record() && key == op.primary()) {
      Decision* d = rec->add_decisions();
      d->set_txn_id(op.txn_id());
      size_t bytes = 0;
      for (const std::string& k : op.others()) bytes += k.size();
      if (bytes <= kMaxRecordedKeyBytes) *d->mutable_others() = op.others();
    }
    SaveIntent(ctx, key, *rec);
  }
  return OkResult();
}

Result<CommandResult> DoCheckIntent(OpContext& ctx, const CheckIntent& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> rec, LoadIntent(ctx, op.primary()));
  if (!rec.has_value()) return IntResult(0);
  for (const Decision& d : rec->decisions()) {
    if (d.txn_id() != op.txn_id()) continue;
    CommandResult r = ArrayResult();
    *r.mutable_array()->add_items() = IntResult(1);
    for (const std::string& k : d.others()) *r.mutable_array()->add_items() = BulkResult(k);
    return r;
  }
  if (rec->txn_id() != op.txn_id()) return IntResult(0);
  if (rec->expire_at_ms() > ctx.now_ms) return IntResult(2);
  // Expired: rolled back here, so that the transaction can no longer commit (its commit
  // needs this intent).
  ClearIntent(&*rec);
  SaveIntent(ctx, op.primary(), *rec);
  return IntResult(0);
}

Result<CommandResult> DoForgetDecision(OpContext& ctx, const ForgetDecision& op) {
  MICEDB_ASSIGN_OR_RETURN(std::optional<IntentRecord> rec, LoadIntent(ctx, op.primary()));
  if (!rec.has_value()) return OkResult();
  auto* done = rec->mutable_decisions();
  auto it = std::find_if(done->begin(), done->end(),
                         [&](const Decision& d) { return d.txn_id() == op.txn_id(); });
  if (it == done->end()) return OkResult();
  done->erase(it);
  SaveIntent(ctx, op.primary(), *rec);
  return OkResult();
}

}  // namespace micedb::kv::ops
