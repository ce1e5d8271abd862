#include "store/snapshot_stage.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "common/crc32c.h"

namespace micedb::store {

namespace fs = std::filesystem;

namespace {

Status Errno(std::string_view what, const std::string& path) {
  return Status::IoError(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

class PosixFile final : public StagingFile {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write", path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::OK();
  }
  Status Sync() override {
    if (::fsync(fd_) != 0) return Errno("fsync", path_);
    return Status::OK();
  }
  Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd < 0 || ::close(fd) != 0) return Errno("close", path_);
    return Status::OK();
  }

 private:
  int fd_;
  const std::string path_;
};

class PosixFs final : public StagingFs {
 public:
  Status CreateDir(const std::string& dir) override {
    std::error_code ec;
    if (fs::create_directory(dir, ec)) return Status::OK();
    if (ec) return Status::IoError(fmt::format("cannot create {}: {}", dir, ec.message()));
    return Status::AlreadyExists(dir + " exists");
  }
  Result<std::unique_ptr<StagingFile>> Create(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("create", path);
    return std::unique_ptr<StagingFile>(std::make_unique<PosixFile>(fd, path));
  }
  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("open directory", dir);
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) return Errno("fsync directory", dir);
    return Status::OK();
  }
};

std::string Describe(const SnapshotFileMeta& f) {
  return fmt::format("file {} of column family {}", f.index(), f.cf());
}

}  // namespace

StagingFs* PosixStagingFs() {
  static PosixFs* const fs = new PosixFs();  // never destroyed: used by threads until exit
  return fs;
}

Status SnapshotStager::Open() { return fs_->CreateDir(dir_); }

Status SnapshotStager::Append(storage::Cf cf, uint32_t index, std::string_view data) {
  auto key = std::make_pair(static_cast<uint32_t>(cf), index);
  auto it = files_.find(key);
  if (it == files_.end()) {
    MICEDB_ASSIGN_OR_RETURN(auto file, fs_->Create(SnapshotFilePath(dir_, cf, index)));
    it = files_.emplace(key, File{std::move(file), 0, 0}).first;
  }
  MICEDB_RETURN_IF_ERROR(it->second.file->Append(data));
  it->second.size += data.size();
  it->second.crc = crc32c::Extend(it->second.crc, data);
  return Status::OK();
}

Result<StagedSnapshot> SnapshotStager::Finish(const std::vector<SnapshotFileMeta>& expected) {
  // Durable first: the store's pending-install record, written after this returns, relies on
  // the files and their names surviving a power loss.
  for (auto& [key, f] : files_) {
    MICEDB_RETURN_IF_ERROR(f.file->Sync());
    MICEDB_RETURN_IF_ERROR(f.file->Close());
  }
  MICEDB_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  const fs::path parent = fs::path(dir_).parent_path();
  if (!parent.empty()) MICEDB_RETURN_IF_ERROR(fs_->SyncDir(parent.string()));

  std::map<std::pair<uint32_t, uint32_t>, const SnapshotFileMeta*> listed;
  for (const SnapshotFileMeta& m : expected) {
    if (!listed.emplace(std::make_pair(m.cf(), m.index()), &m).second) {
      return Status::Corruption(fmt::format("the sender lists {} twice", Describe(m)));
    }
  }
  for (const auto& [key, f] : files_) {
    if (!listed.contains(key)) {
      return Status::Corruption(
          fmt::format("file {} of column family {} arrived but is not in the sender's list",
                      key.second, key.first));
    }
  }
  for (const auto& [key, m] : listed) {
    auto it = files_.find(key);
    // A listed file of length 0 sends no chunk; such a file is never exported, so it is lost.
    if (it == files_.end()) return Status::Corruption(Describe(*m) + " never arrived");
    if (it->second.size != m->size() || it->second.crc != m->crc32c()) {
      return Status::Corruption(
          fmt::format("{} arrived with {} bytes (crc {:08x}), the sender "
                      "sent {} (crc {:08x})",
                      Describe(*m), it->second.size, it->second.crc, m->size(), m->crc32c()));
    }
  }
  return StagedSnapshot{dir_, expected};
}

Result<std::pair<uint64_t, uint32_t>> FileChecksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return Status::NotFound(path + " does not exist");
    return Status::IoError("cannot open " + path);
  }
  std::string buf(1 << 20, '\0');
  uint64_t size = 0;
  uint32_t crc = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    crc = crc32c::Extend(crc, buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  if (in.bad()) return Status::IoError("cannot read " + path);
  return std::make_pair(size, crc);
}

Result<StagedSnapshot> DescribeExportedFiles(const std::string& dir,
                                             const std::vector<SnapshotFile>& files) {
  StagedSnapshot out{dir, {}};
  std::map<storage::Cf, uint32_t> next;
  for (const SnapshotFile& f : files) {
    const uint32_t index = next[f.cf]++;
    if (f.path != SnapshotFilePath(dir, f.cf, index)) {
      return Status::InvalidArgument(
          fmt::format("{} is not where the receiver expects it in {}", f.path, dir));
    }
    MICEDB_ASSIGN_OR_RETURN(auto sum, FileChecksum(f.path));
    SnapshotFileMeta& m = out.files.emplace_back();
    m.set_cf(static_cast<uint32_t>(f.cf));
    m.set_index(index);
    m.set_size(sum.first);
    m.set_crc32c(sum.second);
  }
  return out;
}

}  // namespace micedb::store
