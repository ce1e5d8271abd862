#include "cli/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace micedb::cli {

namespace fs = std::filesystem;

DataDirLock::~DataDirLock() {
  // Closing the descriptor releases the flock; the LOCK file stays, as RocksDB's does.
  ::close(fd_);
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& dir) {
  std::error_code ec;
  auto st = fs::status(dir, ec);
  if (fs::exists(st) && !fs::is_directory(st)) {
    return Status::InvalidArgument(fmt::format("data directory {} is not a directory", dir));
  }
  if (!fs::exists(st)) {
    fs::create_directories(dir, ec);
    if (ec) {
      return Status::IoError(fmt::format("cannot create data directory {}: {}", dir, ec.message()));
    }
  }
  std::string path = (fs::path(dir) / "LOCK").string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IoError(fmt::format("cannot open lock file {}: {}", path, std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    ::close(fd);
    std::string holder = n > 0 ? fmt::format(" (pid {})", std::string(buf, n)) : "";
    if (err == EWOULDBLOCK) {
      return Status::Busy(
          fmt::format("data directory {} is in use by another process{}", dir, holder));
    }
    return Status::IoError(fmt::format("cannot lock {}: {}", path, std::strerror(err)));
  }
  // We own the directory now: record our pid so that a second process can name us.
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    ::close(fd);
    return Status::IoError(
        fmt::format("cannot write lock file {}: {}", path, std::strerror(errno)));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(dir, fd));
}

}  // namespace micedb::cli
