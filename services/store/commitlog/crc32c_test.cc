#include "services/store/commitlog/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace apogee::store::crc32c {
namespace {

// Bit-at-a-time reference, independent of the tables.
uint32_t Reference(absl::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

TEST(Crc32cTest, MatchesPublishedVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI) B.4.
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32cTest, SlicingAgreesWithBitwiseAtEveryLengthAndAlignment) {
  std::string data(300, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += 7) {
      const absl::string_view piece(data.data() + start, len);
      ASSERT_EQ(Value(piece), Reference(piece)) << "start=" << start << " len=" << len;
    }
  }
}

TEST(Crc32cTest, PortableAndDispatchedAgree) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + 11);
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += 13) {
      const char* p = data.data() + start;
      ASSERT_EQ(ExtendPortable(0x1234u, p, len), Extend(0x1234u, p, len))
          << "start=" << start << " len=" << len;
    }
  }
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32cTest, ExtendEqualsWholeValue) {
  const std::string a = "hello, ", b = "commit log";
  EXPECT_EQ(Extend(Value(a), b.data(), b.size()), Value(a + b));
}

TEST(Crc32cTest, MaskRoundTripsAndChangesValue) {
  const uint32_t crc = Value("foo");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
}

}  // namespace
}  // namespace apogee::store::crc32c
