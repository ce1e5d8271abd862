#include "transport/frame_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/coding.h"

namespace micedb::transport {

FrameReader::FrameReader(size_t max_frame_bytes, size_t initial_buffer)
    : max_frame_bytes_(max_frame_bytes), initial_buffer_(std::max<size_t>(initial_buffer, 1)) {
  buf_.resize(initial_buffer_);
}

std::span<char> FrameReader::Space() {
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Shrink back once a long frame is done; grow only when full, and never past what the
  // frame being read needs.
  if (end_ == 0 && buf_.size() > initial_buffer_) {
    std::vector<char>().swap(buf_);
    buf_.resize(initial_buffer_);
  }
  if (end_ == buf_.size()) {
    size_t want = buf_.size() * 2;
    if (need_ > end_) want = std::min(want, std::max(need_, buf_.size() + initial_buffer_));
    buf_.resize(want);
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

void FrameReader::Filled(size_t n) { end_ += std::min(n, buf_.size() - end_); }

FrameReader::Next FrameReader::Read(Frame* frame) {
  if (!error_.empty()) return Next::kBroken;
  if (!joined_.empty()) std::string().swap(joined_);
  need_ = 0;
  while (end_ - begin_ >= kHeaderBytes) {
    const char* p = buf_.data() + begin_;
    const size_t len = DecodeFixed32(p);
    const auto type = static_cast<uint8_t>(p[4]);
    if (len > max_frame_bytes_) {
      return Break(fmt::format("frame of {} bytes is over the limit", len));
    }
    if (end_ - begin_ - kHeaderBytes < len) {
      need_ = kHeaderBytes + len;
      return Next::kNeedMore;
    }
    begin_ += kHeaderBytes + len;
    const std::string_view payload(p + kHeaderBytes, len);
    if (begin_ == end_) begin_ = end_ = 0;  // the bytes stay put until Space()
    if (type != kFragmentFrame) {
      *frame = {type, payload};
      return Next::kFrame;
    }
    const Next next = AddFragment(payload, frame);
    if (next != Next::kNeedMore) return next;
  }
  return Next::kNeedMore;
}

FrameReader::Next FrameReader::AddFragment(std::string_view piece, Frame* frame) {
  // The pieces together are one frame, header first.
  reassembly_.append(piece);
  if (reassembly_.size() < kHeaderBytes) return Next::kNeedMore;
  const size_t inner = DecodeFixed32(reassembly_.data());
  const auto inner_type = static_cast<uint8_t>(reassembly_[4]);
  if (inner > max_frame_bytes_ || inner_type == kFragmentFrame ||
      reassembly_.size() > kHeaderBytes + inner) {
    return Break("fragments do not make a frame");
  }
  if (reassembly_.size() < kHeaderBytes + inner) return Next::kNeedMore;
  joined_.swap(reassembly_);
  *frame = {inner_type, std::string_view(joined_).substr(kHeaderBytes)};
  return Next::kFrame;
}

FrameReader::Next FrameReader::Break(std::string why) {
  error_ = std::move(why);
  return Next::kBroken;
}

namespace {

template <typename Msg>
Status Parse(const Frame& frame, FramePayload* out, std::string_view what) {
  Msg& msg = out->emplace<Msg>();
  if (!msg.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
    *out = std::monostate();
    return Status::InvalidArgument(fmt::format("{} do not parse", what));
  }
  return Status::OK();
}

}  // namespace

Status DecodeFrame(const Frame& frame, FramePayload* out) {
  switch (frame.type) {
    case kRaftBatchFrame:
      return Parse<RaftBatch>(frame, out, "raft messages");
    case kForwardCallsFrame:
      return Parse<ForwardCalls>(frame, out, "forwarded calls");
    case kForwardRepliesFrame:
      return Parse<ForwardReplies>(frame, out, "forwarded replies");
    default:
      // Other frame types are for newer nodes; skip them.
      *out = std::monostate();
      return Status::OK();
  }
}

}  // namespace micedb::transport
