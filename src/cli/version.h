#pragma once

#include <string>

namespace micedb::cli {

// "micedb <semver> (<build type>, <compiler>)".
std::string VersionString();

}  // namespace micedb::cli
