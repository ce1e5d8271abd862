#include "store/keys.h"

#include "common/memcomparable.h"

namespace micedb::store {
namespace {

uint64_t GetBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(s[i]);
  }
  return v;
}

std::string RegionScoped(char tag, uint64_t region) {
  std::string k(1, tag);
  memcomparable::AppendUint64(&k, region);
  return k;
}

}  // namespace

std::string RaftLogKey(uint64_t region, uint64_t index) {
  std::string k = RegionScoped('L', region);
  memcomparable::AppendUint64(&k, index);
  return k;
}
std::string RaftLogPrefixBegin(uint64_t region) { return RaftLogKey(region, 0); }
std::string RaftLogPrefixEnd(uint64_t region) { return RegionScoped('L', region + 1); }
std::string HardStateKey(uint64_t region) { return RegionScoped('H', region); }
std::string ApplyStateKey(uint64_t region) { return RegionScoped('A', region); }
std::string RegionKey(uint64_t region) { return RegionScoped('R', region); }
std::string PendingSnapshotKey(uint64_t region) { return RegionScoped('P', region); }
std::string TombstoneKey(uint64_t region) { return RegionScoped('T', region); }
std::string SnapshotEpochKey(uint64_t region) { return RegionScoped('E', region); }

void BuryReplica(uint64_t region, const std::string& tombstone, storage::WriteBatch* wb) {
  wb->Put(storage::Cf::kRaft, TombstoneKey(region), tombstone);
  wb->Delete(storage::Cf::kRaft, RegionKey(region));
  wb->Delete(storage::Cf::kRaft, ApplyStateKey(region));
  wb->Delete(storage::Cf::kRaft, HardStateKey(region));
  wb->Delete(storage::Cf::kRaft, SnapshotEpochKey(region));
  wb->DeleteRange(storage::Cf::kRaft, RaftLogPrefixBegin(region), RaftLogPrefixEnd(region));
}
std::string NodeAddressKey(uint64_t node) { return RegionScoped('N', node); }
std::string PeerIncarnationKey(uint64_t node) { return RegionScoped('K', node); }

bool DecodePeerIncarnationKey(std::string_view key, uint64_t* node) {
  if (key.size() != 9 || key[0] != 'K') return false;
  *node = GetBigEndian64(key.substr(1));
  return true;
}

bool DecodeRaftLogKey(std::string_view key, uint64_t* region, uint64_t* index) {
  if (key.size() != 17 || key[0] != 'L') {
    return false;
  }
  *region = GetBigEndian64(key.substr(1));
  *index = GetBigEndian64(key.substr(9));
  return true;
}

bool DecodeRegionKey(std::string_view key, uint64_t* region) {
  if (key.size() != 9 || key[0] != 'R') {
    return false;
  }
  *region = GetBigEndian64(key.substr(1));
  return true;
}

std::string EngineRangeEnd(std::string_view end_key) {
  // Data keys start with 'r' (raw) or 't' (transactional), so 0xFF sorts above all of them.
  return end_key.empty() ? std::string(1, '\xff') : std::string(end_key);
}

std::string DedupKey(std::string_view anchor, int64_t request_ts_ms, uint64_t request_id) {
  std::string k;
  k.reserve(anchor.size() + 18);
  memcomparable::AppendBytes(&k, anchor);
  memcomparable::AppendUint64(&k, static_cast<uint64_t>(request_ts_ms));
  memcomparable::AppendUint64(&k, request_id);
  return k;
}

bool DecodeDedupKeyTime(std::string_view key, int64_t* request_ts_ms) {
  std::string anchor;
  uint64_t ts = 0;
  if (!memcomparable::DecodeBytes(&key, &anchor).ok() ||
      !memcomparable::DecodeUint64(&key, &ts).ok() || key.size() != 8) {
    return false;
  }
  *request_ts_ms = static_cast<int64_t>(ts);
  return true;
}

std::string PrintableKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  out.push_back('"');
  return out;
}

CfBounds RegionCfBounds(storage::Cf cf, std::string_view start_key, std::string_view end_key) {
  std::string end = EngineRangeEnd(end_key);
  if (cf != storage::Cf::kDedup) return CfBounds{std::string(start_key), std::move(end)};
  // AppendBytes keeps the order and no encoding is a prefix of another: every record whose
  // anchor lies in [start, end) sorts inside [enc(start), enc(end)).
  CfBounds b;
  memcomparable::AppendBytes(&b.begin, start_key);
  memcomparable::AppendBytes(&b.end, end);
  return b;
}

}  // namespace micedb::store
