#include "common/memcomparable.h"

#include <bit>
#include <cmath>
#include <utility>

namespace micedb::memcomparable {

namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;
// The one NaN the encoder emits: the default quiet NaN, positive.
constexpr uint64_t kCanonicalNanBits = 0x7ff8000000000000ULL;
constexpr uint8_t kEscape = 0x00;
constexpr uint8_t kEscapedZero = 0xFF;
constexpr uint8_t kTerminator = 0x01;

// All descending forms are the ascending bytes inverted; `mask` is 0x00 for ascending and 0xFF
// for descending, XORed into every byte on the way in and out.
constexpr uint8_t kAsc = 0x00;
constexpr uint8_t kDesc = 0xFF;

void AppendBigEndian(std::string* dst, uint64_t v, uint8_t mask) {
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    buf[i] = static_cast<char>(static_cast<uint8_t>(v >> (56 - 8 * i)) ^ mask);
  }
  dst->append(buf, sizeof(buf));
}

Status ReadBigEndian(std::string_view* input, uint8_t mask, uint64_t* v) {
  if (input->size() < 8) {
    return Status::Corruption("memcomparable: truncated 8-byte value");
  }
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) {
    r = (r << 8) | (static_cast<uint8_t>((*input)[i]) ^ mask);
  }
  *v = r;
  input->remove_prefix(8);
  return Status::OK();
}

uint64_t DoubleToOrderedBits(double value) {
  if (value == 0) {
    value = 0.0;  // folds -0.0 into +0.0
  }
  uint64_t bits = std::isnan(value) ? kCanonicalNanBits : std::bit_cast<uint64_t>(value);
  // Positive numbers: set the sign bit so they sort above all negatives. Negative numbers:
  // invert everything so that larger magnitudes sort lower.
  return (bits & kSignBit) ? ~bits : (bits | kSignBit);
}

Status OrderedBitsToDouble(uint64_t ordered, double* value) {
  const uint64_t bits = (ordered & kSignBit) ? (ordered & ~kSignBit) : ~ordered;
  const double d = std::bit_cast<double>(bits);
  // Reject the bit patterns the encoder never produces, so each value has one encoding.
  if (bits == kSignBit) {
    return Status::Corruption("memcomparable: negative zero");
  }
  if (std::isnan(d) && bits != kCanonicalNanBits) {
    return Status::Corruption("memcomparable: non-canonical NaN");
  }
  *value = d;
  return Status::OK();
}

Status DecodeDoubleMasked(std::string_view* input, uint8_t mask, double* value) {
  std::string_view rest = *input;
  uint64_t ordered = 0;
  MICEDB_RETURN_IF_ERROR(ReadBigEndian(&rest, mask, &ordered));
  MICEDB_RETURN_IF_ERROR(OrderedBitsToDouble(ordered, value));
  *input = rest;
  return Status::OK();
}

void AppendEscaped(std::string* dst, std::string_view value, uint8_t mask) {
  for (char c : value) {
    const auto b = static_cast<uint8_t>(c);
    dst->push_back(static_cast<char>(b ^ mask));
    if (b == kEscape) {
      dst->push_back(static_cast<char>(kEscapedZero ^ mask));
    }
  }
  dst->push_back(static_cast<char>(kEscape ^ mask));
  dst->push_back(static_cast<char>(kTerminator ^ mask));
}

Status ReadEscaped(std::string_view* input, uint8_t mask, std::string* value) {
  std::string out;
  size_t i = 0;
  const size_t n = input->size();
  while (i < n) {
    const uint8_t b = static_cast<uint8_t>((*input)[i]) ^ mask;
    if (b != kEscape) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    if (i + 1 >= n) {
      break;
    }
    const uint8_t next = static_cast<uint8_t>((*input)[i + 1]) ^ mask;
    if (next == kTerminator) {
      *value = std::move(out);
      input->remove_prefix(i + 2);
      return Status::OK();
    }
    if (next != kEscapedZero) {
      return Status::Corruption("memcomparable: bad escape sequence in byte string");
    }
    out.push_back(static_cast<char>(0));
    i += 2;
  }
  return Status::Corruption("memcomparable: unterminated byte string");
}

}  // namespace

void AppendUint64(std::string* dst, uint64_t value) { AppendBigEndian(dst, value, kAsc); }
void AppendUint64Desc(std::string* dst, uint64_t value) { AppendBigEndian(dst, value, kDesc); }
Status DecodeUint64(std::string_view* input, uint64_t* value) {
  return ReadBigEndian(input, kAsc, value);
}
Status DecodeUint64Desc(std::string_view* input, uint64_t* value) {
  return ReadBigEndian(input, kDesc, value);
}

void AppendInt64(std::string* dst, int64_t value) {
  AppendBigEndian(dst, static_cast<uint64_t>(value) ^ kSignBit, kAsc);
}
void AppendInt64Desc(std::string* dst, int64_t value) {
  AppendBigEndian(dst, static_cast<uint64_t>(value) ^ kSignBit, kDesc);
}

Status DecodeInt64(std::string_view* input, int64_t* value) {
  uint64_t u = 0;
  MICEDB_RETURN_IF_ERROR(ReadBigEndian(input, kAsc, &u));
  *value = static_cast<int64_t>(u ^ kSignBit);
  return Status::OK();
}
Status DecodeInt64Desc(std::string_view* input, int64_t* value) {
  uint64_t u = 0;
  MICEDB_RETURN_IF_ERROR(ReadBigEndian(input, kDesc, &u));
  *value = static_cast<int64_t>(u ^ kSignBit);
  return Status::OK();
}

void AppendDouble(std::string* dst, double value) {
  AppendBigEndian(dst, DoubleToOrderedBits(value), kAsc);
}
void AppendDoubleDesc(std::string* dst, double value) {
  AppendBigEndian(dst, DoubleToOrderedBits(value), kDesc);
}

Status DecodeDouble(std::string_view* input, double* value) {
  return DecodeDoubleMasked(input, kAsc, value);
}
Status DecodeDoubleDesc(std::string_view* input, double* value) {
  return DecodeDoubleMasked(input, kDesc, value);
}

void AppendBytes(std::string* dst, std::string_view value) { AppendEscaped(dst, value, kAsc); }
void AppendBytesDesc(std::string* dst, std::string_view value) { AppendEscaped(dst, value, kDesc); }
Status DecodeBytes(std::string_view* input, std::string* value) {
  return ReadEscaped(input, kAsc, value);
}
Status DecodeBytesDesc(std::string_view* input, std::string* value) {
  return ReadEscaped(input, kDesc, value);
}

}  // namespace micedb::memcomparable
