#include "zipf.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace micedb::bench {

ZipfGenerator::ZipfGenerator(uint64_t n, double theta) : theta_(theta) {
  if (n == 0) {
    throw std::invalid_argument("zipf: n must be at least 1");
  }
  if (!(theta >= 0)) {
    throw std::invalid_argument("zipf: theta must be >= 0");
  }
  cdf_.resize(n);
  // Kahan summation keeps the tail of a million small terms from being lost.
  double sum = 0;
  double carry = 0;
  for (uint64_t k = 0; k < n; ++k) {
    const double term = std::pow(static_cast<double>(k + 1), -theta) - carry;
    const double t = sum + term;
    carry = (t - sum) - term;
    sum = t;
    cdf_[k] = sum;
  }
  for (auto& c : cdf_) {
    c /= sum;
  }
  cdf_.back() = 1.0;
}

uint64_t ZipfGenerator::Sample(double u) const {
  // First rank whose cumulative probability exceeds u.
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  if (it == cdf_.end()) {
    --it;
  }
  return static_cast<uint64_t>(it - cdf_.begin());
}

double ZipfGenerator::Probability(uint64_t k) const {
  if (k >= cdf_.size()) {
    return 0;
  }
  return k == 0 ? cdf_[0] : cdf_[k] - cdf_[k - 1];
}

Scramble::Scramble(uint64_t n) : n_(n) {
  if (n == 0) {
    throw std::invalid_argument("scramble: n must be at least 1");
  }
  // A large odd constant (2^64 / golden ratio), nudged until coprime with n.
  stride_ = 0x9e3779b97f4a7c15ULL % n;
  if (stride_ == 0) {
    stride_ = 1;
  }
  while (std::gcd(stride_, n) != 1) {
    stride_ = (stride_ + 1) % n;
    if (stride_ == 0) {
      stride_ = 1;
    }
  }
  offset_ = 0x632be59bd9b4e019ULL % n;
}

}  // namespace micedb::bench
