#include "transport/grpc_transport.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "common/crc32c.h"
#include "common/logging.h"
#include "store/snapshot_files.h"

namespace micedb::transport {

namespace fs = std::filesystem;

namespace {
spdlog::logger* Log() { return GetLogger("transport"); }

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  // Find out quickly when a node is gone, and reconnect quickly when it is back.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 << 20);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, 256 << 20);
  return args;
}
}  // namespace

// ---- One destination: queue, stream, sender thread ----

class GrpcTransport::Peer {
 public:
  Peer(GrpcTransport* t, NodeId id, std::string addr) : t_(t), id_(id) {
    SetAddress(std::move(addr));
    thread_ = std::thread([this] { Run(); });
  }
  ~Peer() { Stop(); }

  void SetAddress(std::string addr) {
    std::lock_guard<std::mutex> l(mu_);
    if (addr == addr_ && channel_) return;
    addr_ = std::move(addr);
    channel_ = grpc::CreateCustomChannel(addr_, grpc::InsecureChannelCredentials(), ChannelArgs());
    reset_ = true;
  }

  std::shared_ptr<grpc::Channel> channel() {
    std::lock_guard<std::mutex> l(mu_);
    return channel_;
  }

  void Enqueue(raft::Message m) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (queue_.size() >= t_->options_.max_queued_messages) {
        t_->dropped_++;
        return;
      }
      queue_.push_back(std::move(m));
    }
    cv_.notify_one();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
      stop_ = true;
      if (ctx_) ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "raft-send");
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientWriter<RaftBatch>> writer;
    SendDone done;
    int backoff_ms = 50;
    auto close_stream = [&] {
      if (writer) {
        writer->WritesDone();
        writer->Finish().ok();
      }
      writer.reset();
      std::lock_guard<std::mutex> l(mu_);
      ctx_ = nullptr;
      ctx.reset();
    };
    while (true) {
      RaftBatch batch;
      std::shared_ptr<grpc::Channel> channel;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
        if (stop_) break;
        size_t n = std::min(queue_.size(), t_->options_.max_batch_messages);
        for (size_t i = 0; i < n; ++i) {
          *batch.add_msgs() = std::move(queue_.front());
          queue_.pop_front();
        }
        channel = channel_;
        if (reset_) {
          reset_ = false;
          l.unlock();
          close_stream();
        }
      }
      batch.set_from_node(t_->options_.node_id.value());
      batch.set_from_addr(t_->options_.listen_addr);
      if (!writer) {
        ctx = std::make_unique<grpc::ClientContext>();
        {
          std::lock_guard<std::mutex> l(mu_);
          if (stop_) break;
          ctx_ = ctx.get();
        }
        auto stub = RaftTransport::NewStub(channel);
        writer = stub->Send(ctx.get(), &done);
      }
      if (writer->Write(batch)) {
        backoff_ms = 50;
        continue;
      }
      // The stream broke: the node is down or restarting. Drop what we had (raft resends),
      // tell raft, and back off before the next attempt.
      close_stream();
      t_->dropped_ += batch.msgs_size();
      t_->handler_->OnUnreachable(id_);
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::milliseconds(backoff_ms), [&] { return stop_; });
      backoff_ms = std::min(backoff_ms * 2, 1000);
    }
    close_stream();
  }

  GrpcTransport* t_;
  NodeId id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raft::Message> queue_;
  std::string addr_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext* ctx_ = nullptr;
  bool reset_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// ---- Receiving side ----

class GrpcTransport::Service final : public RaftTransport::Service {
 public:
  explicit Service(GrpcTransport* t) : t_(t) {}

  grpc::Status Send(grpc::ServerContext*, grpc::ServerReader<RaftBatch>* reader,
                    SendDone*) override {
    RaftBatch batch;
    bool learned = false;
    while (reader->Read(&batch)) {
      if (!learned && !batch.from_addr().empty()) {
        t_->LearnAddress(NodeId(batch.from_node()), batch.from_addr());
        learned = true;
      }
      std::vector<raft::Message> msgs(std::make_move_iterator(batch.mutable_msgs()->begin()),
                                      std::make_move_iterator(batch.mutable_msgs()->end()));
      t_->handler_->OnMessages(std::move(msgs));
    }
    return grpc::Status::OK;
  }

  grpc::Status SendSnapshot(grpc::ServerContext*, grpc::ServerReader<SnapshotChunk>* reader,
                            SnapshotDone* resp) override {
    std::string dir =
        (fs::path(t_->options_.snap_dir) / fmt::format("recv-{}-{}", ::getpid(), t_->snap_seq_++))
            .string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    auto fail = [&](const std::string& why) {
      Log()->warn("snapshot receive failed: {}", why);
      fs::remove_all(dir, ec);
      resp->set_ok(false);
      resp->set_error(why);
      return grpc::Status::OK;
    };
    if (ec) return fail(fmt::format("cannot create {}: {}", dir, ec.message()));
    std::map<std::pair<uint32_t, uint32_t>, std::ofstream> files;
    SnapshotChunk chunk;
    uint64_t bytes = 0;
    while (reader->Read(&chunk)) {
      if (!chunk.data().empty()) {
        if (crc32c::Unmask(chunk.crc32c()) != crc32c::Value(chunk.data())) {
          return fail(fmt::format("chunk of file {} at byte {} failed its checksum",
                                  chunk.file_index(), bytes));
        }
        auto key = std::make_pair(chunk.cf(), chunk.file_index());
        auto it = files.find(key);
        if (it == files.end()) {
          std::string path = store::SnapshotFilePath(dir, static_cast<storage::Cf>(chunk.cf()),
                                                     chunk.file_index());
          it = files.emplace(key, std::ofstream(path, std::ios::binary)).first;
        }
        it->second.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
        if (!it->second) return fail("write to the staging directory failed");
        bytes += chunk.data().size();
      }
      if (chunk.last()) {
        for (auto& [k, f] : files) {
          f.close();
          if (!f) return fail("closing a staged file failed");
        }
        Log()->info("received a snapshot of region {} from node {} ({} bytes)", chunk.region_id(),
                    chunk.from_node(), bytes);
        t_->handler_->OnSnapshot(chunk.msg(), dir);
        resp->set_ok(true);
        return grpc::Status::OK;
      }
    }
    return fail("the stream ended before the last chunk");
  }

 private:
  GrpcTransport* t_;
};

// ---- GrpcTransport ----

GrpcTransport::GrpcTransport(TransportOptions options, InboundHandler* handler)
    : options_(std::move(options)), handler_(handler), service_(std::make_unique<Service>(this)) {}

GrpcTransport::~GrpcTransport() { Shutdown(); }

grpc::Service* GrpcTransport::service() { return service_.get(); }

void GrpcTransport::Shutdown() {
  if (shutdown_.exchange(true)) return;
  std::map<NodeId, std::unique_ptr<Peer>> peers;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> l(mu_);
    peers.swap(peers_);
    threads.swap(snapshot_threads_);
  }
  peers.clear();  // stops and joins each sender
  for (auto& t : threads) t.join();
}

GrpcTransport::Peer* GrpcTransport::GetPeer(NodeId id) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return nullptr;
  auto it = peers_.find(id);
  if (it != peers_.end()) return it->second.get();
  auto addr = addresses_.find(id);
  if (addr == addresses_.end()) return nullptr;
  auto peer = std::make_unique<Peer>(this, id, addr->second);
  Peer* p = peer.get();
  peers_[id] = std::move(peer);
  return p;
}

void GrpcTransport::SetAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  addresses_[id] = addr;
  auto it = peers_.find(id);
  if (it != peers_.end()) it->second->SetAddress(addr);
}

void GrpcTransport::LearnAddress(NodeId id, const std::string& addr) {
  std::lock_guard<std::mutex> l(mu_);
  if (addresses_.count(id) == 0) {
    Log()->info("learned the address of node {}: {}", id.value(), addr);
    addresses_[id] = addr;
  }
}

std::shared_ptr<grpc::Channel> GrpcTransport::ChannelTo(NodeId id) {
  Peer* p = GetPeer(id);
  return p ? p->channel() : nullptr;
}

void GrpcTransport::Send(raft::Message m) {
  Peer* p = GetPeer(NodeId(m.to()));
  if (!p) {
    dropped_++;
    return;
  }
  p->Enqueue(std::move(m));
}

void GrpcTransport::SendSnapshot(raft::Message m, store::SnapshotSource source) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return;
  snapshot_threads_.emplace_back([this, m = std::move(m), source = std::move(source)]() mutable {
    pthread_setname_np(pthread_self(), "snap-send");
    RunSnapshot(std::move(m), std::move(source));
  });
}

void GrpcTransport::RunSnapshot(raft::Message m, store::SnapshotSource source) {
  NodeId to(m.to());
  uint64_t region = m.region_id();
  std::string dir =
      (fs::path(options_.snap_dir) /
       fmt::format("send-{}-{}-{}", region, m.snapshot().metadata().index(), snap_seq_++))
          .string();
  auto report = [&](bool ok, const std::string& why) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!ok) Log()->warn("snapshot of region {} to node {} failed: {}", region, to.value(), why);
    handler_->OnSnapshotSent(region, to, ok);
  };
  auto files = store::ExportSnapshotFiles(source, dir);
  source.snapshot.reset();
  if (!files.ok()) return report(false, files.status().ToString());
  auto channel = ChannelTo(to);
  if (!channel) return report(false, "no address");
  auto stub = RaftTransport::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  SnapshotDone done;
  auto writer = stub->SendSnapshot(&ctx, &done);
  std::string buf(options_.snapshot_chunk_bytes, '\0');
  uint64_t bytes = 0;
  for (size_t i = 0; i < files->size(); ++i) {
    const auto& [cf, path] = (*files)[i];
    std::ifstream in(path, std::ios::binary);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      std::streamsize n = in.gcount();
      if (n <= 0) break;
      SnapshotChunk chunk;
      chunk.set_from_node(options_.node_id.value());
      chunk.set_region_id(region);
      chunk.set_cf(static_cast<uint32_t>(cf));
      chunk.set_file_index(0);
      chunk.set_data(buf.data(), static_cast<size_t>(n));
      chunk.set_crc32c(crc32c::Mask(crc32c::Value(chunk.data())));
      if (!writer->Write(chunk)) return report(false, "stream broke");
      bytes += static_cast<uint64_t>(n);
    }
  }
  SnapshotChunk last;
  last.set_from_node(options_.node_id.value());
  last.set_region_id(region);
  last.set_last(true);
  *last.mutable_msg() = m;
  if (!writer->Write(last)) return report(false, "stream broke");
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return report(false, st.error_message());
  if (!done.ok()) return report(false, done.error());
  Log()->info("sent a snapshot of region {} at index {} to node {} ({} bytes)", region,
              m.snapshot().metadata().index(), to.value(), bytes);
  report(true, "");
}

}  // namespace micedb::transport
