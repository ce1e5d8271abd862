#include "common/random.h"

#include <bit>

namespace micedb {

namespace {

// SplitMix64 step: spreads a seed over the whole state, so that nearby seeds (0, 1, 2, ...)
// give unrelated sequences and the state is never all zero.
uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Random::Random(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (uint64_t& word : s_) {
    word = SplitMix64(&x);
  }
}

uint64_t Random::Next64() {
  // xoshiro256** (Blackman and Vigna, 2018).
  const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = std::rotl(s_[3], 45);
  return result;
}

uint64_t Random::Uniform(uint64_t n) {
  if (n <= 1) {
    return 0;
  }
  // Multiply-and-take-high-word maps 64 random bits onto [0, n); the draws that would make
  // some results more likely than others (fewer than n of 2^64) are rejected (Lemire, 2019).
  unsigned __int128 m = static_cast<unsigned __int128>(Next64()) * n;
  auto low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (low < threshold) {
      m = static_cast<unsigned __int128>(Next64()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

int64_t Random::Range(int64_t lo, int64_t hi) {
  if (hi <= lo) {
    return lo;
  }
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  const uint64_t offset = span == UINT64_MAX ? Next64() : Uniform(span + 1);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + offset);
}

double Random::NextDouble() { return static_cast<double>(Next64() >> 11) * 0x1.0p-53; }

bool Random::Bernoulli(double p) {
  if (p <= 0) {
    return false;
  }
  if (p >= 1) {
    return true;
  }
  return NextDouble() < p;
}

void Random::Fill(char* dst, size_t n) {
  while (n >= 8) {
    const uint64_t v = Next64();
    for (int i = 0; i < 8; ++i) {
      dst[i] = static_cast<char>(v >> (8 * i));
    }
    dst += 8;
    n -= 8;
  }
  if (n > 0) {
    const uint64_t v = Next64();
    for (size_t i = 0; i < n; ++i) {
      dst[i] = static_cast<char>(v >> (8 * i));
    }
  }
}

std::string Random::RandomBytes(size_t n) {
  std::string s(n, '\0');
  Fill(s.data(), n);
  return s;
}

}  // namespace micedb
