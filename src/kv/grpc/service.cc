#include "kv/grpc/service.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"
#include "kv/grpc/scan_pager.h"
#include "kv/grpc/status_codes.h"

namespace micedb::kv {

namespace {

// Streams one Scan. At any moment exactly one thing is in flight, a backend page or a write,
// until Finish; that is what keeps the stream's memory bounded to one page and lets the
// members other than the hand-off below go unlocked.
//
// gRPC owns the reactor from the handler's return until OnDone, which is where it is freed;
// hence the plain new and delete the callback API asks for.
class ScanReactor final : public grpc::ServerWriteReactor<v1::ScanResponse> {
 public:
  ScanReactor(const KvApi* api, const v1::ScanRequest& req) {
    auto pager = ScanPager::Create(api, req);
    if (!pager.ok()) {
      Finish(ToGrpcStatus(pager.status()));
      return;
    }
    pager_ = std::move(*pager);
    if (pager_->finished()) {
      Finish(grpc::Status::OK);
      return;
    }
    Fetch();
  }

  void OnWriteDone(bool ok) override {
    if (!ok || cancelled_) {
      return Finish(grpc::Status::CANCELLED);
    }
    outbox_.pop_front();
    if (!outbox_.empty()) {
      return StartWrite(&outbox_.front());
    }
    if (pager_->finished()) {
      return Finish(grpc::Status::OK);
    }
    Fetch();
  }

  void OnCancel() override { cancelled_ = true; }

  void OnDone() override { delete this; }

 private:
  struct Page {
    Status status;
    std::vector<v1::ScanResponse> messages;
  };

  // Asks for pages until one has something to write or ends the stream. A backend that
  // answers on the calling thread hands its page back through early_ instead of recursing,
  // so a long run of pages holding only expired keys does not grow the stack.
  void Fetch() {
    for (;;) {
      {
        std::lock_guard<std::mutex> l(mu_);
        issuing_ = true;
      }
      pager_->Next([this](Status st, std::vector<v1::ScanResponse> messages) {
        {
          std::lock_guard<std::mutex> l(mu_);
          if (issuing_) {
            early_.emplace(Page{std::move(st), std::move(messages)});
            return;
          }
        }
        if (TakePage(st, std::move(messages))) {
          Fetch();
        }
      });
      std::optional<Page> page;
      {
        std::lock_guard<std::mutex> l(mu_);
        issuing_ = false;
        page.swap(early_);
      }
      // Answered later on another thread: that callback carries on, and `this` may already
      // be gone.
      if (!page) {
        return;
      }
      if (!TakePage(page->status, std::move(page->messages))) {
        return;
      }
    }
  }

  // Starts writing the page, or finishes the stream. True when the page was empty and the
  // scan is not over, so the caller must fetch the next one.
  bool TakePage(const Status& st, std::vector<v1::ScanResponse> messages) {
    if (cancelled_) {
      Finish(grpc::Status::CANCELLED);
      return false;
    }
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return false;
    }
    for (auto& m : messages) {
      outbox_.push_back(std::move(m));
    }
    if (!outbox_.empty()) {
      StartWrite(&outbox_.front());
      return false;
    }
    if (pager_->finished()) {
      Finish(grpc::Status::OK);
      return false;
    }
    return true;
  }

  std::unique_ptr<ScanPager> pager_;
  std::deque<v1::ScanResponse> outbox_;  // front: the message being written
  std::atomic<bool> cancelled_{false};

  std::mutex mu_;
  bool issuing_ GUARDED_BY(mu_) = false;  // Fetch is inside pager_->Next
  std::optional<Page> early_ GUARDED_BY(mu_);
};

}  // namespace

KvGrpcService::KvGrpcService(KvBackend* backend, KvApiOptions options) : api_(backend, options) {}

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* KvGrpcService::Serve(grpc::CallbackServerContext* ctx,
                                               void (KvApi::*method)(const Req&, Resp*, KvApi::Done)
                                                   const,
                                               const Req* req, Resp* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  (api_.*method)(*req, resp, [ctx, reactor](const Status& st) {
    if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kNotLeader) {
      ctx->AddTrailingMetadata(kNotAppliedMetadata, "1");
    }
    reactor->Finish(ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* KvGrpcService::Get(grpc::CallbackServerContext* ctx,
                                             const v1::GetRequest* req, v1::GetResponse* resp) {
  return Serve(ctx, &KvApi::Get, req, resp);
}

grpc::ServerUnaryReactor* KvGrpcService::Put(grpc::CallbackServerContext* ctx,
                                             const v1::PutRequest* req, v1::PutResponse* resp) {
  return Serve(ctx, &KvApi::Put, req, resp);
}

grpc::ServerUnaryReactor* KvGrpcService::Delete(grpc::CallbackServerContext* ctx,
                                                const v1::DeleteRequest* req,
                                                v1::DeleteResponse* resp) {
  return Serve(ctx, &KvApi::Delete, req, resp);
}

grpc::ServerWriteReactor<v1::ScanResponse>* KvGrpcService::Scan(grpc::CallbackServerContext* ctx,
                                                                const v1::ScanRequest* req) {
  return new ScanReactor(&api_, *req);
}

grpc::ServerUnaryReactor* KvGrpcService::BatchGet(grpc::CallbackServerContext* ctx,
                                                  const v1::BatchGetRequest* req,
                                                  v1::BatchGetResponse* resp) {
  return Serve(ctx, &KvApi::BatchGet, req, resp);
}

grpc::ServerUnaryReactor* KvGrpcService::BatchPut(grpc::CallbackServerContext* ctx,
                                                  const v1::BatchPutRequest* req,
                                                  v1::BatchPutResponse* resp) {
  return Serve(ctx, &KvApi::BatchPut, req, resp);
}

grpc::ServerUnaryReactor* KvGrpcService::CompareAndSwap(grpc::CallbackServerContext* ctx,
                                                        const v1::CompareAndSwapRequest* req,
                                                        v1::CompareAndSwapResponse* resp) {
  return Serve(ctx, &KvApi::CompareAndSwap, req, resp);
}

}  // namespace micedb::kv
