// The transaction client over the real region steps and store envelope (FakeRegions: one
// replica per region, a routing cache that goes stale): commits across regions, snapshot
// reads, read-your-writes, conflicts named, locks left by a dead client resolved both ways,
// requests cut again after a split, and a bank workload whose total never changes.
#include "txn/client.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/clock.h"
#include "txn/fake_regions.h"

namespace micedb::txn {
namespace {

using testing::FakeRegions;

class ClientTest : public ::testing::Test {
 protected:
  explicit ClientTest(std::vector<std::string> splits = {"g", "p"},
                      TxnClientOptions options = Options())
      : regions_(std::move(splits)), client_(&regions_, &executor_, &clock_, options) {}

  static TxnClientOptions Options() {
    TxnClientOptions o;
    o.op_timeout_ms = 5000;
    o.scan_page = 2;  // small pages: scans cross pages and regions
    return o;
  }

  std::shared_ptr<Txn> Begin() {
    std::promise<Result<std::shared_ptr<Txn>>> p;
    client_.Begin([&](Result<std::shared_ptr<Txn>> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }
  static Result<std::optional<std::string>> Get(Txn& t, std::string key) {
    std::promise<Result<std::optional<std::string>>> p;
    t.Get(std::move(key), [&](Result<std::optional<std::string>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  static Result<Txn::Pairs> BatchGet(Txn& t, std::vector<std::string> keys) {
    std::promise<Result<Txn::Pairs>> p;
    t.BatchGet(std::move(keys), [&](Result<Txn::Pairs> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  static Result<Txn::Pairs> Scan(Txn& t, std::string start, std::string end, size_t limit) {
    std::promise<Result<Txn::Pairs>> p;
    t.Scan(std::move(start), std::move(end), limit,
           [&](Result<Txn::Pairs> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  static Result<uint64_t> Commit(Txn& t) {
    std::promise<Result<uint64_t>> p;
    t.Commit([&](Result<uint64_t> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  // A transaction that writes `kvs` and commits.
  uint64_t Write(std::vector<std::pair<std::string, std::string>> kvs) {
    auto t = Begin();
    for (auto& [k, v] : kvs) EXPECT_TRUE(t->Put(k, v).ok());
    auto r = Commit(*t);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : 0;
  }
  std::optional<std::string> Read(const std::string& key) {
    auto t = Begin();
    auto r = Get(*t, key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  // Sends one step straight to the regions, as a client that dies halfway would have.
  pb::TxnResponse Raw(pb::TxnRequest req, const std::string& key) {
    std::promise<Result<pb::TxnResponse>> p;
    regions_.Send(std::move(req), EncodeKey(key), {EncodeKey(key)}, true, 5000,
                  [&](Result<pb::TxnResponse> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : pb::TxnResponse();
  }
  void RawPrewrite(const std::string& key, const std::string& value, const std::string& primary,
                   uint64_t start_ts, uint64_t ttl_ms = 100) {
    pb::TxnRequest req;
    auto* p = req.mutable_prewrite();
    auto* m = p->add_mutations();
    m->set_key(key);
    m->set_value(value);
    p->set_primary(primary);
    p->set_start_ts(start_ts);
    p->set_ttl_ms(ttl_ms);
    EXPECT_EQ(Raw(std::move(req), key).prewrite().errors_size(), 0);
  }
  void RawCommit(const std::string& key, uint64_t start_ts, uint64_t commit_ts) {
    pb::TxnRequest req;
    req.mutable_commit()->add_keys(key);
    req.mutable_commit()->set_start_ts(start_ts);
    req.mutable_commit()->set_commit_ts(commit_ts);
    EXPECT_FALSE(Raw(std::move(req), key).commit().has_error());
  }
  uint64_t Ts() {
    std::promise<Result<uint64_t>> p;
    regions_.GetTimestamp([&](Result<uint64_t> r) { p.set_value(std::move(r)); });
    return *p.get_future().get();
  }

  // Four writers move money between eight accounts over three regions while a reader scans
  // them all: every snapshot and the end add up.
  void RunBank() {
    constexpr int kAccounts = 8;
    constexpr int kStart = 100;
    auto name = [](int i) { return std::string(1, static_cast<char>('a' + 3 * i)); };  // a..v
    std::vector<std::pair<std::string, std::string>> init;
    for (int i = 0; i < kAccounts; ++i) init.emplace_back(name(i), std::to_string(kStart));
    Write(init);
    std::vector<std::string> all;
    for (int i = 0; i < kAccounts; ++i) all.push_back(name(i));

    std::atomic<int> committed{0}, aborted{0}, bad_snapshots{0};
    auto worker = [&](int seed) {
      uint64_t x = static_cast<uint64_t>(seed) * 2654435761u + 1;
      auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
      };
      for (int n = 0; n < 40; ++n) {
        const int from = static_cast<int>(next() % kAccounts);
        const int to = static_cast<int>((from + 1 + next() % (kAccounts - 1)) % kAccounts);
        auto t = Begin();
        auto got = BatchGet(*t, {name(from), name(to)});
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(got->size(), 2u);
        const int a = std::stoi((*got)[0].second), b = std::stoi((*got)[1].second);
        const int amount = static_cast<int>(next() % 5) + 1;
        if (a < amount) continue;
        ASSERT_TRUE(t->Put(name(from), std::to_string(a - amount)).ok());
        ASSERT_TRUE(t->Put(name(to), std::to_string(b + amount)).ok());
        auto c = Commit(*t);
        if (c.ok()) {
          committed++;
        } else {
          ASSERT_EQ(c.status().code(), StatusCode::kAborted) << c.status().ToString();
          aborted++;
        }
      }
    };
    auto reader = [&] {
      for (int n = 0; n < 40; ++n) {
        auto t = Begin();
        auto snap = Scan(*t, "", "", 100);
        ASSERT_TRUE(snap.ok()) << snap.status().ToString();
        int total = 0;
        size_t accounts = 0;  // other keys (a warm-up's) are not counted
        for (auto& [k, v] : *snap) {
          if (std::find(all.begin(), all.end(), k) == all.end()) continue;
          total += std::stoi(v);
          accounts++;
        }
        if (total != kAccounts * kStart || accounts != kAccounts) bad_snapshots++;
      }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back(worker, i + 1);
    threads.emplace_back(reader);
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad_snapshots.load(), 0);
    EXPECT_GT(committed.load(), 0);
    auto t = Begin();
    auto final_state = BatchGet(*t, all);
    ASSERT_TRUE(final_state.ok());
    int total = 0;
    for (auto& [k, v] : *final_state) total += std::stoi(v);
    EXPECT_EQ(total, kAccounts * kStart);
    EXPECT_GT(client_.counters().locks_met.load() + aborted.load(), 0u)
        << "four writers over eight accounts should have met each other";
  }

  SystemClock clock_;
  router::ThreadExecutor executor_;
  FakeRegions regions_;
  TxnClient client_;
};

TEST_F(ClientTest, ACommitAcrossRegionsIsSeenWholeByLaterTransactions) {
  const uint64_t commit_ts = Write({{"apple", "1"}, {"kiwi", "2"}, {"zebra", "3"}});
  EXPECT_GT(commit_ts, 0u);
  auto t = Begin();
  EXPECT_GT(t->start_ts(), commit_ts);
  auto all = BatchGet(*t, {"zebra", "apple", "kiwi", "missing"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (Txn::Pairs{{"zebra", "3"}, {"apple", "1"}, {"kiwi", "2"}}));
  EXPECT_EQ(client_.counters().committed.load(), 1u);
}

TEST_F(ClientTest, ReadsSeeTheSnapshotOfTheirStart) {
  Write({{"a", "old"}});
  auto reader = Begin();
  Write({{"a", "new"}, {"b", "born"}});
  EXPECT_EQ(*Get(*reader, "a"), "old");
  EXPECT_EQ(*Get(*reader, "b"), std::nullopt);
  EXPECT_EQ(Read("a"), "new");
}

TEST_F(ClientTest, ASnapshotAtAChosenTimestampReadsButNeverWrites) {
  const uint64_t first = Write({{"k", "1"}});
  Write({{"k", "2"}});
  auto at = [&](uint64_t ts) {
    std::promise<Result<std::shared_ptr<Txn>>> p;
    client_.BeginAt(ts, [&](Result<std::shared_ptr<Txn>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto snap = at(first);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(*Get(**snap, "k"), "1");
  // A chosen start_ts could be another transaction's or a commit's: no writes from it.
  EXPECT_EQ((*snap)->Put("k", "3").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*snap)->Delete("k").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*Commit(**snap), 0u);
  EXPECT_EQ(Read("k"), "2");
  // A snapshot in the future would change under its reader.
  auto future = at(Ts() + (uint64_t{1} << 30));
  EXPECT_EQ(future.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(at(0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, ATransactionReadsItsOwnWritesInGetsAndScans) {
  Write({{"a", "1"}, {"c", "3"}, {"h", "8"}, {"q", "17"}, {"r", "18"}});
  auto t = Begin();
  ASSERT_TRUE(t->Put("b", "2").ok());
  ASSERT_TRUE(t->Delete("c").ok());
  ASSERT_TRUE(t->Put("h", "eight").ok());
  EXPECT_EQ(*Get(*t, "b"), "2");
  EXPECT_EQ(*Get(*t, "c"), std::nullopt);
  auto all = Scan(*t, "", "", 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (Txn::Pairs{{"a", "1"}, {"b", "2"}, {"h", "eight"}, {"q", "17"}, {"r", "18"}}));
  auto some = Scan(*t, "b", "r", 2);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some, (Txn::Pairs{{"b", "2"}, {"h", "eight"}}));
  // Nothing reached the cluster before commit.
  EXPECT_EQ(Read("b"), std::nullopt);
}

TEST_F(ClientTest, AWriteConflictAbortsTheLaterCommitAndNamesTheKey) {
  Write({{"x", "0"}});
  auto t1 = Begin();
  auto t2 = Begin();
  ASSERT_TRUE(t1->Put("x", "1").ok());
  ASSERT_TRUE(t2->Put("x", "2").ok());
  ASSERT_TRUE(t2->Put("a", "side effect").ok());
  const auto c1 = Commit(*t1);
  ASSERT_TRUE(c1.ok());
  const auto c2 = Commit(*t2);
  ASSERT_FALSE(c2.ok());
  EXPECT_EQ(c2.status().code(), StatusCode::kAborted);
  EXPECT_NE(c2.status().message().find("\"x\""), std::string::npos) << c2.status().message();
  EXPECT_NE(c2.status().message().find("retry"), std::string::npos);
  ASSERT_TRUE(t2->conflict().has_value());
  EXPECT_EQ(t2->conflict()->key, "x");
  EXPECT_EQ(t2->conflict()->conflict_start_ts, t1->start_ts());
  EXPECT_EQ(t2->conflict()->conflict_commit_ts, *c1);
  EXPECT_EQ(Read("x"), "1");
  // The loser's other key is rolled back in the background, never committed.
  for (int i = 0; i < 200 && regions_.engine().Get(storage::Cf::kLock, EncodeKey("a")).ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(Read("a"), std::nullopt);
}

TEST_F(ClientTest, AnExpiredLockOfADeadClientIsRolledBackByAReader) {
  Write({{"k", "before"}, {"s", "before"}});
  const uint64_t dead = Ts();
  RawPrewrite("k", "dead", "k", dead, /*ttl_ms=*/100);
  RawPrewrite("s", "dead", "k", dead, 100);
  regions_.AdvanceMs(200);  // past the TTL by the oracle's clock
  // The reader of the secondary asks the primary: expired, so CheckTxnStatus rolls the
  // primary back, and the reader rolls back the secondary's lock.
  EXPECT_EQ(Read("s"), "before");
  EXPECT_EQ(client_.counters().status_checks.load(), 1u);
  EXPECT_EQ(client_.counters().locks_resolved.load(), 1u);
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("k")).ok());
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("s")).ok());
  EXPECT_EQ(Read("k"), "before");
  // The primary's rollback is there for good: the dead client's commit cannot land.
  pb::TxnRequest req;
  req.mutable_commit()->add_keys("k");
  req.mutable_commit()->set_start_ts(dead);
  req.mutable_commit()->set_commit_ts(Ts());
  EXPECT_EQ(Raw(std::move(req), "k").commit().error().kind(), pb::KeyError::TXN_ABORTED);
}

TEST_F(ClientTest, ManyLocksOfOneDeadTransactionCostOneStatusCheckPerRegion) {
  const uint64_t dead = Ts();
  std::vector<std::string> keys;
  for (char c = 'a'; c <= 'z'; c += 2) keys.push_back(std::string(1, c));  // three regions
  for (const auto& k : keys) RawPrewrite(k, "dead", keys.front(), dead, /*ttl_ms=*/100);
  regions_.AdvanceMs(200);
  auto t = Begin();
  auto got = BatchGet(*t, keys);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());
  // One check per region part of the read at most (the parts resolve at the same time), not
  // one per lock.
  EXPECT_LE(client_.counters().status_checks.load(), 3u);
  EXPECT_EQ(client_.counters().locks_met.load(), keys.size());
  EXPECT_EQ(client_.counters().locks_resolved.load(), keys.size() - 1)
      << "the primary's lock went with the status check";
}

TEST_F(ClientTest, ALiveLockIsWaitedOutUntilItsOwnerCommits) {
  const uint64_t slow = Ts();
  RawPrewrite("k", "v", "k", slow, /*ttl_ms=*/60'000);
  // Its commit_ts is drawn before the reader starts, so the reader must see it; the commit
  // itself lands 50 ms later, while the reader waits on the lock.
  const uint64_t commit_ts = Ts();
  std::thread owner([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    RawCommit("k", slow, commit_ts);
  });
  EXPECT_EQ(Read("k"), "v");
  owner.join();
  EXPECT_GE(client_.counters().lock_waits.load(), 1u);
  EXPECT_EQ(client_.counters().locks_resolved.load(), 0u);
}

TEST_F(ClientTest, ASecondaryLockOfACommittedTransactionIsCommittedByItsReader) {
  const uint64_t t = Ts();
  RawPrewrite("a", "A", "a", t);
  RawPrewrite("x", "X", "a", t);
  RawCommit("a", t, Ts());  // the client died before committing x
  EXPECT_EQ(Read("x"), "X");
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("x")).ok());
}

TEST_F(ClientTest, RequestsAreCutAgainAfterASplitTheCacheMissed) {
  regions_.Split("c");
  regions_.Split("m");
  Write({{"a", "1"}, {"d", "2"}, {"n", "3"}});
  auto t = Begin();
  auto all = BatchGet(*t, {"a", "d", "n"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 3u);
  EXPECT_GE(client_.counters().recuts.load(), 1u);
  EXPECT_GE(regions_.refused(), 1u);
}

TEST_F(ClientTest, APrimaryCommitThatCouldNotBeSentRollsTheTransactionBack) {
  auto t = Begin();
  ASSERT_TRUE(t->Put("a", "1").ok());
  ASSERT_TRUE(t->Put("z", "2").ok());
  // The two prewrites (two regions) pass; the primary's commit finds no leader.
  regions_.FailWrites(/*skip=*/2, /*n=*/1);
  auto r = Commit(*t);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(Read("a"), std::nullopt);
  EXPECT_EQ(Read("z"), std::nullopt);
}

TEST_F(ClientTest, ASlowCommitKeepsItsPrimaryAliveWithHeartbeats) {
  auto t = Begin();
  ASSERT_TRUE(t->Put("a", "A").ok());
  ASSERT_TRUE(t->Put("z", "Z").ok());
  // The two prewrites pass; the primary's commit is held back for 1.5 s.
  regions_.DelayWrite(/*skip=*/2, /*ms=*/1500);
  std::promise<Result<uint64_t>> committed;
  t->Commit([&](Result<uint64_t> r) { committed.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  // By the oracle's clock the original TTL (3 s) has run out; the heartbeat raised it.
  regions_.AdvanceMs(3500);
  EXPECT_EQ(Read("z"), "Z") << "the reader waited for the commit instead of rolling it back";
  auto r = committed.get_future().get();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(client_.counters().heartbeats.load(), 1u);
}

TEST_F(ClientTest, KeysOfOneRegionCommitInOnePhaseAndLeaveNoLock) {
  // A region's first one-phase commit falls back while its leader learns max_ts.
  for (int i = 0; i < 100 && client_.counters().one_pc_committed.load() == 0; ++i) {
    Write({{"a", std::to_string(i)}, {"b", std::to_string(i)}});
  }
  ASSERT_GE(client_.counters().one_pc_committed.load(), 1u);
  EXPECT_GE(regions_.one_pc().not_synced.load(), 1u);
  const uint64_t tried = client_.counters().one_pc_tried.load();
  const uint64_t commit_ts = Write({{"c", "C"}, {"d", "D"}});
  EXPECT_EQ(client_.counters().one_pc_tried.load(), tried + 1);
  EXPECT_GE(regions_.one_pc().committed.load(), 2u);
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("c")).ok());
  auto t = Begin();
  EXPECT_GT(t->start_ts(), commit_ts);
  EXPECT_EQ(*Get(*t, "c"), "C");
  EXPECT_EQ(*Get(*t, "d"), "D");
  // Keys in two regions never try.
  Write({{"a", "x"}, {"z", "y"}});
  EXPECT_EQ(client_.counters().one_pc_tried.load(), tried + 1);
}

TEST_F(ClientTest, AOneShotWriteCommitsInOnePhaseAtTheTimestampDrawnWithItsStart) {
  auto begin_write = [&] {
    std::promise<Result<std::shared_ptr<Txn>>> p;
    client_.BeginWrite([&](Result<std::shared_ptr<Txn>> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  };
  // The first falls back to two phases (the region's leader syncs with the oracle meanwhile).
  uint64_t at = 0;
  for (int i = 0; i < 100 && client_.counters().one_pc_committed.load() == 0; ++i) {
    auto t = begin_write();
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->Put("k", std::to_string(i)).ok());
    auto c = Commit(*t);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    if (client_.counters().one_pc_committed.load() > 0) {
      EXPECT_EQ(*c, t->start_ts() + 1) << "the timestamp drawn with start_ts";
      at = *c;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_NE(at, 0u);
  EXPECT_GT(Ts(), at);  // the next draw is above both
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("k")).ok());
}

TEST_F(ClientTest, AOnePhaseCommitOvertakenByANewerReadCommitsInTwoPhasesAboveIt) {
  for (int i = 0; i < 100 && client_.counters().one_pc_committed.load() == 0; ++i) {
    Write({{"a", std::to_string(i)}});
  }
  ASSERT_GE(client_.counters().one_pc_committed.load(), 1u);
  auto t = Begin();
  ASSERT_TRUE(t->Put("c", "new").ok());
  // Its commit_ts is drawn at once; its request is held back while a later transaction
  // reads c (before the write, at a timestamp above that commit_ts).
  regions_.DelayWrite(/*skip=*/0, /*ms=*/300);
  std::promise<Result<uint64_t>> committed;
  t->Commit([&](Result<uint64_t> r) { committed.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto reader = Begin();
  EXPECT_EQ(*Get(*reader, "c"), std::nullopt);
  auto r = committed.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(regions_.one_pc().read_above.load(), 1u);
  // The reader's snapshot stays as it was: the commit landed above it.
  EXPECT_GT(*r, reader->start_ts());
  EXPECT_EQ(*Get(*reader, "c"), std::nullopt);
  EXPECT_EQ(Read("c"), "new");
}

TEST_F(ClientTest, GarbageCollectionResolvesOldLocksThenRemovesVersionsBelowTheSafePoint) {
  auto at = [&](uint64_t ts) {
    std::promise<Result<std::shared_ptr<Txn>>> p;
    client_.BeginAt(ts, [&](Result<std::shared_ptr<Txn>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  const uint64_t first = Write({{"k", "1"}, {"z", "1"}});  // two regions
  Write({{"k", "2"}, {"z", "2"}});
  // A client that died between prewrite and commit, long ago by the oracle's clock.
  const uint64_t dead = Ts();
  RawPrewrite("m", "dead", "m", dead, /*ttl_ms=*/100);
  regions_.AdvanceMs(200);
  const uint64_t sp = Ts();
  // A transaction running since before the safe point is what the coordinator would never
  // pass; here the client is told to collect at sp regardless, and the open one is tracked.
  auto open = Begin();
  EXPECT_EQ(client_.OldestRunning(), open->start_ts());
  std::promise<Result<uint64_t>> p;
  client_.CollectGarbage("", "", sp, [&](Result<uint64_t> r) { p.set_value(std::move(r)); });
  auto collected = p.get_future().get();
  ASSERT_TRUE(collected.ok()) << collected.status().ToString();
  EXPECT_EQ(*collected, 3u);  // k@first, z@first, and the rollback record of m
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("m")).ok());
  EXPECT_EQ(Read("k"), "2");
  EXPECT_EQ(Read("m"), std::nullopt);
  // A snapshot below the safe point: the regions refuse its reads with the reason.
  auto old = at(first);
  ASSERT_TRUE(old.ok());
  auto r = Get(**old, "z");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("snapshot too old"), std::string::npos)
      << r.status().ToString();
  // Once the client knows the safe point, it refuses such a snapshot at once.
  client_.RaiseSafePoint(sp);
  EXPECT_EQ(at(first).status().code(), StatusCode::kInvalidArgument);
  open.reset();
  old->reset();
  EXPECT_EQ(client_.OldestRunning(), 0u);
}

TEST_F(ClientTest, BankTransfersKeepTheTotalAndEverySnapshotAddsUp) { RunBank(); }

// ---- Async commit (docs/transactions.md §3b) ----

class AsyncClientTest : public ClientTest {
 protected:
  AsyncClientTest() : ClientTest({"g", "p"}, AsyncOptions()) {}
  static TxnClientOptions AsyncOptions() {
    TxnClientOptions o = Options();
    o.async_commit = true;
    return o;
  }
  // Commits across the three regions until every leader vouches (each syncs with the oracle
  // on its first async prewrite, which falls back meanwhile).
  void WarmUp() {
    for (int i = 0; i < 200 && client_.counters().async_committed.load() == 0; ++i) {
      Write({{"b", "warm"}, {"h", "warm"}, {"y", "warm"}});
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_GE(client_.counters().async_committed.load(), 1u);
  }
  size_t Locks() {
    size_t n = 0;
    auto it = regions_.engine().NewIterator(storage::Cf::kLock, {});
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  void WaitNoLocks() {
    for (int i = 0; i < 500 && Locks() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(Locks(), 0u) << "the background commits left locks";
  }
  // Prewrites `key` as an async part of transaction start_ts whose primary is `primary`.
  void AsyncPrewrite(const std::string& key, const std::string& primary, uint64_t start_ts,
                     std::vector<std::string> secondaries = {}, uint64_t ttl_ms = 100) {
    pb::TxnRequest req;
    auto* p = req.mutable_prewrite();
    auto* m = p->add_mutations();
    m->set_key(key);
    m->set_value("dead-" + key);
    p->set_primary(primary);
    p->set_start_ts(start_ts);
    p->set_ttl_ms(ttl_ms);
    p->set_use_async_commit(true);
    for (auto& s : secondaries) p->add_secondaries(s);
    auto got = Raw(std::move(req), key).prewrite();
    EXPECT_EQ(got.errors_size(), 0) << got.DebugString();
    EXPECT_GT(got.min_commit_ts(), start_ts) << "the leader did not admit it";
  }
};

TEST_F(AsyncClientTest, ACommitAcrossRegionsIsAnsweredOnceItsPrewritesApplied) {
  // The first falls back (no leader synced yet) and still commits, in two phases.
  const uint64_t first = Write({{"apple", "1"}, {"zebra", "1"}});
  EXPECT_GT(first, 0u);
  EXPECT_GE(client_.counters().async_fallbacks.load(), 1u);
  WarmUp();
  const uint64_t committed = client_.counters().committed.load();
  const uint64_t rounds = regions_.one_pc().async_admitted.load();
  const uint64_t at = Write({{"apple", "2"}, {"kiwi", "2"}, {"zebra", "2"}});
  EXPECT_EQ(client_.counters().committed.load(), committed + 1);
  EXPECT_EQ(regions_.one_pc().async_admitted.load(), rounds + 3) << "one per region";
  EXPECT_GT(at, first);
  // A transaction begun after the answer sees all of it, locks or not.
  auto t = Begin();
  EXPECT_GE(t->start_ts(), at);
  auto all = BatchGet(*t, {"apple", "kiwi", "zebra"});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(*all, (Txn::Pairs{{"apple", "2"}, {"kiwi", "2"}, {"zebra", "2"}}));
  WaitNoLocks();
  // One before it does not.
  std::promise<Result<std::shared_ptr<Txn>>> p;
  client_.BeginAt(at - 1, [&](Result<std::shared_ptr<Txn>> r) { p.set_value(std::move(r)); });
  auto before = p.get_future().get();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(*Get(**before, "kiwi"), std::nullopt);
}

TEST_F(AsyncClientTest, ADeadClientsTransactionIsCommittedWhenEveryKeyIsLocked) {
  WarmUp();
  const uint64_t dead = Ts();
  AsyncPrewrite("c", "c", dead, {"x"});
  AsyncPrewrite("x", "c", dead);
  regions_.AdvanceMs(200);  // past the TTL: the reader asks every key
  EXPECT_EQ(Read("x"), "dead-x");
  EXPECT_GE(client_.counters().async_checks.load(), 1u);
  // The reader committed the primary too: the next one finds the outcome there.
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("c")).ok());
  EXPECT_EQ(Read("c"), "dead-c");
}

TEST_F(AsyncClientTest, ALiveTransactionWhoseKeysAreAllLockedIsCommittedByItsReader) {
  WarmUp();
  const uint64_t t = Ts();
  // Every key prewritten (so committed), the commits not sent yet; the TTL far off.
  AsyncPrewrite("c", "c", t, {"x"}, /*ttl_ms=*/60'000);
  AsyncPrewrite("x", "c", t, {}, 60'000);
  // Waiting the lock out would take past the read's 5 s limit (the TTL is 60 s).
  EXPECT_EQ(Read("x"), "dead-x") << "it waited instead of reading the commit point";
  EXPECT_GE(client_.counters().async_peeks.load(), 1u);
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("c")).ok());
  EXPECT_EQ(Read("c"), "dead-c");
}

TEST_F(AsyncClientTest, ADeadClientsTransactionWithAKeyMissingIsRolledBackForGood) {
  WarmUp();
  Write({{"c", "before"}, {"x", "before"}});
  const uint64_t dead = Ts();
  AsyncPrewrite("c", "c", dead, {"x"});  // x's prewrite never arrived
  regions_.AdvanceMs(200);
  EXPECT_EQ(Read("c"), "before");
  EXPECT_FALSE(regions_.engine().Get(storage::Cf::kLock, EncodeKey("c")).ok());
  // x's prewrite arriving late is shut out.
  pb::TxnRequest late;
  auto* p = late.mutable_prewrite();
  auto* m = p->add_mutations();
  m->set_key("x");
  m->set_value("late");
  p->set_primary("c");
  p->set_start_ts(dead);
  p->set_use_async_commit(true);
  auto got = Raw(std::move(late), "x").prewrite();
  ASSERT_EQ(got.errors_size(), 1);
  EXPECT_EQ(got.errors(0).kind(), pb::KeyError::TXN_ABORTED);
  EXPECT_EQ(Read("x"), "before");
}

TEST_F(AsyncClientTest, APrewriteThatFailedIsSettledByCheckingEveryKey) {
  WarmUp();
  auto t = Begin();
  ASSERT_TRUE(t->Put("d", "1").ok());
  ASSERT_TRUE(t->Put("w", "2").ok());
  // One of the two prewrites finds no leader: the client checks both keys (the missing one
  // now rolled back for good), rolls the transaction back and says it did not commit.
  regions_.FailWrites(/*skip=*/1, /*n=*/1);
  auto r = Commit(*t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_GE(client_.counters().async_checks.load(), 1u);
  EXPECT_EQ(Read("d"), std::nullopt);
  EXPECT_EQ(Read("w"), std::nullopt);
  WaitNoLocks();
}

TEST_F(AsyncClientTest, BankTransfersKeepTheTotalWithAsyncCommit) {
  WarmUp();
  RunBank();
  EXPECT_GT(client_.counters().async_committed.load(), 1u);
}

}  // namespace
}  // namespace micedb::txn
