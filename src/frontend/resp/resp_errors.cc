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
    case kv::KvError::CROSS_REGION:
      return "CROSSSLOT " + error.message();
    case kv::KvError::UNAVAILABLE:
      return "TRYAGAIN " + error.message();
    case kv::KvError::OUTCOME_UNKNOWN:
      return "ERR timed out, the command may or may not have been applied: " + error.message();
    case kv::KvError::NO_SPACE:
      return "NOSPACE " + error.message();
    default:
      return "ERR " + error.message();
  }
}

}  // namespace micedb::resp
