// MemEngine behaviour beyond the shared suite in engine_test.cc.
#include "storage/mem_engine.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "storage/rocks_engine.h"
#include "storage/test_util.h"

namespace micedb::storage {
namespace {

TEST(MemEngineTest, CloneIsIndependent) {
  MemEngine engine;
  ASSERT_OK(engine.Put(Cf::kDefault, "k", "1"));
  std::unique_ptr<MemEngine> clone = engine.Clone();
  ASSERT_OK(engine.Put(Cf::kDefault, "k", "2"));
  ASSERT_OK(clone->Put(Cf::kDefault, "c", "only in clone"));
  EXPECT_EQ(ValueOr(*clone, Cf::kDefault, "k"), "1");
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "k"), "2");
  EXPECT_EQ(ValueOr(engine, Cf::kDefault, "c"), "<absent>");
  // A snapshot of one is not usable on the other.
  std::unique_ptr<Snapshot> snap = engine.GetSnapshot();
  ReadOptions at;
  at.snapshot = snap.get();
  EXPECT_TRUE(clone->Get(Cf::kDefault, "k", at).status().IsInvalidArgument());
}

TEST(MemEngineTest, SnapshotSurvivesManyWrites) {
  MemEngine engine;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(engine.Put(Cf::kDefault, std::to_string(i), "old"));
  }
  std::unique_ptr<Snapshot> snap = engine.GetSnapshot();
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(engine.Put(Cf::kDefault, std::to_string(i), "new"));
  }
  ASSERT_OK(engine.DeleteRange(Cf::kDefault, "", "5"));
  ReadOptions at;
  at.snapshot = snap.get();
  KeyValues seen = ScanForward(engine, Cf::kDefault, at);
  ASSERT_EQ(seen.size(), 100u);
  for (const auto& [key, value] : seen) {
    EXPECT_EQ(value, "old") << key;
  }
}

TEST(MemEngineTest, OpenCheckpointErrors) {
  TempDir tmp;
  Result<std::unique_ptr<MemEngine>> missing = MemEngine::OpenCheckpoint(tmp.Sub("none"));
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  const std::string bad_header = tmp.Sub("bad-header");
  std::filesystem::create_directory(bad_header);
  { std::ofstream(bad_header + "/MEMENGINE") << "something else\n"; }
  EXPECT_TRUE(MemEngine::OpenCheckpoint(bad_header).status().IsCorruption());

  const std::string bad_cf = tmp.Sub("bad-cf");
  std::filesystem::create_directory(bad_cf);
  { std::ofstream(bad_cf + "/MEMENGINE") << "micedb-memengine-checkpoint 1\nmystery\n"; }
  EXPECT_TRUE(MemEngine::OpenCheckpoint(bad_cf).status().IsCorruption());

  // A listed family whose file is gone.
  const std::string lost = tmp.Sub("lost");
  std::filesystem::create_directory(lost);
  { std::ofstream(lost + "/MEMENGINE") << "micedb-memengine-checkpoint 1\nraft\n"; }
  EXPECT_FALSE(MemEngine::OpenCheckpoint(lost).ok());
}

TEST(MemEngineTest, CheckpointOfEmptyEngine) {
  TempDir tmp;
  MemEngine engine;
  ASSERT_OK(engine.Checkpoint(tmp.Sub("cp")));
  Result<std::unique_ptr<MemEngine>> copy = MemEngine::OpenCheckpoint(tmp.Sub("cp"));
  ASSERT_OK(copy);
  for (Cf cf : kAllCfs) {
    EXPECT_TRUE(ScanForward(**copy, cf).empty());
  }
}

// The two engine types write the same file format, so a range moves between them.
TEST(SstInteropTest, MemAndRocksReadEachOthersFiles) {
  TempDir tmp;
  MemEngine mem;
  Result<std::unique_ptr<RocksEngine>> rocks = RocksEngine::Open(tmp.Sub("db"), RocksOptions{});
  ASSERT_OK(rocks);
  const KeyValues data = {{"a", "1"}, {std::string("b\0", 2), std::string(300, 'v')}, {"c", ""}};
  for (const auto& [k, v] : data) {
    ASSERT_OK(mem.Put(Cf::kWrite, k, v));
  }

  const std::string from_mem = tmp.Sub("from-mem.sst");
  Result<ExportStats> stats = mem.ExportSst(Cf::kWrite, "", "z", from_mem);
  ASSERT_OK(stats);
  EXPECT_EQ(stats->count, 3u);
  ASSERT_OK((*rocks)->IngestSst(Cf::kWrite, {from_mem}));
  EXPECT_EQ(ScanForward(**rocks, Cf::kWrite), data);

  // Rocks compresses its files; MemEngine still reads them.
  WriteBatch more;
  for (int i = 0; i < 100; ++i) {
    more.Put(Cf::kLock, "lock" + std::to_string(i), std::string(100, 'x'));
  }
  ASSERT_OK((*rocks)->Write(more, {}));
  const std::string from_rocks = tmp.Sub("from-rocks.sst");
  ASSERT_OK((*rocks)->ExportSst(Cf::kLock, "", "zzz", from_rocks));
  MemEngine target;
  ASSERT_OK(target.IngestSst(Cf::kLock, {from_rocks}));
  EXPECT_EQ(ScanForward(target, Cf::kLock), ScanForward(**rocks, Cf::kLock));
}

}  // namespace
}  // namespace micedb::storage
