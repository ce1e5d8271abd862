// What the router needs of the rest of the node, as small interfaces so that the router's
// tests run against fakes with no threads and no sleeps: the local store (StoreLink adapts
// store::Store), the peers (the transport's forwarding), and an executor for timers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/executor.h"
#include "common/result.h"
#include "common/strong_id.h"
#include "micedb/region.pb.h"
#include "micedb/transport.pb.h"
#include "router/region_cache.h"

namespace micedb::router {

using ResponseCallback = std::function<void(region::RegionResponse)>;

// This node's store. Contracts as store::Store's methods of the same names.
class LocalStore {
 public:
  virtual ~LocalStore() = default;
  virtual NodeId node_id() const = 0;
  virtual bool lease_reads() const = 0;
  virtual void Propose(region::RegionRequest req, ResponseCallback done) = 0;
  virtual void ReadLinearizable(region::RegionRequest req, ResponseCallback done) = 0;
  virtual region::RegionResponse ReadLocal(const region::RegionRequest& req) = 0;
  virtual std::optional<region::RegionResponse> ReadUnderLease(
      const region::RegionRequest& req) = 0;
  // The regions this store holds, each with the leader it last heard of.
  virtual std::vector<RegionRoute> Regions() const = 0;
  // The leader this store last heard of for a region it holds (invalid: unknown or not here).
  virtual NodeId LeaderOf(uint64_t region_id) const = 0;
};

// The other nodes.
class PeerLink {
 public:
  virtual ~PeerLink() = default;
  using ForwardCallback = std::function<void(Result<transport::ForwardResponse>)>;
  // Sends a request to node `to`; `done` gets its answer, Unavailable when it could not be
  // sent or the connection broke (it may have run there), or TimedOut after timeout_ms.
  virtual void Forward(NodeId to, transport::ForwardRequest request, int64_t timeout_ms,
                       ForwardCallback done) = 0;
  // Every other node whose address is known.
  virtual std::vector<NodeId> Nodes() const = 0;
};

// Where regions are (the coordinator's directory). Asked when the cache knows no region for a
// key, which after a routing error (the region moved or split) is also the case.
class Directory {
 public:
  virtual ~Directory() = default;
  // `done` gets the region holding `engine_key` with its leader, or nullopt when the directory
  // does not know or cannot be reached.
  virtual void Locate(std::string engine_key,
                      std::function<void(std::optional<RegionRoute>)> done) = 0;
};

// Runs deferred work for the router.
using Executor = micedb::Executor;

}  // namespace micedb::router
