// Internal to src/server: the node's helpers for the coordinator (node_coordinator.cc), here so
// that node.cc sees them whole.
#pragma once

#include "server/node.h"

namespace micedb::server {

// Delivers coordinator calls: to this node's own coordinator directly, to other nodes on the
// raft stream's forward path.
class Node::CoordSender final : public coordinator::CoordSender {
 public:
  explicit CoordSender(Node* node) : node_(node) {}
  void Send(NodeId to, coordinator::CoordRequest req, int64_t timeout_ms, Done done) override {
    if (to == node_->options_.id && node_->coordinator_) {
      return node_->coordinator_->Handle(
          req, [done = std::move(done)](coordinator::CoordResponse r) { done(std::move(r)); });
    }
    transport::ForwardRequest fr;
    *fr.mutable_coord() = std::move(req);
    node_->transport_->Forward(
        to, std::move(fr), std::chrono::milliseconds(timeout_ms),
        [done = std::move(done)](Result<transport::ForwardResponse> r) {
          if (!r.ok()) return done(r.status());
          if (!r->has_coord()) {
            return done(Status::Unavailable("the node answered without a coordinator result"));
          }
          done(std::move(*r->mutable_coord()));
        });
  }

 private:
  Node* node_;
};

// The coordinator's region directory, for the router.
class Node::Directory final : public router::Directory {
 public:
  explicit Directory(coordinator::CoordinatorClient* client) : client_(client) {}
  void Locate(std::string engine_key,
              std::function<void(std::optional<router::RegionRoute>)> done) override {
    coordinator::CoordRequest req;
    req.mutable_get_region()->set_key(std::move(engine_key));
    client_->Call(std::move(req), 2000,
                  [done = std::move(done)](Result<coordinator::CoordResponse> r) {
                    if (!r.ok() || !r->has_regions() || r->regions().regions_size() == 0) {
                      return done(std::nullopt);
                    }
                    const auto& m = r->regions().regions(0);
                    done(router::RegionRoute{m.region(), NodeId(m.leader())});
                  });
  }

 private:
  coordinator::CoordinatorClient* client_;
};

}  // namespace micedb::server
