#include "cli/version.h"

#include <fmt/format.h>

#ifndef MICEDB_VERSION
#define MICEDB_VERSION "0.0.0"
#endif
#ifndef MICEDB_BUILD_TYPE
#define MICEDB_BUILD_TYPE "unknown"
#endif

namespace micedb::cli {

std::string VersionString() {
  return fmt::format("micedb {} ({} build, {} {}.{})", MICEDB_VERSION, MICEDB_BUILD_TYPE,
#if defined(__clang__)
                     "clang", __clang_major__, __clang_minor__
#else
                     "gcc", __GNUC__, __GNUC_MINOR__
#endif
  );
}

}  // namespace micedb::cli
