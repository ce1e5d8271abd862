#include "coordinator/meta_state_machine.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

class MetaStateMachineTest : public ::testing::Test {
 protected:
  MetaStateMachineTest() {
    region_.set_id(store::kMetaRegionId);
    region_.set_start_key(std::string(store::kMetaRangeStart));
    region_.set_end_key(std::string(store::kMetaRangeEnd));
  }

  // Applies the commands as one round and writes it.
  std::vector<MetaResult> ApplyAll(const std::vector<MetaCommand>& cmds) {
    storage::WriteBatch wb;
    auto round = sm_.BeginRound(region_, &engine_, &wb);
    std::vector<MetaResult> out;
    out.reserve(cmds.size());
    for (const auto& c : cmds) out.push_back(round->ApplyMeta(c, LogIndex(++index_)));
    round.reset();
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return out;
  }
  MetaResult Apply(const MetaCommand& c) { return ApplyAll({c})[0]; }
  MetaResult Read(const MetaCommand& c) { return sm_.ReadMeta(region_, &engine_, nullptr, c); }

  static MetaCommand Region(uint64_t id, std::string start, std::string end, uint64_t version,
                            uint64_t conf_ver = 1, uint64_t leader = 0) {
    MetaCommand c;
    RegionMeta* r = c.mutable_put_region()->mutable_region();
    r->mutable_region()->set_id(id);
    r->mutable_region()->set_start_key(std::move(start));
    r->mutable_region()->set_end_key(std::move(end));
    r->mutable_region()->mutable_epoch()->set_version(version);
    r->mutable_region()->mutable_epoch()->set_conf_ver(conf_ver);
    r->set_leader(leader);
    return c;
  }
  static MetaCommand ByKey(std::string key) {
    MetaCommand c;
    c.mutable_get_region_by_key()->set_key(std::move(key));
    return c;
  }
  // The id of the region holding `key`, 0 when none.
  uint64_t RegionOf(std::string key) {
    MetaResult r = Read(ByKey(std::move(key)));
    return r.regions_size() == 0 ? 0 : r.regions(0).region().id();
  }
  static MetaCommand Alloc(uint64_t n) {
    MetaCommand c;
    c.mutable_alloc_ids()->set_count(n);
    return c;
  }

  storage::MemEngine engine_;
  MetaStateMachine sm_;
  store::RegionDescriptor region_;
  uint64_t index_ = 0;
};

TEST_F(MetaStateMachineTest, BootstrapOnceThenTheFirstClusterStays) {
  MetaCommand b;
  b.mutable_bootstrap()->mutable_cluster()->set_cluster_id(42);
  b.mutable_bootstrap()->set_first_id(1000);
  MetaResult r = Apply(b);
  EXPECT_TRUE(r.state().bootstrapped());
  EXPECT_EQ(r.state().cluster().cluster_id(), 42u);
  EXPECT_EQ(r.state().id_high_water(), 1000u);
  b.mutable_bootstrap()->mutable_cluster()->set_cluster_id(43);
  r = Apply(b);
  EXPECT_EQ(r.state().cluster().cluster_id(), 42u);
  MetaCommand get;
  get.mutable_get_state();
  EXPECT_EQ(Read(get).state().cluster().cluster_id(), 42u);
}

TEST_F(MetaStateMachineTest, IdsAreNeverHandedOutTwice) {
  std::vector<MetaResult> rs = ApplyAll({Alloc(10), Alloc(5)});
  EXPECT_EQ(rs[0].ids_end(), 11u);  // [1, 11)
  EXPECT_EQ(rs[1].ids_end(), 16u);  // [11, 16), seeing the same round's earlier write
  EXPECT_EQ(Apply(Alloc(1)).ids_end(), 17u);
  EXPECT_FALSE(Apply(Alloc(0)).error().empty());
  EXPECT_FALSE(Apply(Alloc(kMaxAllocIds + 1)).error().empty());
  // A store registered under an id of its own raises the mark above it.
  MetaCommand s;
  s.mutable_put_store()->mutable_store()->set_id(100);
  Apply(s);
  EXPECT_EQ(Apply(Alloc(1)).ids_end(), 102u);
}

TEST_F(MetaStateMachineTest, TsoBoundAndSafePointOnlyRise) {
  MetaCommand t;
  t.mutable_save_tso_bound()->set_bound_ms(5000);
  EXPECT_EQ(Apply(t).state().tso_bound_ms(), 5000);
  t.mutable_save_tso_bound()->set_bound_ms(4000);
  EXPECT_EQ(Apply(t).state().tso_bound_ms(), 5000);
  MetaCommand g;
  g.mutable_set_gc_safe_point()->set_safe_point(7);
  Apply(g);
  g.mutable_set_gc_safe_point()->set_safe_point(3);
  EXPECT_EQ(Apply(g).state().gc_safe_point(), 7u);
}

TEST_F(MetaStateMachineTest, SettingsAreSetAndDeleted) {
  MetaCommand s;
  s.mutable_set_setting()->set_name("max-replicas");
  s.mutable_set_setting()->set_value("3");
  EXPECT_EQ(Apply(s).state().settings().at("max-replicas"), "3");
  s.mutable_set_setting()->set_value("");
  EXPECT_EQ(Apply(s).state().settings().count("max-replicas"), 0u);
  s.mutable_set_setting()->set_name("");
  EXPECT_FALSE(Apply(s).error().empty());
}

TEST_F(MetaStateMachineTest, DirectoryFindsTheRegionOfAKey) {
  ApplyAll({Region(1, "", "m", 2), Region(3, "m", "t", 2), Region(4, "t", "", 2)});
  EXPECT_EQ(RegionOf(""), 1u);
  EXPECT_EQ(RegionOf("a"), 1u);
  EXPECT_EQ(RegionOf("m"), 3u);  // a region's end is exclusive
  EXPECT_EQ(RegionOf("s\xff"), 3u);
  EXPECT_EQ(RegionOf("t"), 4u);
  EXPECT_EQ(RegionOf("\xff\xff"), 4u);
  MetaCommand scan;
  scan.mutable_scan_regions()->set_start_key("b");
  scan.mutable_scan_regions()->set_end_key("t");
  MetaResult r = Read(scan);
  ASSERT_EQ(r.regions_size(), 2);
  EXPECT_EQ(r.regions(0).region().id(), 1u);
  EXPECT_EQ(r.regions(1).region().id(), 3u);
  scan.mutable_scan_regions()->set_end_key("");
  scan.mutable_scan_regions()->set_limit(2);
  EXPECT_EQ(Read(scan).regions_size(), 2);
  MetaCommand by_id;
  by_id.mutable_get_region_by_id()->set_id(3);
  EXPECT_EQ(Read(by_id).regions(0).region().start_key(), "m");
}

TEST_F(MetaStateMachineTest, AGapInTheDirectoryIsNotFilledByANeighbour) {
  ApplyAll({Region(1, "", "g", 2), Region(4, "t", "", 2)});
  EXPECT_EQ(RegionOf("h"), 0u);
  EXPECT_EQ(RegionOf("t"), 4u);
}

TEST_F(MetaStateMachineTest, SplitReplacesTheOlderRegionAndStaleReportsAreRefused) {
  Apply(Region(1, "", "", 1, 1, /*leader=*/7));
  EXPECT_EQ(RegionOf("x"), 1u);
  // Region 1 split at "m": 1 keeps [, m), 5 takes [m, ), both at version 2. The new half
  // reports first: the old whole-range record overlaps it and is older, so it goes.
  EXPECT_FALSE(Apply(Region(5, "m", "", 2)).stale());
  EXPECT_EQ(RegionOf("x"), 5u);
  EXPECT_EQ(RegionOf("a"), 0u);  // until region 1 reports its new range
  EXPECT_FALSE(Apply(Region(1, "", "m", 2)).stale());
  EXPECT_EQ(RegionOf("a"), 1u);
  EXPECT_EQ(RegionOf("x"), 5u);
  // A late report of the old range (version 1) is stale and changes nothing.
  EXPECT_TRUE(Apply(Region(1, "", "", 1)).stale());
  EXPECT_EQ(RegionOf("x"), 5u);
  // So is an older conf_ver of the same region.
  Apply(Region(5, "m", "", 2, 3));
  EXPECT_TRUE(Apply(Region(5, "m", "", 2, 2)).stale());
  // The same epoch again (a new leader) is taken.
  MetaResult r = Apply(Region(5, "m", "", 2, 3, /*leader=*/9));
  EXPECT_FALSE(r.stale());
  MetaCommand by_id;
  by_id.mutable_get_region_by_id()->set_id(5);
  EXPECT_EQ(Read(by_id).regions(0).leader(), 9u);
}

TEST_F(MetaStateMachineTest, ATombstoneStoreStaysOne) {
  MetaCommand s;
  s.mutable_put_store()->mutable_store()->set_id(4);
  s.mutable_put_store()->mutable_store()->set_peer_addr("a:1");
  EXPECT_TRUE(Apply(s).error().empty());
  s.mutable_put_store()->mutable_store()->set_state(STORE_TOMBSTONE);
  EXPECT_TRUE(Apply(s).error().empty());
  s.mutable_put_store()->mutable_store()->set_state(STORE_UP);
  EXPECT_FALSE(Apply(s).error().empty());
  MetaCommand get;
  get.mutable_get_stores();
  MetaResult r = Read(get);
  ASSERT_EQ(r.stores_size(), 1);
  EXPECT_EQ(r.stores(0).state(), STORE_TOMBSTONE);
  s.mutable_put_store()->mutable_store()->set_id(0);
  EXPECT_FALSE(Apply(s).error().empty());
}

TEST_F(MetaStateMachineTest, KvCommandsAreRefused) {
  kv::Command c;
  EXPECT_TRUE(sm_.ReadKv(region_, &engine_, nullptr, c).has_error());
  storage::WriteBatch wb;
  EXPECT_TRUE(sm_.BeginRound(region_, &engine_, &wb)->ApplyKv(c, LogIndex(1), true).has_error());
}

}  // namespace
}  // namespace micedb::coordinator
