#include "common/log_formatters.h"

#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace micedb {

namespace {

// RFC 3339 UTC with microseconds: 2024-05-01T12:00:00.123456Z
void AppendTimestamp(std::chrono::system_clock::time_point t, std::string* dst) {
  const auto us = std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  int64_t frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(*dst), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 frac);
}

// Our own names rather than spdlog's, so that the text and JSON formats agree and "warn"
// matches what ParseLogLevel accepts.
std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

std::string_view LevelTag(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "TRACE";
    case spdlog::level::debug:
      return "DEBUG";
    case spdlog::level::info:
      return "INFO ";
    case spdlog::level::warn:
      return "WARN ";
    case spdlog::level::err:
      return "ERROR";
    case spdlog::level::critical:
      return "CRIT ";
    default:
      return "OFF  ";
  }
}

std::string_view ToView(spdlog::string_view_t s) { return {s.data(), s.size()}; }

void Emit(const std::string& line, spdlog::memory_buf_t& dest) {
  dest.append(line.data(), line.data() + line.size());
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if there is none (bad lead byte,
// missing or bad continuation byte, overlong form, surrogate, or beyond U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  size_t len = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;  // allowed range of the second byte
  if (b0 < 0x80) {
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) {
      lo = 0xA0;  // overlong
    }
    if (b0 == 0xED) {
      hi = 0x9F;  // UTF-16 surrogates
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) {
      lo = 0x90;  // overlong
    }
    if (b0 == 0xF4) {
      hi = 0x8F;  // above U+10FFFF
    }
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  const auto b1 = static_cast<uint8_t>(s[i + 1]);
  if (b1 < lo || b1 > hi) {
    return 0;
  }
  for (size_t k = 2; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if (b < 0x80 || b > 0xBF) {
      return 0;
    }
  }
  return len;
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* dst) {
  dst->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == '"' || c == '\\') {
      dst->push_back('\\');
      dst->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n':
          dst->append("\\n");
          break;
        case '\r':
          dst->append("\\r");
          break;
        case '\t':
          dst->append("\\t");
          break;
        default:
          fmt::format_to(std::back_inserter(*dst), "\\u{:04x}", c);
      }
      ++i;
    } else if (c < 0x80) {
      dst->push_back(static_cast<char>(c));
      ++i;
    } else if (size_t len = Utf8SequenceLength(s, i); len > 0) {
      dst->append(s.substr(i, len));
      i += len;
    } else {
      dst->append("\\ufffd");
      ++i;
    }
  }
  dst->push_back('"');
}

void TextLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string line;
  line.reserve(64 + msg.payload.size());
  AppendTimestamp(msg.time, &line);
  line.push_back(' ');
  line.append(LevelTag(msg.level));
  line.push_back(' ');
  line.append(ToView(msg.logger_name));
  line.append(": ");
  // A message with line breaks still takes one line, so that the log stays one event per line.
  for (char c : ToView(msg.payload)) {
    if (c == '\n') {
      line.append("\\n");
    } else if (c == '\r') {
      line.append("\\r");
    } else {
      line.push_back(c);
    }
  }
  line.push_back('\n');
  Emit(line, dest);
}

std::unique_ptr<spdlog::formatter> TextLogFormatter::clone() const {
  return std::make_unique<TextLogFormatter>();
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  std::string line;
  line.reserve(96 + msg.payload.size());
  line.append("{\"ts\":\"");
  AppendTimestamp(msg.time, &line);
  line.append("\",\"level\":\"");
  line.append(LevelName(msg.level));
  line.append("\",\"module\":");
  AppendJsonString(ToView(msg.logger_name), &line);
  line.append(",\"msg\":");
  AppendJsonString(ToView(msg.payload), &line);
  line.append("}\n");
  Emit(line, dest);
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace micedb
