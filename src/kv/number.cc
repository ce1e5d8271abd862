#include "kv/number.h"

#include <limits>

namespace micedb::kv {

bool ParseUint64(std::string_view s, uint64_t* value) {
  if (s.empty() || s.size() > 20) return false;
  if (s[0] == '0') {
    if (s.size() != 1) return false;
    *value = 0;
    return true;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *value = v;
  return true;
}

bool ParseInt64(std::string_view s, int64_t* value) {
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  uint64_t magnitude = 0;
  if (!ParseUint64(s, &magnitude)) return false;
  if (negative) {
    if (magnitude == 0) return false;  // "-0" is not canonical
    constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;
    if (magnitude > kMinMagnitude) return false;
    *value = magnitude == kMinMagnitude ? std::numeric_limits<int64_t>::min()
                                        : -static_cast<int64_t>(magnitude);
    return true;
  }
  if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *value = static_cast<int64_t>(magnitude);
  return true;
}

}  // namespace micedb::kv
