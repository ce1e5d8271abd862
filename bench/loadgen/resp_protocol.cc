#include "resp_protocol.h"

#include <charconv>
#include <cstdint>

namespace micedb::bench {

namespace {

void AppendNumberLine(std::string& out, char type, size_t n) {
  char buf[24];
  buf[0] = type;
  auto r = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// Reads "<number>\r\n" from `in` at `*pos`; advances past the CRLF.
ParseResult ReadLine(std::string_view in, size_t* pos, std::string_view* line) {
  const size_t eol = in.find("\r\n", *pos);
  if (eol == std::string_view::npos) {
    return ParseResult::kIncomplete;
  }
  *line = in.substr(*pos, eol - *pos);
  *pos = eol + 2;
  return ParseResult::kComplete;
}

bool ToInt(std::string_view s, int64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

constexpr int kMaxDepth = 64;

ParseResult ParseAt(std::string_view in, size_t* pos, Reply* reply, int depth) {
  if (depth > kMaxDepth) {
    return ParseResult::kBad;
  }
  if (*pos >= in.size()) {
    return ParseResult::kIncomplete;
  }
  const char type = in[*pos];
  ++*pos;
  std::string_view line;
  if (auto r = ReadLine(in, pos, &line); r != ParseResult::kComplete) {
    return r;
  }
  int64_t n = 0;
  switch (type) {
    case '+':
      *reply = {ReplyKind::kStatus, line};
      return ParseResult::kComplete;
    case '-':
      *reply = {ReplyKind::kError, line};
      return ParseResult::kComplete;
    case ':':
      if (!ToInt(line, &n)) {
        return ParseResult::kBad;
      }
      *reply = {ReplyKind::kInteger, line};
      return ParseResult::kComplete;
    case '_':
      *reply = {ReplyKind::kNil, {}};
      return ParseResult::kComplete;
    case ',':
    case '#':
    case '(':
      *reply = {ReplyKind::kOther, line};
      return ParseResult::kComplete;
    case '$':
    case '!':
    case '=': {
      if (!ToInt(line, &n) || n < -1) {
        return ParseResult::kBad;
      }
      if (n == -1) {
        *reply = {ReplyKind::kNil, {}};
        return ParseResult::kComplete;
      }
      const auto len = static_cast<size_t>(n);
      if (in.size() - *pos < len + 2) {
        return ParseResult::kIncomplete;
      }
      if (in[*pos + len] != '\r' || in[*pos + len + 1] != '\n') {
        return ParseResult::kBad;
      }
      const ReplyKind kind =
          type == '$' ? ReplyKind::kBulk : (type == '!' ? ReplyKind::kError : ReplyKind::kOther);
      *reply = {kind, in.substr(*pos, len)};
      *pos += len + 2;
      return ParseResult::kComplete;
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      if (!ToInt(line, &n) || n < -1) {
        return ParseResult::kBad;
      }
      if (n == -1) {
        *reply = {ReplyKind::kNil, {}};
        return ParseResult::kComplete;
      }
      const int64_t elems = type == '%' ? 2 * n : n;
      for (int64_t i = 0; i < elems; ++i) {
        Reply inner;
        if (auto r = ParseAt(in, pos, &inner, depth + 1); r != ParseResult::kComplete) {
          return r;
        }
      }
      *reply = {type == '*' ? ReplyKind::kArray : ReplyKind::kOther, {}};
      return ParseResult::kComplete;
    }
    default:
      return ParseResult::kBad;
  }
}

}  // namespace

void AppendArrayHeader(std::string& out, size_t n) { AppendNumberLine(out, '*', n); }

void AppendBulk(std::string& out, std::string_view arg) {
  AppendNumberLine(out, '$', arg.size());
  out.append(arg);
  out.append("\r\n", 2);
}

void AppendCommand(std::string& out, std::initializer_list<std::string_view> args) {
  AppendArrayHeader(out, args.size());
  for (auto a : args) {
    AppendBulk(out, a);
  }
}

ParseResult ParseReply(std::string_view in, size_t* consumed, Reply* reply) {
  size_t pos = 0;
  const ParseResult r = ParseAt(in, &pos, reply, 0);
  if (r == ParseResult::kComplete) {
    *consumed = pos;
  }
  return r;
}

}  // namespace micedb::bench
