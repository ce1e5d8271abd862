// Byte-level coding of integers and strings for on-disk records and wire payloads.
//
// Fixed-width integers are little-endian. Varints are base-128, least significant group first,
// high bit set on every byte but the last (the format is written down in docs/encoding.md).
// These encodings do NOT sort like the values they hold; keys that must sort use
// common/memcomparable.h instead.
//
// Put* functions append to a caller-owned string. Get* functions read from the front of
// `*input` and, on success, advance it past what they consumed; on failure they return false
// and leave `*input` and the output untouched. Decoders never read past the end of `*input`.
// All functions are thread-compatible: they touch only their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace micedb {

inline constexpr size_t kMaxVarint32Bytes = 5;
inline constexpr size_t kMaxVarint64Bytes = 10;

// --- Fixed width, little-endian ---

// Writes exactly 4 (or 8) bytes at `dst`, which must have room for them.
void EncodeFixed32(char* dst, uint32_t value);
void EncodeFixed64(char* dst, uint64_t value);
// Reads exactly 4 (or 8) bytes at `src`, which must hold them.
uint32_t DecodeFixed32(const char* src);
uint64_t DecodeFixed64(const char* src);

void PutFixed32(std::string* dst, uint32_t value);
void PutFixed64(std::string* dst, uint64_t value);
// False when fewer than 4 (or 8) bytes remain.
[[nodiscard]] bool GetFixed32(std::string_view* input, uint32_t* value);
[[nodiscard]] bool GetFixed64(std::string_view* input, uint64_t* value);

// --- Varints ---

// Number of bytes the varint encoding of `value` takes (1..10).
size_t VarintLength(uint64_t value);

// Writes the encoding at `dst`, which must have room for kMaxVarint32Bytes (or
// kMaxVarint64Bytes); returns a pointer just past the last byte written.
char* EncodeVarint32(char* dst, uint32_t value);
char* EncodeVarint64(char* dst, uint64_t value);

void PutVarint32(std::string* dst, uint32_t value);
void PutVarint64(std::string* dst, uint64_t value);

// False on truncated input (the last byte read still has its continuation bit), on an
// encoding longer than the type allows or whose value does not fit the type, and on a
// non-minimal encoding (a trailing 0x00 group, e.g. 0x80 0x00 for zero). Every value thus has
// exactly one accepted encoding.
[[nodiscard]] bool GetVarint32(std::string_view* input, uint32_t* value);
[[nodiscard]] bool GetVarint64(std::string_view* input, uint64_t* value);

// Signed values for varints: ZigZag maps 0, -1, 1, -2, ... to 0, 1, 2, 3, ... so that small
// magnitudes stay short.
constexpr uint64_t ZigZagEncode64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t ZigZagDecode64(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
void PutVarsint64(std::string* dst, int64_t value);
[[nodiscard]] bool GetVarsint64(std::string_view* input, int64_t* value);

// --- Length-prefixed byte strings: varint32 length, then the bytes ---

// `value` must be shorter than 2^32 bytes.
void PutLengthPrefixedSlice(std::string* dst, std::string_view value);
// On success `*result` points into the original buffer of `*input` (no copy): it stays valid
// only as long as that buffer does. False when the length prefix is malformed or announces
// more bytes than remain.
[[nodiscard]] bool GetLengthPrefixedSlice(std::string_view* input, std::string_view* result);

}  // namespace micedb
