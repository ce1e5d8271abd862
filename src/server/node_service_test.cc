#include "server/node_service.h"

#include <gtest/gtest.h>

#include "store/errors.h"

namespace micedb::server {
namespace {

transport::AdminRequest Cli(transport::AdminRequest::Op op, uint64_t node,
                            const std::string& addr = "") {
  transport::AdminRequest req;
  req.set_op(op);
  req.set_node_id(node);
  req.set_peer_addr(addr);
  return req;
}

TEST(AdminToRegionRequest, MapsEachOperationAndStampsTheKnownEpoch) {
  store::RegionDescriptor desc;
  desc.set_id(1);
  desc.mutable_epoch()->set_conf_ver(7);
  desc.mutable_epoch()->set_version(3);
  auto add = AdminToRegionRequest(Cli(transport::AdminRequest::ADD_LEARNER, 4, "h:1"), &desc);
  ASSERT_TRUE(add.has_value());
  EXPECT_EQ(add->format(), region::FORMAT_V1);
  EXPECT_EQ(add->header().region_id(), 1u);
  EXPECT_EQ(add->header().epoch().conf_ver(), 7u);
  EXPECT_EQ(add->header().epoch().version(), 3u);
  EXPECT_EQ(add->admin().change_peer().op(), region::ChangePeer::ADD_LEARNER);
  EXPECT_EQ(add->admin().change_peer().node_id(), 4u);
  EXPECT_EQ(add->admin().change_peer().peer_addr(), "h:1");

  auto promote = AdminToRegionRequest(Cli(transport::AdminRequest::PROMOTE, 4), &desc);
  EXPECT_EQ(promote->admin().change_peer().op(), region::ChangePeer::PROMOTE);
  auto remove = AdminToRegionRequest(Cli(transport::AdminRequest::REMOVE, 2), &desc);
  EXPECT_EQ(remove->admin().change_peer().op(), region::ChangePeer::REMOVE);
  auto transfer = AdminToRegionRequest(Cli(transport::AdminRequest::TRANSFER_LEADER, 3), &desc);
  ASSERT_TRUE(transfer->admin().has_transfer_leader());
  EXPECT_EQ(transfer->admin().transfer_leader().node_id(), 3u);

  // A region this node does not know: no epoch (the store answers RegionNotFound).
  auto other = Cli(transport::AdminRequest::REMOVE, 2);
  other.set_region_id(5);
  auto r = AdminToRegionRequest(other, nullptr);
  EXPECT_EQ(r->header().region_id(), 5u);
  EXPECT_FALSE(r->header().has_epoch());
  EXPECT_FALSE(AdminToRegionRequest(Cli(static_cast<transport::AdminRequest::Op>(42), 2), &desc)
                   .has_value());
}

TEST(AdminResult, NotLeaderNamesTheLeadersAddressForTheCommandLine) {
  std::map<NodeId, std::string> addrs{{NodeId(2), "127.0.0.1:20162"}};
  Status st = AdminResult(store::NotLeaderResponse(1, 2), addrs);
  EXPECT_EQ(st.code(), StatusCode::kNotLeader);
  EXPECT_EQ(st.message(), "leader is node 2 at 127.0.0.1:20162");
  st = AdminResult(store::NotLeaderResponse(1, 0), addrs);
  EXPECT_EQ(st.message(), "leader is node 0 at ?");
  EXPECT_TRUE(AdminResult(region::RegionResponse(), addrs).ok());
  EXPECT_EQ(AdminResult(store::ServerBusyResponse("handing over", 10), addrs).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(AdminResult(store::InvalidRequestResponse("node is already a voter"), addrs).message(),
            "node is already a voter");
  EXPECT_EQ(AdminResult(store::TimeoutResponse("slow"), addrs).code(), StatusCode::kTimedOut);
}

}  // namespace
}  // namespace micedb::server
