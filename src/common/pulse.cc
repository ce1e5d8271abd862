#include "common/pulse.h"

namespace micedb {

namespace {
thread_local const std::function<void()>* current = nullptr;
}  // namespace

void Pulse() {
  if (current != nullptr && *current) (*current)();
}

ScopedPulse::ScopedPulse(std::function<void()> pulse)
    : pulse_(std::move(pulse)), previous_(current) {
  current = &pulse_;
}

ScopedPulse::~ScopedPulse() { current = previous_; }

}  // namespace micedb
