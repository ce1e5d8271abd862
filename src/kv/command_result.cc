#include "kv/command_result.h"

#include <string>

namespace micedb::kv {

CommandResult NilResult() {
  CommandResult r;
  r.mutable_nil();
  return r;
}

CommandResult OkResult() {
  CommandResult r;
  r.mutable_ok();
  return r;
}

CommandResult IntResult(int64_t value) {
  CommandResult r;
  r.set_integer(value);
  return r;
}

CommandResult BulkResult(std::string_view data) {
  CommandResult r;
  r.set_bulk(std::string(data));
  return r;
}

CommandResult StatusResult(std::string_view text) {
  CommandResult r;
  r.set_status(std::string(text));
  return r;
}

CommandResult ErrorResult(KvError::Code code, std::string_view message) {
  CommandResult r;
  r.mutable_error()->set_code(code);
  r.mutable_error()->set_message(std::string(message));
  return r;
}

CommandResult TxnAbortedResult() {
  CommandResult r;
  r.mutable_aborted();
  return r;
}

CommandResult ArrayResult() {
  CommandResult r;
  r.mutable_array();
  return r;
}

}  // namespace micedb::kv
