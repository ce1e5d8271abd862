#include "common/crc32c.h"

#include <array>
#include <cassert>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MICEDB_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace micedb::crc32c {

namespace {

// Bit-reversed form of the Castagnoli polynomial.
constexpr uint32_t kPoly = 0x82f63b78u;

// Slicing-by-8 tables: kTables[0][b] is the CRC of the single byte b; kTables[k][b] is the
// CRC of b followed by k zero bytes, so eight bytes can be folded in with eight lookups.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) {
      c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    }
    t[0][b] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();

inline uint32_t LoadLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t lo = c ^ LoadLE32(p);
    const uint32_t hi = LoadLE32(p + 4);
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
        kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) {
    c = (c >> 8) ^ kTables[0][(c ^ *p) & 0xff];
  }
  return ~c;
}

#ifdef MICEDB_CRC32C_X86

__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t crc, const char* data,
                                                          size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t word = 0;
    __builtin_memcpy(&word, p, 8);  // unaligned load; x86 is little-endian
    c = _mm_crc32_u64(c, word);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) {
    c32 = _mm_crc32_u8(c32, *p);
  }
  return ~c32;
}

bool IsHardwareAccelerated() {
  static const bool supported = __builtin_cpu_supports("sse4.2");
  return supported;
}

#else

uint32_t ExtendHardware(uint32_t crc, const char* data, size_t n) {
  assert(false && "no hardware CRC32C on this platform");
  return ExtendPortable(crc, data, n);
}

bool IsHardwareAccelerated() { return false; }

#endif

uint32_t Extend(uint32_t crc, const char* data, size_t n) {
  return IsHardwareAccelerated() ? ExtendHardware(crc, data, n) : ExtendPortable(crc, data, n);
}

}  // namespace micedb::crc32c
