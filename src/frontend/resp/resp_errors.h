// Error replies in Redis's words. The state machine refuses commands with typed errors
// (kv::KvError, proto/micedb/kv.proto); KvErrorText gives each code the exact text Redis
// replies in the same case, so clients that match on error text keep working. The texts here
// are also used for the front end's own argument checks. Thread-safe (constants, pure
// functions).
#pragma once

#include <string>

#include "micedb/kv.pb.h"

namespace micedb::resp {

inline constexpr char kErrNotInteger[] = "ERR value is not an integer or out of range";
inline constexpr char kErrOverflow[] = "ERR increment or decrement would overflow";
inline constexpr char kErrTooBig[] = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
inline constexpr char kErrSyntax[] = "ERR syntax error";
inline constexpr char kErrNestedMulti[] = "ERR MULTI calls can not be nested";
inline constexpr char kErrNoAuth[] = "NOAUTH Authentication required.";
inline constexpr char kErrWrongPass[] =
    "WRONGPASS invalid username-password pair or user is disabled.";
inline constexpr char kErrInvalidCursor[] = "ERR invalid cursor";

// The error reply (without the leading '-') for a refusal of the state machine:
//   NOT_INTEGER         kErrNotInteger
//   INTEGER_OVERFLOW    kErrOverflow
//   VALUE_TOO_BIG       kErrTooBig
//   NESTED_TXN          kErrNestedMulti
//   WRITE_ON_READ_PATH  "ERR write command on the read path"
//   EMPTY_COMMAND       "ERR empty command"
//   INTERNAL            "ERR internal: " + message
//   others              "ERR " + message (INVALID_ARGUMENT, and codes newer than this code)
std::string KvErrorText(const kv::KvError& error);

}  // namespace micedb::resp
