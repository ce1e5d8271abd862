// Test support: a region descriptor as tests write them (conf_ver 1, voters 1..3 unless said).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "micedb/store.pb.h"

namespace micedb::store {

inline RegionDescriptor TestDescriptor(uint64_t id, std::string start, std::string end,
                                       uint64_t version = 1,
                                       const std::vector<uint64_t>& voters = {1, 2, 3}) {
  RegionDescriptor d;
  d.set_id(id);
  d.set_start_key(std::move(start));
  d.set_end_key(std::move(end));
  d.mutable_epoch()->set_version(version);
  d.mutable_epoch()->set_conf_ver(1);
  for (uint64_t v : voters) d.mutable_conf_state()->add_voters(v);
  return d;
}

}  // namespace micedb::store
