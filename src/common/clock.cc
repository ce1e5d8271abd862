#include "common/clock.h"

#include <ctime>

#include <cassert>

namespace micedb {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::nanoseconds;

SystemClock* SystemClock::Get() {
  static SystemClock clock;  // stateless, so safe to use during static destruction too
  return &clock;
}

nanoseconds SystemClock::NowMonotonic() const {
  return duration_cast<nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
}

microseconds SystemClock::NowWall() const {
  // Since C++20 system_clock's epoch is the Unix epoch.
  return duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch());
}

BoottimeClock* BoottimeClock::Get() {
  static BoottimeClock clock;
  return &clock;
}

nanoseconds BoottimeClock::NowMonotonic() const {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return nanoseconds(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

microseconds BoottimeClock::NowWall() const { return SystemClock::Get()->NowWall(); }

ManualClock::ManualClock(nanoseconds monotonic_start, microseconds wall_start)
    : monotonic_(monotonic_start), wall_(wall_start) {}

nanoseconds ManualClock::NowMonotonic() const {
  std::lock_guard lock(mu_);
  return monotonic_;
}

microseconds ManualClock::NowWall() const {
  std::lock_guard lock(mu_);
  // floor, not truncation toward zero, so a wall time before 1970 never rounds up
  return std::chrono::floor<microseconds>(wall_);
}

void ManualClock::Advance(nanoseconds d) {
  assert(d.count() >= 0);
  if (d.count() <= 0) {
    return;
  }
  std::lock_guard lock(mu_);
  monotonic_ += d;
  wall_ += d;
}

void ManualClock::SetWall(microseconds wall) {
  std::lock_guard lock(mu_);
  wall_ = wall;
}

}  // namespace micedb
