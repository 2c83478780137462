#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sluice/v1/gateway.pb.h"

namespace sluice::gateway {

// Remembers the delivery of every event id published in the last `window` (at most
// `capacity` ids; the oldest are forgotten first). A second publish of a remembered id
// gets the first delivery, marked duplicate, without writing again; a publish of an id
// still in flight waits for the first one's outcome. Failed publishes are forgotten, so
// a retry writes. Thread-safe.
//
// Every event of the gateway passes through here, from every gRPC thread and the
// producer's delivery thread, so the ids are spread over kShards independent shards (a
// hash table and a lock each) once the capacity is large enough to split: one lock was a
// quarter of a batched publish's CPU time, most of it waiting. Each shard keeps its share
// of the capacity, so "oldest first" holds per shard.
class DedupWindow {
 public:
  using Done = std::function<void(absl::StatusOr<v1::Delivery>)>;
  // Starts the real publish; must call its argument exactly once.
  using Start = std::function<void(Done)>;

  static constexpr size_t kShards = 16;
  // Below this capacity one shard keeps the oldest-first order exact.
  static constexpr size_t kMinShardedCapacity = 4096;

  DedupWindow(absl::Duration window, size_t capacity);

  // Publishes `id` through `start` unless it is remembered or in flight; `done` runs
  // exactly once (on this thread for a remembered id, else on the publisher's thread).
  void Publish(const std::string& id, const Start& start, Done done, absl::Time now = absl::Now());

  size_t size() const;

 private:
  struct Entry {
    absl::Time at;
    bool finished = false;
    v1::Delivery delivery;
    std::vector<Done> waiters;
    std::list<std::string>::iterator order;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<Entry>> entries;
    std::list<std::string> order;  // oldest first
  };
  void EvictLocked(Shard& shard, absl::Time now);

  const absl::Duration window_;
  const size_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::gateway
