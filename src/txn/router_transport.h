// The transaction client's transport on a node: timestamps from the coordinator's oracle,
// regions from the router's cache, requests through the router (router/router.h Send).
// Thread-safe.
#pragma once

#include <atomic>

#include "router/router.h"
#include "txn/client.h"

namespace micedb::txn {

class RouterTransport final : public TxnTransport {
 public:
  // Asks the oracle for `count` consecutive timestamps, answering the first (the coordinator
  // client's GetTimestamps).
  using Oracle = std::function<void(uint32_t, std::function<void(Result<uint64_t>)>)>;
  // `router` is not owned; it must outlive the transport and the work sent through it.
  RouterTransport(router::Router* router, Oracle oracle)
      : router_(router), oracle_(std::move(oracle)) {}

  // From now on every call is answered Unavailable at once, without touching the router or
  // the oracle: the node is stopping, and work still in flight must not reach them.
  void Stop() { stopped_.store(true); }

  void GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) override;
  std::optional<std::pair<std::string, std::string>> RegionOf(std::string_view engine_key) override;
  void Send(pb::TxnRequest req, std::string route_key, std::vector<std::string> keys, bool write,
            int64_t timeout_ms, std::function<void(Result<pb::TxnResponse>)> done) override;

 private:
  router::Router* router_;
  Oracle oracle_;
  std::atomic<bool> stopped_{false};
};

}  // namespace micedb::txn
