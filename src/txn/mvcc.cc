#include "txn/mvcc.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/memcomparable.h"

namespace micedb::txn {

std::string EncodeKey(std::string_view user_key) {
  std::string out;
  out.reserve(user_key.size() + 3);
  out.push_back(kTxnPrefix);
  memcomparable::AppendBytes(&out, user_key);
  return out;
}

Result<std::string> DecodeKey(std::string_view encoded) {
  if (encoded.empty() || encoded.front() != kTxnPrefix) {
    return Status::InvalidArgument("not a transactional key (no 't' prefix)");
  }
  encoded.remove_prefix(1);
  std::string out;
  MICEDB_RETURN_IF_ERROR(memcomparable::DecodeBytes(&encoded, &out));
  if (!encoded.empty()) {
    return Status::InvalidArgument("transactional key has bytes after its end marker");
  }
  return out;
}

std::string KeyWithTs(std::string_view encoded_key, uint64_t ts) {
  std::string out;
  out.reserve(encoded_key.size() + 8);
  out.append(encoded_key);
  memcomparable::AppendUint64Desc(&out, ts);
  return out;
}

bool SplitTs(std::string_view key, std::string_view* encoded_key, uint64_t* ts) {
  if (key.size() < 9) return false;
  std::string_view suffix = key.substr(key.size() - 8);
  if (!memcomparable::DecodeUint64Desc(&suffix, ts).ok()) return false;
  *encoded_key = key.substr(0, key.size() - 8);
  return true;
}

namespace {

// Record layout: a version byte, the kind, then varint fields and length-prefixed strings in a
// fixed order, then flags. Hand-encoded: a lock is read on every transactional read.
constexpr uint8_t kFormat = 1;
constexpr uint8_t kHasShortValue = 1;
constexpr uint8_t kProtected = 2;    // write records
constexpr uint8_t kAsyncCommit = 2;  // locks: the secondaries follow the value
constexpr uint8_t kOverlapped = 4;   // write records

Status Bad(std::string_view what) {
  return Status::Corruption(fmt::format("transaction record: {}", what));
}

bool GetByte(std::string_view* in, uint8_t* b) {
  if (in->empty()) return false;
  *b = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  return true;
}

}  // namespace

std::string Lock::Encode() const {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  out.push_back(static_cast<char>(kind));
  PutLengthPrefixedSlice(&out, primary);
  PutVarint64(&out, start_ts);
  PutVarint64(&out, ttl_ms);
  PutVarint64(&out, txn_size);
  PutVarint64(&out, min_commit_ts);
  out.push_back(static_cast<char>((short_value ? kHasShortValue : 0) |
                                  (use_async_commit ? kAsyncCommit : 0)));
  if (short_value) PutLengthPrefixedSlice(&out, *short_value);
  if (use_async_commit) {
    PutVarint64(&out, secondaries.size());
    for (const std::string& k : secondaries) PutLengthPrefixedSlice(&out, k);
  }
  return out;
}

Result<Lock> Lock::Decode(std::string_view in) {
  Lock l;
  uint8_t format = 0, kind = 0, flags = 0;
  std::string_view primary;
  if (!GetByte(&in, &format) || format != kFormat) return Bad("unknown lock format");
  if (!GetByte(&in, &kind) || kind < 1 || kind > 3) return Bad("unknown lock kind");
  l.kind = static_cast<LockKind>(kind);
  if (!GetLengthPrefixedSlice(&in, &primary) || !GetVarint64(&in, &l.start_ts) ||
      !GetVarint64(&in, &l.ttl_ms) || !GetVarint64(&in, &l.txn_size) ||
      !GetVarint64(&in, &l.min_commit_ts) || !GetByte(&in, &flags)) {
    return Bad("lock truncated");
  }
  l.primary.assign(primary);
  if (flags & kHasShortValue) {
    std::string_view v;
    if (!GetLengthPrefixedSlice(&in, &v)) return Bad("lock value truncated");
    l.short_value.emplace(v);
  }
  if (flags & kAsyncCommit) {
    l.use_async_commit = true;
    uint64_t n = 0;
    if (!GetVarint64(&in, &n) || n > in.size()) return Bad("lock secondaries truncated");
    l.secondaries.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      std::string_view k;
      if (!GetLengthPrefixedSlice(&in, &k)) return Bad("lock secondary truncated");
      l.secondaries.emplace_back(k);
    }
  }
  if (!in.empty()) return Bad("lock has trailing bytes");
  return l;
}

std::string Write::Encode() const {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  out.push_back(static_cast<char>(kind));
  PutVarint64(&out, start_ts);
  uint8_t flags = (short_value ? kHasShortValue : 0) | (protected_rollback ? kProtected : 0) |
                  (overlapped_rollback ? kOverlapped : 0);
  out.push_back(static_cast<char>(flags));
  if (short_value) PutLengthPrefixedSlice(&out, *short_value);
  return out;
}

Result<Write> Write::Decode(std::string_view in) {
  Write w;
  uint8_t format = 0, kind = 0, flags = 0;
  if (!GetByte(&in, &format) || format != kFormat) return Bad("unknown write format");
  if (!GetByte(&in, &kind) || kind < 1 || kind > 4) return Bad("unknown write kind");
  w.kind = static_cast<WriteKind>(kind);
  if (!GetVarint64(&in, &w.start_ts) || !GetByte(&in, &flags)) return Bad("write truncated");
  w.protected_rollback = (flags & kProtected) != 0;
  w.overlapped_rollback = (flags & kOverlapped) != 0;
  if (flags & kHasShortValue) {
    std::string_view v;
    if (!GetLengthPrefixedSlice(&in, &v)) return Bad("write value truncated");
    w.short_value.emplace(v);
  }
  if (!in.empty()) return Bad("write has trailing bytes");
  return w;
}

uint64_t DefaultTtlMs(uint64_t keys) {
  return std::min<uint64_t>(3000 + 2 * std::min<uint64_t>(keys, 100'000), 120'000);
}

}  // namespace micedb::txn
