// Small constructors for CommandResult (proto/micedb/kv.proto), used by the state machine,
// the backends and tests. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string_view>

#include "micedb/kv.pb.h"

namespace micedb::kv {

CommandResult NilResult();
CommandResult NilArrayResult();
CommandResult OkResult();
CommandResult IntResult(int64_t value);
CommandResult BulkResult(std::string_view data);
CommandResult StatusResult(std::string_view text);
// `text` is the full error, starting with its code: "ERR ...", "WRONGTYPE ...".
CommandResult ErrorResult(std::string_view text);
// An empty array; append items with result.mutable_array()->add_items().
CommandResult ArrayResult();

}  // namespace micedb::kv
