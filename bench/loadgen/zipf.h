// Zipfian ranks and a fixed scramble of ranks over the key space.
#pragma once

#include <cstdint>
#include <vector>

namespace micedb::bench {

// Draws ranks 0..n-1 with P(k) = (1/(k+1)^theta) / H(n, theta), by inverting the cumulative
// distribution (precomputed once, binary search per draw). Exact rather than the usual
// approximation, O(log n) per draw and 8 bytes per rank (8 MB for a million keys). Immutable
// after construction, so one generator is shared by every client thread.
class ZipfGenerator {
 public:
  // n >= 1; theta >= 0 (0 is uniform; YCSB's default skew is 0.99).
  ZipfGenerator(uint64_t n, double theta);

  // The rank for a uniform u in [0, 1).
  uint64_t Sample(double u) const;
  // The exact probability of rank k, for tests and reports.
  double Probability(uint64_t k) const;
  uint64_t n() const { return static_cast<uint64_t>(cdf_.size()); }
  double theta() const { return theta_; }

 private:
  std::vector<double> cdf_;  // cdf_[k] = P(rank <= k); cdf_.back() == 1
  double theta_;
};

// A bijection of [0, n) that spreads consecutive ranks over the key space, so that the hot keys
// of a Zipfian draw are not all neighbours (key = (rank * stride + offset) mod n, with a stride
// coprime with n).
class Scramble {
 public:
  explicit Scramble(uint64_t n);
  uint64_t operator()(uint64_t rank) const {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(rank) * stride_ + offset_) % n_);
  }

 private:
  uint64_t n_;
  uint64_t stride_;
  uint64_t offset_;
};

}  // namespace micedb::bench
