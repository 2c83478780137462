#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "consumers/bus.h"

namespace sluice::bus {

// A Bus held in memory, for unit tests: topics and partitions from the catalog,
// murmur2(tenant_id) partitioning, CloudEvents headers, per-group committed offsets,
// and redelivery of a batch whose handler failed — without a broker.
//
// Differences from Kafka: Publish completes synchronously on the caller's thread; a
// group has at most one running subscription (it reads every partition).
// Thread-safe. Subscriptions must be destroyed before the bus.
class InMemoryBus : public Bus {
 public:
  explicit InMemoryBus(const contracts::Catalog& catalog = contracts::Catalog::Default());
  ~InMemoryBus() override;

  void Publish(v1::Envelope envelope, producer::DeliveryCallback done) override;
  absl::Status Flush(absl::Duration) override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(SubscribeOptions options,
                                                          consumer::BatchHandler handler) override;

  // Every record stored on a topic, in partition then offset order.
  std::vector<consumer::Record> Records(const std::string& topic) const;
  // Next offset group `group` will read from topic/partition (0 when none committed).
  int64_t Committed(const std::string& group, const std::string& topic, int32_t partition) const;

 private:
  class MemorySubscription;
  using Key = std::tuple<std::string, std::string, int32_t>;  // group, topic, partition

  contracts::Catalog catalog_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::vector<consumer::Record>>> topics_;
  std::map<Key, int64_t> committed_;
  std::set<std::string> active_groups_;
};

}  // namespace sluice::bus
