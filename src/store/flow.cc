#include "store/flow.h"

#include <algorithm>

namespace micedb::store {
namespace {

uint64_t CommandKeys(const kv::Command& c, int depth) {
  switch (c.op_case()) {
    case kv::Command::kMget:
      return static_cast<uint64_t>(c.mget().keys_size());
    case kv::Command::kMset:
      return static_cast<uint64_t>(c.mset().pairs_size());
    case kv::Command::kMsetnx:
      return static_cast<uint64_t>(c.msetnx().pairs_size());
    case kv::Command::kDel:
      return static_cast<uint64_t>(c.del().keys_size());
    case kv::Command::kPrepare:
      return CommandKeys(c.prepare().body(), depth);
    case kv::Command::kResolveIntents:
      return std::max<uint64_t>(static_cast<uint64_t>(c.resolve_intents().keys_size()), 1);
    case kv::Command::kTxn: {
      if (depth > 0) return 1;  // transactions do not nest
      uint64_t n = 0;
      for (const auto& sub : c.txn().commands()) n += CommandKeys(sub, depth + 1);
      return n;
    }
    default:
      return 1;
  }
}

}  // namespace

uint64_t KeysOf(const region::RegionRequest& req) {
  if (req.has_kv()) return CommandKeys(req.kv(), 0);
  if (req.has_txn()) {
    const txn::pb::TxnRequest& t = req.txn();
    if (t.has_prewrite()) return std::max(t.prewrite().mutations_size(), 1);
    if (t.has_commit()) return std::max(t.commit().keys_size(), 1);
    if (t.has_rollback()) return std::max(t.rollback().keys_size(), 1);
    if (t.has_batch_get()) return std::max(t.batch_get().keys_size(), 1);
    if (t.has_check_secondary_locks()) {
      return std::max(t.check_secondary_locks().keys_size(), 1);
    }
  }
  return 1;
}

uint64_t KeysOf(const region::RegionResponse& resp) {
  if (resp.has_kv() && resp.kv().has_array()) {
    return static_cast<uint64_t>(resp.kv().array().items_size());
  }
  return 1;
}

}  // namespace micedb::store
