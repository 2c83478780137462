#include "consumers/kafka_bus.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace sluice::bus {
namespace {

class KafkaSubscription : public Subscription {
 public:
  KafkaSubscription(std::unique_ptr<consumer::Consumer> consumer, consumer::BatchHandler handler)
      : consumer_(std::move(consumer)), handler_(std::move(handler)) {
    thread_ = std::thread([this] {
      if (auto s = consumer_->Run(handler_); !s.ok()) spdlog::error("subscription stopped: {}", std::string(s.message()));
    });
  }
  ~KafkaSubscription() override {
    Stop();
    thread_.join();
    consumer_.reset();  // commits and leaves the group
  }
  void Stop() override { consumer_->Stop(); }

 private:
  std::unique_ptr<consumer::Consumer> consumer_;
  consumer::BatchHandler handler_;
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaBus>> KafkaBus::Create(KafkaBusConfig config, const contracts::Catalog& catalog) {
  config.producer.bootstrap_servers = config.bootstrap_servers;
  config.producer.client_id = config.client_id;
  std::unique_ptr<KafkaBus> bus(new KafkaBus(config, catalog));
  auto p = producer::Producer::Create(config.producer, catalog);
  if (!p.ok()) return p.status();
  bus->producer_ = *std::move(p);
  return bus;
}

absl::StatusOr<std::unique_ptr<Subscription>> KafkaBus::Subscribe(SubscribeOptions options,
                                                                  consumer::BatchHandler handler) {
  auto topics = TopicsFor(catalog_, options.types);
  if (!topics.ok()) return topics.status();
  consumer::ConsumerConfig cc;
  cc.bootstrap_servers = config_.bootstrap_servers;
  cc.client_id = config_.client_id;
  cc.group_id = options.group;
  cc.topics = *std::move(topics);
  cc.types = options.types;
  cc.max_batch = options.max_batch;
  cc.retry_backoff = options.retry_backoff;
  cc.librdkafka = config_.consumer_librdkafka;
  auto c = consumer::Consumer::Create(std::move(cc));
  if (!c.ok()) return c.status();
  return std::make_unique<KafkaSubscription>(*std::move(c), std::move(handler));
}

}  // namespace sluice::bus
