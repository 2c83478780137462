#pragma once
// The two halves of sluice-triggers as library calls, so the service and the benchmark
// run the same code: Evaluate (a consumed batch -> queued deliveries) and DeliverRound
// (due deliveries -> POSTs -> recorded attempts).
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <functional>
#include <vector>

#include "common/pg.h"
#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/notify.h"
#include "consumers/triggers/trigger_set.h"
#include "consumers/triggers/webhook.h"
#include "kafka/record.h"

namespace sluice::triggers {

struct EvaluateStats {
  size_t matched = 0;                   // events that matched at least one trigger
  size_t unmatched = 0;                 // events that matched none
  size_t refused = 0;                   // events some trigger would take, refused by Validate or SourceMayEmit
  int64_t queued = 0;                   // deliveries queued (new ones; a redelivered batch queues none)
  size_t path_checks = 0;               // (event, trigger) pairs whose JSONPath was evaluated
  size_t pg_path_checks = 0;            // of which PostgreSQL evaluated (the rest: in memory)
  absl::Duration in_paths, in_enqueue;  // time in those two steps
};

// Matches every event of `batch` against `set` (the caller refreshes it) and
// queues a delivery per match: a trigger's with its CloudEvent body (a publishing
// trigger's with the event as protobuf JSON, PublishBody), a notification
// sink's with its notification (when the event calls for one). An event that fails
// contracts::Validate or Authorizer::SourceMayEmit (written around the gateway and the
// outbox) matches nothing. An error leaves nothing committed that matters: the batch is
// handled again and queues only what is missing.
absl::StatusOr<EvaluateStats> Evaluate(common::PgConnection& conn, TriggerSet& set, const Notifier& notifier,
                                       const std::vector<kafka::Record>& batch);

struct RoundStats {
  int claimed = 0;
  int64_t interrupted = 0;  // earlier attempts found cut short (recorded now)
};

// What a round reports for each attempt it made (for logs and metrics).
using AttemptObserver = std::function<void(const ClaimedDelivery&, const WebhookResult&, Outcome, bool trigger_paused)>;

// Makes and publishes a publishing trigger's derived event (PublishDerived).
using Publisher = std::function<WebhookResult(const ClaimedDelivery&)>;

// One round of a delivery worker: claims the most overdue delivery, POSTs it (or, for a
// publishing trigger, hands it to `publish`; without one it fails) and records its
// attempt (and pauses its trigger when it failed too often). One at a time, so a
// delivery's lease starts just before its POST. `jitter` gives numbers in [0, 1) for the
// back-off. A failed record is an error; the lease makes the attempt happen again later.
// A delivery whose last allowed attempt was cut short is given up without a POST.
absl::StatusOr<RoundStats> DeliverRound(common::PgConnection& conn, WebhookClient& client, const DeliveryPolicy& policy,
                                        const std::function<double()>& jitter, const AttemptObserver& observe,
                                        const Publisher& publish = nullptr);

}  // namespace sluice::triggers
