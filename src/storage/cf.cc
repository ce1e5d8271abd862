#include "storage/cf.h"

namespace micedb::storage {

std::string_view CfName(Cf cf) {
  switch (cf) {
    case Cf::kDefault:
      return "default";
    case Cf::kRaft:
      return "raft";
    case Cf::kLock:
      return "lock";
    case Cf::kWrite:
      return "write";
    case Cf::kDedup:
      return "dedup";
  }
  return "invalid";
}

bool CfFromName(std::string_view name, Cf* cf) {
  for (Cf candidate : kAllCfs) {
    if (CfName(candidate) == name) {
      *cf = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace micedb::storage
