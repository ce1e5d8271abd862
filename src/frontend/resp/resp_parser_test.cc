#include "frontend/resp/resp_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace micedb::resp {
namespace {

using Args = std::vector<std::string>;
using Outcome = RespParser::Outcome;

// Feeds all of `input` at once and collects the commands until the parser needs more.
std::vector<Args> ParseAll(RespParser& parser, std::string_view input, Outcome* last) {
  parser.Feed(input);
  std::vector<Args> commands;
  Args args;
  while ((*last = parser.Next(&args)) == Outcome::kCommand) commands.push_back(args);
  return commands;
}

TEST(RespParserTest, MultibulkCommand) {
  RespParser parser;
  Outcome last;
  auto commands = ParseAll(parser, "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n", &last);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0], (Args{"SET", "a", "hello"}));
  EXPECT_EQ(last, Outcome::kNeedMore);
  EXPECT_FALSE(parser.InRequest());
}

TEST(RespParserTest, BinarySafeBulk) {
  RespParser parser;
  Outcome last;
  const std::string value("a\r\n\0b", 5);
  auto commands = ParseAll(parser, "*2\r\n$4\r\nECHO\r\n$5\r\n" + value + "\r\n", &last);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0][1], value);
}

TEST(RespParserTest, EmptyBulkAndEmptyCommands) {
  RespParser parser;
  Outcome last;
  auto commands = ParseAll(parser, "*0\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n", &last);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0], (Args{"GET", ""}));
}

TEST(RespParserTest, Pipeline) {
  RespParser parser;
  Outcome last;
  std::string input;
  for (int i = 0; i < 100; ++i) input += "*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
  auto commands = ParseAll(parser, input, &last);
  ASSERT_EQ(commands.size(), 200u);
  EXPECT_EQ(commands[0], (Args{"GET", "k"}));
  EXPECT_EQ(commands[1], (Args{"PING"}));
}

TEST(RespParserTest, ByteByByteFeedingGivesTheSameCommands) {
  const std::string input =
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\nPING\r\necho \"a b\"\n"
      "*1\r\n$4\r\nQUIT\r\n";
  RespParser parser;
  std::vector<Args> commands;
  Args args;
  for (size_t i = 0; i < input.size(); ++i) {
    parser.Feed(input.substr(i, 1));
    Outcome out;
    while ((out = parser.Next(&args)) == Outcome::kCommand) commands.push_back(args);
    ASSERT_EQ(out, Outcome::kNeedMore) << "at byte " << i;
    if (i + 1 < input.size() && commands.size() < 4) {
      // Between commands nothing is pending; inside one, the parser says so.
    }
  }
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[0], (Args{"SET", "key", "0123456789"}));
  EXPECT_EQ(commands[1], (Args{"PING"}));
  EXPECT_EQ(commands[2], (Args{"echo", "a b"}));
  EXPECT_EQ(commands[3], (Args{"QUIT"}));
  EXPECT_FALSE(parser.InRequest());
}

TEST(RespParserTest, TruncatedInputWaitsAndReportsInRequest) {
  RespParser parser;
  Args args;
  parser.Feed("*2\r\n$3\r\nGET\r\n$5\r\nab");
  EXPECT_EQ(parser.Next(&args), Outcome::kNeedMore);
  EXPECT_TRUE(parser.InRequest());
  parser.Feed("cde\r");
  EXPECT_EQ(parser.Next(&args), Outcome::kNeedMore);
  parser.Feed("\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kCommand);
  EXPECT_EQ(args, (Args{"GET", "abcde"}));
  EXPECT_FALSE(parser.InRequest());
}

TEST(RespParserTest, InlineCommands) {
  RespParser parser;
  Outcome last;
  auto commands = ParseAll(
      parser, "PING\r\n\r\n   \nset  k   v\nSET k \"a\\x41\\n\\\"q\"\nGET 'it\\'s'\r\n", &last);
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[0], (Args{"PING"}));
  EXPECT_EQ(commands[1], (Args{"set", "k", "v"}));
  EXPECT_EQ(commands[2], (Args{"SET", "k", "aA\n\"q"}));
  EXPECT_EQ(commands[3], (Args{"GET", "it's"}));
}

struct MalformedCase {
  std::string input;
  std::string error;
};

class RespParserMalformedTest : public testing::TestWithParam<MalformedCase> {};

TEST_P(RespParserMalformedTest, RejectsWithRedisText) {
  RespParser parser;
  Outcome last;
  ParseAll(parser, GetParam().input, &last);
  EXPECT_EQ(last, Outcome::kError);
  EXPECT_EQ(parser.error(), GetParam().error);
  // Errors are final.
  Args args;
  parser.Feed("PING\r\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kError);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RespParserMalformedTest,
    testing::Values(
        MalformedCase{"*x\r\n", "Protocol error: invalid multibulk length"},
        MalformedCase{"*01\r\n", "Protocol error: invalid multibulk length"},
        MalformedCase{"*99999999999\r\n", "Protocol error: invalid multibulk length"},
        MalformedCase{"*1\r\n:3\r\n", "Protocol error: expected '$', got ':'"},
        MalformedCase{"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        MalformedCase{"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
        MalformedCase{"*1\r\n$999999999999\r\n", "Protocol error: invalid bulk length"},
        MalformedCase{"*1\r\n$3\r\nabcXY", "Protocol error: expected CRLF after bulk data"},
        MalformedCase{"*1\r\n$3\rX", "Protocol error: expected CRLF after bulk length"},
        MalformedCase{"SET \"abc\r\n", "Protocol error: unbalanced quotes in request"},
        MalformedCase{"SET \"abc\"def\r\n", "Protocol error: unbalanced quotes in request"},
        MalformedCase{std::string(size_t{70} * 1024, 'a'),
                      "Protocol error: too big inline request"},
        MalformedCase{"*" + std::string(size_t{70} * 1024, '1'),
                      "Protocol error: too big mbulk count string"}));

TEST(RespParserTest, OversizedBulkIsRejectedBeforeItsDataArrives) {
  RespParserLimits limits;
  limits.max_bulk_bytes = 1024;
  RespParser parser(limits);
  Args args;
  parser.Feed("*2\r\n$3\r\nSET\r\n$1025\r\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kError);
  EXPECT_EQ(parser.error(), "Protocol error: invalid bulk length");
}

TEST(RespParserTest, RequestSizeLimitCountsAllArguments) {
  RespParserLimits limits;
  limits.max_request_bytes = 10;
  RespParser parser(limits);
  Args args;
  parser.Feed("*3\r\n$3\r\nSET\r\n$4\r\nkkkk\r\n$4\r\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kError);
  EXPECT_EQ(parser.error(), "Protocol error: request too large");
}

TEST(RespParserTest, MultibulkCountLimit) {
  RespParserLimits limits;
  limits.max_multibulk_len = 3;
  RespParser parser(limits);
  Args args;
  parser.Feed("*4\r\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kError);
  EXPECT_EQ(parser.error(), "Protocol error: invalid multibulk length");
}

TEST(RespParserTest, UnauthenticatedLimitsAreTighter) {
  RespParser parser;
  parser.set_authenticated(false);
  Args args;
  parser.Feed("*11\r\n");
  EXPECT_EQ(parser.Next(&args), Outcome::kError);
  EXPECT_EQ(parser.error(), "Protocol error: unauthenticated multibulk length");

  RespParser bulk;
  bulk.set_authenticated(false);
  bulk.Feed("*2\r\n$4\r\nAUTH\r\n$16385\r\n");
  EXPECT_EQ(bulk.Next(&args), Outcome::kError);
  EXPECT_EQ(bulk.error(), "Protocol error: unauthenticated bulk length");
}

TEST(RespParserTest, LargeBulkArrivingInPieces) {
  RespParser parser;
  const std::string value(1 << 20, 'v');
  parser.Feed("*2\r\n$4\r\nECHO\r\n$" + std::to_string(value.size()) + "\r\n");
  Args args;
  for (size_t i = 0; i < value.size(); i += 7000) {
    EXPECT_EQ(parser.Next(&args), Outcome::kNeedMore);
    parser.Feed(std::string_view(value).substr(i, 7000));
  }
  EXPECT_EQ(parser.Next(&args), Outcome::kNeedMore);
  parser.Feed("\r\n");
  ASSERT_EQ(parser.Next(&args), Outcome::kCommand);
  EXPECT_EQ(args[1], value);
}

TEST(RespParserTest, GarbageNeverCrashes) {
  // A deterministic pseudo-random byte stream: the parser must either need more, return
  // commands or fail, never crash or loop.
  uint64_t x = 88172645463325252ull;
  for (int round = 0; round < 200; ++round) {
    RespParser parser;
    std::string input;
    for (int i = 0; i < 512; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      const char alphabet[] = "*$\r\n0123456789-abc \"'\\x";
      input.push_back((x & 1) ? alphabet[(x >> 8) % (sizeof(alphabet) - 1)]
                              : static_cast<char>(x >> 16));
    }
    Outcome last;
    ParseAll(parser, input, &last);
    EXPECT_NE(last, Outcome::kCommand);
  }
}

TEST(SplitInlineArgsTest, QuotingRules) {
  Args args;
  ASSERT_TRUE(SplitInlineArgs("a \"b c\" 'd e' f\"g h\"", &args));
  EXPECT_EQ(args, (Args{"a", "b c", "d e", "fg h"}));
  ASSERT_TRUE(SplitInlineArgs("\"\\x00\\xff\\t\"", &args));
  EXPECT_EQ(args, (Args{std::string("\0\xff\t", 3)}));
  ASSERT_TRUE(SplitInlineArgs("", &args));
  EXPECT_TRUE(args.empty());
  EXPECT_FALSE(SplitInlineArgs("'abc", &args));
  EXPECT_FALSE(SplitInlineArgs("'abc'x", &args));
}

}  // namespace
}  // namespace micedb::resp
