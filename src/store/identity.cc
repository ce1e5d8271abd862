#include "store/identity.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "store/keys.h"

namespace micedb::store {

using storage::Cf;

uint64_t ClusterIdFromPeers(const std::vector<std::pair<NodeId, std::string>>& peers) {
  std::vector<std::string> parts;
  parts.reserve(peers.size());
  for (const auto& [id, addr] : peers) parts.push_back(fmt::format("{}={}", id.value(), addr));
  std::sort(parts.begin(), parts.end());
  // Two CRC32Cs over the list (the second salted) make 64 bits; FNV would do as well.
  uint32_t lo = 0, hi = 0x9e3779b9u;
  for (const std::string& p : parts) {
    lo = crc32c::Extend(lo, p);
    lo = crc32c::Extend(lo, ",");
    hi = crc32c::Extend(hi, p);
    hi = crc32c::Extend(hi, ";");
  }
  const uint64_t id = (static_cast<uint64_t>(hi) << 32) | lo;
  return id == 0 ? 1 : id;
}

Result<StoreIdent> LoadOrCreateIdent(storage::Engine* engine, NodeId node, uint64_t cluster_id,
                                     uint64_t random_incarnation) {
  auto got = engine->Get(Cf::kRaft, kStoreIdentKey);
  if (got.ok()) {
    StoreIdent ident;
    if (!ident.ParseFromString(*got)) return Status::Corruption("store identity does not parse");
    if (ident.node_id() != node.value()) {
      return Status::InvalidArgument(fmt::format(
          "this data directory belongs to node {}, not node {}; start node {} with a directory "
          "of its own",
          ident.node_id(), node.value(), node.value()));
    }
    return ident;
  }
  if (got.status().code() != StatusCode::kNotFound) return got.status();
  StoreIdent ident;
  ident.set_node_id(node.value());
  ident.set_cluster_id(cluster_id);
  ident.set_incarnation(random_incarnation == 0 ? 1 : random_incarnation);
  storage::WriteBatch wb;
  wb.Put(Cf::kRaft, kStoreIdentKey, ident.SerializeAsString());
  MICEDB_RETURN_IF_ERROR(engine->Write(wb, storage::WriteOptions{.sync = true}));
  return ident;
}

Status PeerIdentities::Load() {
  storage::ReadOptions ro;
  ro.lower_bound = "K";
  ro.upper_bound = "L";
  auto it = engine_->NewIterator(Cf::kRaft, ro);
  std::lock_guard<std::mutex> l(mu_);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view value = it->value();
    uint64_t node = 0;
    if (!DecodePeerIncarnationKey(it->key(), &node) || value.size() != 8) {
      return Status::Corruption("a peer incarnation record does not parse");
    }
    known_[NodeId(node)] = DecodeFixed64(value.data());
  }
  return it->status();
}

std::optional<std::string> PeerIdentities::Check(NodeId from, uint64_t cluster_id,
                                                 uint64_t incarnation) {
  if (cluster_id != 0 && self_.cluster_id() != 0 && cluster_id != self_.cluster_id()) {
    return fmt::format(
        "node {} belongs to cluster {:016x}, but node {} is in cluster {:016x}: check "
        "--initial-peers, or give the node an empty data directory and a new id",
        from.value(), cluster_id, self_.node_id(), self_.cluster_id());
  }
  if (incarnation == 0) return std::nullopt;  // a sender from before identities
  std::lock_guard<std::mutex> l(mu_);
  auto it = known_.find(from);
  if (it != known_.end()) {
    if (it->second == incarnation) return std::nullopt;
    return fmt::format(
        "node {} has a new data directory, but the cluster knows node {} from before: it has "
        "lost its log and its votes and cannot rejoin under the same id. Remove it (micedb "
        "node remove --id {}), then start it with an empty directory and a new id, and add it "
        "(micedb node add)",
        from.value(), from.value(), from.value());
  }
  std::string v;
  PutFixed64(&v, incarnation);
  storage::WriteBatch wb;
  wb.Put(Cf::kRaft, PeerIncarnationKey(from.value()), v);
  Status st = engine_->Write(wb, storage::WriteOptions{.sync = true});
  if (!st.ok()) return "cannot record the peer's identity: " + st.ToString();
  known_[from] = incarnation;
  return std::nullopt;
}

}  // namespace micedb::store
