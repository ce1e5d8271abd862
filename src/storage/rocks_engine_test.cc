// RocksEngine behaviour beyond the shared suite in engine_test.cc: what happens across
// process boundaries and on disk.
#include "storage/rocks_engine.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "storage/test_util.h"

namespace micedb::storage {
namespace {

TEST(RocksEngineTest, ReopenKeepsData) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  {
    Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
    ASSERT_OK(engine);
    ASSERT_OK((*engine)->Put(Cf::kRaft, "hs", "term 7", WriteOptions{.sync = true}));
    ASSERT_OK((*engine)->Put(Cf::kDefault, "k", "v"));
    ASSERT_OK((*engine)->DeleteRange(Cf::kLock, "a", "b"));
    ASSERT_OK((*engine)->Flush());
    ASSERT_OK((*engine)->Put(Cf::kWrite, "after-flush", "w", WriteOptions{.sync = true}));
  }
  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
  ASSERT_OK(engine);
  EXPECT_EQ(ValueOr(**engine, Cf::kRaft, "hs"), "term 7");
  EXPECT_EQ(ValueOr(**engine, Cf::kDefault, "k"), "v");
  EXPECT_EQ(ValueOr(**engine, Cf::kWrite, "after-flush"), "w");
  EXPECT_EQ((*engine)->dir(), dir);
}

TEST(RocksEngineTest, CreatesItsColumnFamilies) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  { ASSERT_OK(RocksEngine::Open(dir, RocksOptions{})); }
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"dedup", "default", "lock", "raft", "write"}));
}

// A directory made before the dedup column family existed opens, and gains it.
TEST(RocksEngineTest, OpensADirectoryFromBeforeTheDedupFamily) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  {
    rocksdb::DBOptions o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* n : {"default", "raft", "lock", "write"}) {
      cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, cfs, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[1], "k", "v").ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }
  auto engine = RocksEngine::Open(dir, RocksOptions{});
  ASSERT_OK(engine);
  EXPECT_EQ(*(*engine)->Get(Cf::kRaft, "k"), "v");
  EXPECT_OK((*engine)->Put(Cf::kDedup, "d", "1"));
}

TEST(RocksEngineTest, SecondOpenOfSameDirectoryIsBusy) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  Result<std::unique_ptr<RocksEngine>> first = RocksEngine::Open(dir, RocksOptions{});
  ASSERT_OK(first);
  Result<std::unique_ptr<RocksEngine>> second = RocksEngine::Open(dir, RocksOptions{});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kBusy) << second.status().ToString();
  EXPECT_NE(second.status().message().find("LOCK"), std::string_view::npos)
      << second.status().ToString();
  // The first engine is unharmed.
  EXPECT_OK((*first)->Put(Cf::kDefault, "k", "v"));
}

// Another process holding the directory's lock, as a second `micedb start` would.
TEST(RocksEngineTest, DirectoryLockedByAnotherProcessIsBusy) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  { ASSERT_OK(RocksEngine::Open(dir, RocksOptions{})); }

  int ready[2];
  int release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Take the same POSIX record lock RocksDB takes on LOCK, then wait to be told to exit.
    const int fd = open((dir + "/LOCK").c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    const char ok = (fd >= 0 && fcntl(fd, F_SETLK, &lock) == 0) ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) {
      _exit(1);
    }
    char byte;
    if (read(release[0], &byte, 1) < 0) {
      _exit(1);
    }
    _exit(0);
  }
  char locked = 0;
  ASSERT_EQ(read(ready[0], &locked, 1), 1);
  ASSERT_EQ(locked, 'y');

  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
  EXPECT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kBusy) << engine.status().ToString();
  EXPECT_NE(engine.status().message().find("LOCK"), std::string_view::npos);

  const char go = 'x';
  ASSERT_EQ(write(release[1], &go, 1), 1);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  for (int fd : {ready[0], ready[1], release[0], release[1]}) {
    close(fd);
  }
  // With the other process gone the directory opens again.
  EXPECT_OK(RocksEngine::Open(dir, RocksOptions{}));
}

TEST(RocksEngineTest, MissingDirectoryWithoutCreateIsAnError) {
  TempDir tmp;
  RocksOptions options;
  options.create_if_missing = false;
  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(tmp.Sub("none"), options);
  ASSERT_FALSE(engine.ok());
  EXPECT_TRUE(engine.status().IsInvalidArgument()) << engine.status().ToString();
}

TEST(RocksEngineTest, UnknownColumnFamilyOnDiskIsAnError) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "mystery", &handle).ok());
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
  ASSERT_FALSE(engine.ok());
  EXPECT_TRUE(engine.status().IsInvalidArgument()) << engine.status().ToString();
}

TEST(RocksEngineTest, OtherOptionsWork) {
  TempDir tmp;
  RocksOptions options;
  options.compression = false;
  options.bloom_bits_per_key = 0;
  options.total_write_buffer_bytes = 0;
  options.block_cache_bytes = 1 << 20;
  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(tmp.Sub("db"), options);
  ASSERT_OK(engine);
  ASSERT_OK((*engine)->Put(Cf::kDefault, "k", "v"));
  ASSERT_OK((*engine)->Flush());
  EXPECT_EQ(ValueOr(**engine, Cf::kDefault, "k"), "v");
}

// A damaged table file is reported as Corruption, not read past or crashed on.
TEST(RocksEngineTest, CorruptTableIsReported) {
  TempDir tmp;
  const std::string dir = tmp.Sub("db");
  {
    Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
    ASSERT_OK(engine);
    WriteBatch batch;
    for (int i = 0; i < 500; ++i) {
      batch.Put(Cf::kDefault, "key" + std::to_string(i), "value");
    }
    ASSERT_OK((*engine)->Write(batch, {}));
    ASSERT_OK((*engine)->Flush());
  }
  std::string table;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".sst") {
      table = entry.path().string();
    }
  }
  ASSERT_FALSE(table.empty());
  {
    std::fstream file(table, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(64);
    file << std::string(64, '\x5a');
  }
  Result<std::unique_ptr<RocksEngine>> engine = RocksEngine::Open(dir, RocksOptions{});
  Status st;
  if (!engine.ok()) {
    st = engine.status();
  } else {
    std::unique_ptr<Iterator> it = (*engine)->NewIterator(Cf::kDefault, {});
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
    }
    st = it->status();
  }
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

}  // namespace
}  // namespace micedb::storage
