#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <functional>
#include <list>
#include <map>
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
class DedupWindow {
 public:
  using Done = std::function<void(absl::StatusOr<v1::Delivery>)>;
  // Starts the real publish; must call its argument exactly once.
  using Start = std::function<void(Done)>;

  DedupWindow(absl::Duration window, size_t capacity) : window_(window), capacity_(capacity) {}

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
  void EvictLocked(absl::Time now);

  const absl::Duration window_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  std::list<std::string> order_;  // oldest first
};

}  // namespace sluice::gateway
