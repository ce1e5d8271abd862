#include "server/node_service.h"

#include <fmt/format.h>

namespace micedb::server {

grpc::ServerUnaryReactor* NodeServiceImpl::Forward(grpc::CallbackServerContext* ctx,
                                                   const transport::ForwardRequest* req,
                                                   transport::ForwardResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  backend_->ServeForward(*req, [reactor, resp](transport::ForwardResponse r) {
    *resp = std::move(r);
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
  if (req->op() == transport::AdminRequest::REMOVE && NodeId(req->node_id()) == leader) {
    // A leader that removes itself can leave the others unable to elect anyone (they may
    // not yet know the removal committed, and still need its vote). Hand leadership to the
    // most caught-up other voter first; the caller retries at the new leader.
    NodeId best;
    uint64_t best_match = 0;
    for (const auto& r : store_->Regions()) {
      if (r.descriptor.id() != region.value()) continue;
      for (uint64_t v : r.descriptor.conf_state().voters()) {
        auto p = r.raft.progress.find(NodeId(v));
        if (NodeId(v) == leader || p == r.raft.progress.end()) continue;
        if (!best.valid() || p->second.match.value() > best_match) {
          best = NodeId(v);
          best_match = p->second.match.value();
        }
      }
    }
    if (!best.valid()) {
      reply(::micedb::Status::InvalidArgument("cannot remove the only voter"));
      return reactor;
    }
    store_->TransferLeader(region, best);
    reply(::micedb::Status::Unavailable(
        fmt::format("node {} leads the region; handing leadership to node {} first, retry",
                    leader.value(), best.value())));
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
  store_->ChangeMembership(region, cc, [reply](::micedb::Status st) { reply(st); });
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
