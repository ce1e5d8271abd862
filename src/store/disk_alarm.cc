#include "store/disk_alarm.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace micedb::store {

std::string_view DiskAlarmName(DiskAlarm alarm) {
  switch (alarm) {
    case DiskAlarm::kNone:
      return "none";
    case DiskAlarm::kNoSpace:
      return "NOSPACE";
    case DiskAlarm::kFailed:
      return "FAILED";
  }
  return "unknown";
}

DiskAlarm ClassifyWriteError(const Status& st) {
  return st.code() == StatusCode::kResourceExhausted ? DiskAlarm::kNoSpace : DiskAlarm::kFailed;
}

Result<uint64_t> FreeDiskBytes(const std::string& path) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) {
    return Status::IoError(fmt::format("statvfs {}: {}", path, std::strerror(errno)));
  }
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

std::string DiskAlarmState::reason() const {
  std::lock_guard<std::mutex> l(mu_);
  return reason_;
}

bool DiskAlarmState::Raise(DiskAlarm alarm, std::string reason) {
  std::lock_guard<std::mutex> l(mu_);
  const DiskAlarm now = alarm_.load(std::memory_order_relaxed);
  if (now == DiskAlarm::kFailed || now == alarm) return false;
  reason_ = std::move(reason);
  alarm_.store(alarm, std::memory_order_release);
  return true;
}

bool DiskAlarmState::ClearNoSpace() {
  std::lock_guard<std::mutex> l(mu_);
  if (alarm_.load(std::memory_order_relaxed) != DiskAlarm::kNoSpace) return false;
  reason_.clear();
  alarm_.store(DiskAlarm::kNone, std::memory_order_release);
  return true;
}

}  // namespace micedb::store
