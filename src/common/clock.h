// Clock: where code reads time. Nothing outside this file calls std::chrono::*_clock::now()
// for decisions (timeouts, leases, TSO), so tests and the simulation can drive time by hand
// (DESIGN.md §8, rule 5).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include "common/thread_annotations.h"

namespace micedb {

// Implementations must be thread-safe: any thread may read any clock at any time.
class Clock {
 public:
  virtual ~Clock() = default;

  // Time since an arbitrary fixed point; never goes backwards. Use for durations, timeouts
  // and leases.
  virtual std::chrono::nanoseconds NowMonotonic() const = 0;

  // Wall-clock time since the Unix epoch (UTC). May jump in either direction when the system
  // clock is set; use only for timestamps shown to people or stored as calendar time.
  virtual std::chrono::microseconds NowWall() const = 0;

  int64_t NowWallMicros() const { return NowWall().count(); }
  int64_t NowWallMillis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(NowWall()).count();
  }
};

// The operating system's clocks (steady_clock and system_clock).
class SystemClock final : public Clock {
 public:
  // The process-wide instance. Never null, never destroyed; safe to use from any thread.
  static SystemClock* Get();

  std::chrono::nanoseconds NowMonotonic() const override;
  std::chrono::microseconds NowWall() const override;
};

// The system clocks with CLOCK_BOOTTIME as the monotonic clock: unlike steady_clock it keeps
// counting while the host is suspended, so a raft leader that wakes up does not believe its
// lease is still young (store leases, raft.md §7).
class BoottimeClock final : public Clock {
 public:
  static BoottimeClock* Get();

  std::chrono::nanoseconds NowMonotonic() const override;
  std::chrono::microseconds NowWall() const override;
};

// A clock that moves only when told to, for tests and the simulation. Thread-safe: one thread
// may advance it while others read it.
class ManualClock final : public Clock {
 public:
  // Default wall start: 2020-01-01T00:00:00Z, so timestamps look plausible in logs.
  static constexpr std::chrono::microseconds kDefaultWallStart{1577836800LL * 1000 * 1000};

  explicit ManualClock(std::chrono::nanoseconds monotonic_start = std::chrono::nanoseconds(0),
                       std::chrono::microseconds wall_start = kDefaultWallStart);

  std::chrono::nanoseconds NowMonotonic() const override;
  std::chrono::microseconds NowWall() const override;

  // Moves both clocks forward by `d`; `d` must not be negative. The wall clock keeps
  // nanoseconds internally, so many small steps add up.
  void Advance(std::chrono::nanoseconds d);

  // Moves only the wall clock, to model a system clock being set. Any value is allowed,
  // including one in the past; the monotonic clock is unaffected.
  void SetWall(std::chrono::microseconds wall);

 private:
  mutable std::mutex mu_;
  std::chrono::nanoseconds monotonic_ GUARDED_BY(mu_);
  std::chrono::nanoseconds wall_ GUARDED_BY(mu_);
};

// Another clock seen at a different rate, and able to stand still: its monotonic and wall
// times run at `rate` times the base's monotonic rate (one oscillator drives both), and stop
// while it is frozen (a paused VM: every guest clock stops). On Thaw the host may set the
// guest's wall time again, which then moves ahead of the monotonic time by the pause. For
// tests and the simulation: clocks that disagree. Thread-safe.
class SkewedClock final : public Clock {
 public:
  // `rate` > 0. Starts at the base's monotonic and wall times.
  SkewedClock(const Clock* base, double rate);

  std::chrono::nanoseconds NowMonotonic() const override;
  std::chrono::microseconds NowWall() const override;

  void SetRate(double rate);
  // Stops both times (idempotent). Thaw lets them run again from where they stopped; with
  // `host_sets_wall` the wall time is first moved on by the time spent frozen.
  void Freeze();
  void Thaw(bool host_sets_wall);
  bool frozen() const;
  // The base monotonic time at which this clock reads `t` (t at or after now, not frozen).
  std::chrono::nanoseconds BaseTimeAt(std::chrono::nanoseconds t) const;

 private:
  std::chrono::nanoseconds NowLocked() const REQUIRES(mu_);

  const Clock* base_;
  mutable std::mutex mu_;
  double rate_ GUARDED_BY(mu_);
  bool frozen_ GUARDED_BY(mu_) = false;
  // This clock read anchor_ when the base read base_anchor_.
  std::chrono::nanoseconds anchor_ GUARDED_BY(mu_);
  std::chrono::nanoseconds base_anchor_ GUARDED_BY(mu_);
  std::chrono::nanoseconds frozen_at_ GUARDED_BY(mu_){0};  // base time of Freeze
  std::chrono::nanoseconds wall_offset_ GUARDED_BY(mu_);   // wall = monotonic + this
};

}  // namespace micedb
