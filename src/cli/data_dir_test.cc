#include "cli/data_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace micedb::cli {
namespace {

namespace fs = std::filesystem;

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/micedb-datadir-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(DataDirTest, CreatesMissingDirectoryAndLocks) {
  auto dir = (root_ / "a" / "b").string();
  auto lock = DataDirLock::Acquire(dir);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "LOCK"));
}

TEST_F(DataDirTest, SecondLockIsBusyAndNamesHolder) {
  auto first = DataDirLock::Acquire(root_.string());
  ASSERT_TRUE(first.ok());
  auto second = DataDirLock::Acquire(root_.string());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kBusy);
  EXPECT_NE(second.status().message().find(std::to_string(getpid())), std::string::npos);
  first->reset();
  EXPECT_TRUE(DataDirLock::Acquire(root_.string()).ok());
}

TEST_F(DataDirTest, FileInPlaceOfDirectoryIsRejected) {
  auto path = root_ / "file";
  std::ofstream(path) << "keep me";
  auto lock = DataDirLock::Acquire(path.string());
  ASSERT_FALSE(lock.ok());
  EXPECT_TRUE(lock.status().IsInvalidArgument());
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(DataDirTest, UncreatableDirectoryIsIoError) {
  auto lock = DataDirLock::Acquire("/proc/micedb-cannot-exist/x");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kIoError);
}

}  // namespace
}  // namespace micedb::cli
