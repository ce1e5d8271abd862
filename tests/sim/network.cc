#include "tests/sim/network.h"

#include <algorithm>

#include <fmt/format.h>

namespace micedb::sim {

Network::Network(int nodes) : nodes_(nodes), cut_(static_cast<size_t>(nodes * nodes), false) {}

bool Network::Connected(NodeId from, NodeId to) const {
  if (from == to) return true;
  return !cut_[(from.value() - 1) * nodes_ + (to.value() - 1)];
}

bool Network::healed() const {
  return std::none_of(cut_.begin(), cut_.end(), [](bool b) { return b; });
}

void Network::Heal() { std::fill(cut_.begin(), cut_.end(), false); }

void Network::Cut(NodeId from, NodeId to) {
  if (from != to) cut_[(from.value() - 1) * nodes_ + (to.value() - 1)] = true;
}

void Network::Split(const std::vector<NodeId>& side_a) {
  auto in_a = [&](int id) {
    return std::find(side_a.begin(), side_a.end(), NodeId(id)) != side_a.end();
  };
  for (int a = 1; a <= nodes_; ++a) {
    for (int b = 1; b <= nodes_; ++b) {
      if (in_a(a) != in_a(b)) Cut(NodeId(a), NodeId(b));
    }
  }
}

void Network::Isolate(NodeId n, bool incoming, bool outgoing) {
  for (int o = 1; o <= nodes_; ++o) {
    if (incoming) Cut(NodeId(o), n);
    if (outgoing) Cut(n, NodeId(o));
  }
}

void Network::Ring() {
  for (int a = 1; a <= nodes_; ++a) {
    for (int b = 1; b <= nodes_; ++b) {
      int d = (a - b + nodes_) % nodes_;
      if (d != 0 && d != 1 && d != nodes_ - 1) Cut(NodeId(a), NodeId(b));
    }
  }
}

std::string Network::Describe() const {
  std::string out;
  for (int a = 1; a <= nodes_; ++a) {
    for (int b = 1; b <= nodes_; ++b) {
      if (!Connected(NodeId(a), NodeId(b))) {
        out += fmt::format("{}{}->{}", out.empty() ? "" : " ", a, b);
      }
    }
  }
  return out.empty() ? "healed" : out;
}

}  // namespace micedb::sim
