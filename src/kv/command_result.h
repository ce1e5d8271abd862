// Small constructors for CommandResult (proto/micedb/kv.proto), used by the state machine,
// the backends and tests. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string_view>

#include "micedb/kv.pb.h"

namespace micedb::kv {

CommandResult NilResult();
CommandResult OkResult();
CommandResult IntResult(int64_t value);
CommandResult BulkResult(std::string_view data);
CommandResult StatusResult(std::string_view text);
// A refusal: `code` for front ends to act on, `message` in plain words (no protocol wording).
CommandResult ErrorResult(KvError::Code code, std::string_view message);
// A txn that ran nothing because a watched key changed.
CommandResult TxnAbortedResult();
// An empty array; append items with result.mutable_array()->add_items().
CommandResult ArrayResult();

}  // namespace micedb::kv
