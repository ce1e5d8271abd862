// Logging on spdlog: one named logger per module ("raft", "store", ...), every one writing to
// one shared destination in one format, each with its own level.
//
//   LogOptions options;
//   options.format = LogFormat::kJson;
//   options.levels = "info,raft=debug,store=warn";
//   MICEDB_RETURN_IF_ERROR(InitLogging(options));
//   spdlog::logger* log = GetLogger("raft");
//   log->info("region {} became leader at term {}", region_id, term);
//
// Formats (one event per line):
//   text: 2024-05-01T12:00:00.123456Z INFO  raft: region 7 became leader at term 3
//   json: {"ts":"2024-05-01T12:00:00.123456Z","level":"info","module":"raft","msg":"..."}
// Times are UTC. In JSON, the message is escaped as a JSON string, and bytes that are not
// valid UTF-8 become U+FFFD, so every line parses.
//
// Level spec: comma-separated items; an item is either a level (the default for every
// module) or module=level. Levels: trace, debug, info, warn (or warning), error (or err),
// critical (or fatal), off; case does not matter. Module names may be dotted ("raft.log");
// a module without its own level takes that of its nearest dotted parent, then the default.
// Later items override earlier ones. The default level before any spec is "info".
//
// All functions here are thread-safe. Logging works before InitLogging is called (text
// format, stderr, level info).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/common.h>
#include <spdlog/logger.h>

#include "common/result.h"
#include "common/status.h"

namespace micedb {

enum class LogFormat { kText, kJson };

// "text" or "json" (any case); InvalidArgument otherwise.
Result<LogFormat> ParseLogFormat(std::string_view name);

// One level name, as listed above; InvalidArgument otherwise.
Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

struct LogLevelSpec {
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> modules;

  // The level a module logs at under this spec.
  spdlog::level::level_enum LevelFor(std::string_view module) const;
};

// Parses a level spec such as "info,raft=debug,store=warn". Blank items and surrounding
// spaces are ignored; an unknown level, an empty module name or an item with two '=' gives
// InvalidArgument naming the offending item.
Result<LogLevelSpec> ParseLogLevelSpec(std::string_view spec);

struct LogOptions {
  LogFormat format = LogFormat::kText;
  std::string levels = "info";
  // Append to this file instead of writing to stderr. Ignored when `sink` is set.
  std::string file;
  // Write here instead (tests). The logging system shares ownership of it and sets its
  // formatter.
  std::shared_ptr<spdlog::sinks::sink> sink;
};

// (Re)configures logging for the whole process: format, destination and levels. Loggers
// already handed out keep working and follow the new settings. On error (bad level spec:
// InvalidArgument; file that cannot be opened: IoError) nothing changes.
Status InitLogging(const LogOptions& options);

// Changes only the levels, e.g. from an admin endpoint. On error nothing changes.
Status SetLogLevels(std::string_view spec);

// The logger for `module`, created on first use. Never null; owned by the logging system and
// valid until the process exits, so callers may keep the pointer.
spdlog::logger* GetLogger(std::string_view module);

// Writes out anything buffered (useful before exiting or after a fatal error).
void FlushLogs();

}  // namespace micedb
