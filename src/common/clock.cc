#include "common/clock.h"

#include <ctime>

#include <cassert>
#include <cmath>

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

SkewedClock::SkewedClock(const Clock* base, double rate) : base_(base), rate_(rate) {
  assert(rate > 0);
  anchor_ = base_->NowMonotonic();
  base_anchor_ = anchor_;
  wall_offset_ = nanoseconds(base_->NowWall()) - anchor_;
}

nanoseconds SkewedClock::NowLocked() const {
  if (frozen_) return anchor_;
  const auto elapsed = static_cast<double>((base_->NowMonotonic() - base_anchor_).count());
  return anchor_ + nanoseconds(static_cast<int64_t>(elapsed * rate_));
}

nanoseconds SkewedClock::NowMonotonic() const {
  std::lock_guard lock(mu_);
  return NowLocked();
}

microseconds SkewedClock::NowWall() const {
  std::lock_guard lock(mu_);
  return std::chrono::floor<microseconds>(NowLocked() + wall_offset_);
}

void SkewedClock::SetRate(double rate) {
  assert(rate > 0);
  std::lock_guard lock(mu_);
  anchor_ = NowLocked();
  base_anchor_ = base_->NowMonotonic();
  rate_ = rate;
}

void SkewedClock::Freeze() {
  std::lock_guard lock(mu_);
  if (frozen_) return;
  anchor_ = NowLocked();
  frozen_ = true;
  frozen_at_ = base_->NowMonotonic();
}

void SkewedClock::Thaw(bool host_sets_wall) {
  std::lock_guard lock(mu_);
  if (!frozen_) return;
  frozen_ = false;
  base_anchor_ = base_->NowMonotonic();
  if (host_sets_wall) wall_offset_ += base_anchor_ - frozen_at_;
}

bool SkewedClock::frozen() const {
  std::lock_guard lock(mu_);
  return frozen_;
}

nanoseconds SkewedClock::BaseTimeAt(nanoseconds t) const {
  std::lock_guard lock(mu_);
  const auto ahead = static_cast<double>((t - anchor_).count());
  // Rounded up, so that the clock has reached t at the base time returned; NowLocked rounds
  // its product down, so the quotient's rounding can leave it a nanosecond short: step on.
  int64_t base_ahead = static_cast<int64_t>(std::ceil(ahead / rate_));
  while (anchor_ + nanoseconds(static_cast<int64_t>(static_cast<double>(base_ahead) * rate_)) < t) {
    ++base_ahead;
  }
  return base_anchor_ + nanoseconds(base_ahead);
}

}  // namespace micedb
