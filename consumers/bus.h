#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <memory>
#include <set>
#include <string>

#include "consumers/record.h"
#include "producers/producer.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::bus {

struct SubscribeOptions {
  // Consumer group; members of one group share the partitions.
  std::string group;
  // Event types to receive; empty means every type. The subscription reads the
  // catalog topics that carry them.
  std::set<std::string> types;
  size_t max_batch = 500;
  absl::Duration retry_backoff = absl::Milliseconds(500);
};

// A running subscription. Destroying it (or Stop) ends delivery after the current
// batch; offsets of handled batches are committed.
class Subscription {
 public:
  virtual ~Subscription() = default;
  virtual void Stop() = 0;
};

// Where services publish and subscribe: KafkaBus in production and integration
// tests, InMemoryBus in unit tests. Both route through the catalog, partition by
// murmur2(tenant_id), validate every envelope and deliver at least once: a batch
// whose handler fails is delivered again.
//
// Implementations are thread-safe.
class Bus {
 public:
  virtual ~Bus() = default;
  // Fills defaults, validates and publishes; `done` runs exactly once.
  virtual void Publish(v1::Envelope envelope, producer::DeliveryCallback done) = 0;
  // Waits until everything published so far is acknowledged or failed.
  virtual absl::Status Flush(absl::Duration timeout) = 0;
  // Starts delivering batches to `handler` on a thread of the subscription's own.
  virtual absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(SubscribeOptions options,
                                                                  consumer::BatchHandler handler) = 0;
  // Publish and wait for the acknowledgement.
  absl::StatusOr<producer::DeliveryReport> PublishSync(v1::Envelope envelope);
};

// Catalog topics that carry `types` (all topics when empty); InvalidArgument naming
// an unknown type.
absl::StatusOr<std::vector<std::string>> TopicsFor(const contracts::Catalog& catalog, const std::set<std::string>& types);

}  // namespace sluice::bus
