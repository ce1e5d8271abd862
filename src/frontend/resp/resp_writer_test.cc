#include "frontend/resp/resp_writer.h"

#include <gtest/gtest.h>

namespace micedb::resp {
namespace {

std::string Encode(RespVersion version, void (*fn)(RespWriter&)) {
  std::string out;
  RespWriter w(&out, version);
  fn(w);
  return out;
}

TEST(RespWriterTest, ScalarsAreTheSameInBothVersions) {
  for (RespVersion v : {RespVersion::kResp2, RespVersion::kResp3}) {
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Ok(); }), "+OK\r\n");
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Error("ERR bad"); }), "-ERR bad\r\n");
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Integer(-42); }), ":-42\r\n");
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Bulk("hi"); }), "$2\r\nhi\r\n");
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Bulk(""); }), "$0\r\n\r\n");
    EXPECT_EQ(Encode(v, [](RespWriter& w) { w.ArrayHeader(2); }), "*2\r\n");
  }
}

TEST(RespWriterTest, LineBreaksInSimpleStringsAndErrorsBecomeSpaces) {
  EXPECT_EQ(Encode(RespVersion::kResp2, [](RespWriter& w) { w.Error("ERR a\r\nb"); }),
            "-ERR a  b\r\n");
  EXPECT_EQ(Encode(RespVersion::kResp2, [](RespWriter& w) { w.SimpleString("x\ny"); }), "+x y\r\n");
}

TEST(RespWriterTest, Resp2Fallbacks) {
  const auto v = RespVersion::kResp2;
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Null(); }), "$-1\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.NullArray(); }), "*-1\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.MapHeader(2); }), "*4\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.SetHeader(3); }), "*3\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Bool(true); }), ":1\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Double(1.5); }), "$3\r\n1.5\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Verbatim("txt", "abc"); }), "$3\r\nabc\r\n");
}

TEST(RespWriterTest, Resp3Types) {
  const auto v = RespVersion::kResp3;
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Null(); }), "_\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.NullArray(); }), "_\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.MapHeader(2); }), "%2\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.SetHeader(3); }), "~3\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Bool(false); }), "#f\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Double(1.5); }), ",1.5\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Double(1.0 / 0.0); }), ",inf\r\n");
  EXPECT_EQ(Encode(v, [](RespWriter& w) { w.Verbatim("txt", "abc"); }), "=7\r\ntxt:abc\r\n");
}

}  // namespace
}  // namespace micedb::resp
