#include "kv/state_machine.h"

#include <fmt/format.h>

#include "common/pulse.h"
#include "kv/command_result.h"
#include "kv/ops.h"
#include "kv/value_format.h"

namespace micedb::kv {
namespace {

using ops::OpContext;

bool IsReadOp(Command::OpCase op) {
  switch (op) {
    case Command::kGet:
    case Command::kMget:
    case Command::kExists:
    case Command::kStrlen:
    case Command::kGetrange:
    case Command::kTtl:
    case Command::kType:
    case Command::kScan:
    case Command::kDbsize:
    case Command::kRevisions:
      return true;
    default:
      return false;
  }
}

Result<CommandResult> RunOne(OpContext& ctx, const Command& cmd);

constexpr size_t kMaxKeptResultBytes = 4096;

CommandResult NotKept(std::string_view what) {
  return ErrorResult(KvError::RESULT_NOT_KEPT,
                     fmt::format("the command ran, but {} (read again)", what));
}

// WATCH check, then every command in order. A command that fails does not undo or stop the
// others (Redis's EXEC semantics). Reads and write results share nothing: reads draw on the
// reply budget as they copy values (and are skipped on replicas that do not answer); write
// results are counted afterwards, the same way on every replica, and those past the budget
// are replaced by an error saying the write ran.
Result<CommandResult> RunTxn(OpContext& ctx, const Txn& txn) {
  for (const WatchedKey& watched : txn.watched()) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<ops::Record> record, ops::LoadLive(ctx, watched.key()));
    const uint64_t revision = record.has_value() ? record->revision : 0;
    if (revision != watched.revision()) return TxnAbortedResult();
  }
  const size_t limit = ctx.options->max_result_bytes;
  size_t read_budget = limit;
  size_t write_bytes = 0;
  CommandResult result = ArrayResult();
  for (const Command& inner : txn.commands()) {
    if (inner.op_case() == Command::kTxn) {
      *result.mutable_array()->add_items() =
          ErrorResult(KvError::NESTED_TXN, "a transaction cannot contain another transaction");
      continue;
    }
    Pulse();  // between commands: a long transaction still heartbeats (common/pulse.h)
    if (!IsWriteCommand(inner)) {
      if (ctx.skip_txn_reads) {
        *result.mutable_array()->add_items() = NotKept("this replica did not run the read");
        continue;
      }
      size_t* outer = ctx.reply_budget;
      ctx.reply_budget = &read_budget;
      Result<CommandResult> item = RunOne(ctx, inner);
      ctx.reply_budget = outer;
      if (!item.ok()) return item.status();
      *result.mutable_array()->add_items() = std::move(item).value();
      continue;
    }
    MICEDB_ASSIGN_OR_RETURN(CommandResult item, RunOne(ctx, inner));
    const size_t size = item.ByteSizeLong();
    if (write_bytes + size > limit) {
      item = ErrorResult(KvError::RESULT_TOO_LARGE,
                         fmt::format("the command ran, but the transaction's reply would exceed "
                                     "{} bytes (--max-result-bytes); its result was dropped",
                                     limit));
    } else {
      write_bytes += size;
    }
    *result.mutable_array()->add_items() = std::move(item);
  }
  return result;
}

Result<CommandResult> RunOne(OpContext& ctx, const Command& cmd) {
  if (ctx.batch == nullptr && IsWriteCommand(cmd)) {
    return ErrorResult(KvError::WRITE_ON_READ_PATH, "write command on the read path");
  }
  switch (cmd.op_case()) {
    case Command::kGet:
      return ops::DoGet(ctx, cmd.get());
    case Command::kMget:
      return ops::DoMGet(ctx, cmd.mget());
    case Command::kExists:
      return ops::DoExists(ctx, cmd.exists());
    case Command::kStrlen:
      return ops::DoStrLen(ctx, cmd.strlen());
    case Command::kGetrange:
      return ops::DoGetRange(ctx, cmd.getrange());
    case Command::kTtl:
      return ops::DoTtl(ctx, cmd.ttl());
    case Command::kType:
      return ops::DoType(ctx, cmd.type());
    case Command::kScan:
      return ops::DoScan(ctx, cmd.scan());
    case Command::kDbsize:
      return ops::DoDbSize(ctx, cmd.dbsize());
    case Command::kRevisions:
      return ops::DoRevisions(ctx, cmd.revisions());
    case Command::kSet:
      return ops::DoSet(ctx, cmd.set());
    case Command::kMset:
      return ops::DoMSet(ctx, cmd.mset());
    case Command::kMsetnx:
      return ops::DoMSetNx(ctx, cmd.msetnx());
    case Command::kDel:
      return ops::DoDel(ctx, cmd.del());
    case Command::kIncrby:
      return ops::DoIncrBy(ctx, cmd.incrby());
    case Command::kAppend:
      return ops::DoAppend(ctx, cmd.append());
    case Command::kExpireAt:
      return ops::DoExpireAt(ctx, cmd.expire_at());
    case Command::kPersist:
      return ops::DoPersist(ctx, cmd.persist());
    case Command::kFlushall:
      return ops::DoFlushAll(ctx, cmd.flushall());
    case Command::kCompareAndSwap:
      return ops::DoCompareAndSwap(ctx, cmd.compare_and_swap());
    case Command::kTxn:
      return RunTxn(ctx, cmd.txn());
    case Command::kDeleteExpired:
      return ops::DoDeleteExpired(ctx, cmd.delete_expired());
    case Command::kPrepare:
      return ops::DoPrepare(ctx, cmd.prepare(),
                            [&cmd](OpContext& c) { return RunOne(c, cmd.prepare().body()); });
    case Command::kResolveIntents:
      return ops::DoResolveIntents(ctx, cmd.resolve_intents());
    case Command::kCheckIntent:
      return ops::DoCheckIntent(ctx, cmd.check_intent());
    case Command::kForgetDecision:
      return ops::DoForgetDecision(ctx, cmd.forget_decision());
    case Command::OP_NOT_SET:
      break;
  }
  return ErrorResult(KvError::EMPTY_COMMAND, "command has no operation");
}

}  // namespace

bool IsWriteCommand(const Command& cmd) {
  if (cmd.op_case() == Command::kTxn) {
    for (const Command& inner : cmd.txn().commands()) {
      if (IsWriteCommand(inner)) return true;
    }
    return false;
  }
  return cmd.op_case() != Command::OP_NOT_SET && !IsReadOp(cmd.op_case());
}

KvStateMachine::KvStateMachine(KeyRange range, StateMachineOptions options)
    : range_(std::move(range)), options_(options) {}

Result<CommandResult> KvStateMachine::Apply(const Command& cmd, LogIndex log_index,
                                            ApplyBatch& batch, TxnReads reads) const {
  // Expiry is decided against the command's time: a time before 1970 would store expiries no
  // reader can decode (found by region_request_fuzz). The front ends never send one.
  if (cmd.now_ms() < 0) {
    return ErrorResult(KvError::INVALID_ARGUMENT,
                       fmt::format("command time {} ms is negative", cmd.now_ms()));
  }
  OpContext ctx{&batch, &batch, cmd.now_ms(), log_index.value(), &range_, &options_};
  ctx.skip_txn_reads = reads == TxnReads::kSkip;
  if (ops::NeedsLockCheck(cmd)) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<CommandResult> locked, ops::CheckLocks(ctx, cmd, 0));
    if (locked.has_value()) return std::move(*locked);
  }
  return RunOne(ctx, cmd);
}

Result<CommandResult> KvStateMachine::Read(const Command& cmd, ReadView& view,
                                           int64_t now_ms) const {
  size_t budget = options_.max_result_bytes;
  OpContext ctx{&view, nullptr, now_ms, 0, &range_, &options_};
  ctx.reply_budget = &budget;
  if (ops::NeedsLockCheck(cmd)) {
    MICEDB_ASSIGN_OR_RETURN(std::optional<CommandResult> locked, ops::CheckLocks(ctx, cmd, 0));
    if (locked.has_value()) return std::move(*locked);
  }
  return RunOne(ctx, cmd);
}

CommandResult KvStateMachine::ForRetry(const Command& cmd, CommandResult result) {
  // A prepare's result is its body's (a MULTI part's items kept as a MULTI's are).
  const Command& body = cmd.has_prepare() ? cmd.prepare().body() : cmd;
  if (body.op_case() == Command::kTxn && result.has_array() &&
      result.array().items_size() == body.txn().commands_size()) {
    for (int i = 0; i < result.array().items_size(); ++i) {
      CommandResult* item = result.mutable_array()->mutable_items(i);
      if (!IsWriteCommand(body.txn().commands(i))) {
        *item = NotKept("reads in a transaction are not kept for retries");
      } else if (item->ByteSizeLong() > kMaxKeptResultBytes) {
        *item = NotKept("its result was too large to keep for retries");
      }
    }
    return result;
  }
  if (result.ByteSizeLong() > kMaxKeptResultBytes) {
    return NotKept("its result was too large to keep for retries");
  }
  return result;
}

Result<CommandResult> KvStateMachine::Read(const Command& cmd, storage::Engine* engine,
                                           const storage::Snapshot* snapshot,
                                           int64_t now_ms) const {
  EngineView view(engine, snapshot);
  return Read(cmd, view, now_ms);
}

Result<Command> KvStateMachine::CollectExpired(ReadView& view, int64_t now_ms, size_t limit,
                                               std::string* resume_key, ExpiryScan* scan) const {
  Command cmd;
  cmd.set_now_ms(now_ms);
  DeleteExpired* out = cmd.mutable_delete_expired();
  const ops::StorageBounds bounds = ops::BoundsFor(range_, *resume_key, "");
  if (bounds.empty()) {
    resume_key->clear();
    return cmd;
  }
  std::unique_ptr<ScanCursor> cursor = view.Scan(storage::Cf::kDefault, bounds.lower, bounds.upper);
  size_t examined = 0;
  const size_t max_examined = scan && scan->max_examined ? scan->max_examined : limit * 20;
  for (; cursor->Valid(); cursor->Next()) {
    if (examined == max_examined || static_cast<size_t>(out->keys_size()) == limit) {
      resume_key->assign(DecodeRawKey(cursor->key()));
      MICEDB_RETURN_IF_ERROR(cursor->status());
      if (scan) scan->examined = examined;
      return cmd;
    }
    ++examined;
    StoredValue stored;
    MICEDB_RETURN_IF_ERROR(DecodeValue(cursor->value(), &stored));
    if (scan && stored.expire_at_ms != 0) scan->saw_expiry = true;
    if (!stored.ExpiredAt(now_ms)) continue;
    ExpiredKey* key = out->add_keys();
    key->set_key(std::string(DecodeRawKey(cursor->key())));
    key->set_expire_at_ms(stored.expire_at_ms);
  }
  MICEDB_RETURN_IF_ERROR(cursor->status());
  resume_key->clear();
  if (scan) scan->examined = examined;
  return cmd;
}

}  // namespace micedb::kv
