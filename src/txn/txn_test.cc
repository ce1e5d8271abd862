// The MVCC records and the Percolator actions on one replica (docs/transactions.md §1-§4).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kv/apply_batch.h"
#include "kv/read_view.h"
#include "storage/mem_engine.h"
#include "txn/actions.h"
#include "txn/mvcc.h"
#include "txn/reader.h"

namespace micedb::txn {
namespace {

using Kind = TxnError::Kind;

TEST(MvccKeyTest, EncodingKeepsOrderAndKeepsEachKeysVersionsTogether) {
  std::vector<std::string> keys = {
      "",   "a", std::string("a\0", 2), std::string("a\0\0", 3), "a\x01",
      "ab", "b", std::string(20, 'z')};
  std::vector<std::string> versioned;
  for (const auto& k : keys) {
    ASSERT_EQ(*DecodeKey(EncodeKey(k)), k);
    for (uint64_t ts : {1ull, 7ull, 1ull << 40, ~0ull})
      versioned.push_back(KeyWithTs(EncodeKey(k), ts));
  }
  std::vector<std::string> sorted = versioned;
  std::sort(sorted.begin(), sorted.end());
  // Sorted engine keys walk the user keys in order, each key's versions newest first.
  std::vector<std::pair<std::string, uint64_t>> walked;
  for (const auto& v : sorted) {
    std::string_view ek;
    uint64_t ts = 0;
    ASSERT_TRUE(SplitTs(v, &ek, &ts));
    walked.emplace_back(*DecodeKey(ek), ts);
  }
  for (size_t i = 1; i < walked.size(); ++i) {
    const auto& [pk, pts] = walked[i - 1];
    const auto& [k, ts] = walked[i];
    EXPECT_TRUE(pk < k || (pk == k && pts > ts)) << i;
  }
  EXPECT_FALSE(DecodeKey("rabc").ok());
  EXPECT_FALSE(DecodeKey(EncodeKey("a") + "x").ok());
}

TEST(MvccRecordTest, LocksAndWritesRoundTripAndDamageIsReported) {
  Lock l;
  l.kind = LockKind::kDelete;
  l.primary = std::string("p\0k", 3);
  l.start_ts = 12345678901;
  l.ttl_ms = 3000;
  l.txn_size = 7;
  l.short_value = "v";
  EXPECT_EQ(*Lock::Decode(l.Encode()), l);
  l.short_value.reset();
  EXPECT_EQ(*Lock::Decode(l.Encode()), l);
  Write w;
  w.kind = WriteKind::kRollback;
  w.start_ts = 99;
  w.protected_rollback = true;
  EXPECT_EQ(*Write::Decode(w.Encode()), w);
  w.kind = WriteKind::kPut;
  w.protected_rollback = false;
  w.short_value = std::string(255, 'x');
  EXPECT_EQ(*Write::Decode(w.Encode()), w);

  std::string enc = l.Encode();
  EXPECT_EQ(Lock::Decode(enc.substr(0, enc.size() - 1)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Lock::Decode(enc + "x").status().code(), StatusCode::kCorruption);
  enc[1] = 9;  // kind
  EXPECT_EQ(Lock::Decode(enc).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Write::Decode("").status().code(), StatusCode::kCorruption);
}

TEST(MvccRecordTest, TheLockTtlGrowsWithTheTransactionUpToTwoMinutes) {
  EXPECT_EQ(DefaultTtlMs(1), 3002u);
  EXPECT_LT(DefaultTtlMs(10), DefaultTtlMs(10'000));
  EXPECT_EQ(DefaultTtlMs(1'000'000), 120'000u);
}

class TxnTest : public ::testing::Test {
 protected:
  // Runs one action against the engine's latest state and applies what it wrote.
  template <typename F>
  auto Do(F f) {
    kv::ApplyBatch batch(&engine_);
    MvccReader r(&batch);
    auto out = f(r, &batch);
    EXPECT_TRUE(engine_.Write(batch.write_batch(), {}).ok());
    return out;
  }

  std::optional<TxnError> Prewrite(const std::string& key, const std::string& value,
                                   uint64_t start_ts, const std::string& primary,
                                   Mutation::Op op = Mutation::Op::kPut) {
    TxnMeta t{primary, start_ts, 3000, 2};
    Mutation m{op, key, value};
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) { return txn::Prewrite(r, wb, t, m); });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::nullopt;
  }
  std::optional<TxnError> Commit(const std::string& key, uint64_t start_ts, uint64_t commit_ts) {
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::Commit(r, wb, key, start_ts, commit_ts);
    });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::nullopt;
  }
  std::optional<TxnError> Rollback(const std::string& key, uint64_t start_ts) {
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::Rollback(r, wb, key, start_ts, true);
    });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::nullopt;
  }
  // The value at read_ts; "<locked>" when a lock stands in the way, "<none>" when absent.
  std::string Read(const std::string& key, uint64_t read_ts) {
    kv::EngineView view(&engine_);
    MvccReader r(&view);
    auto got = txn::Get(r, key, read_ts);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) return "<error>";
    if (got->locked) return "<locked>";
    return got->value.value_or("<none>");
  }
  // Prewrite and commit of one key by one transaction.
  void Put(const std::string& key, const std::string& value, uint64_t start_ts,
           uint64_t commit_ts) {
    ASSERT_EQ(Prewrite(key, value, start_ts, key), std::nullopt);
    ASSERT_EQ(Commit(key, start_ts, commit_ts), std::nullopt);
  }
  size_t Count(storage::Cf cf) {
    auto it = engine_.NewIterator(cf, {});
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  storage::MemEngine engine_;
};

TEST_F(TxnTest, ACommitIsSeenFromItsCommitTimestampOnAndNotBefore) {
  Put("k", "v1", 10, 20);
  Put("k", "v2", 30, 40);
  EXPECT_EQ(Read("k", 5), "<none>");
  EXPECT_EQ(Read("k", 19), "<none>");
  EXPECT_EQ(Read("k", 20), "v1");
  EXPECT_EQ(Read("k", 39), "v1");
  EXPECT_EQ(Read("k", 40), "v2");
  EXPECT_EQ(Read("k", ~0ull), "v2");
  // A delete hides the value from its commit on; a lock-only record changes nothing.
  ASSERT_EQ(Prewrite("k", "", 50, "k", Mutation::Op::kDelete), std::nullopt);
  ASSERT_EQ(Commit("k", 50, 60), std::nullopt);
  ASSERT_EQ(Prewrite("k", "", 70, "k", Mutation::Op::kLock), std::nullopt);
  ASSERT_EQ(Commit("k", 70, 80), std::nullopt);
  EXPECT_EQ(Read("k", 59), "v2");
  EXPECT_EQ(Read("k", 60), "<none>");
  EXPECT_EQ(Read("k", 90), "<none>");
  Put("k", "v3", 90, 100);
  ASSERT_EQ(Prewrite("k", "", 110, "k", Mutation::Op::kLock), std::nullopt);
  ASSERT_EQ(Commit("k", 110, 120), std::nullopt);
  EXPECT_EQ(Read("k", 130), "v3") << "a lock record is skipped";
}

TEST_F(TxnTest, LongValuesLiveInTheDefaultFamilyAndGoWithARollback) {
  const std::string big(1000, 'b');
  Put("k", big, 10, 20);
  EXPECT_EQ(Read("k", 20), big);
  EXPECT_EQ(Count(storage::Cf::kDefault), 1u);
  ASSERT_EQ(Prewrite("k", big + "2", 30, "k"), std::nullopt);
  EXPECT_EQ(Count(storage::Cf::kDefault), 2u);
  ASSERT_EQ(Rollback("k", 30), std::nullopt);
  EXPECT_EQ(Count(storage::Cf::kDefault), 1u);
  EXPECT_EQ(Read("k", 40), big);
}

TEST_F(TxnTest, AReadMeetingAnOlderLockCannotDecideAndANewerLockIsIgnored) {
  Put("k", "old", 10, 20);
  ASSERT_EQ(Prewrite("k", "new", 30, "p"), std::nullopt);
  EXPECT_EQ(Read("k", 25), "old") << "the lock's transaction started after the read";
  EXPECT_EQ(Read("k", 35), "<locked>");
  kv::EngineView view(&engine_);
  MvccReader r(&view);
  auto got = txn::Get(r, "k", 35);
  ASSERT_TRUE(got.ok() && got->locked);
  EXPECT_EQ(got->locked->kind, Kind::kKeyIsLocked);
  EXPECT_EQ(got->locked->lock.primary, "p");
  EXPECT_EQ(got->locked->lock.start_ts, 30u);
  EXPECT_NE(got->locked->Message().find("started at 30"), std::string::npos)
      << got->locked->Message();
}

TEST_F(TxnTest, PrewriteRefusesLockedKeysAndChangesAfterTheSnapshot) {
  ASSERT_EQ(Prewrite("k", "a", 10, "k"), std::nullopt);
  auto locked = Prewrite("k", "b", 15, "k");
  ASSERT_TRUE(locked);
  EXPECT_EQ(locked->kind, Kind::kKeyIsLocked);
  EXPECT_EQ(locked->lock.start_ts, 10u);
  ASSERT_EQ(Commit("k", 10, 20), std::nullopt);
  // Started at 15, before the commit at 20: its snapshot missed it.
  auto conflict = Prewrite("k", "b", 15, "k");
  ASSERT_TRUE(conflict);
  EXPECT_EQ(conflict->kind, Kind::kWriteConflict);
  EXPECT_EQ(conflict->conflict_start_ts, 10u);
  EXPECT_EQ(conflict->conflict_commit_ts, 20u);
  EXPECT_NE(conflict->Message().find("retry"), std::string::npos);
  // Started after the commit: no conflict.
  EXPECT_EQ(Prewrite("k", "c", 25, "k"), std::nullopt);
}

TEST_F(TxnTest, AnotherTransactionsRollbackIsNoConflict) {
  Put("k", "v", 10, 20);
  ASSERT_EQ(Rollback("k", 40), std::nullopt);  // a transaction that started at 40 gave up
  EXPECT_EQ(Prewrite("k", "w", 30, "k"), std::nullopt);
}

TEST_F(TxnTest, EveryStepIsIdempotent) {
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  ASSERT_EQ(Commit("k", 10, 20), std::nullopt);
  ASSERT_EQ(Commit("k", 10, 20), std::nullopt);
  EXPECT_EQ(Count(storage::Cf::kWrite), 1u);
  // A prewrite delivered again after the commit changes nothing.
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  EXPECT_EQ(Read("k", 30), "v");
  // Also once another transaction committed the key above it: its own record answers first
  // (committed), not the newer commit (a write conflict).
  Put("k", "w", 30, 40);
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  EXPECT_EQ(Read("k", 50), "w");
  ASSERT_EQ(Rollback("x", 50), std::nullopt);
  ASSERT_EQ(Rollback("x", 50), std::nullopt);
}

TEST_F(TxnTest, ARolledBackTransactionCanNeitherCommitNorPrewriteLate) {
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  ASSERT_EQ(Rollback("k", 10), std::nullopt);
  auto commit = Commit("k", 10, 20);
  ASSERT_TRUE(commit);
  EXPECT_EQ(commit->kind, Kind::kTxnAborted);
  // A rollback before the prewrite arrived (a reader resolving a missing primary).
  ASSERT_EQ(Rollback("j", 30), std::nullopt);
  auto late = Prewrite("j", "v", 30, "j");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
  EXPECT_EQ(Read("j", 40), "<none>");
  // Committed keys cannot be rolled back.
  Put("c", "v", 50, 60);
  auto rb = Rollback("c", 50);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->kind, Kind::kTxnCommitted);
  EXPECT_EQ(rb->conflict_commit_ts, 60u);
  // Commit with no lock and no record at all.
  auto missing = Commit("m", 70, 80);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->kind, Kind::kTxnLockNotFound);
}

TEST_F(TxnTest, CheckTxnStatusRollsBackExpiredPrimariesAndReportsTheRest) {
  const uint64_t start = ComposeTs(1000);
  auto check = [&](const std::string& primary, uint64_t start_ts, uint64_t now) {
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::CheckTxnStatus(r, wb, primary, start_ts, now);
    });
    EXPECT_TRUE(got.ok());
    return *got;
  };
  ASSERT_EQ(Prewrite("p", "v", start, "p"), std::nullopt);  // TTL 3000 ms
  TxnStatus alive = check("p", start, ComposeTs(2000));
  EXPECT_EQ(alive.state, TxnStatus::State::kAlive);
  EXPECT_EQ(alive.ttl_left_ms, 2000u);
  ASSERT_TRUE(alive.lock);
  TxnStatus expired = check("p", start, ComposeTs(4000));
  EXPECT_EQ(expired.state, TxnStatus::State::kRolledBack);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  kv::EngineView view(&engine_);
  MvccReader r(&view);
  auto rec = r.TxnWrite(EncodeKey("p"), start);
  ASSERT_TRUE(rec.ok() && *rec);
  EXPECT_EQ((*rec)->write.kind, WriteKind::kRollback);
  EXPECT_TRUE((*rec)->write.protected_rollback);
  EXPECT_EQ(check("p", start, ComposeTs(5000)).state, TxnStatus::State::kRolledBack);

  Put("q", "v", ComposeTs(1000), ComposeTs(1001));
  TxnStatus committed = check("q", ComposeTs(1000), ComposeTs(9000));
  EXPECT_EQ(committed.state, TxnStatus::State::kCommitted);
  EXPECT_EQ(committed.commit_ts, ComposeTs(1001));

  // No lock and no record: the primary's prewrite has not arrived, and now never will.
  EXPECT_EQ(check("r", ComposeTs(1000), ComposeTs(1001)).state, TxnStatus::State::kRolledBack);
  auto late = Prewrite("r", "v", ComposeTs(1000), "r");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
}

TEST_F(TxnTest, HeartBeatRaisesTheTtlButNeverLowersIt) {
  ASSERT_EQ(Prewrite("p", "v", 10, "p"), std::nullopt);
  auto beat = [&](uint64_t ttl) {
    auto got =
        Do([&](MvccReader& r, kv::ApplyBatch* wb) { return txn::HeartBeat(r, wb, "p", 10, ttl); });
    EXPECT_TRUE(got.ok());
    return *got;
  };
  EXPECT_EQ(beat(10'000).ttl_ms, 10'000u);
  EXPECT_EQ(beat(5'000).ttl_ms, 10'000u);
  kv::EngineView view(&engine_);
  MvccReader r(&view);
  EXPECT_EQ((*r.LoadLock(EncodeKey("p")))->ttl_ms, 10'000u);
  ASSERT_EQ(Commit("p", 10, 20), std::nullopt);
  auto gone = beat(20'000);
  ASSERT_TRUE(gone.error);
  EXPECT_EQ(gone.error->kind, Kind::kTxnLockNotFound);
}

TEST_F(TxnTest, ResolveLocksCommitsOrRollsBackOneTransactionsLocksInBoundedSteps) {
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_EQ(Prewrite(k, k, 10, "a"), std::nullopt);
  ASSERT_EQ(Prewrite("x", "other", 15, "x"), std::nullopt);  // another transaction's lock
  std::string from;
  uint64_t resolved = 0;
  int calls = 0;
  while (true) {
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::ResolveLocks(r, wb, from, "", 10, 20, 2);
    });
    ASSERT_TRUE(got.ok());
    resolved += got->resolved;
    ++calls;
    if (!got->next) break;
    from = *got->next;
    ASSERT_LT(calls, 10);
  }
  EXPECT_EQ(resolved, 5u);
  EXPECT_GE(calls, 3) << "2 locks at most per call";
  for (const char* k : {"a", "b", "c", "d", "e"}) EXPECT_EQ(Read(k, 20), k);
  EXPECT_EQ(Count(storage::Cf::kLock), 1u) << "the other transaction's lock stays";

  ASSERT_EQ(Prewrite("f", "f", 30, "f"), std::nullopt);
  auto rb = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
    return txn::ResolveLocks(r, wb, "f", "g", 30, 0, 100);
  });
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(rb->resolved, 1u);
  EXPECT_FALSE(rb->next);
  EXPECT_EQ(Read("f", 40), "<none>");
  auto late = Prewrite("f", "f", 30, "f");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
}

TEST_F(TxnTest, ScansReturnTheVisibleVersionOfEachKeyInOrderAndStopAtLocks) {
  Put("a", "a1", 10, 20);
  Put("b", "b1", 10, 20);
  Put("b", "b2", 30, 40);
  Put("c", "c1", 10, 20);
  ASSERT_EQ(Prewrite("c", "", 50, "c", Mutation::Op::kDelete), std::nullopt);
  ASSERT_EQ(Commit("c", 50, 60), std::nullopt);
  Put("d", "d1", 10, 20);
  ASSERT_EQ(Rollback("d", 70), std::nullopt);
  auto scan = [&](std::string from, std::string to, uint64_t ts, size_t limit) {
    kv::EngineView view(&engine_);
    MvccReader r(&view);
    auto got = txn::Scan(r, from, to, ts, limit);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : ScanResult{};
  };
  using KVs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(scan("", "", 35, 10).kvs, (KVs{{"a", "a1"}, {"b", "b1"}, {"c", "c1"}, {"d", "d1"}}));
  EXPECT_EQ(scan("", "", 80, 10).kvs, (KVs{{"a", "a1"}, {"b", "b2"}, {"d", "d1"}}));
  EXPECT_EQ(scan("b", "d", 80, 10).kvs, (KVs{{"b", "b2"}}));
  EXPECT_EQ(scan("", "", 15, 10).kvs, KVs{});
  // Pages of two, each going on where the last stopped.
  KVs all;
  std::string from;
  for (int pages = 0; pages < 5; ++pages) {
    ScanResult page = scan(from, "", 35, 2);
    EXPECT_LE(page.kvs.size(), 2u);
    all.insert(all.end(), page.kvs.begin(), page.kvs.end());
    if (!page.next) break;
    from = *page.next;
  }
  EXPECT_EQ(all, (KVs{{"a", "a1"}, {"b", "b1"}, {"c", "c1"}, {"d", "d1"}}));
  // A lock from a transaction older than the read stops the scan before its key; a younger
  // one does not matter.
  ASSERT_EQ(Prewrite("c", "c2", 90, "c"), std::nullopt);
  ASSERT_EQ(Prewrite("bb", "new", 200, "bb"), std::nullopt);
  ScanResult locked = scan("", "", 100, 10);
  EXPECT_EQ(locked.kvs, (KVs{{"a", "a1"}, {"b", "b2"}}));
  ASSERT_TRUE(locked.locked);
  EXPECT_EQ(locked.locked->key, "c");
  EXPECT_EQ(locked.locked->lock.start_ts, 90u);
  EXPECT_EQ(locked.next, "c");
}

TEST_F(TxnTest, AScanOverManyDeletedKeysStopsWithinItsBudgetAndResumes) {
  // 1,500 keys, each put and then deleted: 3,000 records with nothing to return.
  for (int i = 0; i < 1500; ++i) {
    const std::string k = fmt::format("k{:05}", i);
    Put(k, "v", 10, 20);
    ASSERT_EQ(Prewrite(k, "", 30, k, Mutation::Op::kDelete), std::nullopt);
    ASSERT_EQ(Commit(k, 30, 40), std::nullopt);
  }
  Put("z", "last", 10, 20);
  std::string from;
  std::vector<std::pair<std::string, std::string>> found;
  int calls = 0;
  while (true) {
    kv::EngineView view(&engine_);
    MvccReader r(&view);
    auto got = txn::Scan(r, from, "", 50, 1);
    ASSERT_TRUE(got.ok());
    EXPECT_LE(r.steps(), 1100u + 256u) << "one call's records";
    found.insert(found.end(), got->kvs.begin(), got->kvs.end());
    ++calls;
    if (!got->next) break;
    from = *got->next;
    ASSERT_LT(calls, 20);
  }
  EXPECT_GE(calls, 3);
  EXPECT_EQ(found, (std::vector<std::pair<std::string, std::string>>{{"z", "last"}}));
}

// Entries applied in one round see each other's writes before the round's batch is written.
TEST_F(TxnTest, ActionsInOneApplyRoundSeeEachOthersWrites) {
  kv::ApplyBatch batch(&engine_);
  MvccReader r(&batch);
  TxnMeta a{"k", 10, 3000, 1};
  TxnMeta b{"k", 11, 3000, 1};
  ASSERT_EQ(*txn::Prewrite(r, &batch, a, Mutation{Mutation::Op::kPut, "k", "a"}), std::nullopt);
  auto second = txn::Prewrite(r, &batch, b, Mutation{Mutation::Op::kPut, "k", "b"});
  ASSERT_TRUE(second.ok() && *second);
  EXPECT_EQ((*second)->kind, Kind::kKeyIsLocked);
  ASSERT_EQ(*txn::Commit(r, &batch, "k", 10, 12), std::nullopt);
  auto got = txn::Get(r, "k", 12);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "a");
  EXPECT_EQ(Count(storage::Cf::kWrite), 0u) << "nothing written to the engine yet";
  ASSERT_TRUE(engine_.Write(batch.write_batch(), {}).ok());
  EXPECT_EQ(Read("k", 12), "a");
}

TEST_F(TxnTest, BadTimestampsAreRefused) {
  ASSERT_EQ(Prewrite("k", "v", 10, "k"), std::nullopt);
  kv::ApplyBatch wb(&engine_);
  MvccReader r(&wb);
  EXPECT_EQ(txn::Commit(r, &wb, "k", 10, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(txn::Prewrite(r, &wb, TxnMeta{"k", 0, 1, 1}, Mutation{Mutation::Op::kPut, "k", "v"})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace micedb::txn

namespace micedb::txn {
namespace {

// §3a: one-phase commit.
class OnePcTest : public TxnTest {
 protected:
  OnePcResult OnePc(std::vector<Mutation> ms, uint64_t start_ts, uint64_t commit_ts) {
    TxnMeta t{ms.front().key, start_ts, 3000, ms.size()};
    auto got =
        Do([&](MvccReader& r, kv::ApplyBatch* wb) { return txn::OnePc(r, wb, t, ms, commit_ts); });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : OnePcResult();
  }
};

TEST_F(OnePcTest, CommitsEveryKeyAtCommitTsWithoutLocks) {
  const std::string big(1000, 'b');  // its value goes to default, at start_ts
  Put("d", "old", 2, 3);
  OnePcResult got = OnePc({{Mutation::Op::kPut, "a", "va"},
                           {Mutation::Op::kPut, "b", big},
                           {Mutation::Op::kDelete, "d", ""}},
                          10, 12);
  EXPECT_TRUE(got.errors.empty());
  EXPECT_EQ(got.committed_at, 12u);
  EXPECT_EQ(Count(storage::Cf::kLock), 0u);
  EXPECT_EQ(Read("a", 11), "<none>");
  EXPECT_EQ(Read("a", 12), "va");
  EXPECT_EQ(Read("b", 12), big);
  EXPECT_EQ(Read("d", 11), "old");
  EXPECT_EQ(Read("d", 12), "<none>");
  // Applied twice (a retry of the same entry): the same outcome, nothing new written.
  const size_t writes = Count(storage::Cf::kWrite);
  got = OnePc({{Mutation::Op::kPut, "a", "va"},
               {Mutation::Op::kPut, "b", big},
               {Mutation::Op::kDelete, "d", ""}},
              10, 15);
  EXPECT_TRUE(got.errors.empty());
  EXPECT_EQ(got.committed_at, 12u);
  EXPECT_EQ(Count(storage::Cf::kWrite), writes);
  // A later prewrite by another transaction that read before 12 conflicts with it.
  auto e = Prewrite("a", "x", 11, "a");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->kind, Kind::kWriteConflict);
  EXPECT_EQ(e->conflict_commit_ts, 12u);
}

TEST_F(OnePcTest, ARefusedKeyWritesNothingAtAll) {
  Put("b", "newer", 20, 25);                            // committed after start_ts 22
  ASSERT_EQ(Prewrite("c", "x", 5, "c"), std::nullopt);  // another transaction's lock
  OnePcResult got = OnePc({{Mutation::Op::kPut, "a", "1"},
                           {Mutation::Op::kPut, "b", "2"},
                           {Mutation::Op::kPut, "c", "3"}},
                          22, 30);
  EXPECT_EQ(got.committed_at, 0u);
  ASSERT_EQ(got.errors.size(), 2u);
  EXPECT_EQ(got.errors[0].kind, Kind::kWriteConflict);
  EXPECT_EQ(got.errors[0].key, "b");
  EXPECT_EQ(got.errors[1].kind, Kind::kKeyIsLocked);
  EXPECT_EQ(got.errors[1].lock.start_ts, 5u);
  EXPECT_EQ(Read("a", 40), "<none>");
  EXPECT_EQ(Read("b", 40), "newer");
  EXPECT_EQ(Count(storage::Cf::kLock), 1u);  // c's, nobody else's
}

TEST_F(OnePcTest, AfterAFallbackOrARollbackItNeverCommitsInOnePhase) {
  // An earlier attempt of this transaction became a plain prewrite (a's lock): the retry
  // locks the rest and commits nothing.
  ASSERT_EQ(Prewrite("a", "1", 10, "a"), std::nullopt);
  OnePcResult got = OnePc({{Mutation::Op::kPut, "a", "1"}, {Mutation::Op::kPut, "b", "2"}}, 10, 12);
  EXPECT_TRUE(got.errors.empty());
  EXPECT_EQ(got.committed_at, 0u);
  EXPECT_EQ(Count(storage::Cf::kLock), 2u);
  EXPECT_EQ(Read("b", 20), "<locked>");
  // Rolled back by a reader before it arrived: refused.
  ASSERT_EQ(Rollback("z", 40), std::nullopt);
  got = OnePc({{Mutation::Op::kPut, "z", "1"}}, 40, 41);
  ASSERT_EQ(got.errors.size(), 1u);
  EXPECT_EQ(got.errors[0].kind, Kind::kTxnAborted);
  EXPECT_EQ(got.committed_at, 0u);
  EXPECT_EQ(Read("z", 50), "<none>");
}

class GcTest : public TxnTest {
 protected:
  GcResult RunGc(uint64_t safe_point, uint64_t budget = 1000, std::string from = "t") {
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::Gc(r, wb, from, "", safe_point, budget);
    });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : GcResult();
  }
};

TEST_F(GcTest, ReadsAtOrAboveTheSafePointSeeTheSameAfterwards) {
  const std::string big(1000, 'b');
  Put("a", "a1", 10, 11);
  Put("a", big, 20, 21);   // long: its value in default
  Put("a", "a3", 30, 31);  // newest below the safe point: kept
  Put("a", "a4", 50, 51);  // above: kept
  Put("d", "d1", 10, 11);
  ASSERT_EQ(Prewrite("d", "", 20, "d", Mutation::Op::kDelete), std::nullopt);
  ASSERT_EQ(Commit("d", 20, 21), std::nullopt);  // newest below: a delete, removed with all
  Put("r", "r1", 10, 11);
  ASSERT_EQ(Prewrite("r", "x", 25, "r"), std::nullopt);
  ASSERT_EQ(Rollback("r", 25), std::nullopt);  // a rollback below: removed
  std::map<std::string, std::vector<std::string>> before;
  for (const char* k : {"a", "d", "r"}) {
    for (uint64_t ts : {40u, 45u, 60u}) before[k].push_back(Read(k, ts));
  }
  const size_t writes = Count(storage::Cf::kWrite);
  const GcResult gc = RunGc(/*safe_point=*/40);
  EXPECT_EQ(gc.deleted, 5u);  // a1, a's big put, d1, d's delete, r's rollback
  EXPECT_FALSE(gc.next.has_value());
  EXPECT_EQ(Count(storage::Cf::kWrite), writes - 5);
  EXPECT_EQ(Count(storage::Cf::kDefault), 0u) << "the long value went with its record";
  for (const char* k : {"a", "d", "r"}) {
    std::vector<std::string> after;
    for (uint64_t ts : {40u, 45u, 60u}) after.push_back(Read(k, ts));
    EXPECT_EQ(after, before[k]) << k;
  }
  EXPECT_EQ(Read("a", 40), "a3");
  EXPECT_EQ(RunGc(40).deleted, 0u) << "idempotent";
}

TEST_F(GcTest, ALockedKeyIsLeftAloneAndBudgetsStopAtKeyBoundaries) {
  for (uint64_t i = 0; i < 5; ++i) Put("k", "v" + std::to_string(i), 10 + 10 * i, 11 + 10 * i);
  for (uint64_t i = 0; i < 5; ++i) Put("m", "v" + std::to_string(i), 10 + 10 * i, 11 + 10 * i);
  ASSERT_EQ(Prewrite("k", "pending", 60, "k"), std::nullopt);
  // A budget of 2: the walk stops once it has looked at 2 records, at the next key.
  GcResult first = RunGc(100, 2);
  EXPECT_EQ(first.deleted, 0u) << "k is locked";
  ASSERT_TRUE(first.next.has_value());
  EXPECT_EQ(*first.next, EncodeKey("m"));
  GcResult rest = RunGc(100, 2, *first.next);
  EXPECT_EQ(rest.deleted, 4u);
  EXPECT_EQ(Read("m", 100), "v4");
  EXPECT_EQ(Read("k", 55), "v4");
}

// ---- Async commit's records and actions (§3b) ----

class AsyncCommitTest : public TxnTest {
 protected:
  // Prewrites `key` as part of async-commit transaction start_ts with its primary `primary`.
  std::optional<TxnError> PrewriteAsync(const std::string& key, uint64_t start_ts,
                                        const std::string& primary, uint64_t min_commit_ts,
                                        std::vector<std::string> secondaries = {}) {
    TxnMeta t{primary, start_ts, 3000, 2};
    t.use_async_commit = true;
    t.min_commit_ts = min_commit_ts;
    t.secondaries = std::move(secondaries);
    Mutation m{Mutation::Op::kPut, key, "v" + std::to_string(start_ts)};
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) { return txn::Prewrite(r, wb, t, m); });
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : std::nullopt;
  }
  std::optional<Lock> LockOf(const std::string& key) {
    kv::EngineView view(&engine_);
    MvccReader r(&view);
    auto got = r.LoadLock(EncodeKey(key));
    EXPECT_TRUE(got.ok());
    return got.ok() ? *got : std::nullopt;
  }
};

TEST_F(AsyncCommitTest, LocksCarryTheFlagAndThePrimaryListsTheSecondaries) {
  Lock l;
  l.primary = "p";
  l.start_ts = 5;
  l.min_commit_ts = 9;
  l.use_async_commit = true;
  l.secondaries = {"a", std::string("b\0c", 3), ""};
  l.short_value = "v";
  EXPECT_EQ(*Lock::Decode(l.Encode()), l);
  l.secondaries.clear();
  EXPECT_EQ(*Lock::Decode(l.Encode()), l);
  std::string enc = l.Encode();
  EXPECT_EQ(Lock::Decode(enc.substr(0, enc.size() - 1)).status().code(), StatusCode::kCorruption);
  Write w;
  w.kind = WriteKind::kPut;
  w.start_ts = 3;
  w.overlapped_rollback = true;
  EXPECT_EQ(*Write::Decode(w.Encode()), w);

  ASSERT_EQ(PrewriteAsync("p", 10, "p", 15, {"s"}), std::nullopt);
  ASSERT_EQ(PrewriteAsync("s", 10, "p", 15), std::nullopt);
  auto p = LockOf("p");
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->use_async_commit);
  EXPECT_EQ(p->min_commit_ts, 15u);
  EXPECT_EQ(p->secondaries, std::vector<std::string>{"s"});
  EXPECT_TRUE(LockOf("s")->secondaries.empty());
}

TEST_F(AsyncCommitTest, AReadBelowMinCommitTsPassesTheLockAndOneAtOrAboveStops) {
  Put("k", "old", 2, 3);
  ASSERT_EQ(PrewriteAsync("k", 10, "k", 20), std::nullopt);
  EXPECT_EQ(Read("k", 15), "old");  // the transaction commits at 20 or later
  EXPECT_EQ(Read("k", 19), "old");
  EXPECT_EQ(Read("k", 20), "<locked>");
  EXPECT_EQ(Read("k", 5), "old");  // started after the read: as before
}

TEST_F(AsyncCommitTest, ACommitAtAnotherTransactionsStartKeepsItsRollback) {
  // S (start 30) was rolled back on k; the async transaction T commits k at 30 (computed).
  ASSERT_EQ(Rollback("k", 30), std::nullopt);
  ASSERT_EQ(PrewriteAsync("k", 20, "k", 30), std::nullopt);
  ASSERT_EQ(Commit("k", 20, 30), std::nullopt);
  EXPECT_EQ(Read("k", 30), "v20");
  EXPECT_EQ(Read("k", 29), "<none>");
  // S's rollback still holds: its prewrite fails, and its commit too.
  auto late = Prewrite("k", "s", 30, "k");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
  auto commit = Commit("k", 30, 40);
  ASSERT_TRUE(commit);
  EXPECT_EQ(commit->kind, Kind::kTxnAborted);
  EXPECT_EQ(Count(storage::Cf::kWrite), 1u);  // one record holds both
}

TEST_F(AsyncCommitTest, ARollbackLandingOnACommitRecordMarksIt) {
  ASSERT_EQ(PrewriteAsync("k", 20, "k", 30), std::nullopt);
  ASSERT_EQ(Commit("k", 20, 30), std::nullopt);
  // S (start 30) is rolled back on k afterwards (a reader found its prewrite missing).
  ASSERT_EQ(Rollback("k", 30), std::nullopt);
  EXPECT_EQ(Read("k", 30), "v20");  // the commit is intact
  auto late = Prewrite("k", "s", 30, "k");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
  ASSERT_EQ(Rollback("k", 30), std::nullopt);  // again: nothing changes
  EXPECT_EQ(Count(storage::Cf::kWrite), 1u);
  // T itself is committed, not rolled back.
  auto rb = Rollback("k", 20);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->kind, Kind::kTxnCommitted);
}

TEST_F(AsyncCommitTest, AnExpiredAsyncPrimaryIsNotRolledBackButSentToItsSecondaries) {
  const uint64_t start = ComposeTs(1000);
  ASSERT_EQ(PrewriteAsync("p", start, "p", start + 1, {"s1", "s2"}), std::nullopt);
  auto st = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
    return txn::CheckTxnStatus(r, wb, "p", start, ComposeTs(1000 + 60'000));
  });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, TxnStatus::State::kAlive);
  EXPECT_EQ(st->ttl_left_ms, 0u);
  ASSERT_TRUE(st->lock);
  EXPECT_EQ(st->lock->secondaries, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_TRUE(LockOf("p"));  // still there
}

TEST_F(AsyncCommitTest, CheckSecondaryLocksReportsEachKeyAndShutsOutLatePrewrites) {
  const uint64_t start = 100;
  ASSERT_EQ(PrewriteAsync("a", start, "p", 110), std::nullopt);
  ASSERT_EQ(PrewriteAsync("b", start, "p", 120), std::nullopt);
  ASSERT_EQ(Commit("b", start, 130), std::nullopt);
  auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
    return txn::CheckSecondaryLocks(r, wb, {"a", "b", "c"}, start);
  });
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].state, SecondaryStatus::State::kLocked);
  EXPECT_EQ((*got)[0].lock->min_commit_ts, 110u);
  EXPECT_EQ((*got)[1].state, SecondaryStatus::State::kCommitted);
  EXPECT_EQ((*got)[1].commit_ts, 130u);
  EXPECT_EQ((*got)[2].state, SecondaryStatus::State::kRolledBack);
  // c's prewrite, arriving now, finds the rollback.
  auto late = PrewriteAsync("c", start, "p", 110);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->kind, Kind::kTxnAborted);
  // Asked again: the same answers, nothing more written.
  const size_t writes = Count(storage::Cf::kWrite);
  auto again = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
    return txn::CheckSecondaryLocks(r, wb, {"a", "b", "c"}, start);
  });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *got);
  EXPECT_EQ(Count(storage::Cf::kWrite), writes);
}

TEST_F(AsyncCommitTest, APrewriteReportsTheMinCommitTsOfTheLockInPlace) {
  auto prewrite = [&](const std::string& key, bool async, uint64_t min_ts) {
    TxnMeta t{"a", 100, 3000, 2};
    t.use_async_commit = async;
    t.min_commit_ts = min_ts;
    uint64_t reported = 99;
    auto got = Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::Prewrite(r, wb, t, Mutation{Mutation::Op::kPut, key, "v"}, nullptr, &reported);
    });
    EXPECT_TRUE(got.ok() && !*got);
    return reported;
  };
  EXPECT_EQ(prewrite("a", true, 110), 110u);
  EXPECT_EQ(prewrite("a", true, 150), 110u);  // a duplicate: the lock written first decides
  EXPECT_EQ(prewrite("a", false, 0), 110u);
  EXPECT_EQ(prewrite("b", false, 0), 0u);  // a two-phase lock
  EXPECT_EQ(prewrite("b", true, 120), 0u);
}

TEST_F(AsyncCommitTest, ForceSyncCommitHandsAnAsyncPrimaryToItsTtl) {
  const uint64_t start = ComposeTs(1000);
  ASSERT_EQ(PrewriteAsync("p", start, "p", start + 1, {"s"}), std::nullopt);
  auto check = [&](uint64_t now_ms, bool force) {
    return Do([&](MvccReader& r, kv::ApplyBatch* wb) {
      return txn::CheckTxnStatus(r, wb, "p", start, ComposeTs(now_ms), force);
    });
  };
  auto alive = check(1500, true);  // inside the TTL: alive, but two-phase from now on
  ASSERT_TRUE(alive.ok());
  EXPECT_EQ(alive->state, TxnStatus::State::kAlive);
  EXPECT_GT(alive->ttl_left_ms, 0u);
  ASSERT_TRUE(LockOf("p"));
  EXPECT_FALSE(LockOf("p")->use_async_commit);
  EXPECT_TRUE(LockOf("p")->secondaries.empty());
  auto expired = check(1000 + 60'000, false);  // no force needed any more: rolled back
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->state, TxnStatus::State::kRolledBack);
  EXPECT_FALSE(LockOf("p"));
}

}  // namespace
}  // namespace micedb::txn
