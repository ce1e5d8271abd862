// Strict decimal integers, as Redis reads them from arguments and stored values: an optional
// '-' then digits, no sign '+', no spaces, no leading zeros ("0" itself is fine, "-0" is not),
// within the range of the type. Anything else is "not an integer". Thread-compatible.
#pragma once

#include <cstdint>
#include <string_view>

namespace micedb::kv {

// True and *value set when `s` is a canonical int64; false (value untouched) otherwise.
[[nodiscard]] bool ParseInt64(std::string_view s, int64_t* value);

// Same rules without a sign.
[[nodiscard]] bool ParseUint64(std::string_view s, uint64_t* value);

}  // namespace micedb::kv
