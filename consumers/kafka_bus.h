#pragma once

#include <memory>
#include <string>

#include "consumers/bus.h"
#include "consumers/consumer.h"
#include "producers/producer.h"

namespace sluice::bus {

struct KafkaBusConfig {
  std::string bootstrap_servers;
  std::string client_id = "sluice";
  producer::ProducerConfig producer;  // bootstrap_servers and client_id are filled in
  // Raw librdkafka settings for the consumers of every subscription.
  std::map<std::string, std::string> consumer_librdkafka;
};

// The Bus over a real Kafka cluster: one idempotent Producer for Publish, and one
// consumer-group member (its own thread) per subscription.
// Thread-safe; subscriptions must be destroyed before the bus.
class KafkaBus : public Bus {
 public:
  static absl::StatusOr<std::unique_ptr<KafkaBus>> Create(
      KafkaBusConfig config, const contracts::Catalog& catalog = contracts::Catalog::Default());

  void Publish(v1::Envelope envelope, producer::DeliveryCallback done) override {
    producer_->Send(std::move(envelope), std::move(done));
  }
  absl::Status Flush(absl::Duration timeout) override { return producer_->Flush(timeout); }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(SubscribeOptions options,
                                                          consumer::BatchHandler handler) override;

 private:
  KafkaBus(KafkaBusConfig config, const contracts::Catalog& catalog) : config_(std::move(config)), catalog_(catalog) {}

  KafkaBusConfig config_;
  contracts::Catalog catalog_;
  std::unique_ptr<producer::Producer> producer_;
};

}  // namespace sluice::bus
