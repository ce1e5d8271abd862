// The seeds `make test` runs, shared by sim_test (the real core must pass them all) and
// sim_bug_test (the deliberately broken core must fail one of them).
#pragma once

#include <cstdint>

namespace micedb::sim {

// Each ctest case runs kSeedsPerCase consecutive seeds; the cases below cover
// kCasesPerSize * kSeedsPerCase seeds for 3 nodes and as many for 5 nodes.
inline constexpr uint64_t kSeedsPerCase = 50;
inline constexpr int kCasesPerSize = 6;
inline constexpr uint64_t kStepsPerSeed = 4000;

}  // namespace micedb::sim
