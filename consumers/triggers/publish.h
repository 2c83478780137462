#pragma once
// The action of a publishing trigger: its derived event (contracts/publish_template.h)
// made from the matching event a delivery carries, and published to Kafka.
#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/webhook.h"
#include "contracts/catalog.h"
#include "kafka/producer.h"

namespace sluice::triggers {

// The body a publishing trigger's delivery carries: the matching envelope as protobuf
// JSON (what the derived event is made from when it is attempted).
absl::StatusOr<std::string> PublishBody(const v1::Envelope& e);

// Makes `d`'s derived event and waits at most `wait` for the broker's acknowledgement,
// reported as a webhook's answer would be: `published`; an event that cannot be made (a
// placeholder that finds nothing, a value its type refuses) or that the producer refuses
// is `permanent` (not tried again); a broker that did not acknowledge in time leaves it
// retryable (the same id next time). The error names the reason in at most 300 characters.
WebhookResult PublishDerived(kafka::Producer& producer, const contracts::Catalog& catalog, const ClaimedDelivery& d,
                             absl::Duration wait);

}  // namespace sluice::triggers
