// The disk alarm (store/disk_alarm.h) over three in-process stores on FaultEngines: a write
// that fails for want of space holds the node's raft round (it neither aborts nor skips the
// write) until space returns; new writes are refused with NoSpace; reads go on; nothing
// acknowledged is lost; other write errors stop the node without ending the process.
#include <gtest/gtest.h>

#include "store/store_test_util.h"

namespace micedb::store::test {
namespace {

const Status kFull = Status::ResourceExhausted("No space left on device (injected)");

// True once `pred` holds, polling for up to 10 s.
bool Eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// The value, or the error as text (for comparisons that print either).
std::string Value(const Result<std::string>& r) {
  return r.ok() ? *r : "error: " + r.status().ToString();
}

bool TouchesData(const storage::WriteBatch& b) {
  for (const auto& op : b.ops()) {
    if (op.cf == Cf::kDefault) return true;
  }
  return false;
}

class DiskAlarmTest : public StoreTest {
 protected:
  // Waits until every node holds the same data (all replicas applied the same writes).
  void ExpectConverged() {
    EXPECT_TRUE(Eventually([&] {
      const std::string h1 = DataHash(cluster_->node(1).engine.get());
      return h1 == DataHash(cluster_->node(2).engine.get()) &&
             h1 == DataHash(cluster_->node(3).engine.get());
    }));
  }
  std::future<Result<std::string>> PutAsync(uint64_t at, const std::string& k,
                                            const std::string& v) {
    auto p = std::make_shared<std::promise<Result<std::string>>>();
    cluster_->GetStore(at)->Propose(TestRequest("P" + k + "=" + v),
                                    Adapt([p](const Result<std::string>& r) { p->set_value(r); }));
    return p->get_future();
  }
};

TEST_F(DiskAlarmTest, NoSpaceAtTheLeadersLogWriteHoldsTheRoundUntilSpaceReturns) {
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  Store* s = cluster_->GetStore(leader);
  cluster_->node(leader).engine->SetWriteFault(kFull);
  // Accepted before the alarm is up: its log write fails, and the node stays up.
  auto pending = PutAsync(leader, "k2", "x");
  ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNoSpace; }));
  EXPECT_GE(s->counters().write_failures.load(), 1u);
  EXPECT_NE(s->disk_alarm_reason().find("raft log"), std::string::npos) << s->disk_alarm_reason();
  // New writes are refused at once with the NOSPACE error, not proposed.
  auto refused = cluster_->Put(leader, "k3", "y");
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find(kNoSpaceMessage), std::string::npos);
  // The other nodes carry on: reads are served (and writes at their new leader).
  const uint64_t other = leader == 1 ? 2 : 1;
  auto read = cluster_->Get(other, "k");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, "v1");

  cluster_->node(leader).engine->SetWriteFault(Status::OK());
  ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNone; }));
  // The held write went in: the node is back in the group and writes are accepted again.
  PutRetry("k4", "z", {1, 2, 3});
  ASSERT_EQ(pending.wait_for(15s), std::future_status::ready);
  auto first = pending.get();
  if (first.ok()) {
    for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k2")), "x");
  }
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k4")), "z");
  ExpectConverged();
}

TEST_F(DiskAlarmTest, AFailedApplyIsRetriedBeforeAnyLaterEntryAndItsAnswerWaits) {
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  Store* s = cluster_->GetStore(leader);
  // Log writes go in; the apply (data and applied index, one batch) does not.
  cluster_->node(leader).engine->SetWriteFault(kFull, TouchesData);
  auto pending = PutAsync(leader, "k", "v2");
  ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNoSpace; }));
  EXPECT_NE(s->disk_alarm_reason().find("apply"), std::string::npos) << s->disk_alarm_reason();
  // Committed, not applied here: no answer yet, and the leader's engine has the old value.
  EXPECT_EQ(pending.wait_for(200ms), std::future_status::timeout);
  EXPECT_EQ(Value(cluster_->node(leader).engine->Get(Cf::kDefault, "rk")), "v1");
  // A lease read here would see the old value: the lease is gone while the apply is held.
  EXPECT_FALSE(LeaseGet(s, "k").has_value());

  cluster_->node(leader).engine->SetWriteFault(Status::OK());
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Value(cluster_->node(leader).engine->Get(Cf::kDefault, "rk")), "v2");
  ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNone; }));
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v2");
  PutRetry("after", "1", {1, 2, 3});
  ExpectConverged();
}

TEST_F(DiskAlarmTest, AHeldAnswerEndsAsOutcomeUnknownAfterTheRequestTimeout) {
  cluster_->request_timeout_ms = 300;
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  cluster_->node(leader).engine->SetWriteFault(kFull, TouchesData);
  auto pending = PutAsync(leader, "k", "v2");
  // Not left hanging while the disk stays full: committed, its outcome unknown to the client.
  ASSERT_EQ(pending.wait_for(10s), std::future_status::ready);
  auto r = pending.get();
  EXPECT_EQ(r.status().code(), StatusCode::kTimedOut) << r.status().ToString();
  cluster_->node(leader).engine->SetWriteFault(Status::OK());
  // It was committed: every replica ends with it.
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v2");
  ExpectConverged();
}

TEST_F(DiskAlarmTest, AFollowerHoldsItsApplyAndCatchesUpInOrder) {
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  const uint64_t follower = leader == 3 ? 2 : 3;
  Store* f = cluster_->GetStore(follower);
  cluster_->node(follower).engine->SetWriteFault(kFull, TouchesData);
  // The leader and the third node commit without the follower's apply.
  for (int i = 0; i < 20; ++i) PutRetry(fmt::format("a{}", i), std::to_string(i), {1, 2, 3});
  ASSERT_TRUE(Eventually([&] { return f->disk_alarm() == DiskAlarm::kNoSpace; }));
  EXPECT_FALSE(cluster_->node(follower).engine->Get(Cf::kDefault, "ra19").ok());
  cluster_->node(follower).engine->SetWriteFault(Status::OK());
  ASSERT_TRUE(Eventually([&] { return f->disk_alarm() == DiskAlarm::kNone; }));
  ExpectConverged();
  EXPECT_EQ(Value(cluster_->node(follower).engine->Get(Cf::kDefault, "ra19")), "19");
}

TEST_F(DiskAlarmTest, AFailedFlushStopsTheEngineUntilTheStoreResumesIt) {
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  storage::FaultEngine* e = cluster_->node(leader).engine.get();
  // A background flush fails for want of space; space is back at once, but the engine refuses
  // writes (with that error) until it is resumed, as RocksDB does.
  e->SetWriteFault(kFull);
  ASSERT_EQ(e->Flush().code(), StatusCode::kResourceExhausted);
  e->SetWriteFault(Status::OK());
  // The next write fails, the store resumes the engine and retries it: the put succeeds.
  auto r = cluster_->Put(leader, "k", "v2");
  if (r.ok()) {
    EXPECT_GE(cluster_->GetStore(leader)->counters().write_failures.load(), 1u);
  } else {
    // Leadership moved while the leader's round was held: the write is not lost either way.
    PutRetry("k", "v2", {1, 2, 3});
  }
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v2");
  ExpectConverged();
}

TEST_F(DiskAlarmTest, LowFreeSpaceRefusesWritesWhileReadsGoOn) {
  std::atomic<uint64_t> free{uint64_t{1} << 40};
  cluster_->free_bytes = [&free]() -> Result<uint64_t> { return free.load(); };
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  free = uint64_t{10} << 20;  // below the 256 MiB reserve
  for (uint64_t id : {1, 2, 3}) {
    Store* s = cluster_->GetStore(id);
    ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNoSpace; }));
    EXPECT_NE(s->disk_alarm_reason().find("10 MiB free"), std::string::npos)
        << s->disk_alarm_reason();
  }
  auto refused = cluster_->Put(leader, "k", "v2");
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  EXPECT_EQ(cluster_->GetStore(leader)->counters().write_failures.load(), 0u);
  // Reads: under the lease and by ReadIndex on every node.
  ASSERT_TRUE(WaitLease(cluster_->GetStore(leader)));
  auto lease_read = LeaseGet(cluster_->GetStore(leader), "k");
  ASSERT_TRUE(lease_read.has_value());
  EXPECT_EQ(Value(*lease_read), "v1");
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v1");

  free = uint64_t{1} << 40;
  for (uint64_t id : {1, 2, 3}) {
    Store* s = cluster_->GetStore(id);
    ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kNone; }));
  }
  PutRetry("k", "v3", {1, 2, 3});
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v3");
}

TEST_F(DiskAlarmTest, AnIoErrorStopsTheNodeWithoutEndingTheProcess) {
  Start3();
  const uint64_t leader = cluster_->WaitLeader({1, 2, 3});
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(cluster_->Put(leader, "k", "v1").ok());
  Store* s = cluster_->GetStore(leader);
  cluster_->node(leader).engine->SetWriteFault(Status::IoError("Input/output error (injected)"));
  auto lost = PutAsync(leader, "k", "v2");  // its outcome is unknown: not waited for
  ASSERT_TRUE(Eventually([&] { return s->disk_alarm() == DiskAlarm::kFailed; }));
  EXPECT_NE(s->disk_alarm_reason().find("Input/output error"), std::string::npos);
  // For good: clearing the fault does not bring it back (a failed fsync is not retried).
  cluster_->node(leader).engine->SetWriteFault(Status::OK());
  std::vector<uint64_t> live;
  for (uint64_t id : {1, 2, 3}) {
    if (id != leader) live.push_back(id);
  }
  // The other two carry on without it.
  PutRetry("k", "v3", live);
  for (uint64_t id : live) EXPECT_EQ(Value(cluster_->Get(id, "k")), "v3");
  EXPECT_EQ(s->disk_alarm(), DiskAlarm::kFailed);
  // It refuses requests as a replica that cannot serve, so a router goes elsewhere.
  auto r = cluster_->Put(leader, "x", "y");
  EXPECT_EQ(r.status().code(), StatusCode::kNotLeader) << r.status().ToString();
}

}  // namespace
}  // namespace micedb::store::test
