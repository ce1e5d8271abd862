// MVCC keys and records of the transactional keyspace (docs/transactions.md §1).
//
//   lock    E(K)                 -> Lock
//   default E(K) + desc(start_ts) -> value (when too long to inline)
//   write   E(K) + desc(commit_ts) -> Write
//
// E(K) = 't' + memcomparable bytes of K: never a prefix of another E(K'), so a key's versions
// stay together, newest first (desc(ts) is big-endian ~ts).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace micedb::txn {

// The first byte of every transactional engine key (DESIGN §2), and a bound above them all.
inline constexpr char kTxnPrefix = 't';
inline constexpr std::string_view kTxnKeysEnd = "u";
// Values up to this many bytes are inlined in the lock and the write record.
inline constexpr size_t kShortValueMax = 255;

// Timestamps are the coordinator's: physical milliseconds << 18 | logical.
inline constexpr int kLogicalBits = 18;
inline constexpr uint64_t PhysicalMs(uint64_t ts) { return ts >> kLogicalBits; }
inline constexpr uint64_t ComposeTs(uint64_t physical_ms, uint64_t logical = 0) {
  return (physical_ms << kLogicalBits) | logical;
}

// E(K).
std::string EncodeKey(std::string_view user_key);
// K from E(K); InvalidArgument when `encoded` is not one.
Result<std::string> DecodeKey(std::string_view encoded);
// E(K) + desc(ts).
std::string KeyWithTs(std::string_view encoded_key, uint64_t ts);
// Splits E(K) + desc(ts); false when `key` is too short to hold a timestamp.
bool SplitTs(std::string_view key, std::string_view* encoded_key, uint64_t* ts);

enum class LockKind : uint8_t { kPut = 1, kDelete = 2, kLock = 3 };

struct Lock {
  LockKind kind = LockKind::kPut;
  std::string primary;  // the primary's user key
  uint64_t start_ts = 0;
  uint64_t ttl_ms = 0;
  uint64_t txn_size = 0;       // keys in the transaction (set on the primary)
  uint64_t min_commit_ts = 0;  // async commit (§3b): the least commit_ts it may get
  std::optional<std::string> short_value;
  // Async commit (§3b): the transaction is committed once every one of its locks is written;
  // the primary's lock lists the other keys (user keys), for the readers that must find out.
  bool use_async_commit = false;
  std::vector<std::string> secondaries;

  std::string Encode() const;
  static Result<Lock> Decode(std::string_view data);
  bool operator==(const Lock&) const = default;
};

enum class WriteKind : uint8_t { kPut = 1, kDelete = 2, kLock = 3, kRollback = 4 };

struct Write {
  WriteKind kind = WriteKind::kPut;
  uint64_t start_ts = 0;
  std::optional<std::string> short_value;
  // A rollback that GC keeps until the safe point passes start_ts, so that a prewrite
  // arriving late always finds it (the primary's).
  bool protected_rollback = false;
  // A commit record (of another transaction) standing where a rollback of the transaction
  // that started at its commit_ts would go: it stands for that rollback too (§3b).
  bool overlapped_rollback = false;

  std::string Encode() const;
  static Result<Write> Decode(std::string_view data);
  bool operator==(const Write&) const = default;
};

// The lock TTL for a transaction of `keys` keys (docs/transactions.md §4): grows with its
// size, as TiKV's does.
uint64_t DefaultTtlMs(uint64_t keys);

}  // namespace micedb::txn
