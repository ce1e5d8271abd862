// Pulse: long work on an event loop's thread tells the loop now and then that it is still
// alive. The loop that owns the thread installs what a pulse does (the raft loop: each of its
// leaders sends heartbeats, so that followers do not depose a leader that is only busy, say
// copying the values of a big MULTI/EXEC's reads); code deep inside the work calls Pulse()
// between steps without knowing which loop it runs on. With nothing installed a pulse does
// nothing. Thread-local: each thread has its own.
#pragma once

#include <functional>
#include <utility>

namespace micedb {

// Runs this thread's pulse, if one is installed.
void Pulse();

// Installs `pulse` on this thread for its lifetime (the previous one comes back after).
class ScopedPulse {
 public:
  explicit ScopedPulse(std::function<void()> pulse);
  ~ScopedPulse();
  ScopedPulse(const ScopedPulse&) = delete;
  ScopedPulse& operator=(const ScopedPulse&) = delete;

 private:
  std::function<void()> pulse_;
  const std::function<void()>* previous_;
};

}  // namespace micedb
