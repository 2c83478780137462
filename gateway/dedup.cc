#include "gateway/dedup.h"

#include <absl/hash/hash.h>

#include <cstdint>

namespace sluice::gateway {

DedupWindow::DedupWindow(absl::Duration window, size_t capacity, size_t (*hash)(std::string_view))
    : hash_(hash),
      window_(window),
      shard_capacity_(capacity >= kMinShardedCapacity ? (capacity + kShards - 1) / kShards : capacity) {
  const size_t shards = capacity >= kMinShardedCapacity ? kShards : 1;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

void DedupWindow::EvictLocked(Shard& shard, absl::Time now) {
  while (!shard.queue.empty()) {
    Entry& oldest = shard.queue.front();
    if (oldest.state == Entry::State::kInFlight) break;  // in-flight entries stay until they finish
    if (oldest.state == Entry::State::kDone) {
      // The queue's length, not the index's: failed entries wait in the queue too (until
      // they reach its front), and must not pile up behind a young one during an outage.
      if (now - absl::FromUnixNanos(oldest.at_ns) <= window_ && shard.queue.size() <= shard_capacity_) break;
      if (oldest.indexed) shard.index.erase(oldest.hash);
    }
    shard.queue.pop_front();  // a failed entry left the index when it failed
    ++shard.front_seq;
  }
}

void DedupWindow::Publish(const std::string& id, Start start, Done done, absl::Time now) {
  const size_t hash = hash_ != nullptr ? hash_(id) : absl::Hash<std::string_view>{}(id);
  // The shard from the hash's top bits: the table inside it takes its slot and its tag
  // from the low ones, which would otherwise be the same for every id of a shard.
  Shard& shard = *shards_[shards_.size() == 1 ? 0 : (hash >> 56) % shards_.size()];
  uint64_t seq;
  {
    std::unique_lock lock(shard.mu);
    EvictLocked(shard, now);
    auto [it, added] = shard.index.try_emplace(hash, shard.front_seq + shard.queue.size());
    if (!added) {
      Entry& first = shard.queue[it->second - shard.front_seq];
      if (first.id() == id) {
        if (first.state == Entry::State::kInFlight) {
          first.rare_fields().waiters.push_back(std::move(done));
          return;
        }
        v1::Delivery d = Recall(first);
        lock.unlock();
        d.set_duplicate(true);
        done(std::move(d));
        return;
      }
    }
    seq = shard.front_seq + shard.queue.size();
    Entry& entry = shard.queue.emplace_back();
    if (id.size() <= Entry::kInlineId) {
      entry.id_len = static_cast<uint8_t>(id.size());
      id.copy(entry.inline_id, id.size());
    } else {
      entry.id_len = Entry::kInlineId + 1;
      entry.rare_fields().long_id = id;
    }
    entry.hash = hash;
    entry.indexed = added;
    entry.at_ns = absl::ToUnixNanos(now);
  }
  // The entry stays in the queue while in flight, so `seq` still names it here.
  start([&shard, seq, done = std::move(done)](absl::StatusOr<v1::Delivery> result) {
    std::vector<Done> waiters;
    {
      std::lock_guard lock(shard.mu);
      Entry& entry = shard.queue[seq - shard.front_seq];
      if (entry.rare != nullptr) waiters.swap(entry.rare->waiters);
      if (result.ok()) {
        entry.state = Entry::State::kDone;
        Remember(shard, entry, *result);
      } else {
        entry.state = Entry::State::kFailed;  // a retry may publish again
        if (entry.indexed) shard.index.erase(entry.hash);
        entry.indexed = false;
      }
    }
    if (waiters.empty()) return done(std::move(result));
    done(result);
    for (auto& w : waiters) {
      if (!result.ok()) {
        w(result.status());
        continue;
      }
      v1::Delivery d = *result;
      d.set_duplicate(true);
      w(std::move(d));
    }
  });
}

void DedupWindow::Remember(Shard& shard, Entry& entry, const v1::Delivery& d) {
  auto topic = shard.topics.find(d.topic());
  if (topic == shard.topics.end()) topic = shard.topics.insert(d.topic()).first;
  entry.topic = &*topic;
  entry.partition = d.partition();
  entry.offset = d.offset();
  if (!d.event_id().empty() && d.event_id().size() <= UINT8_MAX && entry.id().ends_with(d.event_id())) {
    entry.event_id_suffix = static_cast<uint8_t>(d.event_id().size());
  } else {
    entry.event_id_suffix = 0;
    entry.rare_fields().other_event_id = d.event_id();
  }
}

v1::Delivery DedupWindow::Recall(const Entry& entry) {
  v1::Delivery d;
  const std::string_view id = entry.id();
  if (entry.event_id_suffix > 0) {
    d.set_event_id(std::string(id.substr(id.size() - entry.event_id_suffix)));
  } else {
    d.set_event_id(entry.rare->other_event_id);
  }
  d.set_topic(*entry.topic);
  d.set_partition(entry.partition);
  d.set_offset(entry.offset);
  return d;
}

size_t DedupWindow::Count(size_t (*of)(const Shard&)) const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu);
    n += of(*shard);
  }
  return n;
}

size_t DedupWindow::held() const {
  return Count([](const Shard& s) { return s.queue.size(); });
}

size_t DedupWindow::size() const {
  return Count([](const Shard& s) { return s.index.size(); });
}

}  // namespace sluice::gateway
