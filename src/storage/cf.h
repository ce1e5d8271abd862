// Column families: the four independent key spaces of a store's engine (DESIGN §4).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace micedb::storage {

enum class Cf : uint8_t {
  kDefault = 0,  // raw key-value data and MVCC values
  kRaft = 1,     // raft log entries, hard state and apply state, keyed by region id
  kLock = 2,     // Percolator locks
  kWrite = 3,    // Percolator commit records
  kDedup = 4,    // results of recent writes by request id (at-most-once; docs/kv-format.md)
};

inline constexpr size_t kNumCfs = 5;
inline constexpr std::array<Cf, kNumCfs> kAllCfs = {Cf::kDefault, Cf::kRaft, Cf::kLock, Cf::kWrite,
                                                    Cf::kDedup};

// True when `cf` is one of the named values (an enum class can hold any uint8_t).
constexpr bool IsValidCf(Cf cf) { return static_cast<size_t>(cf) < kNumCfs; }

// Position of `cf` in kAllCfs. Requires IsValidCf(cf).
constexpr size_t CfIndex(Cf cf) { return static_cast<size_t>(cf); }

// The on-disk name: "default", "raft", "lock" or "write"; "invalid" for an out-of-range value.
std::string_view CfName(Cf cf);

// The family called `name`; false when there is none.
bool CfFromName(std::string_view name, Cf* cf);

}  // namespace micedb::storage
