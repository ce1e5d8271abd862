#include "frontend/resp/resp_errors.h"

namespace micedb::resp {

std::string KvErrorText(const kv::KvError& error) {
  switch (error.code()) {
    case kv::KvError::NOT_INTEGER:
      return kErrNotInteger;
    case kv::KvError::INTEGER_OVERFLOW:
      return kErrOverflow;
    case kv::KvError::VALUE_TOO_BIG:
      return kErrTooBig;
    case kv::KvError::NESTED_TXN:
      return kErrNestedMulti;
    case kv::KvError::WRITE_ON_READ_PATH:
      return "ERR write command on the read path";
    case kv::KvError::EMPTY_COMMAND:
      return "ERR empty command";
    case kv::KvError::INTERNAL:
      return "ERR internal: " + error.message();
    default:
      return "ERR " + error.message();
  }
}

}  // namespace micedb::resp
