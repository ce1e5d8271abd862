// The two line formats of common/logging.h, as spdlog formatters. Internal to logging; public
// only so that tests can check them directly. Stateless, so thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>

namespace micedb {

// "2024-05-01T12:00:00.123456Z INFO  raft: message\n"; line breaks inside the message are
// written as the two characters \n (or \r).
class TextLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// {"ts":"2024-05-01T12:00:00.123456Z","level":"info","module":"raft","msg":"message"}\n
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Appends `s` as a quoted JSON string: quotes, backslashes and control characters escaped,
// bytes that are not valid UTF-8 replaced by U+FFFD.
void AppendJsonString(std::string_view s, std::string* dst);

}  // namespace micedb
