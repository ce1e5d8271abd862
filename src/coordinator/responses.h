// Internal to src/coordinator: the error answers the coordinator's handlers give.
#pragma once

#include <string>
#include <string_view>

#include "micedb/coordinator.pb.h"

namespace micedb::coordinator {

// A refusal: the call is wrong or cannot be done (not retried as it is).
inline CoordResponse Error(std::string_view message) {
  CoordResponse r;
  r.mutable_error()->set_message(std::string(message));
  return r;
}

// Transient: the caller retries after a backoff.
inline CoordResponse RetryLater(std::string_view message) {
  CoordResponse r = Error(message);
  r.mutable_error()->set_retry(true);
  return r;
}

}  // namespace micedb::coordinator
