#include "coordinator/store_meta_region.h"

#include "common/logging.h"
#include "store/errors.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

constexpr RegionId kMeta(store::kMetaRegionId);

Result<MetaResult> Unwrap(region::RegionResponse resp) {
  if (resp.has_error()) {
    // Every error here means "not now": the coordinator retries or the caller does.
    return Status::Unavailable(resp.error().message());
  }
  if (!resp.has_meta()) return Status::Internal("the meta region answered without a result");
  return std::move(*resp.mutable_meta());
}

}  // namespace

region::RegionRequest OperatorRequest(const Operator& op) {
  region::RegionRequest req;
  req.set_format(region::FORMAT_V1);
  req.mutable_header()->set_region_id(op.region_id());
  *req.mutable_header()->mutable_epoch() = op.epoch();
  region::AdminRequest* admin = req.mutable_admin();
  if (op.kind() == Operator::TRANSFER_LEADER) {
    admin->mutable_transfer_leader()->set_node_id(op.store_id());
  } else {
    region::ChangePeer* c = admin->mutable_change_peer();
    c->set_node_id(op.store_id());
    c->set_peer_addr(op.peer_addr());
    c->set_op(op.kind() == Operator::ADD_LEARNER ? region::ChangePeer::ADD_LEARNER
              : op.kind() == Operator::PROMOTE   ? region::ChangePeer::PROMOTE
                                                 : region::ChangePeer::REMOVE);
  }
  return req;
}

void RunOperatorStep(store::Store* store, const Operator& op) {
  GetLogger("coordinator")
      ->info("region {}: running operator {} ({} store {})", op.region_id(), op.id(),
             Operator::Kind_Name(op.kind()), op.store_id());
  store->RunAdmin(OperatorRequest(op),
                  [id = op.id(), region = op.region_id()](const region::RegionResponse& resp) {
                    if (resp.has_error()) {
                      GetLogger("coordinator")
                          ->info("region {}: operator {}: {}", region, id, resp.error().message());
                    }
                  });
}

std::vector<uint64_t> PendingPeers(const store::RegionInfo& info, NodeId self) {
  constexpr uint64_t kFarBehind = 64;
  std::vector<uint64_t> out;
  for (const auto& [peer, progress] : info.raft.progress) {
    if (peer != self && (progress.state != raft::ProgressState::kReplicate ||
                         progress.match.value() + kFarBehind < info.raft.commit.value())) {
      out.push_back(peer.value());
    }
  }
  return out;
}

std::pair<NodeId, uint64_t> StoreMetaRegion::LeaderAndTerm() const {
  auto info = store_->RegionInfoOf(kMeta);
  if (!info) return {NodeId(), 0};
  return {info->raft.leader, info->raft.term.value()};
}

int64_t StoreMetaRegion::LeaseUntilNs() const { return store_->LeaseUntilNs(kMeta); }

std::optional<region::RegionRequest> StoreMetaRegion::Request(MetaCommand cmd) const {
  auto info = store_->RegionInfoOf(kMeta);
  if (!info) return std::nullopt;
  region::RegionRequest req;
  req.mutable_header()->set_region_id(kMeta.value());
  *req.mutable_header()->mutable_epoch() = info->descriptor.epoch();
  *req.mutable_meta() = std::move(cmd);
  return req;
}

void StoreMetaRegion::Propose(MetaCommand cmd, Done done) {
  auto req = Request(std::move(cmd));
  if (!req) return done(Status::Unavailable("this node holds no replica of the coordinator"));
  store_->Propose(std::move(*req), [done = std::move(done)](region::RegionResponse r) {
    done(Unwrap(std::move(r)));
  });
}

void StoreMetaRegion::ProposeInTerm(MetaCommand cmd, uint64_t term, Done done) {
  auto req = Request(std::move(cmd));
  if (!req) return done(Status::Unavailable("this node holds no replica of the coordinator"));
  store_->Propose(
      std::move(*req),
      [done = std::move(done)](region::RegionResponse r) { done(Unwrap(std::move(r))); }, term);
}

void StoreMetaRegion::Read(MetaCommand cmd, Done done) {
  auto req = Request(std::move(cmd));
  if (!req) return done(Status::Unavailable("this node holds no replica of the coordinator"));
  if (auto now = store_->ReadUnderLease(*req)) return done(Unwrap(std::move(*now)));
  store_->ReadLinearizable(std::move(*req), [done = std::move(done)](region::RegionResponse r) {
    done(Unwrap(std::move(r)));
  });
}

std::vector<store::NodeAddress> StoreMetaRegion::Members() const {
  std::vector<store::NodeAddress> out;
  auto info = store_->RegionInfoOf(kMeta);
  if (!info) return out;
  const auto addrs = store_->Addresses();
  auto add = [&](uint64_t id, const std::string& fallback) {
    store::NodeAddress a;
    a.set_node_id(id);
    auto it = addrs.find(NodeId(id));
    a.set_peer_addr(it != addrs.end() ? it->second : fallback);
    out.push_back(std::move(a));
  };
  for (uint64_t v : info->descriptor.conf_state().voters()) {
    add(v, v == store_->node_id().value() ? self_addr_ : "");
  }
  return out;
}

std::optional<RegionHeartbeat> StoreMetaRegion::Report() const {
  auto info = store_->RegionInfoOf(kMeta);
  if (!info || info->raft.role != raft::Role::kLeader) return std::nullopt;
  RegionHeartbeat hb;
  *hb.mutable_region()->mutable_region() = info->descriptor;
  hb.mutable_region()->set_leader(store_->node_id().value());
  hb.set_term(info->raft.term.value());
  for (uint64_t p : PendingPeers(*info, store_->node_id())) hb.add_pending_peers(p);
  return hb;
}

void StoreMetaRegion::RunOperator(const Operator& op) { RunOperatorStep(store_, op); }

}  // namespace micedb::coordinator
