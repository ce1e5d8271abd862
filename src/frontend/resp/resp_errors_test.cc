#include "frontend/resp/resp_errors.h"

#include <gtest/gtest.h>

namespace micedb::resp {
namespace {

kv::KvError Error(kv::KvError::Code code, const std::string& message) {
  kv::KvError e;
  e.set_code(code);
  e.set_message(message);
  return e;
}

// The texts users saw when the state machine still produced Redis's wording itself.
TEST(RespErrorsTest, KvErrorsGetRedisText) {
  EXPECT_EQ(KvErrorText(Error(kv::KvError::NOT_INTEGER, "value is not an integer")),
            "ERR value is not an integer or out of range");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::INTEGER_OVERFLOW, "overflow")),
            "ERR increment or decrement would overflow");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::VALUE_TOO_BIG, "value would exceed the limit")),
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::NESTED_TXN, "nested")),
            "ERR MULTI calls can not be nested");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::WRITE_ON_READ_PATH, "write on the read path")),
            "ERR write command on the read path");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::EMPTY_COMMAND, "no operation")), "ERR empty command");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::INTERNAL, "log entry is not a command")),
            "ERR internal: log entry is not a command");
  EXPECT_EQ(KvErrorText(Error(kv::KvError::INVALID_ARGUMENT,
                              "compare-and-swap needs an expected value or expect_absent")),
            "ERR compare-and-swap needs an expected value or expect_absent");
  EXPECT_EQ(KvErrorText(Error(static_cast<kv::KvError::Code>(99), "from a newer node")),
            "ERR from a newer node");
}

}  // namespace
}  // namespace micedb::resp
