// CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the CPU's crc32
// instruction where available, slicing-by-8 in portable C++ elsewhere.
// Every commit-log record carries a masked CRC32C.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace apogee::store::crc32c {

// CRC32C of `data` continued from `crc` (the CRC of the bytes before it).
// Extend(Extend(0, a), b) == Value(a + b). Thread-safe (pure). Uses the CPU's
// crc32 instruction (SSE4.2) when present, else ExtendPortable.
uint32_t Extend(uint32_t crc, const char* data, size_t n);

// The same in portable C++ (slicing-by-8), for CPUs without SSE4.2.
uint32_t ExtendPortable(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(absl::string_view data) { return Extend(0, data.data(), data.size()); }

// The stored form of a CRC: rotated and offset so that the CRC of data that
// itself contains CRCs does not degenerate (LevelDB's scheme).
inline uint32_t Mask(uint32_t crc) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

inline uint32_t Unmask(uint32_t masked) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace apogee::store::crc32c
