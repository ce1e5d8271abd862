// The stored form of raw key-value data (docs/kv-format.md). A user key K lives in column
// family kDefault under "r" + K; its value is a small header followed by the user's bytes:
//
//   version    1 byte   kValueFormatVersion (1)
//   flags      1 byte   low 4 bits: value type (0 = string); high 4 bits reserved, zero
//   expire_at  varint64 absolute Unix time in ms, 0 = never
//   revision   varint64 raft log index of the last write to the key (its mod revision)
//   value      the rest
//
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace micedb::kv {

inline constexpr char kRawKeyPrefix = 'r';
inline constexpr uint8_t kValueFormatVersion = 1;

enum class ValueType : uint8_t { kString = 0 };

// "r" + user_key.
std::string EncodeRawKey(std::string_view user_key);
// The storage key range for user keys [start, end); an empty `end` means the end of the
// raw keyspace ("s", the prefix after 'r').
std::string RawKeyRangeEnd(std::string_view user_end);
// The user key of a storage key from the raw keyspace. Requires the 'r' prefix.
std::string_view DecodeRawKey(std::string_view storage_key);

struct StoredValue {
  ValueType type = ValueType::kString;
  int64_t expire_at_ms = 0;  // 0: no expiry
  uint64_t revision = 0;
  std::string_view value;  // points into the decoded buffer

  bool HasExpiry() const { return expire_at_ms != 0; }
  // Expired at `now_ms`: an expiry at or before now.
  bool ExpiredAt(int64_t now_ms) const { return expire_at_ms != 0 && expire_at_ms <= now_ms; }
};

std::string EncodeValue(ValueType type, int64_t expire_at_ms, uint64_t revision,
                        std::string_view value);

// Decodes `stored` into *out (whose value views `stored`). Corruption on a truncated header,
// an unknown version, reserved flag bits, an unknown type or a negative expiry.
Status DecodeValue(std::string_view stored, StoredValue* out);

}  // namespace micedb::kv
