#include "store/identity.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"

namespace micedb::store {
namespace {

TEST(StoreIdent, CreatedOnceThenKeptAndBoundToItsNode) {
  storage::MemEngine engine;
  auto a = LoadOrCreateIdent(&engine, NodeId(2), 77, 1234);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->node_id(), 2u);
  EXPECT_EQ(a->cluster_id(), 77u);
  EXPECT_EQ(a->incarnation(), 1234u);
  // A later start keeps what was written, whatever it is given.
  auto b = LoadOrCreateIdent(&engine, NodeId(2), 99, 5678);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->cluster_id(), 77u);
  EXPECT_EQ(b->incarnation(), 1234u);
  auto other = LoadOrCreateIdent(&engine, NodeId(3), 77, 1);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("belongs to node 2"), std::string::npos);
}

TEST(StoreIdent, InitialMembersAgreeOnTheClusterIdWhateverTheOrder) {
  std::vector<std::pair<NodeId, std::string>> p1{{NodeId(1), "h:1"}, {NodeId(2), "h:2"}};
  std::vector<std::pair<NodeId, std::string>> p2{{NodeId(2), "h:2"}, {NodeId(1), "h:1"}};
  std::vector<std::pair<NodeId, std::string>> p3{{NodeId(1), "h:1"}, {NodeId(2), "h:3"}};
  EXPECT_EQ(ClusterIdFromPeers(p1), ClusterIdFromPeers(p2));
  EXPECT_NE(ClusterIdFromPeers(p1), ClusterIdFromPeers(p3));
  EXPECT_NE(ClusterIdFromPeers(p1), 0u);
}

TEST(PeerIdentities, APeerIsRememberedAndAnotherIncarnationOfItRefused) {
  storage::MemEngine engine;
  StoreIdent self;
  self.set_node_id(1);
  self.set_cluster_id(77);
  self.set_incarnation(10);
  {
    PeerIdentities ids(&engine, self);
    ASSERT_TRUE(ids.Load().ok());
    EXPECT_FALSE(ids.Check(NodeId(2), 77, 500).has_value());
    EXPECT_FALSE(ids.Check(NodeId(2), 77, 500).has_value());
    EXPECT_FALSE(ids.Check(NodeId(3), 0, 600).has_value());  // a node that joined
  }
  // Remembered across restarts.
  PeerIdentities ids(&engine, self);
  ASSERT_TRUE(ids.Load().ok());
  auto refused = ids.Check(NodeId(2), 77, 501);
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->find("node 2 has a new data directory"), std::string::npos) << *refused;
  EXPECT_NE(refused->find("micedb node remove --id 2"), std::string::npos);
  EXPECT_TRUE(ids.Check(NodeId(3), 0, 601).has_value());
  EXPECT_FALSE(ids.Check(NodeId(3), 0, 600).has_value());
  // Another cluster is refused; senders from before identities (0) are let in.
  auto foreign = ids.Check(NodeId(4), 78, 700);
  ASSERT_TRUE(foreign.has_value());
  EXPECT_NE(foreign->find("cluster"), std::string::npos);
  EXPECT_FALSE(ids.Check(NodeId(5), 0, 0).has_value());
}

}  // namespace
}  // namespace micedb::store
