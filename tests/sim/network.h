// Network: who can currently reach whom in the simulated cluster. Links are one-way, so a
// partition can be symmetric (both directions cut) or one-way. Latency, loss and duplication
// are decided per message by the cluster; this class only holds the partitions.
#pragma once

#include <string>
#include <vector>

#include "common/strong_id.h"

namespace micedb::sim {

class Network {
 public:
  // Nodes are 1..nodes; all links start up.
  explicit Network(int nodes);

  bool Connected(NodeId from, NodeId to) const;
  bool healed() const;

  // Restores every link.
  void Heal();
  // Cuts the link from -> to only.
  void Cut(NodeId from, NodeId to);
  // Cuts every link between a node in `side_a` and one outside it, both ways.
  void Split(const std::vector<NodeId>& side_a);
  // Cuts n's incoming links (it still talks) and/or its outgoing links (it still hears).
  void Isolate(NodeId n, bool incoming, bool outgoing);
  // Leaves only links between ring neighbours (i and i±1 mod n): every node sees a majority of
  // a 3-node ring but, with 5 nodes, no node reaches everyone.
  void Ring();

  // The cut links, e.g. "1->2 2->1", or "healed".
  std::string Describe() const;

 private:
  int nodes_;
  std::vector<bool> cut_;  // cut_[(from - 1) * nodes_ + (to - 1)]
};

}  // namespace micedb::sim
