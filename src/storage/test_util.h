// Helpers for the storage tests. Test-only; not part of the micedb_storage library.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/result.h"
#include "common/status.h"
#include "storage/engine.h"

// ASSERT_OK / EXPECT_OK take a Status or a Result<T> and print the error when not OK.
#define MICEDB_STORAGE_CHECK_OK(expr, fail)                        \
  do {                                                             \
    const auto& _check_ok = (expr);                                \
    if (!_check_ok.ok()) {                                         \
      fail() << ::micedb::storage::StatusOf(_check_ok).ToString(); \
    }                                                              \
  } while (0)
#ifndef ASSERT_OK
#define ASSERT_OK(expr) MICEDB_STORAGE_CHECK_OK(expr, FAIL)
#endif
#ifndef EXPECT_OK
#define EXPECT_OK(expr) MICEDB_STORAGE_CHECK_OK(expr, ADD_FAILURE)
#endif

namespace micedb::storage {

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// Every entry `options` lets an iterator over `cf` see, first to last.
inline KeyValues ScanForward(Engine& engine, Cf cf, const ReadOptions& options = {}) {
  KeyValues out;
  std::unique_ptr<Iterator> it = engine.NewIterator(cf, options);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace_back(it->key(), it->value());
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

// The same entries, gathered last to first and returned in forward order.
inline KeyValues ScanBackward(Engine& engine, Cf cf, const ReadOptions& options = {}) {
  KeyValues out;
  std::unique_ptr<Iterator> it = engine.NewIterator(cf, options);
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    out.emplace_back(it->key(), it->value());
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return KeyValues(out.rbegin(), out.rend());
}

// The value of `key`, "<absent>" when NotFound, "<error: ...>" otherwise.
inline std::string ValueOr(Engine& engine, Cf cf, std::string_view key,
                           const ReadOptions& options = {}) {
  Result<std::string> r = engine.Get(cf, key, options);
  if (r.ok()) {
    return *r;
  }
  if (r.status().IsNotFound()) {
    return "<absent>";
  }
  return "<error: " + r.status().ToString() + ">";
}

// A fresh directory under /tmp, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "micedb-storage-XXXXXX");
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) {
      path_ = made;
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) {
      std::filesystem::remove_all(path_, ec);
    }
  }

  // Empty when the directory could not be made.
  const std::string& path() const { return path_; }
  // `name` inside the directory (not created).
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace micedb::storage
