#include "common/coding.h"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "common/random.h"

namespace micedb {
namespace {

std::vector<uint64_t> InterestingValues64() {
  std::vector<uint64_t> v = {0,
                             1,
                             127,
                             128,
                             255,
                             256,
                             16383,
                             16384,
                             UINT32_MAX,
                             uint64_t{UINT32_MAX} + 1,
                             UINT64_MAX - 1,
                             UINT64_MAX};
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t p = uint64_t{1} << shift;
    v.push_back(p - 1);
    v.push_back(p);
    v.push_back(p + 1);
  }
  return v;
}

TEST(CodingTest, Fixed32RoundTripIsLittleEndian) {
  std::string s;
  PutFixed32(&s, 0x04030201);
  ASSERT_EQ(s, std::string("\x01\x02\x03\x04", 4));
  std::string_view in = s;
  uint32_t v = 0;
  ASSERT_TRUE(GetFixed32(&in, &v));
  EXPECT_EQ(v, 0x04030201u);
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, Fixed64RoundTrip) {
  std::string s;
  for (uint64_t v : InterestingValues64()) {
    PutFixed64(&s, v);
  }
  std::string_view in = s;
  for (uint64_t want : InterestingValues64()) {
    uint64_t got = 0;
    ASSERT_TRUE(GetFixed64(&in, &got));
    EXPECT_EQ(got, want);
  }
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(DecodeFixed64("\x01\x02\x03\x04\x05\x06\x07\x08"), 0x0807060504030201ull);
}

TEST(CodingTest, FixedTruncatedLeavesInputAlone) {
  std::string_view in("\x01\x02\x03", 3);
  uint32_t v32 = 7;
  EXPECT_FALSE(GetFixed32(&in, &v32));
  EXPECT_EQ(v32, 7u);
  EXPECT_EQ(in.size(), 3u);
  uint64_t v64 = 7;
  std::string_view in7("1234567", 7);
  EXPECT_FALSE(GetFixed64(&in7, &v64));
  EXPECT_EQ(in7.size(), 7u);
}

TEST(CodingTest, Varint64RoundTripAndLength) {
  std::string s;
  for (uint64_t v : InterestingValues64()) {
    const size_t before = s.size();
    PutVarint64(&s, v);
    EXPECT_EQ(s.size() - before, VarintLength(v)) << v;
  }
  std::string_view in = s;
  for (uint64_t want : InterestingValues64()) {
    uint64_t got = 0;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(got, want);
  }
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(VarintLength(0), 1u);
  EXPECT_EQ(VarintLength(127), 1u);
  EXPECT_EQ(VarintLength(128), 2u);
  EXPECT_EQ(VarintLength(UINT64_MAX), kMaxVarint64Bytes);
}

TEST(CodingTest, Varint32RoundTrip) {
  std::string s;
  std::vector<uint32_t> values;
  for (uint64_t v : InterestingValues64()) {
    if (v <= UINT32_MAX) {
      values.push_back(static_cast<uint32_t>(v));
    }
  }
  for (uint32_t v : values) {
    PutVarint32(&s, v);
  }
  std::string_view in = s;
  for (uint32_t want : values) {
    uint32_t got = 0;
    ASSERT_TRUE(GetVarint32(&in, &got));
    EXPECT_EQ(got, want);
  }
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, VarintKnownBytes) {
  std::string s;
  PutVarint32(&s, 300);
  EXPECT_EQ(s, std::string("\xac\x02", 2));
  s.clear();
  PutVarint64(&s, UINT64_MAX);
  EXPECT_EQ(s, std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10));
}

TEST(CodingTest, VarintRandomRoundTrip) {
  Random rnd(42);
  for (int i = 0; i < 10000; ++i) {
    // Spread over every length, not just the 10-byte values a uniform draw would give.
    const uint64_t v = rnd.Next64() >> rnd.Uniform(64);
    std::string s;
    PutVarint64(&s, v);
    s.push_back('x');
    std::string_view in = s;
    uint64_t got = 0;
    ASSERT_TRUE(GetVarint64(&in, &got));
    ASSERT_EQ(got, v);
    ASSERT_EQ(in, "x");
  }
}

TEST(CodingTest, VarintTruncatedFailsAtEveryCut) {
  std::string s;
  PutVarint64(&s, UINT64_MAX);
  for (size_t cut = 0; cut < s.size(); ++cut) {
    std::string_view in(s.data(), cut);
    uint64_t v = 99;
    EXPECT_FALSE(GetVarint64(&in, &v)) << cut;
    EXPECT_EQ(v, 99u);
    EXPECT_EQ(in.size(), cut);
  }
  std::string s32;
  PutVarint32(&s32, UINT32_MAX);
  for (size_t cut = 0; cut < s32.size(); ++cut) {
    std::string_view in(s32.data(), cut);
    uint32_t v = 0;
    EXPECT_FALSE(GetVarint32(&in, &v)) << cut;
  }
}

TEST(CodingTest, VarintOverlongOrOverflowingIsRejected) {
  uint64_t v64 = 0;
  uint32_t v32 = 0;
  // Eleven bytes: longer than any uint64 encoding.
  std::string_view eleven("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11);
  EXPECT_FALSE(GetVarint64(&eleven, &v64));
  // Ten bytes whose last group carries bits beyond 64.
  std::string_view too_big("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
  EXPECT_FALSE(GetVarint64(&too_big, &v64));
  // 2^32 does not fit a varint32 though it takes only five bytes.
  std::string_view v2_32("\x80\x80\x80\x80\x10", 5);
  EXPECT_FALSE(GetVarint32(&v2_32, &v32));
  std::string_view six("\x80\x80\x80\x80\x80\x00", 6);
  EXPECT_FALSE(GetVarint32(&six, &v32));
  // Non-minimal encodings of small values.
  std::string_view zero_padded("\x80\x00", 2);
  EXPECT_FALSE(GetVarint64(&zero_padded, &v64));
  std::string_view one_padded("\x81\x80\x00", 3);
  EXPECT_FALSE(GetVarint32(&one_padded, &v32));
  EXPECT_EQ(one_padded.size(), 3u);
}

TEST(CodingTest, ZigZag) {
  EXPECT_EQ(ZigZagEncode64(0), 0u);
  EXPECT_EQ(ZigZagEncode64(-1), 1u);
  EXPECT_EQ(ZigZagEncode64(1), 2u);
  EXPECT_EQ(ZigZagEncode64(-2), 3u);
  const int64_t cases[] = {
      0, 1, -1, 63, -64, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  for (int64_t v : cases) {
    EXPECT_EQ(ZigZagDecode64(ZigZagEncode64(v)), v);
    std::string s;
    PutVarsint64(&s, v);
    std::string_view in = s;
    int64_t got = 0;
    ASSERT_TRUE(GetVarsint64(&in, &got));
    EXPECT_EQ(got, v);
  }
  std::string s;
  PutVarsint64(&s, -64);
  EXPECT_EQ(s.size(), 1u);
}

TEST(CodingTest, LengthPrefixedSlice) {
  std::string s;
  PutLengthPrefixedSlice(&s, "");
  PutLengthPrefixedSlice(&s, "hello");
  PutLengthPrefixedSlice(&s, std::string(300, '\0'));
  std::string_view in = s;
  std::string_view out;
  ASSERT_TRUE(GetLengthPrefixedSlice(&in, &out));
  EXPECT_EQ(out, "");
  ASSERT_TRUE(GetLengthPrefixedSlice(&in, &out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(GetLengthPrefixedSlice(&in, &out));
  EXPECT_EQ(out, std::string(300, '\0'));
  EXPECT_TRUE(in.empty());
}

TEST(CodingTest, LengthPrefixedSliceTruncated) {
  std::string s;
  PutLengthPrefixedSlice(&s, "hello");
  for (size_t cut = 0; cut < s.size(); ++cut) {
    std::string_view in(s.data(), cut);
    std::string_view out = "untouched";
    EXPECT_FALSE(GetLengthPrefixedSlice(&in, &out)) << cut;
    EXPECT_EQ(out, "untouched");
    EXPECT_EQ(in.size(), cut);
  }
}

}  // namespace
}  // namespace micedb
