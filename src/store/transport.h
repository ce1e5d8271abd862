// How a store talks to other stores. The implementation is PeerTransport (src/transport); tests
// use an in-process one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/strong_id.h"
#include "micedb/raft.pb.h"
#include "micedb/store.pb.h"
#include "storage/engine.h"

namespace micedb::store {

// One file of a snapshot: the column family its keys belong to and where it lies.
struct SnapshotFile {
  storage::Cf cf;
  std::string path;
};

// The data a snapshot message needs beside it: the region's keys in every data column family
// as of one engine snapshot, for the transport to stream without knowing how they are read.
struct SnapshotSource {
  // Writes the snapshot's files into `dir` (created if absent) and returns them in the order to
  // send, which numbers the files of a column family 0, 1, ... at the receiver; an empty column
  // family may have no file. Errors: IoError. Called at most once, off the raft loop (on a
  // transport thread). The closure owns what it reads (the engine snapshot); the transport
  // destroys it once the files are written, releasing that view before it streams them.
  std::function<Result<std::vector<SnapshotFile>>(const std::string& dir)> export_files;
};

// Where a snapshot's file number `n` of column family `cf` is staged inside `dir`: the layout
// of the directory the transport fills from a received snapshot and the store installs from.
std::string SnapshotFilePath(const std::string& dir, storage::Cf cf, uint32_t n);

// A received snapshot's files, durable in `dir` (SnapshotStager, store/snapshot_stage.h):
// every file the sender sent, with its length and CRC32C. A column family without a file here
// is empty in the snapshot; a listed file that is missing or damaged makes the install fail.
struct StagedSnapshot {
  std::string dir;
  std::vector<SnapshotFileMeta> files;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Queues a raft message for node m.to(). Never blocks; may drop (raft retransmits). Thread-safe.
  virtual void Send(raft::Message m) = 0;
  // Queues several messages (any destinations) in order. Same contract as Send; an
  // implementation may wake its sender once per destination instead of once per message.
  virtual void SendBatch(std::vector<raft::Message> msgs) {
    for (auto& m : msgs) Send(std::move(m));
  }
  // Streams the region's data to m.to(), then delivers m (a MSG_SNAP). The outcome is reported
  // back through the store's ReportSnapshot. Thread-safe.
  virtual void SendSnapshot(raft::Message m, SnapshotSource source) = 0;
  // Where node `id` listens; later calls replace the address. Thread-safe.
  virtual void SetAddress(NodeId id, const std::string& addr) = 0;
};

}  // namespace micedb::store
