#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/functional/function_ref.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
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
//
// A full window holds `capacity` ids, far more than fit in a CPU cache, and every publish
// both adds one and forgets the oldest, so what costs is memory touched, not instructions.
// A shard therefore keeps its entries in one queue in publish order (a deque: appended at
// the back, forgotten from the front, each entry in place for its whole life), and its
// index maps the 64-bit hash of an id to the entry's sequence number: 16 bytes a slot,
// so the index stays in cache, and forgetting the oldest reads only the queue's front.
// The entry's own id decides a match, so two ids with the same hash are never taken for
// one another; the later of two such ids is published without a place in the index (it
// is not deduplicated: with 64-bit hashes, about one publish in 10^15 when the window is full).
class DedupWindow {
 public:
  using Done = std::function<void(absl::StatusOr<v1::Delivery>)>;
  // Starts the real publish; must call its argument exactly once. Called before Publish
  // returns (a reference to the caller's function: nothing is copied or allocated for it).
  using Start = absl::FunctionRef<void(Done)>;

  static constexpr size_t kShards = 16;
  // Below this capacity one shard keeps the oldest-first order exact.
  static constexpr size_t kMinShardedCapacity = 4096;

  // `hash` replaces the hash of the ids (tests make two ids collide with it).
  DedupWindow(absl::Duration window, size_t capacity, size_t (*hash)(std::string_view) = nullptr);

  // Publishes `id` through `start` unless it is remembered or in flight; `done` runs
  // exactly once (on this thread for a remembered id, else on the publisher's thread).
  void Publish(const std::string& id, Start start, Done done, absl::Time now = absl::Now());

  // Ids remembered.
  size_t size() const;
  // Entries held, remembered or not (in flight, failed, or sharing a hash): the memory.
  size_t held() const;

 private:
  // Two cache lines: every publish writes one entry and forgets another, so an entry's
  // size is most of the window's cost (224 bytes before the rare fields moved out).
  struct alignas(64) Entry {
    enum class State : uint8_t { kInFlight, kDone, kFailed };
    // What few entries need, allocated only for them.
    struct Rare {
      std::string long_id;         // an id longer than kInlineId
      std::string other_event_id;  // kDone: an event id that is not the id's suffix
      std::vector<Done> waiters;   // kInFlight: publishes of the same id waiting for it
    };
    static constexpr size_t kInlineId = 80;
    std::string_view id() const {
      return id_len <= kInlineId ? std::string_view(inline_id, id_len) : std::string_view(rare->long_id);
    }
    Rare& rare_fields() {
      if (rare == nullptr) rare = std::make_unique<Rare>();
      return *rare;
    }
    size_t hash;    // of id
    int64_t at_ns;  // publish time, Unix nanoseconds
    // kDone: the first publication. Its event id is the id's last `event_id_suffix`
    // characters (as the gateway's are), else rare->other_event_id; the topic is one of
    // the shard's `topics`. Nothing is allocated here by the producer's delivery thread
    // and freed by a publishing thread (but the Rare part for an event id that is not the
    // id's suffix): those frees across threads cost more than the rest of the window.
    const std::string* topic = nullptr;
    int64_t offset = 0;
    int32_t partition = 0;
    State state = State::kInFlight;
    bool indexed;             // the index holds this entry under `hash`
    uint8_t id_len;           // <= kInlineId: the id is in place; more: in rare->long_id
    uint8_t event_id_suffix;  // 0: rare->other_event_id
    std::unique_ptr<Rare> rare;
    // The id in place when short (the gateway's "tenant/event id" nearly always is), so an
    // entry allocates nothing of its own.
    char inline_id[kInlineId];
  };
  static_assert(sizeof(Entry) == 128, "an entry is two cache lines");
  struct Shard {
    mutable std::mutex mu;
    std::deque<Entry> queue;  // publish order, oldest first; entry seq is front_seq + its position
    uint64_t front_seq = 0;
    // The entries still remembered (in flight or done; not failed ones): id hash -> seq.
    absl::flat_hash_map<size_t, uint64_t> index;
    // The topics of the deliveries remembered (the catalog's: a handful), each once.
    std::set<std::string, std::less<>> topics;
  };
  static void Remember(Shard& shard, Entry& entry, const v1::Delivery& d);
  static v1::Delivery Recall(const Entry& entry);
  void EvictLocked(Shard& shard, absl::Time now);
  // The sum of `of` over the shards, each under its lock.
  size_t Count(size_t (*of)(const Shard&)) const;

  size_t (*const hash_)(std::string_view);
  const absl::Duration window_;
  const size_t shard_capacity_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace sluice::gateway
