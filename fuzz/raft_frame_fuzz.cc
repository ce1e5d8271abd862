// libFuzzer target for the raft stream's receiving side (src/transport/frame_reader.h): any
// bytes after the magic are read into frames or break the stream, never crash it. Checks:
// - the frames (and the outcome) do not depend on how the bytes are cut into reads, nor on
//   the receive buffer's starting size (its growth, compaction and shrinking);
// - every frame's payload decodes, or is refused, as the receiver decodes it;
// - each frame sent again as fragments (any piece size) comes back the same.
// Input: byte 0 seeds the read sizes, byte 1 picks the fragment size; the rest is the stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "common/coding.h"
#include "transport/frame_reader.h"

namespace {

using micedb::transport::DecodeFrame;
using micedb::transport::Frame;
using micedb::transport::FramePayload;
using micedb::transport::FrameReader;

constexpr size_t kMaxFrame = 1 << 20;

struct Outcome {
  std::vector<std::pair<uint8_t, std::string>> frames;
  bool broken = false;
  std::string error;

  bool operator==(const Outcome&) const = default;
};

// Reads `bytes` through a reader whose buffer starts at `initial` bytes, each read taking as
// much as fits, or with `in_pieces` the size (1 to 64 bytes) the next value of `seed`'s
// sequence picks.
Outcome ReadAll(std::string_view bytes, size_t initial, bool in_pieces, uint32_t seed) {
  FrameReader reader(kMaxFrame, initial);
  Outcome out;
  size_t off = 0;
  for (;;) {
    Frame f;
    FrameReader::Next next;
    while ((next = reader.Read(&f)) == FrameReader::Next::kFrame) {
      out.frames.emplace_back(f.type, std::string(f.payload));
    }
    if (next == FrameReader::Next::kBroken) {
      out.broken = true;
      out.error = reader.error();
      return out;
    }
    if (off == bytes.size()) return out;
    const std::span<char> space = reader.Space();
    if (space.empty()) std::abort();  // a reader must always take more bytes
    seed = seed * 1103515245 + 12345;
    size_t n = in_pieces ? 1 + (seed >> 16) % 64 : space.size();
    n = std::min({n, space.size(), bytes.size() - off});
    std::memcpy(space.data(), bytes.data() + off, n);
    reader.Filled(n);
    off += n;
  }
}

void AppendFrame(std::string* out, uint8_t type, std::string_view payload) {
  micedb::PutFixed32(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(payload);
}

// What the receiver does with a frame: decode it and take its contents apart.
void Decode(uint8_t type, const std::string& payload) {
  FramePayload decoded;
  micedb::Status s = DecodeFrame(Frame{type, payload}, &decoded);
  if (!s.ok()) {
    if (!std::holds_alternative<std::monostate>(decoded)) std::abort();
    return;
  }
  if (auto* batch = std::get_if<micedb::transport::RaftBatch>(&decoded)) {
    std::vector<micedb::raft::Message> msgs;
    for (auto& m : *batch->mutable_msgs()) msgs.push_back(std::move(m));
  } else if (auto* calls = std::get_if<micedb::transport::ForwardCalls>(&decoded)) {
    for (auto& c : *calls->mutable_calls()) {
      micedb::transport::ForwardRequest req = std::move(*c.mutable_request());
      (void)req.request().body_case();
    }
  }
}

}  // namespace

// Strings that are not UTF-8 make protobuf log an error per parse; quiet, the fuzzer's own
// output stays readable.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t seed = data[0];
  const size_t piece = 1 + data[1] % 32;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  const Outcome whole = ReadAll(stream, micedb::transport::kInitialBuffer, false, 0);
  const Outcome cut = ReadAll(stream, 1 + seed % 16, true, seed);
  if (!(whole == cut)) std::abort();

  std::string again;
  for (const auto& [type, payload] : whole.frames) {
    Decode(type, payload);
    std::string frame;
    AppendFrame(&frame, type, payload);
    for (size_t off = 0; off < frame.size(); off += piece) {
      AppendFrame(&again, micedb::transport::kFragmentFrame,
                  std::string_view(frame).substr(off, piece));
    }
  }
  const Outcome rejoined = ReadAll(again, 1 + seed % 16, true, seed ^ 0x5a);
  if (rejoined.broken || rejoined.frames != whole.frames) std::abort();
  return 0;
}
