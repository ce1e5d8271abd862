// Random: a small, fast, seeded pseudo-random generator (xoshiro256**, state filled from the
// seed by SplitMix64). The same seed gives the same sequence on every platform and build, so
// a test or simulation run that fails can be replayed from the seed it prints
// (DESIGN.md §8, rule 5). Not for cryptographic use.
//
// Thread-compatible: a Random may be copied (the copy continues the same sequence) or moved,
// but one instance must not be used from two threads at once; give each thread its own,
// e.g. via Fork().
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace micedb {

class Random {
 public:
  explicit Random(uint64_t seed);

  // The seed this generator was built with (not its current position).
  uint64_t seed() const { return seed_; }

  // Uniform over all 64-bit (or 32-bit) values.
  uint64_t Next64();
  uint32_t Next32() { return static_cast<uint32_t>(Next64() >> 32); }

  // Uniform in [0, n). n must be > 0; Uniform(0) returns 0.
  uint64_t Uniform(uint64_t n);

  // Uniform in [lo, hi], both ends included; the full int64 range is allowed. Returns lo
  // when hi < lo.
  int64_t Range(int64_t lo, int64_t hi);

  // True with probability 1/n. n must be > 0; OneIn(1) is always true.
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }

  // True with probability p; p <= 0 is never, p >= 1 is always.
  bool Bernoulli(double p);

  // Uniform in [0, 1), with 53 random bits.
  double NextDouble();

  // `n` random bytes.
  std::string RandomBytes(size_t n);
  // Fills `dst[0, n)` with random bytes.
  void Fill(char* dst, size_t n);

  // Shuffles [first, last) uniformly (Fisher-Yates). Unlike std::shuffle, whose algorithm is
  // up to the standard library, the result depends only on the seed.
  template <typename It>
  void Shuffle(It first, It last) {
    const auto n = static_cast<uint64_t>(last - first);
    for (uint64_t i = n; i > 1; --i) {
      using std::swap;
      swap(first[i - 1], first[Uniform(i)]);
    }
  }

  // A new generator whose sequence is independent of this one's, seeded from this one (which
  // therefore advances). For handing each node or thread of a simulation its own stream.
  Random Fork() { return Random(Next64()); }

  // UniformRandomBitGenerator, so Random works with <random> distributions. Beware: those
  // distributions are implementation-defined, so prefer the methods above where replay across
  // builds matters.
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<uint64_t>::max(); }
  result_type operator()() { return Next64(); }

 private:
  uint64_t seed_;
  uint64_t s_[4];
};

}  // namespace micedb
