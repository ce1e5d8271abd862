#include "kv/value_format.h"

#include "common/coding.h"

namespace micedb::kv {

std::string EncodeRawKey(std::string_view user_key) {
  std::string key;
  key.reserve(user_key.size() + 1);
  key.push_back(kRawKeyPrefix);
  key.append(user_key);
  return key;
}

std::string RawKeyRangeEnd(std::string_view user_end) {
  if (user_end.empty()) return std::string(1, static_cast<char>(kRawKeyPrefix + 1));
  return EncodeRawKey(user_end);
}

std::string_view DecodeRawKey(std::string_view storage_key) { return storage_key.substr(1); }

std::string EncodeValue(ValueType type, int64_t expire_at_ms, uint64_t revision,
                        std::string_view value) {
  std::string out;
  out.reserve(2 + 2 * kMaxVarint64Bytes + value.size());
  out.push_back(static_cast<char>(kValueFormatVersion));
  out.push_back(static_cast<char>(type));
  PutVarint64(&out, static_cast<uint64_t>(expire_at_ms));
  PutVarint64(&out, revision);
  out.append(value);
  return out;
}

Status DecodeValue(std::string_view stored, StoredValue* out) {
  if (stored.size() < 2) return Status::Corruption("kv value: truncated header");
  if (static_cast<uint8_t>(stored[0]) != kValueFormatVersion) {
    return Status::Corruption("kv value: unknown format version");
  }
  const auto flags = static_cast<uint8_t>(stored[1]);
  if (flags != static_cast<uint8_t>(ValueType::kString)) {
    return Status::Corruption("kv value: unknown type or flags");
  }
  stored.remove_prefix(2);
  uint64_t expire = 0;
  uint64_t revision = 0;
  if (!GetVarint64(&stored, &expire) || !GetVarint64(&stored, &revision)) {
    return Status::Corruption("kv value: bad header varint");
  }
  if (static_cast<int64_t>(expire) < 0) return Status::Corruption("kv value: negative expiry");
  out->type = ValueType::kString;
  out->expire_at_ms = static_cast<int64_t>(expire);
  out->revision = revision;
  out->value = stored;
  return Status::OK();
}

}  // namespace micedb::kv
