// Small pieces the coordinator's checkers (coordinator_schedule.cc) and balancers
// (coordinator_balance.cc) share.
#pragma once

#include <algorithm>
#include <cstdint>

#include "micedb/coordinator.pb.h"

namespace micedb::coordinator {

// A region whose leader has not reported for this long is left alone: the checker would act on
// a stale picture (and the operator could only reach a leader that reports).
constexpr int64_t kFreshReportMs = 30'000;

inline bool Has(const google::protobuf::RepeatedField<uint64_t>& ids, uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

inline OperatorStep Step(Operator::Kind kind, uint64_t store) {
  OperatorStep s;
  s.set_kind(kind);
  s.set_store_id(store);
  return s;
}

}  // namespace micedb::coordinator
