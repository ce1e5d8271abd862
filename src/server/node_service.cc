#include "server/node_service.h"

#include <fmt/format.h>

#include "store/errors.h"

namespace micedb::server {

grpc::ServerUnaryReactor* NodeServiceImpl::Forward(grpc::CallbackServerContext* ctx,
                                                   const transport::ForwardRequest* req,
                                                   transport::ForwardResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->has_coord()) {
    if (!coord_) {
      resp->mutable_coord()->mutable_error()->set_message("this node cannot reach the coordinator");
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    coord_(req->coord(), [reactor, resp](coordinator::CoordResponse r) {
      *resp->mutable_coord() = std::move(r);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
  backend_->ServeForward(*req, [reactor, resp](transport::ForwardResponse r) {
    *resp = std::move(r);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

std::optional<region::RegionRequest> AdminToRegionRequest(const transport::AdminRequest& req,
                                                          const store::RegionDescriptor* current) {
  region::RegionRequest out;
  out.set_format(region::FORMAT_V1);
  out.mutable_header()->set_region_id(req.region_id() ? req.region_id() : 1);
  // The command line names no epoch: the change applies to the region as this node knows it.
  if (current) *out.mutable_header()->mutable_epoch() = current->epoch();
  region::AdminRequest* admin = out.mutable_admin();
  if (req.op() == transport::AdminRequest::TRANSFER_LEADER) {
    admin->mutable_transfer_leader()->set_node_id(req.node_id());
    return out;
  }
  region::ChangePeer* change = admin->mutable_change_peer();
  change->set_node_id(req.node_id());
  change->set_peer_addr(req.peer_addr());
  switch (req.op()) {
    case transport::AdminRequest::ADD_LEARNER:
      change->set_op(region::ChangePeer::ADD_LEARNER);
      break;
    case transport::AdminRequest::PROMOTE:
      change->set_op(region::ChangePeer::PROMOTE);
      break;
    case transport::AdminRequest::REMOVE:
      change->set_op(region::ChangePeer::REMOVE);
      break;
    default:
      return std::nullopt;
  }
  return out;
}

::micedb::Status AdminResult(const region::RegionResponse& resp,
                             const std::map<NodeId, std::string>& addresses) {
  if (!resp.has_error()) return ::micedb::Status::OK();
  const region::RegionError& e = resp.error();
  if (e.has_not_leader()) {
    // `micedb node` follows this hint to the leader.
    const uint64_t leader = e.not_leader().leader();
    auto it = addresses.find(NodeId(leader));
    return ::micedb::Status::NotLeader(
        fmt::format("leader is node {} at {}", leader, it == addresses.end() ? "?" : it->second));
  }
  return store::ToStatus(e);
}

grpc::ServerUnaryReactor* NodeServiceImpl::Admin(grpc::CallbackServerContext* ctx,
                                                 const transport::AdminRequest* req,
                                                 transport::AdminResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto reply = [reactor, resp](const ::micedb::Status& st) {
    resp->set_code(static_cast<uint32_t>(st.code()));
    resp->set_message(std::string(st.message()));
    reactor->Finish(grpc::Status::OK);
  };
  std::optional<store::RegionDescriptor> current;
  const uint64_t region = req->region_id() ? req->region_id() : 1;
  for (const auto& r : store_->Regions()) {
    if (r.descriptor.id() == region) current = r.descriptor;
  }
  auto request = AdminToRegionRequest(*req, current ? &*current : nullptr);
  if (!request) {
    reply(::micedb::Status::InvalidArgument("unknown admin operation"));
    return reactor;
  }
  store_->RunAdmin(std::move(*request), [this, reply](const region::RegionResponse& r) {
    reply(AdminResult(r, store_->Addresses()));
  });
  return reactor;
}

}  // namespace micedb::server

namespace micedb::server {

grpc::ServerUnaryReactor* NodeServiceImpl::Status(grpc::CallbackServerContext* ctx,
                                                  const transport::StatusRequest* req,
                                                  transport::StatusResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  resp->set_json(status_json_(req->with_hash()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace micedb::server
