// Client requests forwarded to another node on the raft stream (docs/transport.md,
// "Forwarded requests"): sending them, answering them, and failing the ones whose answer
// cannot come (the stream broke) or did not come in time.
#include "transport/peer_transport.h"

#include <chrono>
#include <utility>
#include <vector>

#include "transport/raft_stream.h"

namespace micedb::transport {

void PeerTransport::Forward(NodeId to, ForwardRequest request, std::chrono::milliseconds timeout,
                            ForwardCallback done) {
  Peer* p = GetPeer(to);
  if (p == nullptr) return done(Status::Unavailable("the node's address is unknown"));
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    id = fwd_next_id_++;
    fwd_pending_[id] =
        PendingForward{to, std::chrono::steady_clock::now() + timeout, std::move(done)};
    if (!fwd_timer_running_) {
      fwd_timer_running_ = true;
      asio::post(io_, [this] { ExpireForwards(); });
    }
  }
  ForwardCalls calls;
  calls.set_from_node(options_.node_id.value());
  calls.set_from_addr(options_.listen_addr);
  calls.set_cluster_id(options_.cluster_id);
  calls.set_incarnation(options_.incarnation);
  calls.set_tick_ms(options_.tick_ms);
  calls.set_election_ticks(options_.election_ticks);
  ForwardCall* call = calls.add_calls();
  call->set_id(id);
  *call->mutable_request() = std::move(request);
  // Written at once: requests come one at a time from client threads, and each waits.
  if (p->EnqueueFrame(kForwardCallsFrame, calls, 1, /*write_now=*/true)) return;
  ForwardCallback failed;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    auto it = fwd_pending_.find(id);
    if (it == fwd_pending_.end()) return;
    failed = std::move(it->second.done);
    fwd_pending_.erase(it);
  }
  failed(Status::Unavailable("too many messages queued for the node"));
}

void PeerTransport::ReplyForward(NodeId to, uint64_t id, ForwardResponse response) {
  Peer* p = GetPeer(to);
  if (p == nullptr) return;  // the caller times out
  ForwardReplies replies;
  replies.set_from_node(options_.node_id.value());
  ForwardReply* r = replies.add_replies();
  r->set_id(id);
  *r->mutable_response() = std::move(response);
  // Answers come in bursts from the raft loop (one per request applied in a round): let the
  // I/O thread write them together rather than the loop once each.
  if (!p->EnqueueFrame(kForwardRepliesFrame, replies, 1, /*write_now=*/false)) dropped_++;
}

void PeerTransport::OnForwardReplies(ForwardReplies replies) {
  std::vector<std::pair<ForwardCallback, ForwardResponse>> done;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    for (auto& r : *replies.mutable_replies()) {
      auto it = fwd_pending_.find(r.id());
      if (it == fwd_pending_.end()) continue;  // timed out already
      done.emplace_back(std::move(it->second.done), std::move(*r.mutable_response()));
      fwd_pending_.erase(it);
    }
  }
  for (auto& [cb, resp] : done) cb(std::move(resp));
}

void PeerTransport::FailForwards(NodeId to) {
  std::vector<ForwardCallback> failed;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    for (auto it = fwd_pending_.begin(); it != fwd_pending_.end();) {
      if (it->second.to != to) {
        ++it;
        continue;
      }
      failed.push_back(std::move(it->second.done));
      it = fwd_pending_.erase(it);
    }
  }
  for (auto& cb : failed) {
    cb(Status::Unavailable("the connection to the node broke; the request may have run there"));
  }
}

void PeerTransport::ExpireForwards() {
  // I/O thread: every 50 ms while requests wait, fails those past their deadline.
  std::vector<ForwardCallback> expired;
  {
    std::lock_guard<std::mutex> l(fwd_mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = fwd_pending_.begin(); it != fwd_pending_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      it = fwd_pending_.erase(it);
    }
    if (fwd_pending_.empty()) {
      fwd_timer_running_ = false;
    } else {
      fwd_timer_.expires_after(std::chrono::milliseconds(50));
      fwd_timer_.async_wait([this](const asio::error_code& ec) {
        if (!ec) return ExpireForwards();
        std::lock_guard<std::mutex> l(fwd_mu_);
        fwd_timer_running_ = false;
      });
    }
  }
  for (auto& cb : expired) cb(Status::TimedOut("no answer to the forwarded request in time"));
}

}  // namespace micedb::transport
