#include "common/logging.h"

#include <mutex>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/log_formatters.h"
#include "common/no_destructor.h"
#include "common/thread_annotations.h"

namespace micedb {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

std::unique_ptr<spdlog::formatter> MakeFormatter(LogFormat format) {
  if (format == LogFormat::kJson) {
    return std::make_unique<JsonLogFormatter>();
  }
  return std::make_unique<TextLogFormatter>();
}

// Process-wide logging state. Every logger writes into `dist`, whose one child is the current
// destination, so changing the destination never touches the loggers themselves.
class LogSystem {
 public:
  LogSystem() : dist_(std::make_shared<spdlog::sinks::dist_sink_mt>()) {
    auto out = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    out->set_formatter(MakeFormatter(LogFormat::kText));
    dist_->set_sinks({std::move(out)});
  }

  static LogSystem& Get() {
    static NoDestructor<LogSystem> system;
    return *system;
  }

  spdlog::logger* Logger(std::string_view module) EXCLUDES(mu_) {
    std::lock_guard lock(mu_);
    auto it = loggers_.find(module);
    if (it != loggers_.end()) {
      return it->second.get();
    }
    auto logger = std::make_shared<spdlog::logger>(std::string(module), dist_);
    logger->set_level(levels_.LevelFor(module));
    logger->flush_on(spdlog::level::warn);
    spdlog::logger* raw = logger.get();
    loggers_.emplace(std::string(module), std::move(logger));
    return raw;
  }

  void SetDestination(spdlog::sink_ptr out) { dist_->set_sinks({std::move(out)}); }

  void SetLevels(LogLevelSpec spec) EXCLUDES(mu_) {
    std::lock_guard lock(mu_);
    levels_ = std::move(spec);
    for (auto& [name, logger] : loggers_) {
      logger->set_level(levels_.LevelFor(name));
    }
  }

  // Routes spdlog's default logger (spdlog::info(...) and friends) through us as module
  // "default", so stray calls come out in the configured format.
  void InstallAsSpdlogDefault() EXCLUDES(mu_) {
    Logger("default");
    std::shared_ptr<spdlog::logger> logger;
    {
      std::lock_guard lock(mu_);
      logger = loggers_.find(std::string_view("default"))->second;
    }
    spdlog::set_default_logger(std::move(logger));
  }

  void Flush() { dist_->flush(); }

 private:
  const std::shared_ptr<spdlog::sinks::dist_sink_mt> dist_;
  std::mutex mu_;
  LogLevelSpec levels_ GUARDED_BY(mu_);
  // shared_ptr because spdlog::set_default_logger takes shared ownership.
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers_ GUARDED_BY(mu_);
};

}  // namespace

Result<LogFormat> ParseLogFormat(std::string_view name) {
  const std::string n = Lower(Trim(name));
  if (n == "text") {
    return LogFormat::kText;
  }
  if (n == "json") {
    return LogFormat::kJson;
  }
  return Status::InvalidArgument("unknown log format '" + std::string(name) +
                                 "' (expected text or json)");
}

Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  const std::string n = Lower(Trim(name));
  if (n == "trace") {
    return spdlog::level::trace;
  }
  if (n == "debug") {
    return spdlog::level::debug;
  }
  if (n == "info") {
    return spdlog::level::info;
  }
  if (n == "warn" || n == "warning") {
    return spdlog::level::warn;
  }
  if (n == "error" || n == "err") {
    return spdlog::level::err;
  }
  if (n == "critical" || n == "fatal") {
    return spdlog::level::critical;
  }
  if (n == "off") {
    return spdlog::level::off;
  }
  return Status::InvalidArgument("unknown log level '" + std::string(name) +
                                 "' (expected trace, debug, info, warn, error, critical or off)");
}

spdlog::level::level_enum LogLevelSpec::LevelFor(std::string_view module) const {
  std::string_view name = module;
  while (true) {
    auto it = modules.find(name);
    if (it != modules.end()) {
      return it->second;
    }
    const size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) {
      return default_level;
    }
    name = name.substr(0, dot);
  }
}

Result<LogLevelSpec> ParseLogLevelSpec(std::string_view spec) {
  LogLevelSpec result;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) {
      continue;
    }

    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      MICEDB_ASSIGN_OR_RETURN(result.default_level, ParseLogLevel(item));
      continue;
    }
    const std::string_view module = Trim(item.substr(0, eq));
    const std::string_view level = item.substr(eq + 1);
    if (module.empty() || level.find('=') != std::string_view::npos) {
      return Status::InvalidArgument("bad log level item '" + std::string(item) +
                                     "' (expected module=level)");
    }
    auto parsed = ParseLogLevel(level);
    if (!parsed.ok()) {
      return Status::InvalidArgument("in '" + std::string(item) +
                                     "': " + std::string(parsed.status().message()));
    }
    result.modules[std::string(module)] = *parsed;
  }
  return result;
}

Status InitLogging(const LogOptions& options) {
  MICEDB_ASSIGN_OR_RETURN(LogLevelSpec levels, ParseLogLevelSpec(options.levels));
  spdlog::sink_ptr out = options.sink;
  if (!out && !options.file.empty()) {
    try {
      out = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IoError("cannot open log file " + options.file + ": " + e.what());
    }
  }
  if (!out) {
    out = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  out->set_formatter(MakeFormatter(options.format));
  out->set_level(spdlog::level::trace);  // loggers do the filtering

  LogSystem& system = LogSystem::Get();
  system.SetLevels(std::move(levels));
  system.SetDestination(std::move(out));
  system.InstallAsSpdlogDefault();
  return Status::OK();
}

Status SetLogLevels(std::string_view spec) {
  MICEDB_ASSIGN_OR_RETURN(LogLevelSpec levels, ParseLogLevelSpec(spec));
  LogSystem::Get().SetLevels(std::move(levels));
  return Status::OK();
}

spdlog::logger* GetLogger(std::string_view module) { return LogSystem::Get().Logger(module); }

void FlushLogs() { LogSystem::Get().Flush(); }

}  // namespace micedb
