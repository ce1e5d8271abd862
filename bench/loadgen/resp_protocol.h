// The little of the Redis protocol (RESP2, plus the RESP3 scalars) that a load generator needs:
// encode a command, and find where one reply ends in a buffer.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace micedb::bench {

// Appends `*<n>\r\n` then `$<len>\r\n<arg>\r\n` for each argument.
void AppendCommand(std::string& out, std::initializer_list<std::string_view> args);
// The same, in pieces, for commands with many arguments (MSET): the header, then each argument.
void AppendArrayHeader(std::string& out, size_t n);
void AppendBulk(std::string& out, std::string_view arg);

enum class ReplyKind {
  kStatus,   // +OK
  kError,    // -ERR ..., also a RESP3 blob error
  kInteger,  // :1
  kBulk,     // $3 abc
  kNil,      // $-1, *-1, RESP3 _
  kArray,    // *n ... (elements parsed and skipped)
  kOther,    // RESP3 double, boolean, big number, verbatim, map, set, push
};

struct Reply {
  ReplyKind kind = ReplyKind::kNil;
  std::string_view text;  // status or error text, bulk payload (into the parsed buffer)
};

enum class ParseResult { kComplete, kIncomplete, kBad };

// Parses one whole reply at the start of `in`. On kComplete, `*consumed` is its length in
// bytes and `*reply` describes it; on kIncomplete nothing is consumed (wait for more bytes);
// kBad means the bytes are not RESP.
ParseResult ParseReply(std::string_view in, size_t* consumed, Reply* reply);

}  // namespace micedb::bench
