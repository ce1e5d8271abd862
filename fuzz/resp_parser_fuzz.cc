// libFuzzer target for the RESP request parser (TESTING.md, "Bad input"). Checks that any
// byte stream is either parsed or rejected without crashing, and that feeding it in two
// pieces split anywhere gives exactly the same commands and outcome as feeding it whole.
// Built and run by `make fuzz` (docs/testing-fuzz.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "frontend/resp/resp_parser.h"

namespace {

using micedb::resp::RespParser;
using micedb::resp::RespParserLimits;

struct Run {
  std::vector<std::vector<std::string>> commands;
  RespParser::Outcome last = RespParser::Outcome::kNeedMore;
  std::string error;
};

void Drain(RespParser& parser, Run* run) {
  std::vector<std::string> args;
  while ((run->last = parser.Next(&args)) == RespParser::Outcome::kCommand) {
    if (args.empty()) std::abort();  // commands always have a name
    run->commands.push_back(args);
  }
  if (run->last == RespParser::Outcome::kError) run->error = parser.error();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RespParserLimits limits;
  limits.max_bulk_bytes = 512;
  limits.max_multibulk_len = 64;
  limits.max_inline_bytes = 256;
  limits.max_request_bytes = 2048;
  // The first byte picks the split point and whether the client is authenticated.
  const size_t split = data[0] % size;
  const bool authenticated = (data[0] & 0x80) == 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  RespParser whole(limits);
  whole.set_authenticated(authenticated);
  whole.Feed(input);
  Run a;
  Drain(whole, &a);

  RespParser pieces(limits);
  pieces.set_authenticated(authenticated);
  Run b;
  const size_t cut = split < input.size() ? split : input.size();
  pieces.Feed(input.substr(0, cut));
  Drain(pieces, &b);
  if (b.last != RespParser::Outcome::kError) {
    pieces.Feed(input.substr(cut));
    Drain(pieces, &b);
  }
  if (a.commands != b.commands || a.last != b.last || a.error != b.error) std::abort();
  return 0;
}
