#include "store/errors.h"

#include <fmt/format.h>

namespace micedb::store {

namespace {
// "region 7: epoch (conf_ver 2, version 3)".
std::string DescribeEpoch(const RegionDescriptor& region) {
  return fmt::format("region {}: epoch (conf_ver {}, version {})", region.id(),
                     region.epoch().conf_ver(), region.epoch().version());
}

region::RegionResponse WithMessage(std::string message) {
  region::RegionResponse r;
  r.mutable_error()->set_message(std::move(message));
  return r;
}
}  // namespace

region::RegionResponse NotLeaderResponse(uint64_t region_id, uint64_t leader) {
  auto r =
      WithMessage(leader == 0 ? fmt::format("region {}: no leader is known", region_id)
                              : fmt::format("region {}: leader is node {}", region_id, leader));
  auto* e = r.mutable_error()->mutable_not_leader();
  e->set_region_id(region_id);
  e->set_leader(leader);
  return r;
}

region::RegionResponse EpochNotMatchResponse(const RegionDescriptor& current) {
  auto r = WithMessage(fmt::format("stale epoch: the region is now {}", DescribeEpoch(current)));
  *r.mutable_error()->mutable_epoch_not_match()->add_current_regions() = current;
  return r;
}

region::RegionResponse KeyNotInRegionResponse(std::string_view engine_key,
                                              const RegionDescriptor& region) {
  auto r = WithMessage(fmt::format("key is not in region {}", region.id()));
  auto* e = r.mutable_error()->mutable_key_not_in_region();
  e->set_key(std::string(engine_key));
  e->set_region_id(region.id());
  e->set_start_key(region.start_key());
  e->set_end_key(region.end_key());
  return r;
}

region::RegionResponse RegionNotFoundResponse(uint64_t region_id) {
  auto r = WithMessage(fmt::format("region {} is not here", region_id));
  r.mutable_error()->mutable_region_not_found()->set_region_id(region_id);
  return r;
}

region::RegionResponse ServerBusyResponse(std::string_view reason, uint64_t backoff_ms) {
  auto r = WithMessage(std::string(reason));
  auto* e = r.mutable_error()->mutable_server_busy();
  e->set_reason(std::string(reason));
  e->set_backoff_ms(backoff_ms);
  return r;
}

region::RegionResponse NoSpaceResponse(std::string_view reason) {
  auto r = WithMessage(fmt::format("{} ({})", kNoSpaceMessage, reason));
  r.mutable_error()->mutable_no_space();
  return r;
}

region::RegionResponse TimeoutResponse(std::string_view message) {
  auto r = WithMessage(std::string(message));
  r.mutable_error()->mutable_timeout();
  return r;
}

region::RegionResponse StaleCommandResponse() {
  auto r = WithMessage("the entry was replaced by another leader's; it was not applied");
  r.mutable_error()->mutable_stale_command();
  return r;
}

region::RegionResponse InvalidRequestResponse(std::string_view message) {
  return WithMessage(std::string(message));
}

Status ToStatus(const region::RegionError& error) {
  const std::string& m = error.message();
  switch (error.kind_case()) {
    case region::RegionError::kNotLeader:
      return Status::NotLeader(m);
    case region::RegionError::kRegionNotFound:
      return Status::NotFound(m);
    case region::RegionError::kEpochNotMatch:
    case region::RegionError::kKeyNotInRegion:
    case region::RegionError::kServerBusy:
    case region::RegionError::kStaleCommand:
      return Status::Unavailable(m);
    case region::RegionError::kTimeout:
      return Status::TimedOut(m);
    case region::RegionError::kNoSpace:
      return Status::ResourceExhausted(m);
    case region::RegionError::KIND_NOT_SET:
      break;
  }
  return Status::InvalidArgument(m);
}

}  // namespace micedb::store
