#include "frontend/resp/resp_writer.h"

#include <cmath>

#include <fmt/format.h>

namespace micedb::resp {

void RespWriter::Line(char type, std::string_view text) {
  out_->push_back(type);
  const size_t start = out_->size();
  out_->append(text);
  for (size_t i = start; i < out_->size(); ++i) {
    char& c = (*out_)[i];
    if (c == '\r' || c == '\n') c = ' ';
  }
  out_->append("\r\n");
}

void RespWriter::Header(char type, size_t n) {
  fmt::format_to(std::back_inserter(*out_), "{}{}\r\n", type, n);
}

void RespWriter::SimpleString(std::string_view text) { Line('+', text); }

void RespWriter::Error(std::string_view text) { Line('-', text); }

void RespWriter::Integer(int64_t value) {
  fmt::format_to(std::back_inserter(*out_), ":{}\r\n", value);
}

void RespWriter::Bulk(std::string_view data) {
  Header('$', data.size());
  out_->append(data);
  out_->append("\r\n");
}

void RespWriter::Null() { out_->append(version_ == RespVersion::kResp3 ? "_\r\n" : "$-1\r\n"); }

void RespWriter::NullArray() {
  out_->append(version_ == RespVersion::kResp3 ? "_\r\n" : "*-1\r\n");
}

void RespWriter::ArrayHeader(size_t n) { Header('*', n); }

void RespWriter::MapHeader(size_t pairs) {
  if (version_ == RespVersion::kResp3) {
    Header('%', pairs);
  } else {
    Header('*', pairs * 2);
  }
}

void RespWriter::SetHeader(size_t n) { Header(version_ == RespVersion::kResp3 ? '~' : '*', n); }

void RespWriter::Double(double value) {
  std::string text;
  if (std::isnan(value)) {
    text = "nan";
  } else if (std::isinf(value)) {
    text = value > 0 ? "inf" : "-inf";
  } else {
    text = fmt::format("{:.17g}", value);
  }
  if (version_ == RespVersion::kResp3) {
    Line(',', text);
  } else {
    Bulk(text);
  }
}

void RespWriter::Bool(bool value) {
  if (version_ == RespVersion::kResp3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    Integer(value ? 1 : 0);
  }
}

void RespWriter::Verbatim(std::string_view format, std::string_view text) {
  if (version_ == RespVersion::kResp3) {
    Header('=', format.size() + 1 + text.size());
    out_->append(format);
    out_->push_back(':');
    out_->append(text);
    out_->append("\r\n");
  } else {
    Bulk(text);
  }
}

}  // namespace micedb::resp
