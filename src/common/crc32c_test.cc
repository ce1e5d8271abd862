#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>

#include "common/random.h"

namespace micedb::crc32c {
namespace {

// Vectors from RFC 3720 (iSCSI), appendix B.4, plus the common "123456789" check value.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Value("123456789"), 0xE3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62A8AB43u);

  std::string ascending(32, '\0');
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(ascending), 0x46DD794Eu);
  EXPECT_EQ(Value(descending), 0x113FDB5Cu);

  const unsigned char iscsi_read[48] = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
                                        0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(Value(reinterpret_cast<const char*>(iscsi_read), sizeof(iscsi_read)), 0xD9963A56u);

  EXPECT_EQ(Value("", 0), 0u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const std::string data = "hello world, this is a longer string to checksum in pieces";
  const uint32_t whole = Value(data);
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    const uint32_t first = Value(data.data(), cut);
    EXPECT_EQ(Extend(first, data.data() + cut, data.size() - cut), whole) << cut;
  }
}

TEST(Crc32cTest, DifferentInputsDiffer) {
  EXPECT_NE(Value("a"), Value("foo"));
  EXPECT_NE(Value("foo"), Value("bar"));
}

TEST(Crc32cTest, PortableAndHardwareAgree) {
  if (!IsHardwareAccelerated()) {
    GTEST_SKIP() << "CPU has no SSE4.2";
  }
  Random rnd(7);
  const std::string buf = rnd.RandomBytes(4096 + 16);
  for (int i = 0; i < 2000; ++i) {
    const size_t offset = rnd.Uniform(16);  // every alignment
    const size_t len = rnd.Uniform(4096);
    const uint32_t seed = rnd.OneIn(2) ? 0 : rnd.Next32();
    ASSERT_EQ(ExtendPortable(seed, buf.data() + offset, len),
              ExtendHardware(seed, buf.data() + offset, len))
        << "offset " << offset << " len " << len;
  }
}

TEST(Crc32cTest, PortableMatchesVectors) {
  EXPECT_EQ(ExtendPortable(0, "123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(ExtendPortable(0, zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32cTest, MaskRoundTripsAndChangesValue) {
  const uint32_t crc = Value("foo");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
  Random rnd(3);
  for (int i = 0; i < 1000; ++i) {
    const uint32_t c = rnd.Next32();
    ASSERT_EQ(Unmask(Mask(c)), c);
  }
}

}  // namespace
}  // namespace micedb::crc32c
