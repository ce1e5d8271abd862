// How a store talks to other stores. The gRPC implementation is in src/transport; tests use an
// in-process one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/strong_id.h"
#include "micedb/raft.pb.h"
#include "storage/engine.h"

namespace micedb::store {

// The data a snapshot message needs beside it: the region's keys in every data column family
// as of one engine snapshot.
struct SnapshotSource {
  storage::Engine* engine = nullptr;
  std::shared_ptr<storage::Snapshot> snapshot;  // keeps the engine view alive while sending
  std::string start_key;                        // engine-key range [start_key, end_key)
  std::string end_key;
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
