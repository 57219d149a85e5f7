// Fixed-width integer encoding for on-disk formats: little-endian inside
// commit-log records, big-endian in RocksDB keys (so byte order = numeric
// order under the default bytewise comparator).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace apogee::store::coding {

inline void PutFixed16LE(std::string* dst, uint16_t v) {
  const char b[2] = {static_cast<char>(v), static_cast<char>(v >> 8)};
  dst->append(b, 2);
}

inline void PutFixed32LE(std::string* dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  dst->append(b, 4);
}

inline void PutFixed64LE(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  dst->append(b, 8);
}

inline void PutFixed32BE(std::string* dst, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * (3 - i)));
  dst->append(b, 4);
}

inline void PutFixed64BE(std::string* dst, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * (7 - i)));
  dst->append(b, 8);
}

inline uint16_t GetFixed16LE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}

inline uint32_t GetFixed32LE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

inline uint64_t GetFixed64LE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | u[i];
  return v;
}

inline uint32_t GetFixed32BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | u[i];
  return v;
}

inline uint64_t GetFixed64BE(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | u[i];
  return v;
}

// Consumes a fixed-width big-endian value from the front of `in`; false if
// `in` is too short.
inline bool ConsumeFixed32BE(absl::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = GetFixed32BE(in->data());
  in->remove_prefix(4);
  return true;
}

inline bool ConsumeFixed64BE(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = GetFixed64BE(in->data());
  in->remove_prefix(8);
  return true;
}

}  // namespace apogee::store::coding
