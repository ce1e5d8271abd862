#include "router/region_cache.h"

#include <gtest/gtest.h>

namespace micedb::router {
namespace {

store::RegionDescriptor Desc(uint64_t id, std::string start, std::string end, uint64_t version,
                             uint64_t conf_ver = 1) {
  store::RegionDescriptor d;
  d.set_id(id);
  d.set_start_key(std::move(start));
  d.set_end_key(std::move(end));
  d.mutable_epoch()->set_version(version);
  d.mutable_epoch()->set_conf_ver(conf_ver);
  return d;
}

TEST(RegionCache, LocatesTheRegionHoldingAKey) {
  RegionCache c;
  EXPECT_FALSE(c.Locate("rk").has_value());
  c.Update(Desc(1, "", "rg", 1), NodeId(1));
  c.Update(Desc(2, "rg", "rp", 1), NodeId(2));
  c.Update(Desc(3, "rt", "", 1));
  EXPECT_EQ(c.Locate("").value().desc.id(), 1u);
  EXPECT_EQ(c.Locate("rf").value().desc.id(), 1u);
  EXPECT_EQ(c.Locate("rg").value().desc.id(), 2u);  // start inclusive
  EXPECT_EQ(c.Locate("rg").value().leader, NodeId(2));
  EXPECT_FALSE(c.Locate("rp").has_value());  // end exclusive, and a gap until rt
  EXPECT_EQ(c.Locate("rzzz").value().desc.id(), 3u);
  EXPECT_FALSE(c.Locate("rzzz").value().leader.valid());
  EXPECT_EQ(c.size(), 3u);
}

TEST(RegionCache, ANewerEpochReplacesWhatItOverlapsAndAnOlderOneIsIgnored) {
  RegionCache c;
  c.Update(Desc(1, "", "", 1), NodeId(3));
  // Region 1 split at "rm": the left half keeps its id with a new version.
  c.Update(Desc(1, "", "rm", 2));
  c.Update(Desc(5, "rm", "", 2));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.Locate("ra").value().desc.id(), 1u);
  EXPECT_EQ(c.Locate("ra").value().leader, NodeId(3));  // kept for the same region
  EXPECT_EQ(c.Locate("rz").value().desc.id(), 5u);
  // A late answer carrying the old whole-range descriptor changes nothing.
  c.Update(Desc(1, "", "", 1));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.Locate("rz").value().desc.id(), 5u);
  // A merge back (version 3) replaces both.
  c.Update(Desc(1, "", "", 3), NodeId(2));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.Locate("rz").value().desc.id(), 1u);
  EXPECT_EQ(c.Locate("rz").value().leader, NodeId(2));
}

TEST(RegionCache, LeadersAndInvalidation) {
  RegionCache c;
  c.Update(Desc(1, "", "", 1));
  c.SetLeader(1, NodeId(2));
  EXPECT_EQ(c.Get(1).value().leader, NodeId(2));
  c.SetLeader(9, NodeId(2));  // unknown region: nothing
  EXPECT_FALSE(c.Get(9).has_value());
  c.Invalidate(1);
  EXPECT_FALSE(c.Locate("ra").has_value());
  EXPECT_EQ(c.size(), 0u);
}

}  // namespace
}  // namespace micedb::router
