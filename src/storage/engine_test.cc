// The behaviour every Engine shares, run against each implementation: RocksEngine, MemEngine
// and FaultEngine (with no faults armed it must behave like the others).
#include "storage/engine.h"

#include <atomic>
#include <fstream>
#include <functional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/fault_engine.h"
#include "storage/mem_engine.h"
#include "storage/rocks_engine.h"
#include "storage/test_util.h"

namespace micedb::storage {
namespace {

struct EngineKind {
  std::string name;
  // A fresh, empty engine that may keep files in `dir` (which does not exist yet).
  std::function<Result<std::unique_ptr<Engine>>(const std::string& dir)> open;
  // The engine written by Checkpoint(dir).
  std::function<Result<std::unique_ptr<Engine>>(const std::string& dir)> open_checkpoint;
};

// Names the parameter in failure messages instead of dumping its bytes.
void PrintTo(const EngineKind& kind, std::ostream* os) { *os << kind.name; }

Result<std::unique_ptr<Engine>> OpenRocks(const std::string& dir) {
  MICEDB_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, RocksEngine::Open(dir, RocksOptions{}));
  return engine;
}

Result<std::unique_ptr<Engine>> OpenMemCheckpoint(const std::string& dir) {
  MICEDB_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, MemEngine::OpenCheckpoint(dir));
  return engine;
}

std::vector<EngineKind> AllKinds() {
  return {
      {"Rocks", OpenRocks, OpenRocks},
      {"Mem",
       [](const std::string&) -> Result<std::unique_ptr<Engine>> {
         return std::unique_ptr<Engine>(std::make_unique<MemEngine>());
       },
       OpenMemCheckpoint},
      {"Fault",
       [](const std::string&) -> Result<std::unique_ptr<Engine>> {
         return std::unique_ptr<Engine>(std::make_unique<FaultEngine>());
       },
       OpenMemCheckpoint},
  };
}

class EngineTest : public ::testing::TestWithParam<EngineKind> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    engine_ = Open("db");
    ASSERT_NE(engine_, nullptr);
  }

  // Another fresh engine of the same kind, named `name` inside the temp directory.
  std::unique_ptr<Engine> Open(const std::string& name) {
    Result<std::unique_ptr<Engine>> r = GetParam().open(tmp_.Sub(name));
    EXPECT_OK(r);
    return r.ok() ? std::move(r).value() : nullptr;
  }

  void PutAll(Cf cf, const KeyValues& kvs) {
    for (const auto& [k, v] : kvs) {
      ASSERT_OK(engine_->Put(cf, k, v));
    }
  }

  TempDir tmp_;
  std::unique_ptr<Engine> engine_;
};

const KeyValues kLetters = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"},
                            {"f", "6"}, {"g", "7"}, {"h", "8"}, {"i", "9"}, {"j", "10"}};

// ---- Point operations ----

TEST_P(EngineTest, GetPutDelete) {
  Result<std::string> missing = engine_->Get(Cf::kDefault, "k");
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "v1"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k"), "v1");
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "v2"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k"), "v2");

  ASSERT_OK(engine_->Delete(Cf::kDefault, "k"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k"), "<absent>");
  EXPECT_OK(engine_->Delete(Cf::kDefault, "never-there"));
}

TEST_P(EngineTest, ColumnFamiliesAreSeparate) {
  for (Cf cf : kAllCfs) {
    ASSERT_OK(engine_->Put(cf, "k", std::string(CfName(cf))));
  }
  for (Cf cf : kAllCfs) {
    EXPECT_EQ(ValueOr(*engine_, cf, "k"), CfName(cf));
  }
  ASSERT_OK(engine_->Delete(Cf::kLock, "k"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kLock, "k"), "<absent>");
  EXPECT_EQ(ValueOr(*engine_, Cf::kWrite, "k"), "write");
  EXPECT_EQ(ScanForward(*engine_, Cf::kRaft), (KeyValues{{"k", "raft"}}));
}

TEST_P(EngineTest, BinaryKeysAndEmptyValues) {
  const std::string zero("a\0b", 3);
  const std::string high("\xff\xfe", 2);
  ASSERT_OK(engine_->Put(Cf::kDefault, zero, std::string("\0\0", 2)));
  ASSERT_OK(engine_->Put(Cf::kDefault, high, ""));
  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "plain"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, zero), std::string("\0\0", 2));
  // An empty value is present, unlike a missing key.
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, high), "");
  // Keys sort as unsigned bytes: "a" < "a\0b" < "\xff\xfe".
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault),
            (KeyValues{{"a", "plain"}, {zero, std::string("\0\0", 2)}, {high, ""}}));
}

TEST_P(EngineTest, DeleteRangeIsHalfOpen) {
  PutAll(Cf::kDefault, kLetters);
  PutAll(Cf::kWrite, kLetters);
  ASSERT_OK(engine_->DeleteRange(Cf::kDefault, "b", "e"));
  KeyValues expect = kLetters;
  expect.erase(expect.begin() + 1, expect.begin() + 4);  // b, c, d
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), expect);
  EXPECT_EQ(ScanForward(*engine_, Cf::kWrite), kLetters);  // other family untouched

  // An empty range is a no-op; a backward one is refused and changes nothing.
  EXPECT_OK(engine_->DeleteRange(Cf::kDefault, "f", "f"));
  Status backward = engine_->DeleteRange(Cf::kDefault, "z", "a");
  EXPECT_TRUE(backward.IsInvalidArgument()) << backward.ToString();
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), expect);

  // Keys written after a range delete are visible again.
  ASSERT_OK(engine_->Put(Cf::kDefault, "c", "again"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "c"), "again");
}

TEST_P(EngineTest, InvalidColumnFamilyIsAnError) {
  const Cf bad = static_cast<Cf>(7);
  EXPECT_TRUE(engine_->Get(bad, "k").status().IsInvalidArgument());
  EXPECT_TRUE(engine_->Put(bad, "k", "v").IsInvalidArgument());
  std::unique_ptr<Iterator> it = engine_->NewIterator(bad, {});
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsInvalidArgument());
  EXPECT_TRUE(engine_->ApproximateSize(bad, "a", "z").status().IsInvalidArgument());
}

// ---- Iterators ----

TEST_P(EngineTest, IteratorOverEmptyFamily) {
  std::unique_ptr<Iterator> it = engine_->NewIterator(Cf::kDefault, {});
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  it->SeekToLast();
  EXPECT_FALSE(it->Valid());
  it->Seek("a");
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
}

TEST_P(EngineTest, IteratorBothDirections) {
  PutAll(Cf::kDefault, kLetters);
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), kLetters);
  EXPECT_EQ(ScanBackward(*engine_, Cf::kDefault), kLetters);

  std::unique_ptr<Iterator> it = engine_->NewIterator(Cf::kDefault, {});
  it->Seek("cc");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  EXPECT_EQ(it->value(), "4");
  it->Next();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "e");
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->SeekForPrev("cc");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->SeekForPrev("c");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->Seek("zz");
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("0");
  EXPECT_FALSE(it->Valid());
  EXPECT_OK(it->status());
}

TEST_P(EngineTest, IteratorRespectsBounds) {
  PutAll(Cf::kDefault, kLetters);
  ReadOptions bounds;
  bounds.lower_bound = "c";
  bounds.upper_bound = "g";  // sees c, d, e, f
  const KeyValues inside(kLetters.begin() + 2, kLetters.begin() + 6);
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault, bounds), inside);
  EXPECT_EQ(ScanBackward(*engine_, Cf::kDefault, bounds), inside);

  std::unique_ptr<Iterator> it = engine_->NewIterator(Cf::kDefault, bounds);
  it->Seek("a");  // below the lower bound: lands on the first key in bounds
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  it->Prev();
  EXPECT_FALSE(it->Valid());
  it->Seek("g");
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("z");  // above the upper bound: lands on the last key in bounds
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "f");
  it->Next();
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("b");
  EXPECT_FALSE(it->Valid());
  it->SeekForPrev("dd");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "d");
  EXPECT_OK(it->status());
}

TEST_P(EngineTest, IteratorWithOneBound) {
  PutAll(Cf::kDefault, kLetters);
  ReadOptions lower_only;
  lower_only.lower_bound = "h";
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault, lower_only),
            KeyValues(kLetters.begin() + 7, kLetters.end()));
  EXPECT_EQ(ScanBackward(*engine_, Cf::kDefault, lower_only),
            KeyValues(kLetters.begin() + 7, kLetters.end()));
  ReadOptions upper_only;
  upper_only.upper_bound = "b";
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault, upper_only), (KeyValues{{"a", "1"}}));
  EXPECT_EQ(ScanBackward(*engine_, Cf::kDefault, upper_only), (KeyValues{{"a", "1"}}));
  ReadOptions empty;
  empty.lower_bound = "d";
  empty.upper_bound = "d";
  EXPECT_TRUE(ScanForward(*engine_, Cf::kDefault, empty).empty());
  EXPECT_TRUE(ScanBackward(*engine_, Cf::kDefault, empty).empty());
}

TEST_P(EngineTest, IteratorKeepsItsView) {
  PutAll(Cf::kDefault, {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  std::unique_ptr<Iterator> it = engine_->NewIterator(Cf::kDefault, {});
  ASSERT_OK(engine_->Put(Cf::kDefault, "bb", "new"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "changed"));
  ASSERT_OK(engine_->Delete(Cf::kDefault, "c"));
  KeyValues seen;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    seen.emplace_back(it->key(), it->value());
  }
  EXPECT_EQ(seen, (KeyValues{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

// ---- Snapshots ----

TEST_P(EngineTest, SnapshotHidesLaterWrites) {
  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "1"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "b", "1"));
  ASSERT_OK(engine_->Put(Cf::kLock, "l", "1"));
  std::unique_ptr<Snapshot> snap = engine_->GetSnapshot();
  ASSERT_NE(snap, nullptr);

  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "2"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "c", "2"));
  ASSERT_OK(engine_->Delete(Cf::kDefault, "b"));
  ASSERT_OK(engine_->DeleteRange(Cf::kLock, "a", "z"));
  ASSERT_OK(engine_->Put(Cf::kWrite, "w", "2"));

  ReadOptions at;
  at.snapshot = snap.get();
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "a", at), "1");
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "b", at), "1");
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "c", at), "<absent>");
  EXPECT_EQ(ValueOr(*engine_, Cf::kLock, "l", at), "1");
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault, at), (KeyValues{{"a", "1"}, {"b", "1"}}));
  EXPECT_EQ(ScanBackward(*engine_, Cf::kDefault, at), (KeyValues{{"a", "1"}, {"b", "1"}}));
  EXPECT_TRUE(ScanForward(*engine_, Cf::kWrite, at).empty());

  // The latest state is unaffected by the snapshot.
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), (KeyValues{{"a", "2"}, {"c", "2"}}));
  EXPECT_TRUE(ScanForward(*engine_, Cf::kLock).empty());

  // A snapshot with bounds.
  at.lower_bound = "b";
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault, at), (KeyValues{{"b", "1"}}));
}

TEST_P(EngineTest, SnapshotsAreIndependent) {
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "1"));
  std::unique_ptr<Snapshot> one = engine_->GetSnapshot();
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "2"));
  std::unique_ptr<Snapshot> two = engine_->GetSnapshot();
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "3"));
  ReadOptions at_one, at_two;
  at_one.snapshot = one.get();
  at_two.snapshot = two.get();
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k", at_one), "1");
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k", at_two), "2");
  one.reset();
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k", at_two), "2");
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k"), "3");
}

TEST_P(EngineTest, SnapshotOfAnotherEngineIsRefused) {
  std::unique_ptr<Engine> other = Open("other");
  ASSERT_NE(other, nullptr);
  std::unique_ptr<Snapshot> foreign = other->GetSnapshot();
  ReadOptions at;
  at.snapshot = foreign.get();
  EXPECT_TRUE(engine_->Get(Cf::kDefault, "k", at).status().IsInvalidArgument());
  std::unique_ptr<Iterator> it = engine_->NewIterator(Cf::kDefault, at);
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
  EXPECT_TRUE(it->status().IsInvalidArgument());
}

// ---- Batches ----

TEST_P(EngineTest, BatchAppliesAcrossFamilies) {
  ASSERT_OK(engine_->Put(Cf::kLock, "gone", "x"));
  PutAll(Cf::kWrite, kLetters);
  WriteBatch batch;
  batch.Put(Cf::kDefault, "d", "data");
  batch.Put(Cf::kRaft, "r", "log");
  batch.Delete(Cf::kLock, "gone");
  batch.DeleteRange(Cf::kWrite, "b", "j");
  ASSERT_OK(engine_->Write(batch, WriteOptions{.sync = true}));
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "d"), "data");
  EXPECT_EQ(ValueOr(*engine_, Cf::kRaft, "r"), "log");
  EXPECT_EQ(ValueOr(*engine_, Cf::kLock, "gone"), "<absent>");
  EXPECT_EQ(ScanForward(*engine_, Cf::kWrite), (KeyValues{{"a", "1"}, {"j", "10"}}));
}

TEST_P(EngineTest, BatchOpsApplyInOrder) {
  WriteBatch batch;
  batch.Put(Cf::kDefault, "a", "1");
  batch.Delete(Cf::kDefault, "a");
  batch.Put(Cf::kDefault, "b", "1");
  batch.Put(Cf::kDefault, "b", "2");
  batch.Put(Cf::kDefault, "c", "1");
  batch.DeleteRange(Cf::kDefault, "c", "d");
  batch.Put(Cf::kDefault, "c", "3");
  ASSERT_OK(engine_->Write(batch, {}));
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), (KeyValues{{"b", "2"}, {"c", "3"}}));
}

TEST_P(EngineTest, InvalidBatchAppliesNothing) {
  ASSERT_OK(engine_->Put(Cf::kDefault, "keep", "old"));
  WriteBatch batch;
  batch.Put(Cf::kDefault, "keep", "new");
  batch.Put(Cf::kRaft, "r", "1");
  batch.Delete(Cf::kDefault, "keep");
  batch.DeleteRange(Cf::kLock, "z", "a");  // invalid: begin after end
  Status st = engine_->Write(batch, WriteOptions{.sync = true});
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "keep"), "old");
  EXPECT_EQ(ValueOr(*engine_, Cf::kRaft, "r"), "<absent>");

  WriteBatch bad_cf;
  bad_cf.Put(Cf::kWrite, "w", "1");
  bad_cf.Put(static_cast<Cf>(200), "x", "1");
  EXPECT_TRUE(engine_->Write(bad_cf, {}).IsInvalidArgument());
  EXPECT_EQ(ValueOr(*engine_, Cf::kWrite, "w"), "<absent>");
}

TEST_P(EngineTest, EmptyBatchAndSyncs) {
  EXPECT_OK(engine_->Write(WriteBatch{}, {}));
  EXPECT_OK(engine_->Write(WriteBatch{}, WriteOptions{.sync = true}));
  ASSERT_OK(engine_->Put(Cf::kRaft, "k", "v", WriteOptions{.sync = true}));
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "v"));
  EXPECT_OK(engine_->SyncWAL());
  EXPECT_OK(engine_->Flush());
  EXPECT_EQ(ValueOr(*engine_, Cf::kRaft, "k"), "v");
  EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, "k"), "v");
}

// A reader must never see part of a batch: each batch sets one counter in all four families.
TEST_P(EngineTest, ReadersSeeWholeBatchesOnly) {
  constexpr int kBatches = 300;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 1; i <= kBatches; ++i) {
      WriteBatch batch;
      for (Cf cf : kAllCfs) {
        batch.Put(cf, "counter", std::to_string(i));
      }
      EXPECT_OK(engine_->Write(batch, {}));
    }
    done = true;
  });
  int checks = 0;
  while (!done || checks < 10) {
    std::unique_ptr<Snapshot> snap = engine_->GetSnapshot();
    ReadOptions at;
    at.snapshot = snap.get();
    const std::string first = ValueOr(*engine_, Cf::kDefault, "counter", at);
    for (Cf cf : kAllCfs) {
      ASSERT_EQ(ValueOr(*engine_, cf, "counter", at), first) << "family " << CfName(cf);
    }
    ++checks;
  }
  writer.join();
  for (Cf cf : kAllCfs) {
    EXPECT_EQ(ValueOr(*engine_, cf, "counter"), std::to_string(kBatches));
  }
}

TEST_P(EngineTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4;
  constexpr int kKeysPerThread = 200;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeysPerThread; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_OK(engine_->Put(Cf::kDefault, key, key));
        EXPECT_EQ(ValueOr(*engine_, Cf::kDefault, key), key);
        if (i % 50 == 0) {
          ScanForward(*engine_, Cf::kDefault);
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault).size(), size_t{kThreads} * kKeysPerThread);
}

// ---- Size ----

TEST_P(EngineTest, ApproximateSizeGrowsWithData) {
  Result<uint64_t> empty = engine_->ApproximateSize(Cf::kDefault, "k", "l");
  ASSERT_OK(empty);
  EXPECT_LT(*empty, 1024u);
  const std::string value(200, 'v');
  WriteBatch batch;
  for (int i = 0; i < 2000; ++i) {
    char key[16];
    snprintf(key, sizeof key, "k%06d", i);
    batch.Put(Cf::kDefault, key, value);
  }
  ASSERT_OK(engine_->Write(batch, {}));
  ASSERT_OK(engine_->Flush());
  Result<uint64_t> full = engine_->ApproximateSize(Cf::kDefault, "k", "l");
  ASSERT_OK(full);
  EXPECT_GT(*full, 200u * 1000u);
  EXPECT_LT(*full, 2u * 2000u * 210u);
  Result<uint64_t> elsewhere = engine_->ApproximateSize(Cf::kDefault, "x", "y");
  ASSERT_OK(elsewhere);
  EXPECT_LT(*elsewhere, 1024u);
  Result<uint64_t> other_family = engine_->ApproximateSize(Cf::kLock, "k", "l");
  ASSERT_OK(other_family);
  EXPECT_LT(*other_family, 1024u);
  EXPECT_EQ(engine_->ApproximateSize(Cf::kDefault, "l", "k").value_or(99), 0u);
}

TEST_P(EngineTest, ApproximateKeysCountsTablesAndMemtables) {
  Result<uint64_t> empty = engine_->ApproximateKeys(Cf::kDefault, "k", "l");
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, 0u);
  auto put = [&](int from, int to) {
    WriteBatch batch;
    for (int i = from; i < to; ++i) {
      char key[16];
      snprintf(key, sizeof key, "k%06d", i);
      batch.Put(Cf::kDefault, key, "v");
    }
    ASSERT_OK(engine_->Write(batch, {}));
  };
  put(0, 1000);
  ASSERT_OK(engine_->Flush());  // a table file
  put(1000, 1500);              // and the memtable
  Result<uint64_t> keys = engine_->ApproximateKeys(Cf::kDefault, "k", "l");
  ASSERT_OK(keys);
  // RocksDB samples the memtable: its part is an estimate (1331 for 500 seen here).
  EXPECT_GT(*keys, 1100u);
  EXPECT_LT(*keys, 2000u);
  EXPECT_EQ(engine_->ApproximateKeys(Cf::kDefault, "x", "y").value_or(99), 0u);
  EXPECT_EQ(engine_->ApproximateKeys(Cf::kLock, "k", "l").value_or(99), 0u);
  // A tenth of one table file's range counts about a tenth of its keys, not the whole file.
  WriteBatch many;
  for (int i = 0; i < 10000; ++i) {
    char key[16];
    snprintf(key, sizeof key, "m%06d", i);
    many.Put(Cf::kDefault, key, std::string(40, 'v'));
  }
  ASSERT_OK(engine_->Write(many, {}));
  ASSERT_OK(engine_->Flush());
  Result<uint64_t> part = engine_->ApproximateKeys(Cf::kDefault, "m004000", "m005000");
  ASSERT_OK(part);
  EXPECT_GT(*part, 500u);
  EXPECT_LT(*part, 2500u);
  EXPECT_EQ(engine_->ApproximateKeys(Cf::kDefault, "l", "k").value_or(99), 0u);
}

// ---- Files ----

TEST_P(EngineTest, CheckpointReopensWithSameData) {
  PutAll(Cf::kDefault, kLetters);
  ASSERT_OK(engine_->Put(Cf::kRaft, "hard-state", "term 3"));
  ASSERT_OK(engine_->Put(Cf::kWrite, "w", "commit"));
  const std::string dir = tmp_.Sub("checkpoint");
  ASSERT_OK(engine_->Checkpoint(dir));
  // Later writes are not in the copy.
  ASSERT_OK(engine_->Put(Cf::kDefault, "zz", "late"));
  ASSERT_OK(engine_->Delete(Cf::kDefault, "a"));

  Status again = engine_->Checkpoint(dir);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();

  Result<std::unique_ptr<Engine>> copy = GetParam().open_checkpoint(dir);
  ASSERT_OK(copy);
  Engine& restored = **copy;
  EXPECT_EQ(ScanForward(restored, Cf::kDefault), kLetters);
  EXPECT_EQ(ScanForward(restored, Cf::kRaft), (KeyValues{{"hard-state", "term 3"}}));
  EXPECT_EQ(ScanForward(restored, Cf::kWrite), (KeyValues{{"w", "commit"}}));
  EXPECT_TRUE(ScanForward(restored, Cf::kLock).empty());
  // The copy is a working engine of its own.
  ASSERT_OK(restored.Put(Cf::kLock, "new", "1"));
  EXPECT_EQ(ValueOr(*engine_, Cf::kLock, "new"), "<absent>");
}

TEST_P(EngineTest, ExportIngestRoundTripsExactlyTheRange) {
  PutAll(Cf::kDefault, kLetters);
  PutAll(Cf::kLock, kLetters);
  const std::string path = tmp_.Sub("range.sst");
  Result<ExportStats> stats = engine_->ExportSst(Cf::kDefault, "c", "g", path);
  ASSERT_OK(stats);
  EXPECT_EQ(stats->count, 4u);
  EXPECT_GT(stats->bytes, 0u);

  std::unique_ptr<Engine> target = Open("target");
  ASSERT_NE(target, nullptr);
  ASSERT_OK(target->Put(Cf::kWrite, "d", "stays"));  // other family: untouched
  ASSERT_OK(target->Put(Cf::kWrite, "zz", "stays"));
  ASSERT_OK(target->IngestSst(Cf::kWrite, {path}));
  EXPECT_EQ(ScanForward(*target, Cf::kWrite),
            (KeyValues{{"c", "3"}, {"d", "4"}, {"e", "5"}, {"f", "6"}, {"zz", "stays"}}));
  EXPECT_TRUE(ScanForward(*target, Cf::kDefault).empty());
  EXPECT_EQ(ValueOr(*target, Cf::kWrite, "e"), "5");
  // The file is left in place and can be ingested again.
  ASSERT_OK(target->IngestSst(Cf::kDefault, {path}));
  EXPECT_EQ(ScanForward(*target, Cf::kDefault),
            KeyValues(kLetters.begin() + 2, kLetters.begin() + 6));
}

TEST_P(EngineTest, ExportIsConsistentAtSnapshot) {
  PutAll(Cf::kDefault, {{"a", "1"}, {"b", "1"}});
  std::unique_ptr<Snapshot> snap = engine_->GetSnapshot();
  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "2"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "c", "2"));
  ReadOptions range;
  range.snapshot = snap.get();
  const std::string path = tmp_.Sub("snap.sst");
  Result<ExportStats> stats = engine_->ExportSst(Cf::kDefault, range, path);
  ASSERT_OK(stats);
  EXPECT_EQ(stats->count, 2u);
  std::unique_ptr<Engine> target = Open("target");
  ASSERT_NE(target, nullptr);
  ASSERT_OK(target->IngestSst(Cf::kDefault, {path}));
  EXPECT_EQ(ScanForward(*target, Cf::kDefault), (KeyValues{{"a", "1"}, {"b", "1"}}));
}

TEST_P(EngineTest, IngestReplacesExistingKeysAndHidesFromOldSnapshots) {
  PutAll(Cf::kDefault, {{"b", "new"}, {"c", "new"}});
  const std::string path = tmp_.Sub("x.sst");
  ASSERT_OK(engine_->ExportSst(Cf::kDefault, "a", "z", path));
  std::unique_ptr<Engine> target = Open("target");
  ASSERT_NE(target, nullptr);
  ASSERT_OK(target->Put(Cf::kDefault, "b", "old"));
  std::unique_ptr<Snapshot> before = target->GetSnapshot();
  ASSERT_OK(target->IngestSst(Cf::kDefault, {path}));
  EXPECT_EQ(ScanForward(*target, Cf::kDefault), (KeyValues{{"b", "new"}, {"c", "new"}}));
  ReadOptions at;
  at.snapshot = before.get();
  EXPECT_EQ(ScanForward(*target, Cf::kDefault, at), (KeyValues{{"b", "old"}}));
}

TEST_P(EngineTest, IngestSeveralFiles) {
  PutAll(Cf::kDefault, kLetters);
  const std::string low = tmp_.Sub("low.sst");
  const std::string high = tmp_.Sub("high.sst");
  ASSERT_OK(engine_->ExportSst(Cf::kDefault, "a", "e", low));
  ASSERT_OK(engine_->ExportSst(Cf::kDefault, "e", "zz", high));
  std::unique_ptr<Engine> target = Open("target");
  ASSERT_NE(target, nullptr);
  ASSERT_OK(target->IngestSst(Cf::kDefault, {low, high}));
  EXPECT_EQ(ScanForward(*target, Cf::kDefault), kLetters);
}

TEST_P(EngineTest, IngestOverlappingFilesLaterWins) {
  ASSERT_OK(engine_->Put(Cf::kDefault, "a", "first"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "b", "first"));
  const std::string first = tmp_.Sub("first.sst");
  ASSERT_OK(engine_->ExportSst(Cf::kDefault, "a", "z", first));
  ASSERT_OK(engine_->Put(Cf::kDefault, "b", "second"));
  ASSERT_OK(engine_->Put(Cf::kDefault, "c", "second"));
  ASSERT_OK(engine_->Delete(Cf::kDefault, "a"));
  const std::string second = tmp_.Sub("second.sst");
  ASSERT_OK(engine_->ExportSst(Cf::kDefault, "a", "z", second));
  std::unique_ptr<Engine> target = Open("target");
  ASSERT_NE(target, nullptr);
  ASSERT_OK(target->IngestSst(Cf::kDefault, {first, second}));
  EXPECT_EQ(ScanForward(*target, Cf::kDefault),
            (KeyValues{{"a", "first"}, {"b", "second"}, {"c", "second"}}));
}

TEST_P(EngineTest, ExportOfEmptyRangeWritesNoFile) {
  PutAll(Cf::kDefault, kLetters);
  const std::string path = tmp_.Sub("empty.sst");
  {
    std::ofstream stale(path);
    stale << "stale";
  }
  Result<ExportStats> stats = engine_->ExportSst(Cf::kDefault, "x", "z", path);
  ASSERT_OK(stats);
  EXPECT_EQ(stats->count, 0u);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_OK(engine_->IngestSst(Cf::kDefault, {}));
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), kLetters);
}

TEST_P(EngineTest, IngestOfBadFileChangesNothing) {
  ASSERT_OK(engine_->Put(Cf::kDefault, "k", "v"));
  const std::string garbage = tmp_.Sub("garbage.sst");
  {
    std::ofstream out(garbage, std::ios::binary);
    out << std::string(4096, 'x');
  }
  Status st = engine_->IngestSst(Cf::kDefault, {garbage});
  EXPECT_FALSE(st.ok());
  Status missing = engine_->IngestSst(Cf::kDefault, {tmp_.Sub("no-such.sst")});
  EXPECT_FALSE(missing.ok());
  EXPECT_EQ(ScanForward(*engine_, Cf::kDefault), (KeyValues{{"k", "v"}}));
}

INSTANTIATE_TEST_SUITE_P(AllEngines, EngineTest, ::testing::ValuesIn(AllKinds()),
                         [](const ::testing::TestParamInfo<EngineKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace micedb::storage
