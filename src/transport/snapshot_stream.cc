#include "transport/snapshot_stream.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/crc32c.h"
#include "common/logging.h"
#include "store/snapshot_stage.h"

namespace micedb::transport {

namespace fs = std::filesystem;

namespace {
spdlog::logger* Log() { return GetLogger("transport"); }
}  // namespace

// ---- Sending ----

void PeerTransport::SendSnapshot(raft::Message m, store::SnapshotSource source) {
  std::lock_guard<std::mutex> l(mu_);
  if (shutdown_) return;
  snapshot_threads_.emplace_back([this, m = std::move(m), source = std::move(source)]() mutable {
    pthread_setname_np(pthread_self(), "snap-send");
    RunSnapshot(m, std::move(source));
  });
}

void PeerTransport::RunSnapshot(const raft::Message& m, store::SnapshotSource source) {
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
  if (!source.export_files) return report(false, "nothing to export");
  // For the log only (the rate a user compares with the disk's and the network's).
  const auto began = std::chrono::steady_clock::now();
  auto files = source.export_files(dir);
  const auto exported = std::chrono::steady_clock::now();
  source.export_files = nullptr;  // releases the store's view of its data before streaming
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
  std::map<storage::Cf, uint32_t> next_file_index;  // files of a column family count from 0
  SnapshotChunk last;
  for (const store::SnapshotFile& file : *files) {
    const uint32_t file_index = next_file_index[file.cf]++;
    store::SnapshotFileMeta* meta = last.add_files();
    meta->set_cf(static_cast<uint32_t>(file.cf));
    meta->set_index(file_index);
    uint32_t crc = 0;
    std::ifstream in(file.path, std::ios::binary);
    if (!in) return report(false, "cannot open " + file.path);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      std::streamsize n = in.gcount();
      if (n <= 0) break;
      SnapshotChunk chunk;
      chunk.set_from_node(options_.node_id.value());
      chunk.set_region_id(region);
      chunk.set_cf(static_cast<uint32_t>(file.cf));
      chunk.set_file_index(file_index);
      chunk.set_data(buf.data(), static_cast<size_t>(n));
      chunk.set_crc32c(crc32c::Mask(crc32c::Value(chunk.data())));
      if (!writer->Write(chunk)) return report(false, "stream broke");
      bytes += static_cast<uint64_t>(n);
      crc = crc32c::Extend(crc, chunk.data());
      meta->set_size(meta->size() + static_cast<uint64_t>(n));
    }
    if (in.bad()) return report(false, "cannot read " + file.path);
    meta->set_crc32c(crc);
  }
  last.set_from_node(options_.node_id.value());
  last.set_region_id(region);
  last.set_last(true);
  *last.mutable_msg() = m;
  if (!writer->Write(last)) return report(false, "stream broke");
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (!st.ok()) return report(false, st.error_message());
  if (!done.ok()) return report(false, done.error());
  const auto ended = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  const double secs = std::chrono::duration<double>(ended - began).count();
  Log()->info(
      "sent a snapshot of region {} at index {} to node {} ({} bytes: exported in {} ms, sent "
      "in {} ms; {:.0f} MiB/s in all)",
      region, m.snapshot().metadata().index(), to.value(), bytes, ms(exported - began),
      ms(ended - exported), secs > 0 ? static_cast<double>(bytes) / (1 << 20) / secs : 0.0);
  report(true, "");
}

// ---- Receiving ----

grpc::Status PeerTransport::SnapshotService::SendSnapshot(grpc::ServerContext*,
                                                          grpc::ServerReader<SnapshotChunk>* reader,
                                                          SnapshotDone* resp) {
  std::string dir;
  std::optional<store::SnapshotStager> stager;
  Status opened;
  // A name no earlier process used: a restarted node (the same pid, in a container) may be
  // finishing an install from a directory its predecessor staged.
  do {
    dir = (fs::path(t_->options_.snap_dir) / fmt::format("recv-{}-{}", ::getpid(), t_->snap_seq_++))
              .string();
    stager.emplace(store::PosixStagingFs(), dir);
    opened = stager->Open();
  } while (opened.code() == StatusCode::kAlreadyExists);
  auto fail = [&](const std::string& why) {
    Log()->warn("snapshot receive failed: {}", why);
    std::error_code ec;
    fs::remove_all(dir, ec);
    resp->set_ok(false);
    resp->set_error(why);
    return grpc::Status::OK;
  };
  if (!opened.ok()) {
    dir.clear();  // not ours to remove
    return fail(opened.ToString());
  }
  SnapshotChunk chunk;
  uint64_t bytes = 0;
  while (reader->Read(&chunk)) {
    if (!chunk.data().empty()) {
      if (crc32c::Unmask(chunk.crc32c()) != crc32c::Value(chunk.data())) {
        return fail(fmt::format("chunk of file {} at byte {} failed its checksum",
                                chunk.file_index(), bytes));
      }
      if (!storage::IsValidCf(static_cast<storage::Cf>(chunk.cf()))) {
        return fail(fmt::format("chunk names column family {}", chunk.cf()));
      }
      Status st =
          stager->Append(static_cast<storage::Cf>(chunk.cf()), chunk.file_index(), chunk.data());
      if (!st.ok()) return fail("write to the staging directory failed: " + st.ToString());
      bytes += chunk.data().size();
    }
    if (chunk.last()) {
      // Synced and checked against the sender's list before the store sees it: the store's
      // pending-install record must never name files a power loss could take back.
      auto staged = stager->Finish({chunk.files().begin(), chunk.files().end()});
      if (!staged.ok()) return fail(staged.status().ToString());
      Log()->info("received a snapshot of region {} from node {} ({} bytes)", chunk.region_id(),
                  chunk.from_node(), bytes);
      t_->handler_->OnSnapshot(chunk.msg(), std::move(*staged));
      resp->set_ok(true);
      return grpc::Status::OK;
    }
  }
  return fail("the stream ended before the last chunk");
}

}  // namespace micedb::transport
