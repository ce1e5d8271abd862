#include "server/node_service.h"

#include <fmt/format.h>

namespace micedb::server {

grpc::ServerUnaryReactor* NodeServiceImpl::Forward(grpc::CallbackServerContext* ctx,
                                                   const transport::ForwardRequest* req,
                                                   transport::ForwardResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  kv::Command cmd;
  if (!cmd.ParseFromString(req->command())) {
    resp->set_code(static_cast<uint32_t>(StatusCode::kInvalidArgument));
    resp->set_message("forwarded command does not parse");
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  auto mode = req->read_mode() == static_cast<uint32_t>(kv::ReadMode::kLocalStale)
                  ? kv::ReadMode::kLocalStale
                  : kv::ReadMode::kLinearizable;
  backend_->ExecuteForwarded(std::move(cmd), mode, req->hops(),
                             [reactor, resp](Result<kv::CommandResult> r) {
                               if (r.ok()) {
                                 resp->set_code(0);
                                 resp->set_result(r->SerializeAsString());
                               } else {
                                 resp->set_code(static_cast<uint32_t>(r.status().code()));
                                 resp->set_message(std::string(r.status().message()));
                               }
                               reactor->Finish(grpc::Status::OK);
                             });
  return reactor;
}

grpc::ServerUnaryReactor* NodeServiceImpl::Admin(grpc::CallbackServerContext* ctx,
                                                 const transport::AdminRequest* req,
                                                 transport::AdminResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  RegionId region(req->region_id() ? req->region_id() : 1);
  auto reply = [reactor, resp](const ::micedb::Status& st) {
    resp->set_code(static_cast<uint32_t>(st.code()));
    resp->set_message(std::string(st.message()));
    reactor->Finish(grpc::Status::OK);
  };
  NodeId leader = store_->LeaderOf(region);
  if (leader != store_->node_id()) {
    auto addrs = store_->Addresses();
    auto it = addrs.find(leader);
    reply(::micedb::Status::NotLeader(fmt::format("leader is node {} at {}", leader.value(),
                                                  it == addrs.end() ? "?" : it->second)));
    return reactor;
  }
  if (req->op() == transport::AdminRequest::TRANSFER_LEADER) {
    store_->TransferLeader(region, NodeId(req->node_id()));
    reply(::micedb::Status::OK());
    return reactor;
  }
  raft::ConfChange cc;
  cc.set_node_id(req->node_id());
  switch (req->op()) {
    case transport::AdminRequest::ADD_LEARNER: {
      cc.set_type(raft::ADD_LEARNER);
      store::ConfChangeContext c;
      c.set_peer_addr(req->peer_addr());
      cc.set_context(c.SerializeAsString());
      if (req->peer_addr().empty()) {
        reply(::micedb::Status::InvalidArgument("adding a node needs its peer address"));
        return reactor;
      }
      break;
    }
    case transport::AdminRequest::PROMOTE:
      cc.set_type(raft::ADD_VOTER);
      break;
    case transport::AdminRequest::REMOVE:
      cc.set_type(raft::REMOVE_NODE);
      break;
    default:
      reply(::micedb::Status::InvalidArgument("unknown admin operation"));
      return reactor;
  }
  store_->ChangeMembership(region, cc, [reply](Result<std::string> r) {
    reply(r.ok() ? ::micedb::Status::OK() : r.status());
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
