// The Percolator steps as bodies of region requests (proto/micedb/txn.proto): RegionSteps
// checks a pb::TxnRequest, runs the actions of txn/actions.h on one region's replica and turns
// the outcome into a pb::TxnResponse. The store (src/store) has already checked the region, the
// epoch and that every key the request names lies in the region (EngineKeys); scans and
// range resolves are clipped to the region here, and say where the next region starts.
//
// Thread-safety: const; any number of threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kv/region_state_machine.h"
#include "micedb/txn.pb.h"
#include "txn/actions.h"

namespace micedb::txn {

struct RegionStepsOptions {
  // Keys one scan or resolve returns or looks at when the request names no limit, and the
  // most a request may ask for.
  uint32_t default_scan_limit = 256;
  uint32_t max_scan_limit = 10000;
  // Most keys (mutations) one request may name.
  size_t max_request_keys = 10000;
};

// A region's user-key range, from its engine-key range: [start, end), no end when `end` is
// nullopt; `empty` when the region holds no transactional key. A boundary inside the
// transactional space must be some E(K) (split keys are chosen so, docs/transactions.md §1);
// `malformed` otherwise.
struct UserRange {
  std::string start;
  std::optional<std::string> end;
  bool empty = false;
  bool malformed = false;
};
UserRange UserRangeOfRegion(const store::RegionDescriptor& region);

pb::KeyError ToProto(const TxnError& e);
pb::LockInfo ToProto(const Lock& lock, std::string_view key);

class RegionSteps final : public kv::TxnBodies {
 public:
  explicit RegionSteps(RegionStepsOptions options = {}) : options_(options) {}

  pb::TxnResponse Apply(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                        kv::ApplyBatch* batch) const override;
  pb::TxnResponse Read(const store::RegionDescriptor& region, const pb::TxnRequest& req,
                       kv::ReadView* view) const override;
  void EngineKeys(const pb::TxnRequest& req, std::vector<std::string>* keys) const override;

 private:
  // A reason to refuse `req` before it runs, or nullopt.
  std::optional<std::string> Invalid(const pb::TxnRequest& req) const;

  RegionStepsOptions options_;
};

}  // namespace micedb::txn
