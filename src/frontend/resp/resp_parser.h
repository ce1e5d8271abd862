// RespParser: turns the bytes a client sends into commands (argument vectors). Accepts both
// request forms Redis accepts:
//   multibulk  *<n>\r\n then n times $<len>\r\n<len bytes>\r\n   (what client libraries send)
//   inline     words separated by spaces, ending in \n or \r\n     (what a person types)
// Inline words may be quoted as redis-cli quotes them: "..." with \n \r \t \b \a \xHH and
// \<char> escapes, or '...' with \' as the only escape. See docs/resp.md.
//
// The parser is incremental: bytes may arrive split anywhere, even one at a time. A bulk
// argument is copied out of the input buffer as it arrives, so a large value is held once.
//
// Errors are final: after Next() returns kError the connection must be closed, because the
// position of the next request in the stream is unknown. error() holds the text to send,
// worded as Redis words it ("Protocol error: invalid bulk length").
//
// Thread-compatible: one parser per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace micedb::resp {

struct RespParserLimits {
  // Longest single argument; a longer announced length is "invalid bulk length".
  size_t max_bulk_bytes = size_t{64} << 20;
  // Most arguments in one command; more is "invalid multibulk length".
  size_t max_multibulk_len = size_t{1} << 20;
  // Longest inline line, and longest "*<n>" / "$<len>" header line.
  size_t max_inline_bytes = size_t{64} << 10;
  // Sum of the argument lengths of one command.
  size_t max_request_bytes = size_t{128} << 20;
  // Tighter limits while the connection has not authenticated (only when a password is set),
  // so an unauthenticated client cannot make the server buffer much.
  size_t unauthenticated_max_multibulk_len = 10;
  size_t unauthenticated_max_bulk_bytes = 16384;
};

class RespParser {
 public:
  enum class Outcome {
    kNeedMore,  // no complete command buffered; Feed more bytes
    kCommand,   // *args holds the next command (at least one argument)
    kError,     // malformed or oversized input; see error()
  };

  explicit RespParser(RespParserLimits limits = {});

  // Appends bytes received from the client.
  void Feed(std::string_view data);

  // Extracts the next complete command into *args (replacing its contents). Empty commands
  // ("*0\r\n", blank inline lines) are skipped. Once kError is returned, every later call
  // returns kError too.
  Outcome Next(std::vector<std::string>* args);

  // The error text after kError, e.g. "Protocol error: invalid multibulk length".
  const std::string& error() const { return error_; }

  // True when part of a request has been received but not all of it: the connection is
  // "in the middle of a request" for the slow-client timeout.
  bool InRequest() const;

  // Bytes buffered but not yet returned as commands (including a partial bulk argument).
  size_t buffered_bytes() const;

  // Selects the normal or the unauthenticated limits (see RespParserLimits).
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }

 private:
  enum class State { kStart, kBulkHeader, kBulkBody };

  Outcome Fail(std::string message);
  // Finds the end of a header line starting at pos_; npos when not yet buffered.
  size_t FindLineEnd() const;
  // Each step consumes what it can and returns kNeedMore when it needs more input or has
  // moved on to the next step.
  Outcome ParseInline(std::vector<std::string>* args);
  Outcome ParseMultibulkHeader();
  Outcome ParseBulkHeader();
  Outcome ParseBulkBody();
  void Compact();

  size_t MaxBulk() const;
  size_t MaxMultibulk() const;

  const RespParserLimits limits_;
  bool authenticated_ = true;
  std::string buf_;
  size_t pos_ = 0;  // first unconsumed byte of buf_
  State state_ = State::kStart;
  bool failed_ = false;
  std::string error_;

  // The multibulk command being assembled.
  std::vector<std::string> pending_;
  size_t args_left_ = 0;
  size_t bulk_len_ = 0;  // announced length of the current bulk
  size_t request_bytes_ = 0;
};

// Splits one inline line into words with redis-cli's quoting rules (see above). False when
// quotes are unbalanced or a closing quote is followed by something other than a space.
[[nodiscard]] bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args);

}  // namespace micedb::resp
