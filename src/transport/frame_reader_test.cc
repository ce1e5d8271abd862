// FrameReader and DecodeFrame without sockets: frames arriving in pieces of any size, long
// frames in fragments, the limits, and the receive buffer's growth.
#include "transport/frame_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/coding.h"

namespace micedb::transport {
namespace {

std::string FrameBytes(uint8_t type, std::string_view payload) {
  std::string out;
  PutFixed32(&out, static_cast<uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

// `frame` (header included) as fragments of at most `piece` bytes.
std::string Fragments(std::string_view frame, size_t piece) {
  std::string out;
  for (size_t off = 0; off < frame.size(); off += piece) {
    out += FrameBytes(kFragmentFrame, frame.substr(off, piece));
  }
  return out;
}

struct Fed {
  std::vector<std::pair<uint8_t, std::string>> frames;
  bool broken = false;
  std::string error;
};

// Feeds `bytes` to `r` at most `chunk` bytes per read, collecting the frames.
Fed Feed(FrameReader& r, std::string_view bytes, size_t chunk) {
  Fed fed;
  size_t off = 0;
  while (!fed.broken) {
    Frame f;
    FrameReader::Next next;
    while ((next = r.Read(&f)) == FrameReader::Next::kFrame) {
      fed.frames.emplace_back(f.type, std::string(f.payload));
    }
    if (next == FrameReader::Next::kBroken) {
      fed.broken = true;
      fed.error = r.error();
      break;
    }
    if (off == bytes.size()) break;
    std::span<char> space = r.Space();
    EXPECT_GT(space.size(), 0u);
    const size_t n = std::min({chunk, space.size(), bytes.size() - off});
    std::memcpy(space.data(), bytes.data() + off, n);
    r.Filled(n);
    off += n;
  }
  return fed;
}

TEST(FrameReader, FramesArriveWholeWhateverThePiecesTheBytesComeIn) {
  RaftBatch batch;
  batch.set_from_node(3);
  batch.add_msgs()->set_index(42);
  const std::string long_payload(3000, 'x');
  std::string long_frame = FrameBytes(kRaftBatchFrame, long_payload);
  std::string stream = FrameBytes(kRaftBatchFrame, batch.SerializeAsString()) +
                       FrameBytes(kForwardRepliesFrame, "") + Fragments(long_frame, 700);
  // A frame may pass a long frame's fragments: here before the last fragment.
  stream.insert(stream.size() - (kHeaderBytes + long_frame.size() % 700), FrameBytes(99, "newer"));
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{5}, size_t{7}, size_t{64}, stream.size()}) {
    FrameReader r(1 << 20);
    Fed fed = Feed(r, stream, chunk);
    ASSERT_FALSE(fed.broken) << fed.error;
    ASSERT_EQ(fed.frames.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(fed.frames[0].first, kRaftBatchFrame);
    EXPECT_EQ(fed.frames[0].second, batch.SerializeAsString());
    EXPECT_EQ(fed.frames[1].first, kForwardRepliesFrame);
    EXPECT_EQ(fed.frames[2], std::make_pair(uint8_t{99}, std::string("newer")));
    EXPECT_EQ(fed.frames[3], std::make_pair(kRaftBatchFrame, long_payload));
  }
}

TEST(FrameReader, FramesOverTheLimitBreakTheStream) {
  {
    FrameReader r(100);
    Fed fed = Feed(r, FrameBytes(kRaftBatchFrame, std::string(101, 'x')), 1000);
    EXPECT_TRUE(fed.broken);
    EXPECT_NE(fed.error.find("over the limit"), std::string::npos) << fed.error;
    // It stays broken.
    Frame f;
    EXPECT_EQ(r.Read(&f), FrameReader::Next::kBroken);
  }
  {
    // Joined fragments announcing more than the limit.
    FrameReader r(100);
    std::string inner;
    PutFixed32(&inner, 101);
    inner.push_back(kRaftBatchFrame);
    EXPECT_TRUE(Feed(r, FrameBytes(kFragmentFrame, inner), 1000).broken);
  }
  {
    // Fragments running past the frame they announce.
    FrameReader r(100);
    std::string inner;
    PutFixed32(&inner, 2);
    inner.push_back(kRaftBatchFrame);
    inner += "abc";
    Fed fed = Feed(r, FrameBytes(kFragmentFrame, inner), 1000);
    EXPECT_TRUE(fed.broken);
    EXPECT_EQ(fed.error, "fragments do not make a frame");
  }
  {
    // A fragment of fragments.
    FrameReader r(100);
    EXPECT_TRUE(Feed(r, Fragments(FrameBytes(kFragmentFrame, "ab"), 3), 1000).broken);
  }
}

TEST(FrameReader, TheBufferGrowsWithTheBytesAndShrinksAfterALongFrame) {
  FrameReader r(256 << 20);
  // A header announcing 200 MiB costs nothing until the bytes come.
  std::string head;
  PutFixed32(&head, 200 << 20);
  head.push_back(kRaftBatchFrame);
  Fed fed = Feed(r, head + std::string(100, 'x'), 1 << 20);
  EXPECT_TRUE(fed.frames.empty());
  EXPECT_EQ(r.buffer_bytes(), kInitialBuffer);

  // A 1 MiB frame grows it to about what has arrived; after the frame it shrinks back.
  FrameReader big(256 << 20);
  const std::string payload(1 << 20, 'y');
  const std::string frame = FrameBytes(kRaftBatchFrame, payload);
  fed = Feed(big, frame.substr(0, 300 << 10), 64 << 10);
  EXPECT_LE(big.buffer_bytes(), size_t{512} << 10);
  fed = Feed(big, frame.substr(300 << 10), 64 << 10);
  ASSERT_EQ(fed.frames.size(), 1u);
  EXPECT_EQ(fed.frames[0].second, payload);
  EXPECT_LE(big.buffer_bytes(), frame.size() + kInitialBuffer);
  (void)big.Space();
  EXPECT_EQ(big.buffer_bytes(), kInitialBuffer);
}

TEST(DecodeFrame, PayloadsDecodeByTypeAndBadOnesAreErrors) {
  RaftBatch batch;
  batch.set_from_node(7);
  const std::string bytes = batch.SerializeAsString();
  FramePayload out;
  ASSERT_TRUE(DecodeFrame({kRaftBatchFrame, bytes}, &out).ok());
  ASSERT_TRUE(std::holds_alternative<RaftBatch>(out));
  EXPECT_EQ(std::get<RaftBatch>(out).from_node(), 7u);

  ASSERT_TRUE(DecodeFrame({kForwardCallsFrame, ""}, &out).ok());
  EXPECT_TRUE(std::holds_alternative<ForwardCalls>(out));
  // Unknown types are skipped; payloads that do not parse are errors.
  ASSERT_TRUE(DecodeFrame({77, "\xff\xff"}, &out).ok());
  EXPECT_TRUE(std::holds_alternative<std::monostate>(out));
  Status s = DecodeFrame({kRaftBatchFrame, "\xff\xff\xff"}, &out);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_TRUE(std::holds_alternative<std::monostate>(out));
}

}  // namespace
}  // namespace micedb::transport
