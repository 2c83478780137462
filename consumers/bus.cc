#include "consumers/bus.h"

#include <future>

#include "common/strings.h"

namespace sluice::bus {

absl::StatusOr<producer::DeliveryReport> Bus::PublishSync(v1::Envelope envelope) {
  std::promise<absl::StatusOr<producer::DeliveryReport>> promise;
  auto future = promise.get_future();
  Publish(std::move(envelope), [&promise](absl::StatusOr<producer::DeliveryReport> r) { promise.set_value(std::move(r)); });
  return future.get();
}

absl::StatusOr<std::vector<std::string>> TopicsFor(const contracts::Catalog& catalog, const std::set<std::string>& types) {
  std::set<std::string> topics;
  if (types.empty()) {
    for (const auto& t : catalog.topics()) topics.insert(t.name());
  }
  for (const auto& type : types) {
    const contracts::Route* r = catalog.Find(type);
    if (r == nullptr) return absl::InvalidArgumentError(common::Cat("types: unknown event type \"", type, "\""));
    topics.insert(r->topic);
  }
  return std::vector<std::string>(topics.begin(), topics.end());
}

}  // namespace sluice::bus
