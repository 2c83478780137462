#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace sluice::gateway {

class StreamSlots;

// One long-lived call counted against the caps; frees its place when destroyed.
// Move-only; must not outlive the StreamSlots it came from.
class StreamSlot {
 public:
  StreamSlot(StreamSlot&& other) noexcept : slots_(other.slots_), principal_(std::move(other.principal_)) {
    other.slots_ = nullptr;
  }
  StreamSlot& operator=(StreamSlot&& other) noexcept;
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  ~StreamSlot();

 private:
  friend class StreamSlots;
  StreamSlot(StreamSlots* slots, std::string principal) : slots_(slots), principal_(std::move(principal)) {}
  StreamSlots* slots_;
  std::string principal_;
};

// Caps the long-lived calls open at once (PublishStream, Subscribe and Replay share one
// count): at most `per_principal` for one principal and `total` for the whole gateway.
// Each such call holds a gRPC thread for its life, and Subscribe and Replay also a Kafka
// reader with librdkafka's own threads, so without a cap a client could drive the
// process to thousands of threads. Thread-safe.
class StreamSlots {
 public:
  StreamSlots(size_t per_principal, size_t total) : per_principal_(per_principal), total_(total) {}

  // A slot for `principal` (its name: unique in the token file), or kResourceExhausted
  // naming the cap that was reached.
  absl::StatusOr<StreamSlot> Acquire(std::string_view principal);

  size_t open() const;
  size_t open(std::string_view principal) const;

 private:
  friend class StreamSlot;
  void Release(const std::string& principal);

  const size_t per_principal_, total_;
  mutable std::mutex mu_;
  size_t open_ = 0;
  std::map<std::string, size_t, std::less<>> by_principal_;  // only principals with open calls
};

}  // namespace sluice::gateway
