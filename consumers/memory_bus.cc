#include "consumers/memory_bus.h"

#include <absl/time/clock.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"
#include "producers/kafka_util.h"

namespace sluice::bus {

class InMemoryBus::MemorySubscription : public Subscription {
 public:
  MemorySubscription(InMemoryBus* bus, SubscribeOptions options, std::vector<std::string> topics,
                     consumer::BatchHandler handler)
      : bus_(bus), options_(std::move(options)), topics_(std::move(topics)), handler_(std::move(handler)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~MemorySubscription() override {
    Stop();
    thread_.join();
    std::lock_guard lock(bus_->mu_);
    bus_->active_groups_.erase(options_.group);
  }
  void Stop() override {
    stop_.store(true);
    bus_->cv_.notify_all();
  }

 private:
  void Loop() {
    while (!stop_.load()) {
      std::vector<consumer::Record> batch;
      std::map<Key, int64_t> next;
      {
        std::unique_lock lock(bus_->mu_);
        Collect(batch, next);
        if (next.empty()) {
          bus_->cv_.wait_for(lock, std::chrono::milliseconds(50));
          continue;
        }
      }
      if (!batch.empty()) {
        if (absl::Status s = handler_(batch); !s.ok()) {
          absl::SleepFor(options_.retry_backoff);  // redelivered: offsets unchanged
          continue;
        }
      }
      std::lock_guard lock(bus_->mu_);
      for (const auto& [k, off] : next) bus_->committed_[k] = off;
    }
  }

  // Takes up to max_batch records past the group's committed offsets. Records of other
  // types advance the offsets without reaching the handler, as Kafka's type filter does.
  void Collect(std::vector<consumer::Record>& batch, std::map<Key, int64_t>& next) {
    for (const auto& topic : topics_) {
      auto& parts = bus_->topics_[topic];
      for (int32_t p = 0; p < static_cast<int32_t>(parts.size()); ++p) {
        Key key{options_.group, topic, p};
        int64_t off = bus_->committed_[key];
        while (off < static_cast<int64_t>(parts[p].size()) && batch.size() < options_.max_batch) {
          const consumer::Record& r = parts[p][off++];
          next[key] = off;
          if (options_.types.empty() || options_.types.contains(r.envelope.type())) batch.push_back(r);
        }
      }
    }
  }

  InMemoryBus* bus_;
  SubscribeOptions options_;
  std::vector<std::string> topics_;
  consumer::BatchHandler handler_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

InMemoryBus::InMemoryBus(const contracts::Catalog& catalog) : catalog_(catalog) {
  for (const auto& t : catalog_.topics()) topics_[t.name()].resize(t.partitions());
}

InMemoryBus::~InMemoryBus() = default;

void InMemoryBus::Publish(v1::Envelope envelope, producer::DeliveryCallback done) {
  contracts::FillDefaults(envelope, catalog_);
  if (auto s = contracts::Validate(envelope, catalog_); !s.ok()) return done(s);
  const contracts::Route* route = catalog_.Find(envelope.type());
  consumer::Record r;
  r.topic = route->topic;
  r.key = envelope.tenant_id();
  r.headers = contracts::ToKafkaHeaders(envelope);
  r.value = contracts::SerializeDeterministic(envelope);
  r.timestamp_ms = absl::ToUnixMillis(absl::Now());
  producer::DeliveryReport report;
  {
    std::lock_guard lock(mu_);
    auto& parts = topics_[r.topic];
    r.partition = kafka::PartitionForKey(r.key, static_cast<int32_t>(parts.size()));
    r.offset = static_cast<int64_t>(parts[r.partition].size());
    report = {envelope.id(), r.topic, r.partition, r.offset};
    r.envelope = std::move(envelope);
    parts[r.partition].push_back(std::move(r));
  }
  cv_.notify_all();
  done(report);
}

absl::StatusOr<std::unique_ptr<Subscription>> InMemoryBus::Subscribe(SubscribeOptions options,
                                                                     consumer::BatchHandler handler) {
  if (options.group.empty()) return absl::InvalidArgumentError("group: required");
  if (options.max_batch == 0) return absl::InvalidArgumentError("max_batch: must be positive");
  auto topics = TopicsFor(catalog_, options.types);
  if (!topics.ok()) return topics.status();
  {
    std::lock_guard lock(mu_);
    if (!active_groups_.insert(options.group).second)
      return absl::FailedPreconditionError(common::Cat("group ", options.group, " already has a subscription"));
  }
  return std::make_unique<MemorySubscription>(this, std::move(options), *std::move(topics), std::move(handler));
}

std::vector<consumer::Record> InMemoryBus::Records(const std::string& topic) const {
  std::lock_guard lock(mu_);
  std::vector<consumer::Record> out;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return out;
  for (const auto& part : it->second) out.insert(out.end(), part.begin(), part.end());
  return out;
}

int64_t InMemoryBus::Committed(const std::string& group, const std::string& topic, int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = committed_.find({group, topic, partition});
  return it == committed_.end() ? 0 : it->second;
}

}  // namespace sluice::bus
