#include "txn/router_transport.h"

namespace micedb::txn {

void RouterTransport::GetTimestamps(uint32_t count, std::function<void(Result<uint64_t>)> done) {
  if (stopped_.load()) return done(Status::Unavailable("the node is stopping"));
  oracle_(count, std::move(done));
}

std::optional<std::pair<std::string, std::string>> RouterTransport::RegionOf(
    std::string_view engine_key) {
  if (stopped_.load()) return std::nullopt;
  std::optional<router::RegionRoute> r = router_->Locate(engine_key);
  if (!r) return std::nullopt;
  return std::make_pair(r->desc.start_key(), r->desc.end_key());
}

void RouterTransport::Send(pb::TxnRequest req, std::string route_key, std::vector<std::string> keys,
                           bool write, int64_t timeout_ms,
                           std::function<void(Result<pb::TxnResponse>)> done) {
  if (stopped_.load()) return done(Status::Unavailable("the node is stopping"));
  region::RegionRequest rr;
  rr.set_format(region::FORMAT_V1);
  *rr.mutable_txn() = std::move(req);
  router_->Send(
      std::move(rr), std::move(route_key), std::move(keys), write,
      [done = std::move(done)](Result<region::RegionResponse> r) {
        if (!r.ok()) return done(r.status());
        if (!r->has_txn()) {
          return done(Status::Internal("the region answered a txn request without txn"));
        }
        if (!r->txn().invalid().empty()) {
          return done(Status::InvalidArgument(r->txn().invalid()));
        }
        done(std::move(*r->mutable_txn()));
      },
      timeout_ms);
}

}  // namespace micedb::txn
