#include "storage/fault_engine.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random.h"
#include "storage/mem_engine.h"
#include "storage/test_util.h"

namespace micedb::storage {
namespace {

// Every family of `engine`, as one list per family.
std::vector<KeyValues> Contents(Engine& engine) {
  std::vector<KeyValues> out;
  out.reserve(kNumCfs);
  for (Cf cf : kAllCfs) {
    out.push_back(ScanForward(engine, cf));
  }
  return out;
}

WriteBatch OneKeyInEachFamily(const std::string& key, const std::string& value) {
  WriteBatch batch;
  for (Cf cf : kAllCfs) {
    batch.Put(cf, key, value);
  }
  return batch;
}

TEST(FaultEngineTest, PowerLossKeepsExactlyTheSyncedBatches) {
  FaultEngine engine;
  ASSERT_OK(engine.Write(OneKeyInEachFamily("b1", "x"), WriteOptions{.sync = true}));
  ASSERT_OK(engine.Write(OneKeyInEachFamily("b2", "x"), {}));
  ASSERT_OK(engine.Write(OneKeyInEachFamily("b3", "x"), {}));
  // A synced batch makes the unsynced ones before it durable too.
  ASSERT_OK(engine.Write(OneKeyInEachFamily("b4", "x"), WriteOptions{.sync = true}));
  ASSERT_OK(engine.Write(OneKeyInEachFamily("b5", "x"), {}));
  ASSERT_OK(engine.Delete(Cf::kDefault, "b1"));
  EXPECT_EQ(engine.UnsyncedWriteCount(), 2u);
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "b5"), "x");  // visible before the loss

  engine.SimulatePowerLoss();
  EXPECT_EQ(engine.UnsyncedWriteCount(), 0u);
  const KeyValues durable = {{"b1", "x"}, {"b2", "x"}, {"b3", "x"}, {"b4", "x"}};
  for (Cf cf : kAllCfs) {
    EXPECT_EQ(ScanForward(engine, cf), durable) << CfName(cf);
  }

  // The engine carries on after the loss.
  ASSERT_OK(engine.Put(Cf::kDefault, "after", "1", WriteOptions{.sync = true}));
  engine.SimulatePowerLoss();
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "after"), "1");
}

TEST(FaultEngineTest, SyncWalAndFlushAreDurablePoints) {
  FaultEngine engine;
  ASSERT_OK(engine.Put(Cf::kDefault, "a", "1"));
  ASSERT_OK(engine.SyncWAL());
  ASSERT_OK(engine.Put(Cf::kDefault, "b", "1"));
  ASSERT_OK(engine.Flush());
  ASSERT_OK(engine.Put(Cf::kDefault, "c", "1"));
  engine.SimulatePowerLoss();
  EXPECT_EQ(ScanForward(engine, Cf::kDefault), (KeyValues{{"a", "1"}, {"b", "1"}}));
}

TEST(FaultEngineTest, EmptySyncedBatchSyncsEarlierWrites) {
  FaultEngine engine;
  ASSERT_OK(engine.Put(Cf::kRaft, "entry", "1"));
  ASSERT_OK(engine.Write(WriteBatch{}, WriteOptions{.sync = true}));
  engine.SimulatePowerLoss();
  EXPECT_EQ(ValueOr(engine, Cf::kRaft, "entry"), "1");
}

TEST(FaultEngineTest, PowerLossCanKeepAPrefixOfUnsyncedWrites) {
  FaultEngine engine;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(engine.Put(Cf::kDefault, std::to_string(i), "v"));
  }
  engine.SimulatePowerLoss(/*keep_unsynced=*/3);
  EXPECT_EQ(ScanForward(engine, Cf::kDefault), (KeyValues{{"0", "v"}, {"1", "v"}, {"2", "v"}}));
}

TEST(FaultEngineTest, InjectedWriteFailuresApplyNothing) {
  FaultEngine engine;
  ASSERT_OK(engine.Put(Cf::kDefault, "base", "1", WriteOptions{.sync = true}));
  engine.FailNextWrites(2);
  Status first = engine.Write(OneKeyInEachFamily("k", "v"), WriteOptions{.sync = true});
  EXPECT_EQ(first.code(), StatusCode::kIoError) << first.ToString();
  Status second = engine.Put(Cf::kLock, "l", "v");
  EXPECT_EQ(second.code(), StatusCode::kIoError);
  for (Cf cf : kAllCfs) {
    EXPECT_EQ(ValueOr(engine, cf, "k"), "<absent>");
  }
  EXPECT_EQ(ValueOr(engine, Cf::kLock, "l"), "<absent>");
  EXPECT_EQ(engine.UnsyncedWriteCount(), 0u);

  ASSERT_OK(engine.Write(OneKeyInEachFamily("k", "v"), {}));  // the third write works
  for (Cf cf : kAllCfs) {
    EXPECT_EQ(ValueOr(engine, cf, "k"), "v");
  }
  engine.FailNextWrites(0);
  EXPECT_OK(engine.Put(Cf::kDefault, "x", "y"));
}

TEST(FaultEngineTest, AWriteFaultStopsWritesUntilResumed) {
  FaultEngine engine;
  ASSERT_OK(engine.Put(Cf::kDefault, "a", "1"));
  // Only batches that touch the raft family fail while the fault is armed.
  engine.SetWriteFault(Status::ResourceExhausted("disk full"), [](const WriteBatch& b) {
    return !b.ops().empty() && b.ops()[0].cf == Cf::kRaft;
  });
  ASSERT_OK(engine.Put(Cf::kDefault, "b", "1"));
  EXPECT_EQ(engine.Put(Cf::kRaft, "r", "1").code(), StatusCode::kResourceExhausted);
  // Stopped now, as RocksDB after a background error: every write fails with that error, and
  // Resume fails while the disk is still full.
  EXPECT_EQ(engine.Put(Cf::kDefault, "c", "1").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(engine.SyncWAL().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(engine.Resume().code(), StatusCode::kResourceExhausted);
  engine.SetWriteFault(Status::OK());
  EXPECT_EQ(engine.Put(Cf::kDefault, "c", "1").code(), StatusCode::kResourceExhausted);
  ASSERT_OK(engine.Resume());
  ASSERT_OK(engine.Put(Cf::kRaft, "r", "1"));
  EXPECT_EQ(*engine.Get(Cf::kDefault, "b"), "1");
  EXPECT_FALSE(engine.Get(Cf::kDefault, "c").ok());
}

TEST(FaultEngineTest, SnapshotsFromBeforeTheLossAreRefused) {
  FaultEngine engine;
  ASSERT_OK(engine.Put(Cf::kDefault, "k", "v"));
  std::unique_ptr<Snapshot> before = engine.GetSnapshot();
  std::unique_ptr<Iterator> it = engine.NewIterator(Cf::kDefault, {});
  engine.SimulatePowerLoss();
  ReadOptions at;
  at.snapshot = before.get();
  EXPECT_TRUE(engine.Get(Cf::kDefault, "k", at).status().IsInvalidArgument());
  // An open iterator keeps the view it had.
  it->SeekToFirst();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "k");
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "k"), "<absent>");
}

TEST(FaultEngineTest, IngestIsDurable) {
  TempDir tmp;
  MemEngine source;
  ASSERT_OK(source.Put(Cf::kDefault, "s", "1"));
  const std::string path = tmp.Sub("s.sst");
  ASSERT_OK(source.ExportSst(Cf::kDefault, "a", "z", path));
  FaultEngine engine;
  ASSERT_OK(engine.IngestSst(Cf::kDefault, {path}));
  engine.SimulatePowerLoss();
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "s"), "1");
}

// Random batches, some synced; after each power loss the engine must hold exactly the state as
// of the last synced batch, computed independently on a MemEngine.
TEST(FaultEngineTest, RandomPowerLossMatchesModel) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Random rnd(seed);
    FaultEngine engine;
    auto model = std::make_unique<MemEngine>();          // every write
    auto durable_model = std::make_unique<MemEngine>();  // as of the last synced write
    for (int step = 0; step < 400; ++step) {
      if (rnd.OneIn(40)) {
        engine.SimulatePowerLoss();
        ASSERT_EQ(Contents(engine), Contents(*durable_model)) << "after step " << step;
        model = durable_model->Clone();
        continue;
      }
      WriteBatch batch;
      const int ops = 1 + static_cast<int>(rnd.Uniform(4));
      for (int i = 0; i < ops; ++i) {
        const Cf cf = kAllCfs[rnd.Uniform(kNumCfs)];
        const std::string key(1, static_cast<char>('a' + rnd.Uniform(8)));
        switch (rnd.Uniform(4)) {
          case 0:
          case 1:
            batch.Put(cf, key, std::to_string(step));
            break;
          case 2:
            batch.Delete(cf, key);
            break;
          default:
            batch.DeleteRange(cf, key, key + "zz");
            break;
        }
      }
      const bool sync = rnd.OneIn(4);
      ASSERT_OK(engine.Write(batch, WriteOptions{.sync = sync}));
      ASSERT_OK(model->Write(batch, {}));
      if (sync) {
        durable_model = model->Clone();
      }
    }
  }
}

}  // namespace
}  // namespace micedb::storage
