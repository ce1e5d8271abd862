#include "kv/command_keys.h"

#include "kv/command_result.h"

namespace micedb::kv {

void UserKeys(const Command& c, std::vector<std::string>* keys) {
  auto add_all = [keys](const auto& repeated) {
    for (const auto& k : repeated) keys->push_back(k);
  };
  switch (c.op_case()) {
    case Command::kGet:
      keys->push_back(c.get().key());
      return;
    case Command::kMget:
      return add_all(c.mget().keys());
    case Command::kExists:
      return add_all(c.exists().keys());
    case Command::kStrlen:
      keys->push_back(c.strlen().key());
      return;
    case Command::kGetrange:
      keys->push_back(c.getrange().key());
      return;
    case Command::kTtl:
      keys->push_back(c.ttl().key());
      return;
    case Command::kType:
      keys->push_back(c.type().key());
      return;
    case Command::kRevisions:
      return add_all(c.revisions().keys());
    case Command::kSet:
      keys->push_back(c.set().key());
      return;
    case Command::kMset:
      for (const auto& kv : c.mset().pairs()) keys->push_back(kv.key());
      return;
    case Command::kMsetnx:
      for (const auto& kv : c.msetnx().pairs()) keys->push_back(kv.key());
      return;
    case Command::kDel:
      return add_all(c.del().keys());
    case Command::kIncrby:
      keys->push_back(c.incrby().key());
      return;
    case Command::kAppend:
      keys->push_back(c.append().key());
      return;
    case Command::kExpireAt:
      keys->push_back(c.expire_at().key());
      return;
    case Command::kPersist:
      keys->push_back(c.persist().key());
      return;
    case Command::kCompareAndSwap:
      keys->push_back(c.compare_and_swap().key());
      return;
    case Command::kTxn:
      for (const auto& w : c.txn().watched()) keys->push_back(w.key());
      for (const auto& inner : c.txn().commands()) UserKeys(inner, keys);
      return;
    case Command::kDeleteExpired:
      for (const auto& e : c.delete_expired().keys()) keys->push_back(e.key());
      return;
    case Command::kPrepare:
      return UserKeys(c.prepare().body(), keys);
    case Command::kResolveIntents:
      add_all(c.resolve_intents().keys());
      if (c.resolve_intents().decide()) keys->push_back(c.resolve_intents().primary());
      return;
    case Command::kCheckIntent:
      keys->push_back(c.check_intent().primary());
      return;
    case Command::kForgetDecision:
      keys->push_back(c.forget_decision().primary());
      return;
    case Command::kScan:
    case Command::kDbsize:
    case Command::kFlushall:
    case Command::OP_NOT_SET:
      return;
  }
}

bool Splittable(const Command& c) {
  switch (c.op_case()) {
    case Command::kMget:
    case Command::kExists:
    case Command::kRevisions:
    case Command::kDeleteExpired:  // each key's deletion stands alone (active expiry)
      return true;
    default:
      return false;
  }
}

Command PartOf(const Command& c, const std::vector<size_t>& positions) {
  Command part;
  part.set_now_ms(c.now_ms());
  switch (c.op_case()) {
    case Command::kMget:
      for (size_t i : positions) part.mutable_mget()->add_keys(c.mget().keys(static_cast<int>(i)));
      break;
    case Command::kExists:
      for (size_t i : positions) {
        part.mutable_exists()->add_keys(c.exists().keys(static_cast<int>(i)));
      }
      break;
    case Command::kDel:
      for (size_t i : positions) part.mutable_del()->add_keys(c.del().keys(static_cast<int>(i)));
      break;
    case Command::kMset:
      for (size_t i : positions) {
        *part.mutable_mset()->add_pairs() = c.mset().pairs(static_cast<int>(i));
      }
      break;
    case Command::kMsetnx:
      for (size_t i : positions) {
        *part.mutable_msetnx()->add_pairs() = c.msetnx().pairs(static_cast<int>(i));
      }
      break;
    case Command::kRevisions:
      for (size_t i : positions) {
        part.mutable_revisions()->add_keys(c.revisions().keys(static_cast<int>(i)));
      }
      break;
    case Command::kDeleteExpired:
      for (size_t i : positions) {
        *part.mutable_delete_expired()->add_keys() = c.delete_expired().keys(static_cast<int>(i));
      }
      break;
    default:
      break;
  }
  return part;
}

CommandResult JoinParts(const Command& c, size_t total,
                        const std::vector<std::vector<size_t>>& positions,
                        const std::vector<CommandResult>& parts) {
  for (const CommandResult& r : parts) {
    if (r.kind_case() == CommandResult::kError) return r;
  }
  switch (c.op_case()) {
    case Command::kMget:
    case Command::kRevisions: {
      CommandResult joined = ArrayResult();
      std::vector<const CommandResult*> items(total, nullptr);
      for (size_t p = 0; p < parts.size(); ++p) {
        const auto& arr = parts[p].array().items();
        for (size_t j = 0; j < positions[p].size() && j < static_cast<size_t>(arr.size()); ++j) {
          items[positions[p][j]] = &arr[static_cast<int>(j)];
        }
      }
      for (const CommandResult* item : items) {
        *joined.mutable_array()->add_items() = item ? *item : NilResult();
      }
      return joined;
    }
    case Command::kExists:
    case Command::kDel:
    case Command::kDeleteExpired: {
      int64_t sum = 0;
      for (const CommandResult& r : parts) sum += r.integer();
      return IntResult(sum);
    }
    case Command::kMset:
      return OkResult();
    default:
      return parts.empty() ? ErrorResult(KvError::EMPTY_COMMAND, "empty command") : parts.front();
  }
}

}  // namespace micedb::kv
