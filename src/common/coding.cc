#include "common/coding.h"

#include <cassert>

namespace micedb {

void EncodeFixed32(char* dst, uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    dst[i] = static_cast<char>(value >> (8 * i));
  }
}

void EncodeFixed64(char* dst, uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    dst[i] = static_cast<char>(value >> (8 * i));
  }
}

uint32_t DecodeFixed32(const char* src) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<uint8_t>(src[i])) << (8 * i);
  }
  return v;
}

uint64_t DecodeFixed64(const char* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(src[i])) << (8 * i);
  }
  return v;
}

void PutFixed32(std::string* dst, uint32_t value) {
  char buf[4];
  EncodeFixed32(buf, value);
  dst->append(buf, sizeof(buf));
}

void PutFixed64(std::string* dst, uint64_t value) {
  char buf[8];
  EncodeFixed64(buf, value);
  dst->append(buf, sizeof(buf));
}

bool GetFixed32(std::string_view* input, uint32_t* value) {
  if (input->size() < 4) {
    return false;
  }
  *value = DecodeFixed32(input->data());
  input->remove_prefix(4);
  return true;
}

bool GetFixed64(std::string_view* input, uint64_t* value) {
  if (input->size() < 8) {
    return false;
  }
  *value = DecodeFixed64(input->data());
  input->remove_prefix(8);
  return true;
}

size_t VarintLength(uint64_t value) {
  size_t len = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++len;
  }
  return len;
}

char* EncodeVarint64(char* dst, uint64_t value) {
  while (value >= 0x80) {
    *dst++ = static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  *dst++ = static_cast<char>(value);
  return dst;
}

char* EncodeVarint32(char* dst, uint32_t value) { return EncodeVarint64(dst, value); }

void PutVarint32(std::string* dst, uint32_t value) {
  char buf[kMaxVarint32Bytes];
  char* end = EncodeVarint32(buf, value);
  dst->append(buf, static_cast<size_t>(end - buf));
}

void PutVarint64(std::string* dst, uint64_t value) {
  char buf[kMaxVarint64Bytes];
  char* end = EncodeVarint64(buf, value);
  dst->append(buf, static_cast<size_t>(end - buf));
}

namespace {

// Shared decoder: accepts at most `max_bytes` bytes and values not above `max_value`, and
// rejects non-minimal encodings.
bool GetVarint(std::string_view* input, size_t max_bytes, uint64_t max_value, uint64_t* value) {
  uint64_t result = 0;
  const size_t limit = input->size() < max_bytes ? input->size() : max_bytes;
  for (size_t i = 0; i < limit; ++i) {
    const uint64_t byte = static_cast<uint8_t>((*input)[i]);
    const unsigned shift = static_cast<unsigned>(7 * i);
    const uint64_t group = byte & 0x7f;
    // Bits that would be shifted out of 64 bits mean the value does not fit.
    if (shift > 0 && (group >> (64 - shift)) != 0) {
      return false;
    }
    result |= group << shift;
    if ((byte & 0x80) == 0) {
      // A last group of zero (other than a lone zero byte) could have been left out.
      if (i > 0 && byte == 0) {
        return false;
      }
      if (result > max_value) {
        return false;
      }
      *value = result;
      input->remove_prefix(i + 1);
      return true;
    }
  }
  return false;  // truncated, or longer than max_bytes
}

}  // namespace

bool GetVarint32(std::string_view* input, uint32_t* value) {
  uint64_t v = 0;
  if (!GetVarint(input, kMaxVarint32Bytes, UINT32_MAX, &v)) {
    return false;
  }
  *value = static_cast<uint32_t>(v);
  return true;
}

bool GetVarint64(std::string_view* input, uint64_t* value) {
  return GetVarint(input, kMaxVarint64Bytes, UINT64_MAX, value);
}

void PutVarsint64(std::string* dst, int64_t value) { PutVarint64(dst, ZigZagEncode64(value)); }

bool GetVarsint64(std::string_view* input, int64_t* value) {
  uint64_t v = 0;
  if (!GetVarint64(input, &v)) {
    return false;
  }
  *value = ZigZagDecode64(v);
  return true;
}

void PutLengthPrefixedSlice(std::string* dst, std::string_view value) {
  assert(value.size() <= UINT32_MAX);
  PutVarint32(dst, static_cast<uint32_t>(value.size()));
  dst->append(value);
}

bool GetLengthPrefixedSlice(std::string_view* input, std::string_view* result) {
  std::string_view rest = *input;
  uint32_t len = 0;
  if (!GetVarint32(&rest, &len) || rest.size() < len) {
    return false;
  }
  *result = rest.substr(0, len);
  rest.remove_prefix(len);
  *input = rest;
  return true;
}

}  // namespace micedb
