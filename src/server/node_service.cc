#include "server/node_service.h"

#include <fmt/format.h>

#include "kv/value_format.h"
#include "store/errors.h"
#include "store/merge.h"

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
  if (req->op() == transport::AdminRequest::SPLIT) {
    Split(*req, [reactor, resp](const ::micedb::Status& st, std::string done) {
      resp->set_code(static_cast<uint32_t>(st.code()));
      resp->set_message(st.ok() ? std::move(done) : std::string(st.message()));
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
  if (req->op() == transport::AdminRequest::MERGE) {
    Merge(*req, reply);
    return reactor;
  }
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

void NodeServiceImpl::Merge(const transport::AdminRequest& req,
                            const std::function<void(const ::micedb::Status&)>& reply) {
  const uint64_t source = req.region_id();
  const uint64_t target = req.target_region_id();
  std::optional<store::RegionInfo> s = store_->RegionInfoOf(RegionId(source));
  std::optional<store::RegionInfo> t = store_->RegionInfoOf(RegionId(target));
  if (!s || !t || !s->descriptor.conf_state().voters_size() ||
      !t->descriptor.conf_state().voters_size()) {
    return reply(::micedb::Status::NotFound(fmt::format(
        "this node does not hold both regions {} and {}; ask a node that does", source, target)));
  }
  if (s->raft.role != raft::Role::kLeader) {
    region::RegionResponse not_leader;
    not_leader.mutable_error()->mutable_not_leader()->set_region_id(source);
    not_leader.mutable_error()->mutable_not_leader()->set_leader(s->raft.leader.value());
    return reply(AdminResult(not_leader, store_->Addresses()));
  }
  if (s->descriptor.has_merging()) {
    return reply(::micedb::Status::AlreadyExists(
        fmt::format("region {} is merging into region {} already", source,
                    s->descriptor.merging().target().id())));
  }
  store_->RunAdmin(store::PrepareMergeRequest(s->descriptor, t->descriptor),
                   [this, reply](const region::RegionResponse& r) {
                     reply(AdminResult(r, store_->Addresses()));
                   });
}

void NodeServiceImpl::Split(const transport::AdminRequest& req, const SplitReply& reply) {
  const std::string key = kv::EncodeRawKey(req.split_key());
  std::optional<RegionId> region = store_->RegionForKey(key);
  std::optional<store::RegionInfo> info;
  if (region) info = store_->RegionInfoOf(*region);
  if (!info) {
    return reply(::micedb::Status::NotFound(
                     "no region on this node holds the key; ask a node that holds it"),
                 "");
  }
  const store::RegionDescriptor desc = info->descriptor;
  if (desc.start_key() == key) {
    return reply(::micedb::Status::AlreadyExists(fmt::format(
                     "the key is already a region boundary (region {} starts there)", desc.id())),
                 "");
  }
  if (info->raft.role != raft::Role::kLeader) {
    region::RegionResponse not_leader;
    not_leader.mutable_error()->mutable_not_leader()->set_region_id(desc.id());
    not_leader.mutable_error()->mutable_not_leader()->set_leader(info->raft.leader.value());
    return reply(AdminResult(not_leader, store_->Addresses()), "");
  }
  if (!coord_) {
    return reply(::micedb::Status::Unavailable("this node cannot reach the coordinator"), "");
  }
  // The new region's id from the coordinator, then the split at the region's leader.
  coordinator::CoordRequest alloc;
  alloc.mutable_alloc_id()->set_count(1);
  coord_(std::move(alloc), [this, desc, key, reply](const coordinator::CoordResponse& r) {
    if (!r.has_alloc_id() || r.alloc_id().count() < 1) {
      return reply(::micedb::Status::Unavailable(
                       fmt::format("the coordinator gave no region id: {}", r.error().message())),
                   "");
    }
    const uint64_t id = r.alloc_id().first();
    region::RegionRequest split;
    split.set_format(region::FORMAT_V1);
    split.mutable_header()->set_region_id(desc.id());
    *split.mutable_header()->mutable_epoch() = desc.epoch();
    split.mutable_admin()->mutable_split()->set_split_key(key);
    split.mutable_admin()->mutable_split()->set_new_region_id(id);
    store_->RunAdmin(std::move(split), [this, desc, id, reply](const region::RegionResponse& r) {
      reply(AdminResult(r, store_->Addresses()),
            fmt::format("region {} split: region {} takes the keys from there on", desc.id(), id));
    });
  });
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
