#include "gateway/dedup.h"

namespace sluice::gateway {

void DedupWindow::EvictLocked(absl::Time now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    bool expired = it != entries_.end() && it->second->finished && now - it->second->at > window_;
    bool over = entries_.size() > capacity_ && it != entries_.end() && it->second->finished;
    if (it == entries_.end()) {
      order_.pop_front();
    } else if (expired || over) {
      entries_.erase(it);
      order_.pop_front();
    } else {
      break;  // in-flight entries stay until they finish
    }
  }
}

void DedupWindow::Publish(const std::string& id, const Start& start, Done done, absl::Time now) {
  std::shared_ptr<Entry> entry;
  {
    std::unique_lock lock(mu_);
    EvictLocked(now);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
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
    order_.push_back(id);
    entry->order = std::prev(order_.end());
    entries_[id] = entry;
  }
  start([this, id, entry, done = std::move(done)](absl::StatusOr<v1::Delivery> result) {
    std::vector<Done> waiters;
    {
      std::lock_guard lock(mu_);
      waiters.swap(entry->waiters);
      if (result.ok()) {
        entry->finished = true;
        entry->delivery = *result;
      } else {
        entries_.erase(id);  // a retry may publish again
        order_.erase(entry->order);
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
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace sluice::gateway
