// Transactional bodies in the region request envelope (store/apply.h over kv's state machine
// with RegionSteps): the envelope's checks apply to them (epoch, keys outside the region), a
// read is never a log entry, malformed steps are refused and write nothing, and scans and
// range resolves stop at the region's end and say where the next region starts.
#include "txn/region_steps.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"
#include "storage/write_batch.h"
#include "store/apply.h"

namespace micedb::txn {
namespace {

class RegionStepsTest : public ::testing::Test {
 protected:
  RegionStepsTest() : sm_({}, &steps_) {  // NOLINT: members in order
    region_.set_id(5);
    region_.set_start_key(EncodeKey("c"));
    region_.set_end_key(EncodeKey("m"));
    region_.mutable_epoch()->set_version(4);
    region_.mutable_epoch()->set_conf_ver(1);
  }

  region::RegionRequest Request(pb::TxnRequest body, uint64_t version = 4) {
    region::RegionRequest req;
    req.mutable_header()->set_region_id(5);
    req.mutable_header()->mutable_epoch()->set_version(version);
    req.mutable_header()->mutable_epoch()->set_conf_ver(1);
    *req.mutable_txn() = std::move(body);
    return req;
  }
  region::RegionResponse Apply(pb::TxnRequest body, uint64_t version = 4) {
    storage::WriteBatch wb;
    store::Applier applier(&sm_, region_, &engine_, &wb);
    auto resp = applier.Apply(store::EncodeEntry(Request(std::move(body), version)),
                              LogIndex(++index_), true);
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return resp;
  }
  region::RegionResponse Read(pb::TxnRequest body) {
    return store::ServeRead(&sm_, region_, &engine_, nullptr, Request(std::move(body)));
  }
  static pb::TxnRequest Prewrite(std::vector<std::string> keys, uint64_t start_ts) {
    pb::TxnRequest req;
    auto* p = req.mutable_prewrite();
    for (auto& k : keys) {
      auto* m = p->add_mutations();
      m->set_key(k);
      m->set_value("v" + k);
    }
    p->set_primary(keys.front());
    p->set_start_ts(start_ts);
    return req;
  }
  static pb::TxnRequest Commit(std::vector<std::string> keys, uint64_t start_ts,
                               uint64_t commit_ts) {
    pb::TxnRequest req;
    for (auto& k : keys) req.mutable_commit()->add_keys(k);
    req.mutable_commit()->set_start_ts(start_ts);
    req.mutable_commit()->set_commit_ts(commit_ts);
    return req;
  }
  static pb::TxnRequest ScanAt(std::string start, std::string end, uint64_t ts, uint32_t limit) {
    pb::TxnRequest req;
    req.mutable_scan()->set_start(std::move(start));
    req.mutable_scan()->set_end(std::move(end));
    req.mutable_scan()->set_read_ts(ts);
    req.mutable_scan()->set_limit(limit);
    return req;
  }
  size_t Count(storage::Cf cf) {
    size_t n = 0;
    auto it = engine_.NewIterator(cf, {});
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  // The TSO answers when a test says so (async commit's admission needs a sync).
  std::vector<std::function<void(Result<uint64_t>)>> fetches_;
  ConcurrencyManager cm_{
      [this](std::function<void(Result<uint64_t>)> done) { fetches_.push_back(std::move(done)); }};
  RegionSteps steps_{RegionStepsOptions{}, &cm_};
  kv::RegionStateMachine sm_;
  storage::MemEngine engine_;
  store::RegionDescriptor region_;
  uint64_t index_ = 0;
};

TEST_F(RegionStepsTest, APrewriteAndCommitInTheRegionAreReadBackAtTheirTimestamps) {
  auto p = Apply(Prewrite({"d", "e"}, 10));
  ASSERT_FALSE(p.has_error()) << p.error().message();
  EXPECT_EQ(p.txn().prewrite().errors_size(), 0);
  pb::TxnRequest get;
  get.mutable_get()->set_key("e");
  get.mutable_get()->set_read_ts(12);
  auto locked = Read(get);
  ASSERT_TRUE(locked.txn().get().has_locked());
  EXPECT_EQ(locked.txn().get().locked().lock().primary(), "d");
  EXPECT_EQ(locked.txn().get().locked().lock().start_ts(), 10u);
  EXPECT_EQ(locked.txn().get().locked().kind(), pb::KeyError::KEY_IS_LOCKED);
  EXPECT_FALSE(Apply(Commit({"d", "e"}, 10, 11)).txn().commit().has_error());
  auto got = Read(get);
  EXPECT_TRUE(got.txn().get().found());
  EXPECT_EQ(got.txn().get().value(), "ve");
  get.mutable_get()->set_read_ts(10);
  EXPECT_FALSE(Read(get).txn().get().found());
}

TEST_F(RegionStepsTest, TheEnvelopeChecksHoldForTransactionalBodies) {
  // A key outside [c, m): refused before anything runs.
  auto out = Apply(Prewrite({"d", "x"}, 10));
  ASSERT_TRUE(out.has_error());
  EXPECT_TRUE(out.error().has_key_not_in_region());
  EXPECT_EQ(out.error().key_not_in_region().key(), EncodeKey("x"));
  // A stale epoch.
  auto stale = Apply(Prewrite({"d"}, 10), /*version=*/3);
  ASSERT_TRUE(stale.has_error());
  EXPECT_TRUE(stale.error().has_epoch_not_match());
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  // A read is served, never applied from the log; a write is never served as a read.
  auto read_entry = Apply(ScanAt("d", "", 5, 10));
  ASSERT_TRUE(read_entry.has_error());
  auto write_read = Read(Prewrite({"d"}, 10));
  ASSERT_TRUE(write_read.has_error());
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
}

TEST_F(RegionStepsTest, MalformedStepsAreRefusedAndWriteNothing) {
  EXPECT_NE(Apply(Prewrite({"d"}, 0)).txn().invalid(), "");
  EXPECT_NE(Apply(Commit({"d"}, 10, 10)).txn().invalid(), "");
  EXPECT_NE(Apply(pb::TxnRequest()).txn().invalid(), "");
  pb::TxnRequest none;
  none.mutable_prewrite()->set_start_ts(3);
  EXPECT_NE(Apply(none).txn().invalid(), "");
  EXPECT_NE(Read(ScanAt("d", "", 0, 10)).txn().invalid(), "");
  EXPECT_NE(Read(ScanAt("d", "", 5, 1'000'000)).txn().invalid(), "");
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  EXPECT_EQ(Count(storage::Cf::kWrite), 0u);
}

TEST_F(RegionStepsTest, ScansStopAtTheRegionsEndAndNameTheNextStart) {
  ASSERT_EQ(Apply(Prewrite({"c", "d", "f", "l"}, 10)).txn().prewrite().errors_size(), 0);
  ASSERT_FALSE(Apply(Commit({"c", "d", "f", "l"}, 10, 11)).txn().commit().has_error());
  // A scan must start inside the region it was routed to (a stale route would skip keys).
  auto before = Read(ScanAt("a", "", 20, 2));
  ASSERT_TRUE(before.has_error());
  EXPECT_TRUE(before.error().has_key_not_in_region());
  // From the region's start, a page of 2.
  auto first = Read(ScanAt("c", "", 20, 2)).txn().scan();
  ASSERT_EQ(first.pairs_size(), 2);
  EXPECT_EQ(first.pairs(0).key(), "c");
  EXPECT_EQ(first.pairs(1).key(), "d");
  EXPECT_FALSE(first.done());
  auto rest = Read(ScanAt(first.resume_key(), "", 20, 10)).txn().scan();
  ASSERT_EQ(rest.pairs_size(), 2);
  EXPECT_EQ(rest.pairs(1).key(), "l");
  EXPECT_FALSE(rest.done());
  EXPECT_EQ(rest.resume_key(), "m");  // the next region's start
  // A range that ends inside the region is done there.
  auto inside = Read(ScanAt("c", "e", 20, 10)).txn().scan();
  EXPECT_EQ(inside.pairs_size(), 2);
  EXPECT_TRUE(inside.done());
}

TEST_F(RegionStepsTest, ARangeResolveCoversOnlyTheRegionAndGoesOnInPages) {
  ASSERT_EQ(Apply(Prewrite({"c", "d", "f", "l"}, 10)).txn().prewrite().errors_size(), 0);
  pb::TxnRequest resolve;
  resolve.mutable_resolve_lock()->set_start_ts(10);
  resolve.mutable_resolve_lock()->set_start("c");
  resolve.mutable_resolve_lock()->set_commit_ts(15);
  resolve.mutable_resolve_lock()->set_limit(3);
  auto page = Apply(resolve).txn().resolve_lock();
  EXPECT_EQ(page.resolved(), 3u);
  ASSERT_FALSE(page.done());
  resolve.mutable_resolve_lock()->set_start(page.resume_key());
  auto last = Apply(resolve).txn().resolve_lock();
  EXPECT_EQ(last.resolved(), 1u);
  EXPECT_EQ(last.resume_key(), "m");
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  pb::TxnRequest get;
  get.mutable_get()->set_key("l");
  get.mutable_get()->set_read_ts(16);
  EXPECT_EQ(Read(get).txn().get().value(), "vl");
}

TEST_F(RegionStepsTest, GcFindsOldLocksThenCollectsInTheRegionAndRefusesOlderReadsAfter) {
  // d: three versions; e: an old transaction's lock (start 15); f: a newer lock (start 50).
  ASSERT_EQ(Apply(Prewrite({"d"}, 10)).txn().prewrite().errors_size(), 0);
  Apply(Commit({"d"}, 10, 11));
  ASSERT_EQ(Apply(Prewrite({"d"}, 20)).txn().prewrite().errors_size(), 0);
  Apply(Commit({"d"}, 20, 21));
  ASSERT_EQ(Apply(Prewrite({"d"}, 30)).txn().prewrite().errors_size(), 0);
  Apply(Commit({"d"}, 30, 31));
  ASSERT_EQ(Apply(Prewrite({"e"}, 15)).txn().prewrite().errors_size(), 0);
  ASSERT_EQ(Apply(Prewrite({"f"}, 50)).txn().prewrite().errors_size(), 0);
  // The locks of transactions that started below 40, clipped to the region.
  pb::TxnRequest scan;
  scan.mutable_scan_lock()->set_start("c");
  scan.mutable_scan_lock()->set_max_start_ts(40);
  auto locks = Read(scan);
  ASSERT_FALSE(locks.has_error()) << locks.error().message();
  ASSERT_EQ(locks.txn().scan_lock().locks_size(), 1) << locks.txn().DebugString();
  EXPECT_EQ(locks.txn().scan_lock().locks(0).key(), "e");
  EXPECT_EQ(locks.txn().scan_lock().locks(0).start_ts(), 15u);
  EXPECT_FALSE(locks.txn().scan_lock().done());
  EXPECT_EQ(locks.txn().scan_lock().resume_key(), "m");  // the next region's start
  // Page by page: a limit of 1 lock looked at.
  scan.mutable_scan_lock()->set_limit(1);
  locks = Read(scan);
  ASSERT_EQ(locks.txn().scan_lock().locks_size(), 1);
  EXPECT_EQ(locks.txn().scan_lock().resume_key(), std::string("e\0", 2));
  // Collection at 35 keeps what reads at 35 and above see.
  const size_t before = Count(storage::Cf::kWrite);
  pb::TxnRequest gc;
  gc.mutable_gc()->set_start("c");
  gc.mutable_gc()->set_safe_point(35);
  auto collected = Apply(gc);
  ASSERT_FALSE(collected.has_error()) << collected.error().message();
  EXPECT_EQ(collected.txn().gc().deleted(), 2u);  // d@11 and d@21
  EXPECT_EQ(Count(storage::Cf::kWrite), before - 2);
  EXPECT_EQ(collected.txn().gc().resume_key(), "m");
  pb::TxnRequest get;
  get.mutable_get()->set_key("d");
  get.mutable_get()->set_read_ts(36);
  EXPECT_EQ(Read(get).txn().get().value(), "vd");
  // Reads below the safe point are refused now, with a message that says why.
  get.mutable_get()->set_read_ts(25);
  auto old = Read(get);
  ASSERT_TRUE(old.has_txn());
  EXPECT_NE(old.txn().invalid().find("snapshot too old"), std::string::npos) << old.txn().invalid();
  EXPECT_EQ(steps_.safe_point(), 35u);
  // And a prewrite of a transaction that started below it, before it is proposed.
  pb::TxnRequest late = Prewrite({"g"}, 30);
  store::TxnRefusal refused;
  EXPECT_EQ(sm_.BeforeProposeTxn(region_, 1, &late, &refused), nullptr);
  EXPECT_NE(refused.message.find("GC safe point"), std::string::npos) << refused.message;
  // At the safe point itself too: its rollback records may be gone.
  late = Prewrite({"g"}, 35);
  refused = {};
  sm_.BeforeProposeTxn(region_, 1, &late, &refused);
  EXPECT_FALSE(refused.message.empty());
  // Malformed: no safe point.
  gc.mutable_gc()->set_safe_point(0);
  EXPECT_FALSE(Apply(gc).txn().invalid().empty());
}

TEST_F(RegionStepsTest, ADuplicateOfAnAppliedOnePhaseCommitAnswersItsCommitTs) {
  pb::TxnRequest one = Prewrite({"d", "e"}, 10);
  one.mutable_prewrite()->set_one_pc_commit_ts(12);
  auto first = Apply(one);
  ASSERT_FALSE(first.has_error()) << first.error().message();
  EXPECT_EQ(first.txn().prewrite().one_pc_commit_ts(), 12u);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  // The same again, turned into a plain prewrite by a leader that could not admit it: no
  // lock, and the answer says when the transaction committed.
  auto again = Apply(Prewrite({"d", "e"}, 10));
  EXPECT_EQ(again.txn().prewrite().errors_size(), 0);
  EXPECT_EQ(again.txn().prewrite().one_pc_commit_ts(), 12u);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  // A malformed one (commit_ts not above start_ts) is refused, not turned into a prewrite.
  pb::TxnRequest bad = Prewrite({"f"}, 20);
  bad.mutable_prewrite()->set_one_pc_commit_ts(20);
  store::TxnRefusal refused;
  sm_.BeforeProposeTxn(region_, 1, &bad, &refused);
  EXPECT_EQ(bad.prewrite().one_pc_commit_ts(), 20u);
  EXPECT_FALSE(Apply(bad).txn().invalid().empty());
}

TEST_F(RegionStepsTest, AnAsyncPrewriteGetsItsMinCommitTsFromTheLeader) {
  pb::TxnRequest p = Prewrite({"d", "e"}, 10);
  p.mutable_prewrite()->set_use_async_commit(true);
  p.mutable_prewrite()->add_secondaries("e");
  p.mutable_prewrite()->set_min_commit_ts(5000);  // the client's value is never taken
  store::TxnRefusal refused;
  // Not synced for this leadership yet: made a two-phase prewrite.
  pb::TxnRequest first = p;
  EXPECT_EQ(sm_.BeforeProposeTxn(region_, 1, &first, &refused), nullptr);
  EXPECT_FALSE(first.prewrite().use_async_commit());
  EXPECT_EQ(first.prewrite().min_commit_ts(), 0u);
  EXPECT_EQ(first.prewrite().secondaries_size(), 0);
  EXPECT_EQ(steps_.one_pc_counters().async_fallbacks.load(), 1u);
  ASSERT_EQ(fetches_.size(), 1u);
  fetches_[0](uint64_t{40});
  fetches_.clear();
  pb::TxnRequest second = p;
  auto release = sm_.BeforeProposeTxn(region_, 1, &second, &refused);
  ASSERT_NE(release, nullptr);
  EXPECT_TRUE(second.prewrite().use_async_commit());
  EXPECT_EQ(second.prewrite().min_commit_ts(), 41u);
  // On its way through raft: a read at or above 41 waits, one below is served.
  pb::TxnRequest get;
  get.mutable_get()->set_key("d");
  get.mutable_get()->set_read_ts(41);
  EXPECT_TRUE(Read(get).error().has_server_busy());
  auto applied = Apply(second);
  release();
  ASSERT_FALSE(applied.has_error()) << applied.error().message();
  EXPECT_EQ(applied.txn().prewrite().min_commit_ts(), 41u);
  auto at41 = Read(get);
  ASSERT_TRUE(at41.txn().get().has_locked()) << at41.DebugString();
  EXPECT_TRUE(at41.txn().get().locked().lock().use_async_commit());
  EXPECT_EQ(at41.txn().get().locked().lock().min_commit_ts(), 41u);
  get.mutable_get()->set_read_ts(40);
  EXPECT_FALSE(Read(get).txn().get().has_locked());  // it commits above 40
  // A duplicate admitted again (now above the read at 41) answers the lock in place.
  pb::TxnRequest dup = p;
  release = sm_.BeforeProposeTxn(region_, 1, &dup, &refused);
  ASSERT_NE(release, nullptr);
  EXPECT_EQ(dup.prewrite().min_commit_ts(), 42u);
  EXPECT_EQ(Apply(dup).txn().prewrite().min_commit_ts(), 41u);
  release();
  // A client's bound below what the leader would compute (max_ts is 41): two phases.
  pb::TxnRequest bounded = Prewrite({"g"}, 10);
  bounded.mutable_prewrite()->set_use_async_commit(true);
  bounded.mutable_prewrite()->set_max_commit_ts(41);
  EXPECT_EQ(sm_.BeforeProposeTxn(region_, 1, &bounded, &refused), nullptr);
  EXPECT_FALSE(bounded.prewrite().use_async_commit());
  EXPECT_EQ(bounded.prewrite().min_commit_ts(), 0u);
  // The primary's lock names its secondaries in CheckTxnStatus's answer.
  pb::TxnRequest status;
  status.mutable_check_txn_status()->set_primary("d");
  status.mutable_check_txn_status()->set_start_ts(10);
  status.mutable_check_txn_status()->set_current_ts(11);
  auto st = Apply(status).txn().check_txn_status();
  EXPECT_EQ(st.state(), pb::CheckTxnStatusResponse::ALIVE);
  ASSERT_EQ(st.lock().secondaries_size(), 1);
  EXPECT_EQ(st.lock().secondaries(0), "e");
  // CheckSecondaryLocks: e is locked; f never was (and now never will be).
  pb::TxnRequest check;
  check.mutable_check_secondary_locks()->add_keys("e");
  check.mutable_check_secondary_locks()->add_keys("f");
  check.mutable_check_secondary_locks()->set_start_ts(10);
  auto got = Apply(check).txn().check_secondary_locks();
  ASSERT_EQ(got.keys_size(), 2);
  EXPECT_EQ(got.keys(0).state(), pb::SecondaryLock::LOCKED);
  EXPECT_EQ(got.keys(0).lock().min_commit_ts(), 41u);
  EXPECT_EQ(got.keys(1).state(), pb::SecondaryLock::ROLLED_BACK);
  auto late = Apply(Prewrite({"f"}, 10)).txn().prewrite();
  ASSERT_EQ(late.errors_size(), 1);
  EXPECT_EQ(late.errors(0).kind(), pb::KeyError::TXN_ABORTED);
  // Malformed: async with a one-phase commit_ts, or a check without keys.
  pb::TxnRequest both = p;
  both.mutable_prewrite()->set_min_commit_ts(41);
  both.mutable_prewrite()->set_one_pc_commit_ts(50);
  EXPECT_FALSE(Apply(both).txn().invalid().empty());
  check.mutable_check_secondary_locks()->clear_keys();
  EXPECT_FALSE(Apply(check).txn().invalid().empty());
}

TEST(UserRangeTest, RegionBoundsBecomeUserKeyBounds) {
  store::RegionDescriptor d;
  auto r = UserRangeOfRegion(d);  // everything
  EXPECT_FALSE(r.empty);
  EXPECT_EQ(r.start, "");
  EXPECT_FALSE(r.end.has_value());
  d.set_start_key("r");  // raw keys only: no transactional key
  d.set_end_key("s");
  EXPECT_TRUE(UserRangeOfRegion(d).empty);
  d.set_start_key("v");
  d.set_end_key("");
  EXPECT_TRUE(UserRangeOfRegion(d).empty);
  d.set_start_key("r");
  d.set_end_key(EncodeKey("k"));
  r = UserRangeOfRegion(d);
  EXPECT_EQ(r.start, "");
  EXPECT_EQ(r.end, "k");
  d.set_start_key(EncodeKey("k"));
  d.set_end_key("u");
  r = UserRangeOfRegion(d);
  EXPECT_EQ(r.start, "k");
  EXPECT_FALSE(r.end.has_value());
  d.set_start_key(KeyWithTs(EncodeKey("k"), 7));  // inside a key's versions
  EXPECT_TRUE(UserRangeOfRegion(d).malformed);
}

}  // namespace
}  // namespace micedb::txn
