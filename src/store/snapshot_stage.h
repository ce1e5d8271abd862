// Staging a received snapshot durably (docs/store-format.md, "Snapshots"). The receiver writes
// each file as its chunks arrive; at the end every file is synced, then the staging directory
// and its parent, and only then is what arrived compared with the sender's list and handed to
// the store. The store writes its pending-install record after that, so the record never
// names files that a power loss could take back.
//
// The file-system calls go through StagingFs so that tests can model a power loss that drops
// whatever was not synced.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"
#include "store/transport.h"

namespace micedb::store {

// A file being written. Not thread-safe.
class StagingFile {
 public:
  virtual ~StagingFile() = default;
  // Appends `data`. IoError on failure.
  virtual Status Append(std::string_view data) = 0;
  // Makes everything appended so far durable (fsync). IoError on failure.
  virtual Status Sync() = 0;
  // Closes the file; later calls fail. IoError on failure.
  virtual Status Close() = 0;
};

// The file-system calls staging needs. Implementations are thread-safe.
class StagingFs {
 public:
  virtual ~StagingFs() = default;
  // Creates `dir`, whose parent must exist. AlreadyExists when it exists; IoError on failure.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Creates (or truncates) the file at `path` for writing. IoError on failure.
  virtual Result<std::unique_ptr<StagingFile>> Create(const std::string& path) = 0;
  // Makes the names in `dir` (files and directories created in it) durable. IoError on
  // failure.
  virtual Status SyncDir(const std::string& dir) = 0;
};

// The real file system (POSIX calls). Never null; lives for the whole process.
StagingFs* PosixStagingFs();

// Writes one received snapshot into a fresh staging directory. Not thread-safe: one stager per
// stream. The caller removes the directory when the stager fails or its result is not used.
class SnapshotStager {
 public:
  // `fs` must outlive the stager.
  SnapshotStager(StagingFs* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  // Creates the staging directory, which must be new: a directory left by an earlier process
  // may be named by a pending install that is being finished. AlreadyExists when it exists (pick
  // another name); IoError on failure.
  Status Open();

  // Appends a piece of file `index` of column family `cf`, creating the file at
  // SnapshotFilePath(dir, cf, index) on its first piece. IoError on failure.
  Status Append(storage::Cf cf, uint32_t index, std::string_view data);

  // Syncs every file and closes it, then syncs the staging directory and its parent; then
  // checks the files against `expected` (the sender's list): the same files, lengths and
  // CRC32Cs. Returns the staged snapshot, whose list is `expected`. Errors: IoError from the
  // file system; Corruption when what arrived differs from the list (naming the file).
  Result<StagedSnapshot> Finish(const std::vector<SnapshotFileMeta>& expected);

  const std::string& dir() const { return dir_; }

 private:
  struct File {
    std::unique_ptr<StagingFile> file;
    uint64_t size = 0;
    uint32_t crc = 0;
  };

  StagingFs* const fs_;
  const std::string dir_;
  std::map<std::pair<uint32_t, uint32_t>, File> files_;  // (cf, index)
};

// For transports that export a snapshot straight into the directory the receiver installs
// from (tests, the simulation): describes `files`, which must lie in `dir` as ExportSnapshotFiles
// writes them, numbering each column family's files from 0 in order. Nothing is synced.
// Errors: InvalidArgument for a file outside that layout, IoError when one cannot be read.
Result<StagedSnapshot> DescribeExportedFiles(const std::string& dir,
                                             const std::vector<SnapshotFile>& files);

// The length and CRC32C of the file at `path`. IoError when it cannot be read (NotFound when
// it does not exist).
Result<std::pair<uint64_t, uint32_t>> FileChecksum(const std::string& path);

}  // namespace micedb::store
