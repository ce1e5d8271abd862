// StoreLink: store::Store as the router's LocalStore (router/links.h).
#pragma once

#include "router/links.h"
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
    for (const auto& r : store_->Regions()) out.push_back(RegionRoute{r.descriptor, r.raft.leader});
    return out;
  }
  NodeId LeaderOf(uint64_t region_id) const override {
    return store_->LeaderOf(RegionId(region_id));
  }

 private:
  store::Store* store_;
};

}  // namespace micedb::router
