// RespWriter: encodes replies in RESP2 or RESP3 (chosen per connection by HELLO). Types that
// RESP2 lacks are sent as their RESP2 equivalents, the way Redis does it:
//   null          RESP3 "_"      RESP2 "$-1" (null bulk); NullArray: RESP2 "*-1"
//   map           RESP3 "%n"     RESP2 an array of 2n elements (key, value, key, value...)
//   set           RESP3 "~n"     RESP2 an array
//   double        RESP3 ","      RESP2 a bulk string
//   boolean       RESP3 "#t/#f"  RESP2 the integer 1 or 0
//   verbatim      RESP3 "="      RESP2 a bulk string
// Aggregates are written as a header followed by their elements; the caller writes exactly
// the announced number of elements. Appends to a caller-owned string; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace micedb::resp {

enum class RespVersion { kResp2 = 2, kResp3 = 3 };

class RespWriter {
 public:
  // Appends to *out, which must outlive the writer.
  RespWriter(std::string* out, RespVersion version) : out_(out), version_(version) {}

  RespVersion version() const { return version_; }
  std::string* out() const { return out_; }

  // "+text". Carriage returns and newlines in `text` become spaces.
  void SimpleString(std::string_view text);
  void Ok() { SimpleString("OK"); }
  // "-text"; `text` starts with the error code ("ERR ...", "WRONGTYPE ..."). Carriage returns
  // and newlines become spaces.
  void Error(std::string_view text);
  void Integer(int64_t value);
  void Bulk(std::string_view data);
  void Null();
  void NullArray();
  void ArrayHeader(size_t n);
  void MapHeader(size_t pairs);
  void SetHeader(size_t n);
  void Double(double value);
  void Bool(bool value);
  // `format` is three characters, e.g. "txt".
  void Verbatim(std::string_view format, std::string_view text);

  // Appends bytes that are already RESP-encoded (with the same version).
  void Raw(std::string_view encoded) { out_->append(encoded); }

 private:
  void Line(char type, std::string_view text);
  void Header(char type, size_t n);

  std::string* out_;
  RespVersion version_;
};

}  // namespace micedb::resp
