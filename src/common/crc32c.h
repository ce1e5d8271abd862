// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected, initial and final XOR 0xFFFFFFFF), the
// checksum on every record on disk and every snapshot chunk (DESIGN.md §8, rule 3).
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run time) and a
// table-driven software version otherwise; both give identical results.
// All functions are thread-safe and never fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace micedb::crc32c {

// The CRC32C of `data[0, n)` appended to a stream whose CRC32C so far is `crc`:
// Extend(Value(a), b) == Value(a + b). Extend(0, data, n) == Value(data, n).
uint32_t Extend(uint32_t crc, const char* data, size_t n);
inline uint32_t Extend(uint32_t crc, std::string_view data) {
  return Extend(crc, data.data(), data.size());
}

// The CRC32C of `data[0, n)`.
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// A stored checksum is masked: computing the CRC of a buffer that itself holds CRCs gives
// weak results, so what is written is a rotated and offset form. Unmask(Mask(c)) == c.
inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
constexpr uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// For tests and benchmarks: whether Extend uses the CPU instruction, and the two
// implementations on their own. ExtendHardware must only be called when
// IsHardwareAccelerated() is true.
bool IsHardwareAccelerated();
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);
uint32_t ExtendHardware(uint32_t crc, const char* data, size_t n);

}  // namespace micedb::crc32c
