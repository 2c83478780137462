#pragma once
// trigger_delivery and trigger_delivery_attempt (migration 0018): the durable queue
// between matching an event and delivering it, and the record of every attempt.
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/triggers/webhook.h"

namespace sluice::triggers {

// One match to queue.
struct NewDelivery {
  std::string tenant_id, trigger_id, event_id, event_type, body;
};

// A delivery a worker holds (its lease) for one attempt.
struct ClaimedDelivery {
  std::string tenant_id, trigger_id, event_id, body;
  std::string url, secret;
  absl::Duration timeout;
  int attempt = 1;         // this attempt's number
  bool cloudevent = true;  // a trigger's CloudEvent; false: a sink's notification (plain JSON)
  // A publishing trigger's derived event (then body is the matching envelope as protobuf
  // JSON, and url and secret are empty).
  std::string publish_type, publish_template;
  bool publishes() const { return !publish_type.empty(); }
};

struct DeliveryPolicy {
  int max_attempts = 10;
  absl::Duration retry_base = absl::Seconds(1);
  absl::Duration retry_max = absl::Minutes(5);
  // A trigger with this many failed attempts within `failure_window` pauses itself for
  // `cool_off`.
  int pause_after_failures = 5;
  absl::Duration failure_window = absl::Minutes(5);
  absl::Duration cool_off = absl::Minutes(5);
  // A claimed delivery is attempted again by anyone once its lease (the trigger's timeout
  // plus this) ran out without an answer recorded: its process died mid-delivery.
  absl::Duration lease_slack = absl::Seconds(10);
};

enum class Outcome { kDelivered, kRetry, kFailed };
const char* OutcomeLabel(Outcome o);

// What to do after `result` on attempt `attempt`: delivered; another try (retryable and
// attempts left); or give up.
Outcome Decide(const WebhookResult& result, int attempt, const DeliveryPolicy& policy);

// The wait before attempt `attempt + 1`: retry_base * 2^(attempt-1), at most retry_max,
// less up to a fifth at random (`jitter` in [0, 1)) so retries of many events spread out.
absl::Duration Backoff(int attempt, const DeliveryPolicy& policy, double jitter);

// Queues `deliveries` (a match already queued stays as it is: one delivery per trigger and
// event id). Matches of triggers paused or deleted before the statement are left out; each
// existing, active trigger queued for is locked (FOR KEY SHARE) until the caller's
// transaction ends, so deleting it waits and then deletes what was queued (migration
// 0021). Returns how many were queued.
absl::StatusOr<int64_t> Enqueue(common::PgConnection& conn, const std::vector<NewDelivery>& deliveries);

// Takes up to `limit` due deliveries of active triggers (not paused by a caller, not
// within an auto-pause) under a lease, in due order, counting the attempt. A delivery
// whose previous attempt never recorded an answer (its lease ran out) gets that attempt
// recorded as interrupted. Safe with any number of workers and replicas (SKIP LOCKED).
absl::StatusOr<std::vector<ClaimedDelivery>> Claim(common::PgConnection& conn, int limit, const DeliveryPolicy& policy,
                                                   int64_t* interrupted = nullptr);

// Records the attempt's answer and moves the delivery on: delivered, due again after a
// back-off, or failed. After a failure, pauses the trigger when it reached the policy's
// count within the window (returns true then). A trigger deleted meanwhile is no error.
absl::StatusOr<bool> Record(common::PgConnection& conn, const ClaimedDelivery& d, absl::Time attempted_at,
                            const WebhookResult& result, Outcome outcome, absl::Duration next_in,
                            const DeliveryPolicy& policy);

// Deletes attempts, and finished deliveries, older than `keep`, and deliveries whose
// trigger is gone (whatever their age); at most `batch` rows per statement, until none is
// left. Returns the rows deleted.
absl::StatusOr<int64_t> Sweep(common::PgConnection& conn, absl::Duration keep, int batch = 10000);

struct BacklogStats {
  int64_t pending = 0, retrying = 0, paused = 0, auto_paused = 0;
};
absl::StatusOr<BacklogStats> Backlog(common::PgConnection& conn);

}  // namespace sluice::triggers
