#include "gateway/dedup.h"

#include <absl/hash/hash.h>

namespace sluice::gateway {

DedupWindow::DedupWindow(absl::Duration window, size_t capacity)
    : window_(window),
      shard_capacity_(capacity >= kMinShardedCapacity ? (capacity + kShards - 1) / kShards : capacity) {
  const size_t shards = capacity >= kMinShardedCapacity ? kShards : 1;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

void DedupWindow::EvictLocked(Shard& shard, absl::Time now) {
  while (!shard.order.empty()) {
    auto it = shard.entries.find(shard.order.front());
    bool expired = it != shard.entries.end() && it->second->finished && now - it->second->at > window_;
    bool over = shard.entries.size() > shard_capacity_ && it != shard.entries.end() && it->second->finished;
    if (it == shard.entries.end()) {
      shard.order.pop_front();
    } else if (expired || over) {
      shard.entries.erase(it);
      shard.order.pop_front();
    } else {
      break;  // in-flight entries stay until they finish
    }
  }
}

void DedupWindow::Publish(const std::string& id, const Start& start, Done done, absl::Time now) {
  Shard& shard = *shards_[shards_.size() == 1 ? 0 : absl::Hash<std::string>{}(id) % shards_.size()];
  std::shared_ptr<Entry> entry;
  {
    std::unique_lock lock(shard.mu);
    EvictLocked(shard, now);
    auto it = shard.entries.find(id);
    if (it != shard.entries.end()) {
      if (!it->second->finished) {
        it->second->waiters.push_back(std::move(done));
        return;
      }
      v1::Delivery first = it->second->delivery;
      lock.unlock();
      first.set_duplicate(true);
      done(std::move(first));
      return;
    }
    entry = std::make_shared<Entry>();
    entry->at = now;
    shard.order.push_back(id);
    entry->order = std::prev(shard.order.end());
    shard.entries.emplace(id, entry);
  }
  start([&shard, entry, done = std::move(done)](absl::StatusOr<v1::Delivery> result) {
    std::vector<Done> waiters;
    {
      std::lock_guard lock(shard.mu);
      waiters.swap(entry->waiters);
      if (result.ok()) {
        entry->finished = true;
        entry->delivery = *result;
      } else {
        shard.entries.erase(*entry->order);  // a retry may publish again
        shard.order.erase(entry->order);
      }
    }
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

size_t DedupWindow::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mu);
    n += shard->entries.size();
  }
  return n;
}

}  // namespace sluice::gateway
