#include "common/logging.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include <unistd.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/log_formatters.h"

namespace micedb {
namespace {

using spdlog::level::level_enum;

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

class LoggingTest : public testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(InitLogging({}).ok()); }

  // Sends all logging into `out_` with the given format and levels.
  void Capture(LogFormat format, const std::string& levels) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    LogOptions options;
    options.format = format;
    options.levels = levels;
    options.sink = sink;
    ASSERT_TRUE(InitLogging(options).ok());
  }

  std::ostringstream out_;
};

TEST(LogLevelTest, ParsesNamesInAnyCase) {
  EXPECT_EQ(*ParseLogLevel("trace"), level_enum::trace);
  EXPECT_EQ(*ParseLogLevel("DEBUG"), level_enum::debug);
  EXPECT_EQ(*ParseLogLevel("Info"), level_enum::info);
  EXPECT_EQ(*ParseLogLevel("warn"), level_enum::warn);
  EXPECT_EQ(*ParseLogLevel("warning"), level_enum::warn);
  EXPECT_EQ(*ParseLogLevel("error"), level_enum::err);
  EXPECT_EQ(*ParseLogLevel("err"), level_enum::err);
  EXPECT_EQ(*ParseLogLevel("critical"), level_enum::critical);
  EXPECT_EQ(*ParseLogLevel("fatal"), level_enum::critical);
  EXPECT_EQ(*ParseLogLevel("off"), level_enum::off);
}

TEST(LogLevelTest, BadLevelIsInvalidArgument) {
  for (const char* bad : {"", "verbose", "infoo", "3"}) {
    auto r = ParseLogLevel(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument());
  }
  EXPECT_NE(ParseLogLevel("loud").status().message().find("loud"), std::string_view::npos);
}

TEST(LogLevelTest, ParsesSpec) {
  auto spec = ParseLogLevelSpec("info,raft=debug,store=warn");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->default_level, level_enum::info);
  EXPECT_EQ(spec->LevelFor("raft"), level_enum::debug);
  EXPECT_EQ(spec->LevelFor("store"), level_enum::warn);
  EXPECT_EQ(spec->LevelFor("sql"), level_enum::info);
  EXPECT_EQ(spec->modules.size(), 2u);
}

TEST(LogLevelTest, SpecToleratesSpacesBlankItemsAndOrder) {
  auto spec = ParseLogLevelSpec(" raft = TRACE ,, error , raft=warn ");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->default_level, level_enum::err);
  EXPECT_EQ(spec->LevelFor("raft"), level_enum::warn);  // later item wins
  auto empty = ParseLogLevelSpec("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->default_level, level_enum::info);
  EXPECT_TRUE(empty->modules.empty());
}

TEST(LogLevelTest, DottedModulesInheritFromParent) {
  auto spec = ParseLogLevelSpec("warn,raft=debug,raft.log=error");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->LevelFor("raft.log"), level_enum::err);
  EXPECT_EQ(spec->LevelFor("raft.log.segment"), level_enum::err);
  EXPECT_EQ(spec->LevelFor("raft.tracker"), level_enum::debug);
  EXPECT_EQ(spec->LevelFor("rafts"), level_enum::warn);
}

TEST(LogLevelTest, BadSpecsAreInvalidArgumentNamingTheItem) {
  for (const char* bad : {"verbose", "info,raft=loud", "=debug", "raft=", "raft=debug=x"}) {
    auto r = ParseLogLevelSpec(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
  auto r = ParseLogLevelSpec("info,raft=loud");
  EXPECT_NE(r.status().message().find("raft=loud"), std::string_view::npos)
      << r.status().ToString();
}

TEST(LogLevelTest, ParsesFormat) {
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(*ParseLogFormat("JSON"), LogFormat::kJson);
  EXPECT_TRUE(ParseLogFormat("xml").status().IsInvalidArgument());
}

TEST_F(LoggingTest, JsonLinesHaveExactlyTheFourFields) {
  Capture(LogFormat::kJson, "info,raft=debug,store=warn");
  GetLogger("raft")->debug("region {} elected at term {}", 7, 3);
  GetLogger("raft")->info("quote \" backslash \\ newline \n tab \t bell \x07 done");
  GetLogger("store")->warn("invalid utf8 \xff\xfe and valid \xc3\xa9");
  FlushLogs();

  const auto lines = Lines(out_.str());
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  const std::regex ts_re(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line);  // throws, failing the test, if not JSON
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j.size(), 4u) << line;
    for (const char* key : {"ts", "level", "module", "msg"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_string()) << key << " in " << line;
    }
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), ts_re)) << line;
  }
  auto j0 = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j0["level"], "debug");
  EXPECT_EQ(j0["module"], "raft");
  EXPECT_EQ(j0["msg"], "region 7 elected at term 3");
  auto j1 = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(j1["level"], "info");
  EXPECT_EQ(j1["msg"], "quote \" backslash \\ newline \n tab \t bell \x07 done");
  auto j2 = nlohmann::json::parse(lines[2]);
  EXPECT_EQ(j2["level"], "warn");
  EXPECT_EQ(j2["module"], "store");
  EXPECT_EQ(j2["msg"], "invalid utf8 \xef\xbf\xbd\xef\xbf\xbd and valid \xc3\xa9");
}

TEST_F(LoggingTest, LevelsFilterPerModule) {
  Capture(LogFormat::kJson, "info,raft=debug,store=warn");
  GetLogger("store")->info("hidden");
  GetLogger("store")->error("shown store");
  GetLogger("raft")->trace("hidden");
  GetLogger("raft")->debug("shown raft");
  GetLogger("sql")->debug("hidden");
  GetLogger("sql")->info("shown sql");
  FlushLogs();
  const auto lines = Lines(out_.str());
  ASSERT_EQ(lines.size(), 3u) << out_.str();
  EXPECT_EQ(nlohmann::json::parse(lines[0])["msg"], "shown store");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["msg"], "shown raft");
  EXPECT_EQ(nlohmann::json::parse(lines[2])["msg"], "shown sql");
}

TEST_F(LoggingTest, TextFormatIsOneLinePerEvent) {
  Capture(LogFormat::kText, "info");
  GetLogger("raft")->warn("two\nlines");
  GetLogger("kv")->info("plain");
  FlushLogs();
  const auto lines = Lines(out_.str());
  ASSERT_EQ(lines.size(), 2u) << out_.str();
  const std::regex re(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (WARN |INFO ) (\w+): (.*))");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, re)) << lines[0];
  EXPECT_EQ(m[1], "WARN ");
  EXPECT_EQ(m[2], "raft");
  EXPECT_EQ(m[3], "two\\nlines");
  ASSERT_TRUE(std::regex_match(lines[1], m, re)) << lines[1];
  EXPECT_EQ(m[2], "kv");
  EXPECT_EQ(m[3], "plain");
}

TEST_F(LoggingTest, LoggersSurviveReconfiguration) {
  spdlog::logger* raft = GetLogger("raft");
  EXPECT_EQ(raft, GetLogger("raft"));
  EXPECT_NE(raft, GetLogger("store"));
  Capture(LogFormat::kText, "error");
  EXPECT_FALSE(raft->should_log(level_enum::info));
  ASSERT_TRUE(SetLogLevels("error,raft=info").ok());
  EXPECT_TRUE(raft->should_log(level_enum::info));
  raft->info("after");
  FlushLogs();
  EXPECT_NE(out_.str().find("raft: after"), std::string::npos) << out_.str();
}

TEST_F(LoggingTest, BadSpecChangesNothing) {
  Capture(LogFormat::kText, "info,raft=debug");
  EXPECT_TRUE(SetLogLevels("raft=loud").IsInvalidArgument());
  EXPECT_TRUE(GetLogger("raft")->should_log(level_enum::debug));
  LogOptions bad;
  bad.levels = "nope";
  EXPECT_TRUE(InitLogging(bad).IsInvalidArgument());
  EXPECT_TRUE(GetLogger("raft")->should_log(level_enum::debug));
  GetLogger("raft")->info("still captured");
  FlushLogs();
  EXPECT_NE(out_.str().find("still captured"), std::string::npos);
}

TEST_F(LoggingTest, SpdlogDefaultLoggerIsRouted) {
  Capture(LogFormat::kJson, "info");
  spdlog::info("via spdlog {}", 1);
  FlushLogs();
  const auto lines = Lines(out_.str());
  ASSERT_EQ(lines.size(), 1u) << out_.str();
  EXPECT_EQ(nlohmann::json::parse(lines[0])["module"], "default");
}

TEST_F(LoggingTest, WritesToFileAndReportsUnopenableFile) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("micedb_logging_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "micedb.log";
  LogOptions to_file;
  to_file.format = LogFormat::kJson;
  to_file.file = file.string();
  ASSERT_TRUE(InitLogging(to_file).ok());
  GetLogger("server")->error("to file");
  FlushLogs();
  ASSERT_TRUE(InitLogging({}).ok());  // closes the file
  std::ifstream in(file);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(nlohmann::json::parse(line)["msg"], "to file");

  // A path under a regular file cannot be created.
  const auto blocker = dir / "not_a_dir";
  std::ofstream(blocker) << "x";
  LogOptions unopenable;
  unopenable.file = (blocker / "x.log").string();
  const Status s = InitLogging(unopenable);
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.ToString();
  std::filesystem::remove_all(dir);
}

TEST(JsonStringTest, EscapesAndReplacesInvalidUtf8) {
  std::string out;
  AppendJsonString(std::string("a\"b\\c\n\x01\x1f", 8), &out);
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001\u001f")");
  out.clear();
  // Overlong '/', a lone continuation byte, a surrogate, a truncated 3-byte sequence, then a
  // valid 4-byte emoji.
  AppendJsonString("\xc0\xaf|\x80|\xed\xa0\x80|\xe2\x82|\xf0\x9f\x98\x80", &out);
  EXPECT_EQ(out,
            "\"\\ufffd\\ufffd|\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\xf0\x9f\x98\x80\"");
  EXPECT_NO_THROW(nlohmann::json::parse(out));
}

}  // namespace
}  // namespace micedb
