// StoreMetaRegion: the meta region's replica in this node's store::Store, as the coordinator's
// MetaRegion (coordinator/coordinator.h).
#pragma once

#include "common/clock.h"
#include "coordinator/coordinator.h"
#include "store/store.h"

namespace micedb::coordinator {

// The admin request a region's leader runs for one operator step, guarded by the operator's
// epoch: a region that has moved on refuses it (EpochNotMatch), and one already changed that
// way refuses it as changing nothing.
region::RegionRequest OperatorRequest(const Operator& op);
// Runs one operator step on `store` (which leads the region), logging what happens.
void RunOperatorStep(store::Store* store, const Operator& op);

// The peers of a region led here that are far behind (TiKV's pending peers): waiting for a
// snapshot, probing, or many entries short. A follower a round behind is not.
std::vector<uint64_t> PendingPeers(const store::RegionInfo& info, NodeId self);

class StoreMetaRegion final : public MetaRegion {
 public:
  // `store` is not owned and must outlive this; `self_addr`: this node's peer address.
  StoreMetaRegion(store::Store* store, std::string self_addr)
      : store_(store), self_addr_(std::move(self_addr)) {}

  NodeId self() const override { return store_->node_id(); }
  std::pair<NodeId, uint64_t> LeaderAndTerm() const override;
  int64_t LeaseUntilNs() const override;
  void Propose(MetaCommand cmd, Done done) override;
  void ProposeInTerm(MetaCommand cmd, uint64_t term, Done done) override;
  void Read(MetaCommand cmd, Done done) override;
  std::vector<store::NodeAddress> Members() const override;
  std::optional<RegionHeartbeat> Report() const override;
  void RunOperator(const Operator& op) override;

 private:
  // The request envelope for `cmd` on the meta region as this replica knows it; nullopt when
  // this store holds no meta region.
  std::optional<region::RegionRequest> Request(MetaCommand cmd) const;

  store::Store* store_;
  std::string self_addr_;
};

}  // namespace micedb::coordinator
