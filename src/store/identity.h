// Who a data directory belongs to, and who the peers are (docs/store-format.md, 'I' and 'K').
//
// A data directory gets a StoreIdent the first time a node uses it: the node id, the cluster
// id (known when the node bootstraps the cluster; 0 for a node that joins) and a random
// incarnation. Every raft-stream frame carries the sender's cluster id and incarnation; a
// receiver remembers the first incarnation it meets for each peer ('K' records) and refuses a
// different one. So a node whose directory was deleted and that restarts under the same id
// -- having forgotten its votes and its log -- cannot help elect a leader that lacks
// acknowledged writes, or be counted for entries it no longer has: it is refused and stops.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/strong_id.h"
#include "common/thread_annotations.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb::store {

// The cluster id the initial members of a cluster agree on without talking: a hash of the
// sorted "id=address" list they are all started with. Never 0.
uint64_t ClusterIdFromPeers(const std::vector<std::pair<NodeId, std::string>>& peers);

// The directory's identity, created (and written, synced) when there is none. InvalidArgument
// when the directory belongs to another node id.
Result<StoreIdent> LoadOrCreateIdent(storage::Engine* engine, NodeId node, uint64_t cluster_id,
                                     uint64_t random_incarnation);

// The incarnations of the peers this node has met, persisted. Thread-safe.
class PeerIdentities {
 public:
  PeerIdentities(storage::Engine* engine, StoreIdent self)
      : engine_(engine), self_(std::move(self)) {}

  // Reads the 'K' records.
  Status Load();
  // nullopt when `from` may talk to us; otherwise why it may not (the text the refused node
  // prints). A peer met for the first time is remembered (written, synced).
  std::optional<std::string> Check(NodeId from, uint64_t cluster_id, uint64_t incarnation);

  const StoreIdent& self() const { return self_; }

 private:
  storage::Engine* const engine_;
  const StoreIdent self_;
  std::mutex mu_;
  std::map<NodeId, uint64_t> known_ GUARDED_BY(mu_);
};

}  // namespace micedb::store
