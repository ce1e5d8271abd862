// Internal to src/transport: the raft stream's frame format (docs/transport.md, "Raft stream")
// and the receiving side's parsing of it, with no socket: FrameReader turns the bytes a stream
// delivers into whole frames (fragments put back together), and DecodeFrame turns a frame's
// payload into its message. PeerTransport::Inbound reads its socket through them; the fuzz
// target fuzz/raft_frame_fuzz.cc feeds them arbitrary bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "micedb/transport.pb.h"

namespace micedb::transport {

// The raft stream on the peer port: the 8-byte magic, then frames of a 4-byte little-endian
// payload length, a 1-byte frame type and the payload. The magic cannot be mistaken for the
// start of an HTTP/2 connection ("PRI * HTTP/2.0...").
inline constexpr std::string_view kMagic = "MICERAFT";
inline constexpr size_t kHeaderBytes = 5;
// An inbound stream's buffer starts (and, between big frames, returns to) this size.
inline constexpr size_t kInitialBuffer = 64 << 10;
inline constexpr uint8_t kRaftBatchFrame = 1;       // payload: a serialized RaftBatch
inline constexpr uint8_t kForwardCallsFrame = 2;    // ForwardCalls
inline constexpr uint8_t kForwardRepliesFrame = 3;  // ForwardReplies
// A piece of a larger frame (its header first, then its payload), sent in pieces so that
// small frames can pass it: heartbeats never wait behind a 100 MiB append. The receiver
// puts the pieces back together and handles the whole frame when its last byte arrives.
inline constexpr uint8_t kFragmentFrame = 4;
// Written by a receiver, back on a stream it refuses (the only bytes a receiver ever writes):
// a Refusal, then the receiver closes.
inline constexpr uint8_t kRefusalFrame = 5;
// Frames longer than this (payload plus header) go as fragments of this size.
inline constexpr size_t kFragmentBytes = 256 << 10;

// One whole frame. `payload` points into the reader that returned it.
struct Frame {
  uint8_t type = 0;
  std::string_view payload;
};

// Reads the frames of one stream (after the magic) from the bytes as they arrive, in pieces
// of any size. Memory follows the bytes that arrived, never a length a header only announces
// (13 bytes must not cost 256 MiB): the buffer starts at kInitialBuffer, grows when full (at
// most doubling, and no further than the frame being read needs) and returns to its first
// size once a long frame is done; fragments are joined in a string that grows as
// they come. Not thread-safe; one reader per stream.
class FrameReader {
 public:
  enum class Next {
    kFrame,     // *frame holds the next whole frame
    kNeedMore,  // read more bytes (into Space()) first
    kBroken,    // the stream is not a raft stream (error() says why); close it
  };

  // Frames (and joined fragments) longer than `max_frame_bytes` break the stream. The
  // buffer starts at `initial_buffer` bytes (> 0; small ones let tests and the fuzz target
  // exercise its growth with small inputs).
  explicit FrameReader(size_t max_frame_bytes, size_t initial_buffer = kInitialBuffer);

  // Where to put the next bytes read: at least one byte of room. Invalidates frames
  // returned before.
  std::span<char> Space();
  // `n` bytes were written at the start of the span Space() returned last.
  void Filled(size_t n);

  // The next whole frame, if it has arrived. A fragment is not returned: when the last of
  // its pieces arrives, the frame they make is. `frame->payload` is valid until the next
  // call of Next or Space. After kBroken, every later call returns kBroken.
  Next Read(Frame* frame);

  const std::string& error() const { return error_; }
  // The receive buffer's length (for tests of its growth).
  size_t buffer_bytes() const { return buf_.size(); }

 private:
  // Adds one fragment's bytes; kFrame with *frame set when they complete a frame.
  Next AddFragment(std::string_view piece, Frame* frame);
  Next Break(std::string why);

  const size_t max_frame_bytes_;
  const size_t initial_buffer_;
  std::vector<char> buf_;
  size_t begin_ = 0;  // unparsed bytes are buf_[begin_, end_)
  size_t end_ = 0;
  size_t need_ = 0;         // bytes the incomplete frame at begin_ needs (0: unknown)
  std::string reassembly_;  // the fragments of a long frame received so far
  std::string joined_;      // the last frame made of fragments, until the next call
  std::string error_;
};

// A frame's payload as the receiver decodes it; monostate for frame types this node does not
// know (sent by newer nodes: skipped).
using FramePayload = std::variant<std::monostate, RaftBatch, ForwardCalls, ForwardReplies>;

// Decodes the payload of `frame` into *out. InvalidArgument when it does not parse (the
// stream must then close).
Status DecodeFrame(const Frame& frame, FramePayload* out);

}  // namespace micedb::transport
