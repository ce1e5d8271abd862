// The region request envelope on the apply and read paths (store/apply.h): a request with a
// stale epoch, for another region or with a key outside the region is refused and writes
// nothing; dedup answers a repeated request id with its first result; entries from before the
// envelope still apply. Runs the real kv state machine over a MemEngine.
#include "store/apply.h"

#include <gtest/gtest.h>

#include "kv/region_state_machine.h"
#include "storage/mem_engine.h"
#include "store/keys.h"

namespace micedb::store {
namespace {

class ApplyTest : public ::testing::Test {
 protected:
  ApplyTest() {
    region_.set_id(7);
    region_.set_start_key("rb");
    region_.set_end_key("rm");
    region_.mutable_epoch()->set_conf_ver(2);
    region_.mutable_epoch()->set_version(3);
  }

  region::RegionRequest Request(kv::Command cmd, uint64_t version = 3, uint64_t request_id = 0) {
    region::RegionRequest req;
    req.mutable_header()->set_region_id(7);
    req.mutable_header()->mutable_epoch()->set_conf_ver(2);
    req.mutable_header()->mutable_epoch()->set_version(version);
    req.mutable_header()->set_request_id(request_id);
    req.mutable_header()->set_request_ts_ms(request_id == 0 ? 0 : 1'000);
    cmd.set_now_ms(1'000);
    *req.mutable_kv() = std::move(cmd);
    return req;
  }
  static kv::Command Set(std::string key, std::string value) {
    kv::Command c;
    c.mutable_set()->set_key(std::move(key));
    c.mutable_set()->set_value(std::move(value));
    return c;
  }
  static kv::Command Incr(std::string key) {
    kv::Command c;
    c.mutable_incrby()->set_key(std::move(key));
    c.mutable_incrby()->set_delta(1);
    return c;
  }
  // Applies `entries` (raft entry data) as one round from index 10 on, then writes the round.
  std::vector<region::RegionResponse> Round(const std::vector<std::string>& entries) {
    storage::WriteBatch wb;
    std::vector<region::RegionResponse> out;
    {
      Applier applier(&sm_, region_, &engine_, &wb);
      for (const auto& e : entries) {
        out.push_back(applier.Apply(e, LogIndex(next_index_++), /*answering=*/true));
      }
    }
    last_round_ops_ = wb.Count();
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return out;
  }
  bool HasKey(const std::string& engine_key) {
    return engine_.Get(storage::Cf::kDefault, engine_key).ok();
  }

  RegionDescriptor region_;
  kv::RegionStateMachine sm_;
  storage::MemEngine engine_;
  uint64_t next_index_ = 10;
  size_t last_round_ops_ = 0;
};

TEST_F(ApplyTest, AStaleEpochIsRefusedWithTheCurrentDescriptorAndWritesNothing) {
  for (uint64_t version : {2, 4, 0}) {
    auto r = Round({EncodeEntry(Request(Set("c", "x"), version))});
    ASSERT_TRUE(r[0].has_error());
    ASSERT_EQ(r[0].error().kind_case(), region::RegionError::kEpochNotMatch) << version;
    ASSERT_EQ(r[0].error().epoch_not_match().current_regions_size(), 1);
    EXPECT_EQ(r[0].error().epoch_not_match().current_regions(0).epoch().version(), 3u);
    EXPECT_EQ(last_round_ops_, 0u);
  }
  EXPECT_FALSE(HasKey("rc"));
  // A conf_ver that differs does not matter to data requests...
  auto req = Request(Set("c", "x"));
  req.mutable_header()->mutable_epoch()->set_conf_ver(1);
  EXPECT_FALSE(Round({EncodeEntry(req)})[0].has_error());
  EXPECT_TRUE(HasKey("rc"));
  // ...but does to admin requests.
  region::RegionRequest admin;
  *admin.mutable_header() = req.header();
  admin.mutable_admin()->mutable_transfer_leader()->set_node_id(2);
  auto refused = CheckRequest(region_, admin, sm_);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->error().kind_case(), region::RegionError::kEpochNotMatch);
}

TEST_F(ApplyTest, AKeyOutsideTheRegionIsRefusedAndNoKeyOfTheRequestIsWritten) {
  auto r = Round({EncodeEntry(Request(Set("z", "x")))});
  ASSERT_EQ(r[0].error().kind_case(), region::RegionError::kKeyNotInRegion);
  EXPECT_EQ(r[0].error().key_not_in_region().key(), "rz");
  EXPECT_EQ(r[0].error().key_not_in_region().region_id(), 7u);
  // One key inside and one outside (below the start): nothing at all.
  kv::Command mset;
  for (const char* k : {"c", "a"}) {
    auto* p = mset.mutable_mset()->add_pairs();
    p->set_key(k);
    p->set_value("v");
  }
  r = Round({EncodeEntry(Request(mset))});
  ASSERT_EQ(r[0].error().kind_case(), region::RegionError::kKeyNotInRegion);
  EXPECT_EQ(r[0].error().key_not_in_region().key(), "ra");
  EXPECT_EQ(last_round_ops_, 0u);
  EXPECT_FALSE(HasKey("rc"));
  // The end is exclusive, the start inclusive.
  EXPECT_EQ(Round({EncodeEntry(Request(Set("m", "x")))})[0].error().kind_case(),
            region::RegionError::kKeyNotInRegion);
  EXPECT_FALSE(Round({EncodeEntry(Request(Set("b", "x")))})[0].has_error());
  // A MULTI/EXEC naming a key outside is refused whole, watched keys included.
  kv::Command txn;
  txn.mutable_txn()->add_watched()->set_key("zz");
  *txn.mutable_txn()->add_commands() = Set("c", "y");
  EXPECT_EQ(Round({EncodeEntry(Request(txn))})[0].error().kind_case(),
            region::RegionError::kKeyNotInRegion);
  EXPECT_FALSE(HasKey("rc"));
}

TEST_F(ApplyTest, AnotherRegionsRequestOrOneWithoutABodyIsRefused) {
  auto req = Request(Set("c", "x"));
  req.mutable_header()->set_region_id(8);
  auto r = Round({EncodeEntry(req)});
  EXPECT_EQ(r[0].error().kind_case(), region::RegionError::kRegionNotFound);
  region::RegionRequest empty;
  *empty.mutable_header() = Request(Set("c", "x")).header();
  r = Round({EncodeEntry(empty)});
  ASSERT_TRUE(r[0].has_error());
  EXPECT_EQ(r[0].error().kind_case(), region::RegionError::KIND_NOT_SET);
  EXPECT_FALSE(HasKey("rc"));
  EXPECT_TRUE(Round({"\xff\xff not a protobuf"})[0].has_error());
}

TEST_F(ApplyTest, ARepeatedRequestIdGetsItsFirstResultInTheSameRoundAndLater) {
  const std::string incr = EncodeEntry(Request(Incr("c"), 3, /*request_id=*/42));
  auto r = Round({incr, incr});
  EXPECT_EQ(r[0].kv().integer(), 1);
  EXPECT_EQ(r[1].kv().integer(), 1);
  r = Round({incr, EncodeEntry(Request(Incr("c"), 3, /*request_id=*/43))});
  EXPECT_EQ(r[0].kv().integer(), 1);
  EXPECT_EQ(r[1].kv().integer(), 2);
  // Without an id nothing is remembered.
  const std::string anonymous = EncodeEntry(Request(Incr("c")));
  r = Round({anonymous, anonymous});
  EXPECT_EQ(r[1].kv().integer(), 4);
}

// Dedup records expire by the leader's clock stamped in each entry (propose_ts_ms), not by a
// gateway's: once, one gateway whose clock ran a day ahead erased every record, and a retried
// write applied twice.
TEST_F(ApplyTest, DedupRecordsExpireByTheLeadersClockNotAGatewaysClock) {
  constexpr int64_t kMin = int64_t{60} * 1000;
  auto at = [&](uint64_t id, int64_t request_ts, int64_t propose_ts) {
    auto req = Request(Incr("c"), 3, id);
    req.mutable_header()->set_request_ts_ms(request_ts);
    req.mutable_header()->set_propose_ts_ms(propose_ts);
    return EncodeEntry(req);
  };
  int64_t horizon = 0;
  auto sweep = [&] {
    storage::WriteBatch wb;
    SweepResult r = SweepDedupRecords(&engine_, region_, "", horizon, 1000, &wb);
    EXPECT_TRUE(r.status.ok());
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return r.deleted;
  };
  auto round = [&](const std::vector<std::string>& entries) {
    storage::WriteBatch wb;
    std::vector<region::RegionResponse> out;
    Applier applier(&sm_, region_, &engine_, &wb);
    for (const auto& e : entries) out.push_back(applier.Apply(e, LogIndex(next_index_++), true));
    horizon = std::max(horizon, applier.horizon_ms());
    EXPECT_TRUE(engine_.Write(wb, {}).ok());
    return out;
  };
  const int64_t t0 = 100 * kMin;
  const std::string first = at(1, t0, t0);
  EXPECT_EQ(round({first})[0].kv().integer(), 1);
  // A gateway a day ahead, with the leader's time t0 + 1: the horizon is the leader's.
  EXPECT_EQ(round({at(2, t0 + 24 * kMin * 60, t0 + 1)})[0].kv().integer(), 2);
  EXPECT_EQ(horizon, t0 + 1);
  EXPECT_EQ(sweep(), 0u);
  // The first request's retry still finds its record: not applied again.
  EXPECT_EQ(round({first})[0].kv().integer(), 1);
  // Once the leader's clock is past the window (10 min), the sweep removes the record.
  EXPECT_EQ(round({at(3, t0 + 11 * kMin, t0 + 11 * kMin)})[0].kv().integer(), 3);
  EXPECT_EQ(sweep(), 1u);
  EXPECT_EQ(round({first})[0].kv().integer(), 4);
}

// A split applied in the middle of a round (a lagging follower applies INCR, split, INCR in
// one go): the entries after it still see the round's earlier writes and dedup records, and
// act on the smaller range. (The store applies the split itself: here the test does what
// Store::ApplySplit does to the descriptor.)
TEST_F(ApplyTest, ASplitInTheMiddleOfARoundKeepsTheRoundsEarlierWrites) {
  Round({EncodeEntry(Request(Set("l", "keep")))});  // "rl" will be in the right half
  region::RegionRequest split = Request(Set("unused", "v"));
  split.clear_kv();
  split.mutable_header()->mutable_epoch()->set_conf_ver(2);
  split.mutable_admin()->mutable_split()->set_split_key("rk");
  split.mutable_admin()->mutable_split()->set_new_region_id(8);
  const std::string incr = EncodeEntry(Request(Incr("c"), 3, /*request_id=*/77));
  storage::WriteBatch wb;
  {
    Applier applier(&sm_, region_, &engine_, &wb);
    EXPECT_EQ(applier.Apply(incr, LogIndex(20), true).kv().integer(), 1);
    region::AdminRequest admin;
    auto r = applier.Apply(EncodeEntry(split), LogIndex(21), true, &admin);
    ASSERT_FALSE(r.has_error()) << r.DebugString();
    ASSERT_TRUE(admin.has_split());
    region_.set_end_key("rk");
    region_.mutable_epoch()->set_version(4);
    applier.RegionChanged();
    // A retry of the INCR (same request id) gets its first result; a new INCR sees it.
    auto retry = Request(Incr("c"), 4, 77);
    EXPECT_EQ(applier.Apply(EncodeEntry(retry), LogIndex(22), true).kv().integer(), 1);
    EXPECT_EQ(applier.Apply(EncodeEntry(Request(Incr("c"), 4)), LogIndex(23), true).kv().integer(),
              2);
    // The old epoch is refused now; FLUSHALL clears only the left half.
    EXPECT_TRUE(applier.Apply(EncodeEntry(Request(Incr("c"), 3)), LogIndex(24), true).has_error());
    kv::Command flush;
    flush.mutable_flushall();
    EXPECT_FALSE(applier.Apply(EncodeEntry(Request(flush, 4)), LogIndex(25), true).has_error());
  }
  ASSERT_TRUE(engine_.Write(wb, {}).ok());
  EXPECT_FALSE(engine_.Get(storage::Cf::kDefault, "rc").ok());
  EXPECT_TRUE(engine_.Get(storage::Cf::kDefault, "rl").ok());
}

// A write's record sits beside its first key, inside the region's image in the dedup family:
// a split moves it with the key, and the region's snapshot carries it.
TEST_F(ApplyTest, ARecordSitsBesideTheRequestsFirstKey) {
  auto req = Request(Set("k", "v"), 3, 9);
  Round({EncodeEntry(req)});
  const std::string key = DedupKey("rk", req.header().request_ts_ms(), 9);
  EXPECT_TRUE(engine_.Get(storage::Cf::kDedup, key).ok());
  const CfBounds inside = RegionCfBounds(storage::Cf::kDedup, "rb", "rm");
  EXPECT_GE(key, inside.begin);
  EXPECT_LT(key, inside.end);
  // Split at "rk": the right half's image holds it, the left's does not.
  const CfBounds left = RegionCfBounds(storage::Cf::kDedup, "rb", "rk");
  const CfBounds right = RegionCfBounds(storage::Cf::kDedup, "rk", "rm");
  EXPECT_GE(key, left.end);
  EXPECT_GE(key, right.begin);
  EXPECT_LT(key, right.end);
  // Even where the split key has the first key as a prefix.
  const CfBounds tight = RegionCfBounds(storage::Cf::kDedup, "rb", std::string("rk\0", 3));
  EXPECT_LT(key, tight.end);
  int64_t ts = 0;
  ASSERT_TRUE(DecodeDedupKeyTime(key, &ts));
  EXPECT_EQ(ts, req.header().request_ts_ms());
}

TEST(StampProposal, StampsTheLeadersClockAndRefusesAFarSkewedGateway) {
  region::RegionRequest req;
  req.mutable_header()->set_request_id(5);
  req.mutable_header()->set_request_ts_ms(1'000'000);
  EXPECT_FALSE(StampProposal(&req, int64_t{1'000'000} + int64_t{4} * 60'000).has_value());
  EXPECT_EQ(req.header().propose_ts_ms(), int64_t{1'000'000} + int64_t{4} * 60'000);
  auto refused = StampProposal(&req, int64_t{1'000'000} + int64_t{6} * 60'000);
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->error().message().find("clock"), std::string::npos);
  EXPECT_TRUE(StampProposal(&req, int64_t{1'000'000} - int64_t{6} * 60'000).has_value());
  // Without dedup the gateway's clock does not matter.
  req.mutable_header()->set_request_id(0);
  EXPECT_FALSE(StampProposal(&req, int64_t{1'000'000} + int64_t{60} * 60'000).has_value());
}

TEST_F(ApplyTest, EntriesWrittenBeforeTheEnvelopeStillApply) {
  kv::Command legacy = Set("c", "old");
  legacy.set_now_ms(1'000);
  legacy.set_request_id(5);
  legacy.set_request_ts_ms(1'000);
  region::RegionRequest decoded;
  ASSERT_EQ(DecodeEntry(legacy.SerializeAsString(), &decoded), EntryFormat::kLegacyCommand);
  EXPECT_EQ(decoded.header().request_id(), 5u);
  auto r = Round({legacy.SerializeAsString()});
  EXPECT_FALSE(r[0].has_error());
  EXPECT_TRUE(r[0].kv().has_ok());
  EXPECT_TRUE(HasKey("rc"));
  ASSERT_EQ(DecodeEntry(EncodeEntry(Request(Set("c", "x"))), &decoded), EntryFormat::kEnvelope);
  EXPECT_EQ(decoded.header().region_id(), 7u);
}

TEST_F(ApplyTest, ReadsAreCheckedLikeWrites) {
  ASSERT_FALSE(Round({EncodeEntry(Request(Set("c", "v")))})[0].has_error());
  kv::Command get;
  get.mutable_get()->set_key("c");
  auto ok = ServeRead(&sm_, region_, &engine_, nullptr, Request(get));
  ASSERT_FALSE(ok.has_error());
  EXPECT_EQ(ok.kv().bulk(), "v");
  EXPECT_EQ(ServeRead(&sm_, region_, &engine_, nullptr, Request(get, 2)).error().kind_case(),
            region::RegionError::kEpochNotMatch);
  get.mutable_get()->set_key("x");
  EXPECT_EQ(ServeRead(&sm_, region_, &engine_, nullptr, Request(get)).error().kind_case(),
            region::RegionError::kKeyNotInRegion);
}

}  // namespace
}  // namespace micedb::store
