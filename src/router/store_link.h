// StoreLink: store::Store as the router's LocalStore (router/links.h).
#pragma once

#include "router/links.h"
#include "store/keys.h"
#include "store/store.h"

namespace micedb::router {

class StoreLink final : public LocalStore {
 public:
  explicit StoreLink(store::Store* store) : store_(store) {}  // not owned

  NodeId node_id() const override { return store_->node_id(); }
  bool lease_reads() const override { return store_->lease_reads(); }
  void Propose(region::RegionRequest req, ResponseCallback done) override {
    store_->Propose(std::move(req), std::move(done));
  }
  void ReadLinearizable(region::RegionRequest req, ResponseCallback done) override {
    store_->ReadLinearizable(std::move(req), std::move(done));
  }
  region::RegionResponse ReadLocal(const region::RegionRequest& req) override {
    return store_->ReadLocal(req);
  }
  std::optional<region::RegionResponse> ReadUnderLease(const region::RegionRequest& req) override {
    return store_->ReadUnderLease(req);
  }
  std::vector<RegionRoute> Regions() const override {
    std::vector<RegionRoute> out;
    for (const auto& r : store_->Regions()) {
      // The meta region's range lies inside the last data region's as descriptors say it
      // (end "" is +infinity), so in the region cache it would evict region 1; the router never
      // routes to it anyway (the coordinator is reached through CoordinatorClient).
      if (store::IsMetaRegion(r.descriptor.id())) continue;
      // An empty replica (made by a message, waiting for its split or snapshot) has no range
      // yet: as a descriptor it would cover everything.
      if (r.descriptor.conf_state().voters_size() == 0) continue;
      out.push_back(RegionRoute{r.descriptor, r.raft.leader});
    }
    return out;
  }
  NodeId LeaderOf(uint64_t region_id) const override {
    return store_->LeaderOf(RegionId(region_id));
  }

 private:
  store::Store* store_;
};

}  // namespace micedb::router
