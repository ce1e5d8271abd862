#include "frontend/resp/resp_parser.h"

#include <algorithm>
#include <cstdint>

#include "kv/number.h"

namespace micedb::resp {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads a double-quoted word starting just after the opening quote at line[*i]. On success
// *i is just past the closing quote.
bool ReadDoubleQuoted(std::string_view line, size_t* i, std::string* out) {
  while (*i < line.size()) {
    const char c = line[*i];
    if (c == '"') {
      ++*i;
      return true;
    }
    if (c == '\\' && *i + 1 < line.size()) {
      const char e = line[*i + 1];
      if (e == 'x' && *i + 3 < line.size() && HexValue(line[*i + 2]) >= 0 &&
          HexValue(line[*i + 3]) >= 0) {
        out->push_back(static_cast<char>(HexValue(line[*i + 2]) * 16 + HexValue(line[*i + 3])));
        *i += 4;
        continue;
      }
      switch (e) {
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'a':
          out->push_back('\a');
          break;
        default:
          out->push_back(e);
          break;
      }
      *i += 2;
      continue;
    }
    out->push_back(c);
    ++*i;
  }
  return false;  // no closing quote
}

bool ReadSingleQuoted(std::string_view line, size_t* i, std::string* out) {
  while (*i < line.size()) {
    const char c = line[*i];
    if (c == '\'') {
      ++*i;
      return true;
    }
    if (c == '\\' && *i + 1 < line.size() && line[*i + 1] == '\'') {
      out->push_back('\'');
      *i += 2;
      continue;
    }
    out->push_back(c);
    ++*i;
  }
  return false;
}

}  // namespace

bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args) {
  args->clear();
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size()) return true;
    std::string word;
    // A word is a run of plain characters and quoted sections; a quoted section must be
    // followed by a space or the end of the line.
    while (i < line.size() && !IsSpace(line[i])) {
      const char c = line[i];
      if (c == '"' || c == '\'') {
        ++i;
        const bool closed =
            c == '"' ? ReadDoubleQuoted(line, &i, &word) : ReadSingleQuoted(line, &i, &word);
        if (!closed) return false;
        if (i < line.size() && !IsSpace(line[i])) return false;
        break;
      }
      word.push_back(c);
      ++i;
    }
    args->push_back(std::move(word));
  }
}

RespParser::RespParser(RespParserLimits limits) : limits_(limits) {}

void RespParser::Feed(std::string_view data) {
  if (failed_) return;
  Compact();
  buf_.append(data);
}

void RespParser::Compact() {
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

bool RespParser::InRequest() const { return state_ != State::kStart || pos_ < buf_.size(); }

size_t RespParser::buffered_bytes() const {
  size_t partial = 0;
  for (const std::string& a : pending_) partial += a.size();
  return buf_.size() - pos_ + partial;
}

size_t RespParser::MaxBulk() const {
  return authenticated_ ? limits_.max_bulk_bytes : limits_.unauthenticated_max_bulk_bytes;
}

size_t RespParser::MaxMultibulk() const {
  return authenticated_ ? limits_.max_multibulk_len : limits_.unauthenticated_max_multibulk_len;
}

RespParser::Outcome RespParser::Fail(std::string message) {
  failed_ = true;
  error_ = std::move(message);
  buf_.clear();
  pos_ = 0;
  pending_.clear();
  return Outcome::kError;
}

size_t RespParser::FindLineEnd() const {
  const size_t cr = buf_.find('\r', pos_);
  if (cr == std::string::npos || cr + 1 >= buf_.size()) return std::string::npos;
  return cr;
}

RespParser::Outcome RespParser::Next(std::vector<std::string>* args) {
  if (failed_) return Outcome::kError;
  while (true) {
    const size_t pos_before = pos_;
    const State state_before = state_;
    Outcome out = Outcome::kNeedMore;
    switch (state_) {
      case State::kStart:
        if (pos_ == buf_.size()) return Outcome::kNeedMore;
        out = buf_[pos_] == '*' ? ParseMultibulkHeader() : ParseInline(args);
        break;
      case State::kBulkHeader:
        out = ParseBulkHeader();
        break;
      case State::kBulkBody:
        out = ParseBulkBody();
        if (out == Outcome::kCommand) {
          args->swap(pending_);
          pending_.clear();
        }
        break;
    }
    if (out != Outcome::kNeedMore) return out;
    // Keep going while a step consumed something (a header, an empty command, part of a
    // bulk); stop when the buffer holds nothing more to act on.
    if (pos_ == pos_before && state_ == state_before) {
      Compact();
      return out;
    }
  }
}

RespParser::Outcome RespParser::ParseInline(std::vector<std::string>* args) {
  const size_t nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) {
    if (buf_.size() - pos_ > limits_.max_inline_bytes) {
      return Fail("Protocol error: too big inline request");
    }
    return Outcome::kNeedMore;
  }
  if (nl - pos_ > limits_.max_inline_bytes) return Fail("Protocol error: too big inline request");
  std::string_view line(buf_.data() + pos_, nl - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string> words;
  if (!SplitInlineArgs(line, &words)) return Fail("Protocol error: unbalanced quotes in request");
  pos_ = nl + 1;
  if (words.empty()) return Outcome::kNeedMore;  // blank line: nothing to run
  if (words.size() > MaxMultibulk()) return Fail("Protocol error: invalid multibulk length");
  *args = std::move(words);
  return Outcome::kCommand;
}

RespParser::Outcome RespParser::ParseMultibulkHeader() {
  const size_t cr = FindLineEnd();
  if (cr == std::string::npos) {
    if (buf_.size() - pos_ > limits_.max_inline_bytes) {
      return Fail("Protocol error: too big mbulk count string");
    }
    return Outcome::kNeedMore;
  }
  if (cr - pos_ > limits_.max_inline_bytes) {
    return Fail("Protocol error: too big mbulk count string");
  }
  if (buf_[cr + 1] != '\n') return Fail("Protocol error: expected CRLF after multibulk length");
  int64_t n = 0;
  if (!kv::ParseInt64(std::string_view(buf_.data() + pos_ + 1, cr - pos_ - 1), &n) ||
      (n > 0 && static_cast<uint64_t>(n) > MaxMultibulk())) {
    return Fail(authenticated_ ? "Protocol error: invalid multibulk length"
                               : "Protocol error: unauthenticated multibulk length");
  }
  pos_ = cr + 2;
  if (n <= 0) return Outcome::kNeedMore;  // "*0" and "*-1" are empty commands
  pending_.clear();
  pending_.reserve(std::min<size_t>(static_cast<size_t>(n), 1024));
  args_left_ = static_cast<size_t>(n);
  request_bytes_ = 0;
  state_ = State::kBulkHeader;
  return Outcome::kNeedMore;
}

RespParser::Outcome RespParser::ParseBulkHeader() {
  if (pos_ == buf_.size()) return Outcome::kNeedMore;
  if (buf_[pos_] != '$') {
    return Fail(std::string("Protocol error: expected '$', got '") + buf_[pos_] + "'");
  }
  const size_t cr = FindLineEnd();
  if (cr == std::string::npos) {
    if (buf_.size() - pos_ > limits_.max_inline_bytes) {
      return Fail("Protocol error: too big bulk count string");
    }
    return Outcome::kNeedMore;
  }
  if (cr - pos_ > limits_.max_inline_bytes) {
    return Fail("Protocol error: too big bulk count string");
  }
  if (buf_[cr + 1] != '\n') return Fail("Protocol error: expected CRLF after bulk length");
  int64_t len = 0;
  if (!kv::ParseInt64(std::string_view(buf_.data() + pos_ + 1, cr - pos_ - 1), &len) || len < 0 ||
      static_cast<uint64_t>(len) > MaxBulk()) {
    return Fail(authenticated_ ? "Protocol error: invalid bulk length"
                               : "Protocol error: unauthenticated bulk length");
  }
  request_bytes_ += static_cast<size_t>(len);
  if (request_bytes_ > limits_.max_request_bytes) {
    return Fail("Protocol error: request too large");
  }
  pos_ = cr + 2;
  bulk_len_ = static_cast<size_t>(len);
  pending_.emplace_back();
  pending_.back().reserve(bulk_len_);
  state_ = State::kBulkBody;
  return Outcome::kNeedMore;
}

RespParser::Outcome RespParser::ParseBulkBody() {
  std::string& arg = pending_.back();
  if (arg.size() < bulk_len_) {
    const size_t take = std::min(bulk_len_ - arg.size(), buf_.size() - pos_);
    arg.append(buf_, pos_, take);
    pos_ += take;
    if (arg.size() < bulk_len_) return Outcome::kNeedMore;
  }
  if (buf_.size() - pos_ < 2) return Outcome::kNeedMore;
  if (buf_[pos_] != '\r' || buf_[pos_ + 1] != '\n') {
    return Fail("Protocol error: expected CRLF after bulk data");
  }
  pos_ += 2;
  if (--args_left_ > 0) {
    state_ = State::kBulkHeader;
    return Outcome::kNeedMore;
  }
  state_ = State::kStart;
  return Outcome::kCommand;
}

}  // namespace micedb::resp
