// Merging two regions (docs/sharding.md §2) over three in-process stores: the source freezes
// (PrepareMerge), the target takes its range over (CommitMerge) on every replica -- a replica
// that had not applied the freeze catches the source up from its own log, one that missed the
// merge is covered by the target's snapshot -- or the source thaws (RollbackMerge) once the
// target's epoch moved on without it. No data moves and none is lost.
#include <gtest/gtest.h>

#include "store/keys.h"
#include "store/merge.h"
#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

constexpr uint64_t kLeft = 1;
constexpr uint64_t kRight = 10;

class MergeTest : public RegionsTest {
 protected:
  // Three stores; region 1 split at "rm" into 1 and 10, with a, q, z and one key written on
  // each half after the split. *slow is a follower of region 10.
  void StartSplit(uint64_t* slow = nullptr) {
    uint64_t leader = 0, s = 0;
    ASSERT_NO_FATAL_FAILURE(StartWithData(&leader, &s));
    ASSERT_FALSE(Split(leader, "rm", kRight).has_error());
    ASSERT_TRUE(Eventually([&] {
      for (uint64_t id : {1, 2, 3}) {
        auto r = DescOf(cluster_->GetStore(id), kRight);
        if (!r || r->conf_state().voters_size() != 3) return false;
      }
      return true;
    }));
    ASSERT_TRUE(PutOn(kLeft, 2, "b", "left").ok());
    ASSERT_TRUE(PutOn(kRight, 2, "x", "right").ok());
    if (slow != nullptr) *slow = WaitLeaderOf(kRight, {1, 2, 3}) % 3 + 1;
  }

  // Runs an admin request on `region`'s leader, following leadership changes.
  region::RegionResponse AdminOn(uint64_t region, const region::RegionRequest& req,
                                 const std::vector<uint64_t>& live = {1, 2, 3}) {
    for (int attempt = 0;; ++attempt) {
      const uint64_t leader = WaitLeaderOf(region, live);
      if (leader == 0) return ServerBusyResponse("no leader", 0);
      auto r =
          Await([&](const ResponseCallback& cb) { cluster_->GetStore(leader)->RunAdmin(req, cb); });
      if (!r.has_error() || attempt == 50 || !r.error().has_not_leader()) return r;
      std::this_thread::sleep_for(10ms);
    }
  }

  // A write proposed at `region`'s leader, answered as it is (no retry).
  region::RegionResponse RawPut(uint64_t region, uint64_t version, const std::string& cmd) {
    const uint64_t leader = WaitLeaderOf(region, {1, 2, 3});
    return Await([&](const ResponseCallback& cb) {
      cluster_->GetStore(leader)->Propose(On(region, version, cmd), cb);
    });
  }

  // The source's leader freezes it for a merge into its own replica's view of the target.
  region::RegionResponse Prepare(uint64_t source, uint64_t target,
                                 const std::vector<uint64_t>& live = {1, 2, 3}) {
    const uint64_t leader = WaitLeaderOf(source, live);
    auto s = DescOf(cluster_->GetStore(leader), source);
    auto t = DescOf(cluster_->GetStore(leader), target);
    if (!s || !t) return RegionNotFoundResponse(source);
    return AdminOn(source, PrepareMergeRequest(*s, *t), live);
  }

  region::RegionResponse Commit(const RegionDescriptor& frozen,
                                const std::vector<uint64_t>& live = {1, 2, 3}) {
    region::RegionRequest req = AdminRequestFor(frozen.merging().target());
    *req.mutable_admin()->mutable_commit_merge()->mutable_source() = frozen;
    return AdminOn(frozen.merging().target().id(), req, live);
  }

  region::RegionResponse Rollback(const RegionDescriptor& frozen,
                                  const std::vector<uint64_t>& live = {1, 2, 3}) {
    region::RegionRequest req = AdminRequestFor(frozen);
    req.mutable_admin()->mutable_rollback_merge()->set_index(frozen.merging().index());
    return AdminOn(frozen.id(), req, live);
  }

  // The next step of `source`'s merge as its leader's store sees it (Node::CheckMerges).
  MergeStep StepAtLeader(uint64_t source, uint64_t target, bool waited_too_long,
                         const std::vector<uint64_t>& live) {
    Store* s = cluster_->GetStore(WaitLeaderOf(source, live));
    auto si = s->RegionInfoOf(RegionId(source));
    auto ti = s->RegionInfoOf(RegionId(target));
    if (!si) return {};
    return NextMergeStep(*si, ti ? &*ti : nullptr, waited_too_long);
  }

  // Every listed store has applied `region` up to `index`.
  bool AppliedEverywhere(uint64_t region, uint64_t index, const std::vector<uint64_t>& ids) {
    return Eventually([&] {
      for (uint64_t id : ids) {
        auto info = cluster_->GetStore(id)->RegionInfoOf(RegionId(region));
        if (!info || info->applied_index < index) return false;
      }
      return true;
    });
  }

  // Every listed store holds region 1 over the whole keyspace at `version`, and no region 10.
  bool MergedEverywhere(uint64_t version, const std::vector<uint64_t>& ids) {
    return Eventually([&] {
      for (uint64_t id : ids) {
        auto d = DescOf(cluster_->GetStore(id), kLeft);
        if (!d || !d->start_key().empty() || !d->end_key().empty() ||
            d->epoch().version() != version || DescOf(cluster_->GetStore(id), kRight)) {
          return false;
        }
      }
      return true;
    });
  }

  void ExpectData(uint64_t at, uint64_t version) {
    for (auto [k, v] :
         {std::pair{"a", "a"}, {"b", "left"}, {"q", "q"}, {"x", "right"}, {"z", "z"}}) {
      EXPECT_EQ(GetOn(at, kLeft, version, k).value_or("?"), v) << "node " << at << " key " << k;
    }
  }
};

TEST_F(MergeTest, TheTargetTakesTheFrozenSourceOverOnEveryReplica) {
  ASSERT_NO_FATAL_FAILURE(StartSplit());
  auto prepared = Prepare(kRight, kLeft);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  ASSERT_EQ(prepared.admin().regions_size(), 1);
  const RegionDescriptor frozen = prepared.admin().regions(0);
  ASSERT_TRUE(frozen.has_merging());
  EXPECT_EQ(frozen.epoch().version(), 3u);
  EXPECT_EQ(frozen.merging().target().id(), kLeft);

  // Frozen: neither writes nor reads run, with the old epoch or the new one; no split either.
  auto write = RawPut(kRight, 3, "Py=no");
  EXPECT_TRUE(write.error().has_server_busy()) << write.DebugString();
  EXPECT_NE(write.error().message().find("merging into region 1"), std::string::npos);
  EXPECT_TRUE(RawPut(kRight, 2, "Py=no").error().has_epoch_not_match());
  const uint64_t leader = WaitLeaderOf(kRight, {1, 2, 3});
  auto read = Await([&](const ResponseCallback& cb) {
    cluster_->GetStore(leader)->ReadLinearizable(On(kRight, 3, "Gx"), cb);
  });
  EXPECT_TRUE(read.error().has_server_busy()) << read.DebugString();
  auto lease_read = cluster_->GetStore(leader)->ReadUnderLease(On(kRight, 3, "Gx"));
  EXPECT_TRUE(!lease_read || lease_read->error().has_server_busy());
  region::RegionRequest split = AdminRequestFor(frozen);
  split.mutable_admin()->mutable_split()->set_split_key("rz");
  split.mutable_admin()->mutable_split()->set_new_region_id(11);
  EXPECT_TRUE(AdminOn(kRight, split).has_error());
  // Its rollback is refused while the target has not moved on: the merge may still commit.
  auto early = Rollback(frozen);
  ASSERT_TRUE(early.has_error());
  EXPECT_NE(early.error().message().find("may still commit"), std::string::npos);

  ASSERT_TRUE(AppliedEverywhere(kRight, frozen.merging().index(), {1, 2, 3}));
  auto committed = Commit(frozen);
  ASSERT_FALSE(committed.has_error()) << committed.DebugString();
  ASSERT_TRUE(MergedEverywhere(4, {1, 2, 3}));
  for (uint64_t id : {1, 2, 3}) {
    ExpectNoOverlap(id);
    ExpectData(id, 4);
  }
  // The merged region takes writes on both old halves; the old epochs are refused.
  ASSERT_TRUE(PutOn(kLeft, 4, "y", "merged").ok());
  ASSERT_TRUE(PutOn(kLeft, 4, "c", "merged").ok());
  EXPECT_TRUE(RawPut(kLeft, 2, "Pd=no").error().has_epoch_not_match());
  // A second commit of the same freeze is refused (the target's epoch moved on).
  auto again = Commit(frozen);
  ASSERT_TRUE(again.has_error());
  EXPECT_TRUE(again.error().has_epoch_not_match()) << again.DebugString();

  // After a restart: still merged, the source does not come back, the data is all there.
  cluster_->StopNode(2);
  cluster_->StartNode(2, {});
  ASSERT_TRUE(MergedEverywhere(4, {2}));
  ExpectData(2, 4);
  EXPECT_EQ(GetOn(2, kLeft, 4, "y").value_or("?"), "merged");
  EXPECT_TRUE(cluster_->node(2).engine->Get(Cf::kRaft, TombstoneKey(kRight)).ok());
  EXPECT_FALSE(cluster_->node(2).engine->Get(Cf::kRaft, RegionKey(kRight)).ok());
  EXPECT_EQ(DataHash(cluster_->node(1).engine.get()), DataHash(cluster_->node(2).engine.get()));
}

// A replica holds the source's PrepareMerge in its log but never heard that it committed: the
// target's CommitMerge applies the source's entries from that log first.
TEST_F(MergeTest, AReplicaBehindOnTheSourceCatchesUpFromItsOwnLog) {
  uint64_t slow = 0;
  ASSERT_NO_FATAL_FAILURE(StartSplit(&slow));
  ASSERT_TRUE(PutOn(kRight, 2, "x2", "before").ok());
  const uint64_t leader = WaitLeaderOf(kRight, {1, 2, 3});
  ASSERT_TRUE(AppliedEverywhere(
      kRight, cluster_->GetStore(leader)->RegionInfoOf(RegionId(kRight))->applied_index,
      {1, 2, 3}));
  // The published info may lag by a tick publication (500 ms).
  std::this_thread::sleep_for(600ms);
  const uint64_t base =
      cluster_->GetStore(leader)->RegionInfoOf(RegionId(kRight))->raft.commit.value();
  // From now on the slow store learns no commit index of region 10 past `base`.
  std::atomic<bool> cut{true};
  cluster_->drop = [&](const raft::Message& m) {
    return cut && m.region_id() == kRight && m.to() == slow && m.commit() > base;
  };
  auto prepared = Prepare(kRight, kLeft);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  const RegionDescriptor frozen = prepared.admin().regions(0);
  // The slow store holds the freeze (the leader counts it) but has not applied it.
  ASSERT_TRUE(Eventually([&] {
    auto info = cluster_->GetStore(leader)->RegionInfoOf(RegionId(kRight));
    auto it = info->raft.progress.find(NodeId(slow));
    return it != info->raft.progress.end() && it->second.match.value() >= frozen.merging().index();
  }));
  auto slow_info = cluster_->GetStore(slow)->RegionInfoOf(RegionId(kRight));
  ASSERT_TRUE(slow_info.has_value());
  EXPECT_LT(slow_info->applied_index, frozen.merging().index());
  EXPECT_FALSE(slow_info->descriptor.has_merging());

  auto committed = Commit(frozen);
  ASSERT_FALSE(committed.has_error()) << committed.DebugString();
  ASSERT_TRUE(MergedEverywhere(4, {1, 2, 3}));
  cut = false;
  for (uint64_t id : {1, 2, 3}) {
    ExpectNoOverlap(id);
    ExpectData(id, 4);
    EXPECT_EQ(GetOn(id, kLeft, 4, "x2").value_or("?"), "before");
  }
  EXPECT_EQ(DataHash(cluster_->node(slow).engine.get()),
            DataHash(cluster_->node(leader).engine.get()));
}

// The target splits after the source froze: no CommitMerge can succeed any more, and the
// source's leader, seeing the target's new epoch on its own store, thaws it.
TEST_F(MergeTest, TheSourceThawsOnceTheTargetMovedOnWithoutIt) {
  ASSERT_NO_FATAL_FAILURE(StartSplit());
  auto prepared = Prepare(kRight, kLeft);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  const RegionDescriptor frozen = prepared.admin().regions(0);
  ASSERT_FALSE(Split(WaitLeaderOf(kLeft, {1, 2, 3}), "c", 11, 2, kLeft).has_error());
  // The commit is refused by the epoch, and changes nothing.
  auto refused = Commit(frozen);
  ASSERT_TRUE(refused.has_error());
  EXPECT_TRUE(refused.error().has_epoch_not_match()) << refused.DebugString();
  // Once the source's leader has applied the target's split, the rollback goes through.
  region::RegionResponse thawed;
  ASSERT_TRUE(Eventually([&] {
    thawed = Rollback(frozen);
    return !thawed.has_error();
  })) << thawed.DebugString();
  ASSERT_TRUE(Eventually([&] {
    for (uint64_t id : {1, 2, 3}) {
      auto d = DescOf(cluster_->GetStore(id), kRight);
      if (!d || d->has_merging() || d->epoch().version() != 4) return false;
    }
    return true;
  }));
  ASSERT_TRUE(PutOn(kRight, 4, "y", "thawed").ok());
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(GetOn(id, kRight, 4, "x").value_or("?"), "right");
    EXPECT_EQ(GetOn(id, kRight, 4, "y").value_or("?"), "thawed");
    ExpectNoOverlap(id);
  }
}

// A member of the source cut off before it took the freeze blocks the commit (its replica of
// the target could not catch the source up). Past the driver's timeout the target refuses the
// merge (its version goes up, so no CommitMerge of that freeze can pass), the source rolls back
// without the member, and the member learns both from the logs once it is back.
TEST_F(MergeTest, AMergeWaitingForACutOffMemberIsRefusedAtTheTargetAndRolledBack) {
  uint64_t slow = 0;
  ASSERT_NO_FATAL_FAILURE(StartSplit(&slow));
  std::atomic<bool> cut{true};
  cluster_->drop = [&](const raft::Message& m) {
    return cut && (m.to() == slow || m.from() == slow);
  };
  const std::vector<uint64_t> live = AllBut(slow);
  auto prepared = Prepare(kRight, kLeft, live);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  const RegionDescriptor frozen = prepared.admin().regions(0);
  ASSERT_TRUE(AppliedEverywhere(kRight, frozen.merging().index(), live));

  // The member without the freeze holds the merge; past the timeout the target refuses it.
  EXPECT_EQ(StepAtLeader(kRight, kLeft, false, live).kind, MergeStep::Kind::kWait);
  MergeStep refuse = StepAtLeader(kRight, kLeft, true, live);
  ASSERT_EQ(refuse.kind, MergeStep::Kind::kRefuse);
  ASSERT_TRUE(refuse.request.admin().has_refuse_merge());
  EXPECT_EQ(refuse.request.header().region_id(), kLeft);
  auto refused = AdminOn(kLeft, refuse.request, live);
  ASSERT_FALSE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.admin().regions(0).epoch().version(), 3u);
  // Once only: the same request again no longer matches the target's epoch; nor does a commit.
  EXPECT_TRUE(AdminOn(kLeft, refuse.request, live).error().has_epoch_not_match());
  auto commit = Commit(frozen, live);
  ASSERT_TRUE(commit.has_error());
  EXPECT_TRUE(commit.error().has_epoch_not_match()) << commit.DebugString();

  // The source's leader's store applied the refusal from its log: the driver rolls back.
  MergeStep back;
  ASSERT_TRUE(Eventually([&] {
    back = StepAtLeader(kRight, kLeft, true, live);
    return back.kind == MergeStep::Kind::kRollback;
  }));
  region::RegionResponse thawed;
  ASSERT_TRUE(Eventually([&] {
    thawed = Rollback(frozen, live);
    return !thawed.has_error();
  })) << thawed.DebugString();
  ASSERT_TRUE(PutOn(kRight, 4, "y", "thawed", live).ok());
  ASSERT_TRUE(PutOn(kLeft, 3, "c", "after", live).ok());

  // Back, the member applies the freeze, the rollback and the refusal from the logs.
  cut = false;
  ASSERT_TRUE(Eventually([&] {
    for (uint64_t id : {1, 2, 3}) {
      auto r = DescOf(cluster_->GetStore(id), kRight);
      auto l = DescOf(cluster_->GetStore(id), kLeft);
      if (!r || r->has_merging() || r->epoch().version() != 4 || !l || l->epoch().version() != 3) {
        return false;
      }
    }
    return true;
  }));
  ASSERT_TRUE(Eventually([&] { return GetOn(slow, kRight, 4, "y").value_or("?") == "thawed"; }));
  EXPECT_EQ(GetOn(slow, kLeft, 3, "c").value_or("?"), "after");
  EXPECT_EQ(GetOn(slow, kRight, 4, "x").value_or("?"), "right");
  for (uint64_t id : {1, 2, 3}) ExpectNoOverlap(id);
}

TEST_F(MergeTest, MergesThatCannotBeAreRefused) {
  ASSERT_NO_FATAL_FAILURE(StartSplit());
  ASSERT_FALSE(Split(WaitLeaderOf(kRight, {1, 2, 3}), "ry", 11, 2, kRight).has_error());
  ASSERT_TRUE(Eventually([&] {
    for (uint64_t id : {1, 2, 3}) {
      auto d = DescOf(cluster_->GetStore(id), 11);
      if (!d || d->conf_state().voters_size() != 3) return false;
    }
    return true;
  }));
  // Region 11 [ry, +inf) is no neighbour of region 1 [, rm).
  auto far = Prepare(11, kLeft);
  ASSERT_TRUE(far.has_error());
  EXPECT_NE(far.error().message().find("not neighbours"), std::string::npos) << far.DebugString();
  // Nor does a region merge into itself.
  EXPECT_TRUE(Prepare(kLeft, kLeft).has_error());
  // A commit for a source that is not frozen is refused.
  auto d = DescOf(cluster_->GetStore(1), kRight);
  ASSERT_TRUE(d.has_value());
  region::RegionRequest commit = AdminRequestFor(*DescOf(cluster_->GetStore(1), kLeft));
  *commit.mutable_admin()->mutable_commit_merge()->mutable_source() = *d;
  EXPECT_TRUE(AdminOn(kLeft, commit).has_error());
  // Nothing changed.
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_FALSE(DescOf(cluster_->GetStore(id), kRight)->has_merging());
    EXPECT_EQ(DescOf(cluster_->GetStore(id), kLeft)->epoch().version(), 2u);
  }
  // A frozen region takes no membership change.
  auto prepared = Prepare(kRight, kLeft);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  region::RegionRequest remove = AdminRequestFor(prepared.admin().regions(0));
  remove.mutable_admin()->mutable_change_peer()->set_op(region::ChangePeer::REMOVE);
  remove.mutable_admin()->mutable_change_peer()->set_node_id(WaitLeaderOf(kRight, {1, 2, 3}) % 3 +
                                                             1);
  EXPECT_TRUE(AdminOn(kRight, remove).has_error());
  EXPECT_EQ(DescOf(cluster_->GetStore(1), kRight)->conf_state().voters_size(), 3);
}

// A store cut off after it took the freeze misses the merge and the target's log past it: the
// target's snapshot covers the source's range, and the source's replica there goes first.
TEST_F(MergeTest, AStoreThatMissedTheMergeIsCoveredByTheTargetsSnapshot) {
  cluster_->gc_threshold = 8;
  cluster_->gc_keep = 2;
  cluster_->gc_max_lag = 4;
  uint64_t slow = 0;
  ASSERT_NO_FATAL_FAILURE(StartSplit(&slow));
  auto prepared = Prepare(kRight, kLeft);
  ASSERT_FALSE(prepared.has_error()) << prepared.DebugString();
  const RegionDescriptor frozen = prepared.admin().regions(0);
  ASSERT_TRUE(AppliedEverywhere(kRight, frozen.merging().index(), {1, 2, 3}));
  std::atomic<bool> cut{true};
  cluster_->drop = [&](const raft::Message& m) { return cut && m.to() == slow; };
  const std::vector<uint64_t> live = AllBut(slow);
  ASSERT_FALSE(Commit(frozen, live).has_error());
  ASSERT_TRUE(MergedEverywhere(4, live));
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(PutOn(kLeft, 4, fmt::format("n{}", i), "N", live).ok());
  }
  cut = false;
  ASSERT_TRUE(MergedEverywhere(4, {1, 2, 3}));
  ExpectNoOverlap(slow);
  ExpectData(slow, 4);
  EXPECT_EQ(GetOn(slow, kLeft, 4, "n29").value_or("?"), "N");
  EXPECT_GE(cluster_->GetStore(slow)->counters().snapshots_applied.load(), 1u);
  EXPECT_TRUE(cluster_->node(slow).engine->Get(Cf::kRaft, TombstoneKey(kRight)).ok());
}

}  // namespace
}  // namespace micedb::store::test
