#include "common/memcomparable.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "common/random.h"

namespace micedb::memcomparable {
namespace {

constexpr int kPairs = 20000;
constexpr uint64_t kSeed = 20240501;

int Sign(int c) { return (c > 0) - (c < 0); }
template <typename T>
int Cmp(const T& a, const T& b) {
  return (b < a) - (a < b);
}
// std::string compares bytes as unsigned char, the same as memcmp.
int CmpBytes(const std::string& a, const std::string& b) { return Sign(a.compare(b)); }

int64_t RandomInt64(Random& rnd) {
  static constexpr int64_t kEdges[] = {std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int64_t>::min() + 1,
                                       -256,
                                       -255,
                                       -1,
                                       0,
                                       1,
                                       255,
                                       256,
                                       std::numeric_limits<int64_t>::max() - 1,
                                       std::numeric_limits<int64_t>::max()};
  switch (rnd.Uniform(4)) {
    case 0:
      return kEdges[rnd.Uniform(std::size(kEdges))];
    case 1:
      return rnd.Range(-300, 300);  // many equal and adjacent values
    case 2:
      return static_cast<int64_t>(rnd.Next64()) >> rnd.Uniform(64);  // every magnitude
    default:
      return static_cast<int64_t>(rnd.Next64());
  }
}

uint64_t RandomUint64(Random& rnd) {
  switch (rnd.Uniform(3)) {
    case 0:
      return rnd.OneIn(2) ? 0 : std::numeric_limits<uint64_t>::max() - rnd.Uniform(3);
    case 1:
      return rnd.Uniform(600);
    default:
      return rnd.Next64() >> rnd.Uniform(64);
  }
}

// Short strings over an alphabet rich in the bytes the escaping treats specially, so that
// prefixes, embedded zeros and 0xFF bytes come up often.
std::string RandomBytes(Random& rnd) {
  static constexpr char kAlphabet[] = {'\x00', '\x01', '\xfe', '\xff', 'a', 'b'};
  const size_t len = rnd.Uniform(10);
  std::string s;
  for (size_t i = 0; i < len; ++i) {
    s.push_back(rnd.OneIn(5) ? static_cast<char>(rnd.Next32()) : kAlphabet[rnd.Uniform(6)]);
  }
  return s;
}

// A pair of strings where b is often a, an extension of a, or a with one byte changed.
std::pair<std::string, std::string> RandomBytesPair(Random& rnd) {
  std::string a = RandomBytes(rnd);
  std::string b;
  switch (rnd.Uniform(4)) {
    case 0:
      b = a;
      break;
    case 1:
      b = a + RandomBytes(rnd);
      break;
    case 2:
      b = a;
      if (!b.empty()) {
        b[rnd.Uniform(b.size())] = static_cast<char>(rnd.Next32());
      }
      break;
    default:
      b = RandomBytes(rnd);
  }
  if (rnd.OneIn(2)) {
    std::swap(a, b);
  }
  return {a, b};
}

double RandomDouble(Random& rnd) {
  static constexpr double kEdges[] = {0.0,
                                      -0.0,
                                      1.0,
                                      -1.0,
                                      std::numeric_limits<double>::min(),
                                      -std::numeric_limits<double>::min(),
                                      std::numeric_limits<double>::denorm_min(),
                                      -std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::max(),
                                      std::numeric_limits<double>::lowest(),
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity()};
  if (rnd.OneIn(4)) {
    return kEdges[rnd.Uniform(std::size(kEdges))];
  }
  if (rnd.OneIn(3)) {
    return static_cast<double>(rnd.Range(-100, 100)) / 4;
  }
  double d;
  do {
    d = std::bit_cast<double>(rnd.Next64());
  } while (std::isnan(d));
  return d;
}

std::string EncInt64(int64_t v) {
  std::string s;
  AppendInt64(&s, v);
  return s;
}

TEST(MemcomparableTest, Int64OrderAndRoundTrip) {
  Random rnd(kSeed);
  for (int i = 0; i < kPairs; ++i) {
    const int64_t a = RandomInt64(rnd);
    const int64_t b = RandomInt64(rnd);
    std::string ea, eb, da, db;
    AppendInt64(&ea, a);
    AppendInt64(&eb, b);
    AppendInt64Desc(&da, a);
    AppendInt64Desc(&db, b);
    ASSERT_EQ(CmpBytes(ea, eb), Cmp(a, b)) << a << " vs " << b << " seed " << kSeed;
    ASSERT_EQ(CmpBytes(da, db), -Cmp(a, b)) << a << " vs " << b << " seed " << kSeed;

    std::string_view in = ea;
    int64_t got = 0;
    ASSERT_TRUE(DecodeInt64(&in, &got).ok());
    ASSERT_EQ(got, a);
    ASSERT_TRUE(in.empty());
    in = da;
    ASSERT_TRUE(DecodeInt64Desc(&in, &got).ok());
    ASSERT_EQ(got, a);
  }
}

TEST(MemcomparableTest, Int64KnownBytes) {
  EXPECT_EQ(EncInt64(0), std::string("\x80\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(EncInt64(-1), std::string("\x7f\xff\xff\xff\xff\xff\xff\xff", 8));
  EXPECT_EQ(EncInt64(std::numeric_limits<int64_t>::min()), std::string(8, '\0'));
}

TEST(MemcomparableTest, Uint64OrderAndRoundTrip) {
  Random rnd(kSeed + 1);
  for (int i = 0; i < kPairs; ++i) {
    const uint64_t a = RandomUint64(rnd);
    const uint64_t b = RandomUint64(rnd);
    std::string ea, eb, da, db;
    AppendUint64(&ea, a);
    AppendUint64(&eb, b);
    AppendUint64Desc(&da, a);
    AppendUint64Desc(&db, b);
    ASSERT_EQ(CmpBytes(ea, eb), Cmp(a, b)) << a << " vs " << b;
    ASSERT_EQ(CmpBytes(da, db), -Cmp(a, b)) << a << " vs " << b;
    std::string_view in = ea;
    uint64_t got = 0;
    ASSERT_TRUE(DecodeUint64(&in, &got).ok());
    ASSERT_EQ(got, a);
    in = da;
    ASSERT_TRUE(DecodeUint64Desc(&in, &got).ok());
    ASSERT_EQ(got, a);
  }
}

TEST(MemcomparableTest, DoubleOrderAndRoundTrip) {
  Random rnd(kSeed + 2);
  for (int i = 0; i < kPairs; ++i) {
    const double a = RandomDouble(rnd);
    const double b = RandomDouble(rnd);
    std::string ea, eb, da, db;
    AppendDouble(&ea, a);
    AppendDouble(&eb, b);
    AppendDoubleDesc(&da, a);
    AppendDoubleDesc(&db, b);
    ASSERT_EQ(CmpBytes(ea, eb), Cmp(a, b)) << a << " vs " << b;  // -0.0 == 0.0 both ways
    ASSERT_EQ(CmpBytes(da, db), -Cmp(a, b)) << a << " vs " << b;
    std::string_view in = ea;
    double got = 0;
    ASSERT_TRUE(DecodeDouble(&in, &got).ok());
    ASSERT_EQ(got, a);
    ASSERT_FALSE(std::signbit(got) && got == 0) << "negative zero comes back as +0.0";
    in = da;
    ASSERT_TRUE(DecodeDoubleDesc(&in, &got).ok());
    ASSERT_EQ(got, a);
  }
}

TEST(MemcomparableTest, DoubleNanSortsLastAndIsCanonical) {
  const double inf = std::numeric_limits<double>::infinity();
  std::string e_inf, e_nan, e_neg_nan;
  AppendDouble(&e_inf, inf);
  AppendDouble(&e_nan, std::numeric_limits<double>::quiet_NaN());
  AppendDouble(&e_neg_nan, -std::numeric_limits<double>::quiet_NaN());
  EXPECT_LT(e_inf, e_nan);
  EXPECT_EQ(e_nan, e_neg_nan);
  std::string_view in = e_nan;
  double got = 0;
  ASSERT_TRUE(DecodeDouble(&in, &got).ok());
  EXPECT_TRUE(std::isnan(got));
}

TEST(MemcomparableTest, BytesOrderAndRoundTrip) {
  Random rnd(kSeed + 3);
  for (int i = 0; i < kPairs; ++i) {
    const auto [a, b] = RandomBytesPair(rnd);
    std::string ea, eb, da, db;
    AppendBytes(&ea, a);
    AppendBytes(&eb, b);
    AppendBytesDesc(&da, a);
    AppendBytesDesc(&db, b);
    ASSERT_EQ(CmpBytes(ea, eb), CmpBytes(a, b))
        << testing::PrintToString(a) << " vs " << testing::PrintToString(b);
    ASSERT_EQ(CmpBytes(da, db), -CmpBytes(a, b))
        << testing::PrintToString(a) << " vs " << testing::PrintToString(b);
    std::string_view in = ea;
    std::string got;
    ASSERT_TRUE(DecodeBytes(&in, &got).ok());
    ASSERT_EQ(got, a);
    ASSERT_TRUE(in.empty());
    in = da;
    ASSERT_TRUE(DecodeBytesDesc(&in, &got).ok());
    ASSERT_EQ(got, a);
    ASSERT_TRUE(in.empty());
  }
}

TEST(MemcomparableTest, BytesKnownEncoding) {
  std::string s;
  AppendBytes(&s, std::string("a\0b", 3));
  EXPECT_EQ(s, std::string("a\x00\xff"
                           "b\x00\x01",
                           6));
  s.clear();
  AppendBytes(&s, "");
  EXPECT_EQ(s, std::string("\x00\x01", 2));
}

// The examples in docs/encoding.md.
TEST(MemcomparableTest, DocumentedExamples) {
  const auto hex = [](const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (!out.empty()) {
        out.push_back(' ');
      }
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    }
    return out;
  };
  std::string s;
  AppendUint64(&s, 5);
  EXPECT_EQ(hex(s), "00 00 00 00 00 00 00 05");
  EXPECT_EQ(hex(EncInt64(1)), "80 00 00 00 00 00 00 01");
  EXPECT_EQ(hex(EncInt64(std::numeric_limits<int64_t>::max())), "ff ff ff ff ff ff ff ff");
  s.clear();
  AppendDouble(&s, -1.0);
  EXPECT_EQ(hex(s), "40 0f ff ff ff ff ff ff");
  s.clear();
  AppendDouble(&s, -0.0);
  EXPECT_EQ(hex(s), "80 00 00 00 00 00 00 00");
  s.clear();
  AppendDouble(&s, 1.0);
  EXPECT_EQ(hex(s), "bf f0 00 00 00 00 00 00");
  s.clear();
  AppendBytes(&s, "ab");
  EXPECT_EQ(hex(s), "61 62 00 01");
  s.clear();
  AppendBytes(&s, "a\xff");
  EXPECT_EQ(hex(s), "61 ff 00 01");
  s.clear();
  AppendInt64Desc(&s, 0);
  EXPECT_EQ(hex(s), "7f ff ff ff ff ff ff ff");
  s.clear();
  AppendBytesDesc(&s, "");
  EXPECT_EQ(hex(s), "ff fe");
  s.clear();
  AppendBytesDesc(&s, std::string(1, '\0'));
  EXPECT_EQ(hex(s), "ff 00 ff fe");
}

using Tuple = std::tuple<int64_t, std::string, int64_t>;

std::string EncodeTuple(const Tuple& t) {
  std::string s;
  AppendInt64(&s, std::get<0>(t));
  AppendBytes(&s, std::get<1>(t));
  AppendInt64(&s, std::get<2>(t));
  return s;
}

TEST(MemcomparableTest, CompositeOrderAndRoundTrip) {
  Random rnd(kSeed + 4);
  for (int i = 0; i < kPairs; ++i) {
    // Small integer ranges so that ties on earlier parts happen and later parts decide.
    const auto [sa, sb] = RandomBytesPair(rnd);
    const Tuple a{rnd.Range(-2, 2), sa, RandomInt64(rnd)};
    const Tuple b{rnd.OneIn(2) ? std::get<0>(a) : rnd.Range(-2, 2), sb, RandomInt64(rnd)};
    const std::string ea = EncodeTuple(a);
    const std::string eb = EncodeTuple(b);
    ASSERT_EQ(CmpBytes(ea, eb), Cmp(a, b)) << "pair " << i << " seed " << kSeed + 4;

    std::string_view in = ea;
    Tuple got;
    ASSERT_TRUE(DecodeInt64(&in, &std::get<0>(got)).ok());
    ASSERT_TRUE(DecodeBytes(&in, &std::get<1>(got)).ok());
    ASSERT_TRUE(DecodeInt64(&in, &std::get<2>(got)).ok());
    ASSERT_TRUE(in.empty());
    ASSERT_EQ(got, a);
  }
}

TEST(MemcomparableTest, CompositeWithDescendingPart) {
  // (string ascending, int64 descending): same first part, larger second part sorts first.
  Random rnd(kSeed + 5);
  for (int i = 0; i < kPairs / 4; ++i) {
    const auto [sa, sb] = RandomBytesPair(rnd);
    const int64_t ia = RandomInt64(rnd);
    const int64_t ib = RandomInt64(rnd);
    std::string ea, eb;
    AppendBytes(&ea, sa);
    AppendInt64Desc(&ea, ia);
    AppendBytes(&eb, sb);
    AppendInt64Desc(&eb, ib);
    const int want = sa != sb ? CmpBytes(sa, sb) : -Cmp(ia, ib);
    ASSERT_EQ(CmpBytes(ea, eb), want);
  }
}

TEST(MemcomparableTest, MalformedInputIsCorruption) {
  std::string_view in;
  int64_t i64 = 5;
  uint64_t u64 = 0;
  double d = 0;
  std::string s = "untouched";

  in = std::string_view("\x80\0\0", 3);
  EXPECT_TRUE(DecodeInt64(&in, &i64).IsCorruption());
  EXPECT_EQ(i64, 5);
  EXPECT_EQ(in.size(), 3u);
  EXPECT_TRUE(DecodeUint64Desc(&in, &u64).IsCorruption());
  EXPECT_TRUE(DecodeDouble(&in, &d).IsCorruption());

  // Byte strings: no terminator, escape at the end, and an unknown escape.
  const std::string_view bad_strings[] = {
      std::string_view("abc", 3), std::string_view("abc\x00", 4),
      std::string_view("ab\x00\x02xyz\x00\x01", 9), std::string_view()};
  for (std::string_view bad : bad_strings) {
    in = bad;
    EXPECT_TRUE(DecodeBytes(&in, &s).IsCorruption()) << testing::PrintToString(std::string(bad));
    EXPECT_EQ(s, "untouched");
    EXPECT_EQ(in.size(), bad.size());
  }

  // The encoder never writes negative zero or a NaN other than the canonical one.
  std::string neg_zero;
  AppendUint64(&neg_zero, ~(uint64_t{1} << 63));  // ordered bits of -0.0
  in = neg_zero;
  EXPECT_TRUE(DecodeDouble(&in, &d).IsCorruption());
  std::string odd_nan;
  AppendUint64(&odd_nan, 0xfff0000000000001ULL);  // ordered bits of a positive signalling NaN
  in = odd_nan;
  EXPECT_TRUE(DecodeDouble(&in, &d).IsCorruption());
}

TEST(MemcomparableTest, TruncatedCompositeFailsAtEveryCut) {
  const std::string full = EncodeTuple({-7, std::string("x\0y", 3), 42});
  for (size_t cut = 0; cut < full.size(); ++cut) {
    std::string_view in(full.data(), cut);
    int64_t a = 0, c = 0;
    std::string b;
    const bool ok =
        DecodeInt64(&in, &a).ok() && DecodeBytes(&in, &b).ok() && DecodeInt64(&in, &c).ok();
    EXPECT_FALSE(ok) << "cut at " << cut;
  }
}

// Garbage input: whenever a decoder accepts something, re-encoding the result gives back
// exactly the bytes it consumed (each value has one encoding).
TEST(MemcomparableTest, AcceptedInputReencodesIdentically) {
  Random rnd(kSeed + 6);
  static constexpr char kAlphabet[] = {'\x00', '\x01', '\xff', '\x80', '\x7f', 'q'};
  for (int i = 0; i < kPairs; ++i) {
    std::string buf;
    const size_t len = rnd.Uniform(12);
    for (size_t k = 0; k < len; ++k) {
      buf.push_back(rnd.OneIn(3) ? static_cast<char>(rnd.Next32()) : kAlphabet[rnd.Uniform(6)]);
    }
    std::string_view in = buf;
    std::string bytes;
    if (DecodeBytes(&in, &bytes).ok()) {
      std::string re;
      AppendBytes(&re, bytes);
      ASSERT_EQ(re, buf.substr(0, buf.size() - in.size()));
    }
    in = buf;
    if (DecodeBytesDesc(&in, &bytes).ok()) {
      std::string re;
      AppendBytesDesc(&re, bytes);
      ASSERT_EQ(re, buf.substr(0, buf.size() - in.size()));
    }
    in = buf;
    double d = 0;
    if (DecodeDouble(&in, &d).ok()) {
      std::string re;
      AppendDouble(&re, d);
      ASSERT_EQ(re, buf.substr(0, 8));
    }
  }
}

}  // namespace
}  // namespace micedb::memcomparable
