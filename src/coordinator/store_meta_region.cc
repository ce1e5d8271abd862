#include "coordinator/store_meta_region.h"

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

}  // namespace micedb::coordinator
