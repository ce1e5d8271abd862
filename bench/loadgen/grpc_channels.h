// What the two gRPC drivers (etcd, txn) share: channels that really are separate connections,
// and the waits of a run's end.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "driver.h"
#include "stats.h"

namespace micedb::bench {

// `n` channels over `endpoints` round-robin, each connected. Channels are kept apart (a local
// subchannel pool plus a distinct channel argument) so that n channels are n TCP connections.
// Throws std::runtime_error when one cannot connect within 10 s.
inline std::vector<std::shared_ptr<grpc::Channel>> ConnectChannels(
    const std::vector<Endpoint>& endpoints, int n) {
  if (endpoints.empty()) {
    throw std::invalid_argument("no endpoints");
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  channels.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const Endpoint& ep = endpoints[static_cast<size_t>(i) % endpoints.size()];
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("micedb.loadgen.channel", i);
    auto ch = grpc::CreateCustomChannel(ep.str(), grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      throw std::runtime_error("cannot connect to " + ep.str());
    }
    channels.push_back(std::move(ch));
  }
  return channels;
}

// Sleeps until `until_ns` (NowNs's clock) or until done() holds, looking every 5 ms.
template <typename Done>
void SleepUntil(int64_t until_ns, Done&& done) {
  while (NowNs() < until_ns && !done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace micedb::bench
