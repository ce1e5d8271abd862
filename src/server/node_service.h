// NodeService: the gRPC service other nodes and the `micedb` admin commands call: Forward (a
// region request run on this node's replica) and Admin (membership changes and
// leader transfer, executed by the region's leader).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "micedb/region.pb.h"
#include "micedb/transport.grpc.pb.h"
#include "router/router.h"
#include "store/store.h"

namespace micedb::server {

// The command line's admin request as a region request for Store::RunAdmin, stamped with
// `current`'s epoch (the region as this node knows it; no epoch when null). nullopt for an
// unknown operation.
std::optional<region::RegionRequest> AdminToRegionRequest(const transport::AdminRequest& req,
                                                          const store::RegionDescriptor* current);
// The Status the command line sees for RunAdmin's answer; NotLeader carries "leader is node N
// at host:port" (the address from `addresses`), which `micedb node` follows.
::micedb::Status AdminResult(const region::RegionResponse& resp,
                             const std::map<NodeId, std::string>& addresses);

class NodeServiceImpl final : public transport::NodeService::CallbackService {
 public:
  // `status_json(with_hash)` renders the node's /debug/raft document.
  NodeServiceImpl(router::Router* backend, store::Store* store,
                  std::function<std::string(bool)> status_json)
      : backend_(backend), store_(store), status_json_(std::move(status_json)) {}

  // Where a Forward carrying a coordinator call goes (the node's coordinator client, which
  // passes it on to the coordinator's leader). Unset: such calls are refused. Set before the
  // server starts.
  using CoordCall = std::function<void(coordinator::CoordRequest,
                                       std::function<void(coordinator::CoordResponse)>)>;
  void SetCoordinator(CoordCall call) { coord_ = std::move(call); }

  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* ctx,
                                    const transport::ForwardRequest* req,
                                    transport::ForwardResponse* resp) override;
  grpc::ServerUnaryReactor* Admin(grpc::CallbackServerContext* ctx,
                                  const transport::AdminRequest* req,
                                  transport::AdminResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const transport::StatusRequest* req,
                                   transport::StatusResponse* resp) override;

 private:
  // AdminRequest::SPLIT: at the leader of the region holding the key, with an id from the
  // coordinator.
  // `reply` gets the outcome and, on success, what was done.
  using SplitReply = std::function<void(const ::micedb::Status&, std::string)>;
  void Split(const transport::AdminRequest& req, const SplitReply& reply);
  // AdminRequest::MERGE: at the source's leader, with the target as this node's replica of it
  // sees it (docs/sharding.md §2). Answers once the freeze is applied.
  void Merge(const transport::AdminRequest& req,
             const std::function<void(const ::micedb::Status&)>& reply);

  router::Router* backend_;
  store::Store* store_;
  std::function<std::string(bool)> status_json_;
  CoordCall coord_;
};

}  // namespace micedb::server
