#include "consumers/triggers/evaluator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/strings.h"
#include "consumers/triggers/publish.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"

namespace sluice::triggers {

absl::StatusOr<EvaluateStats> Evaluate(common::PgConnection& conn, TriggerSet& set, const Notifier& notifier,
                                       const std::vector<kafka::Record>& batch) {
  EvaluateStats out;
  std::vector<Match> candidates;
  const absl::Time now = absl::Now();
  for (size_t i = 0; i < batch.size(); ++i) {
    // The id becomes the Idempotency-Key header: only what Validate accepts (a UUID).
    if (!contracts::IsUuid(batch[i].envelope.id())) {
      spdlog::warn("triggers: a record at {}[{}]@{} skipped: its event id is not a UUID", batch[i].topic,
                   batch[i].partition, batch[i].offset);
      continue;
    }
    const size_t before = candidates.size();
    set.MatchTypeAndSource(batch[i].envelope, i, candidates);
    if (candidates.size() == before) continue;
    // Only events the gateway or the outbox could have written act: within the catalog's
    // bounds, the payload its type's, from one of the type's producers. (Checked only for
    // events some trigger or sink would take, the others cost nothing more.)
    absl::Status valid = contracts::Validate(batch[i].envelope, notifier.authz().catalog(), now);
    if (valid.ok()) valid = notifier.authz().SourceMayEmit(batch[i].envelope);
    if (!valid.ok()) {
      ++out.refused;
      candidates.resize(before);
      spdlog::warn("triggers: event {} at {}[{}]@{} skipped: {}", batch[i].envelope.id(), batch[i].topic,
                   batch[i].partition, batch[i].offset, common::LogSafe(std::string(valid.message()), 300));
    }
  }
  // The payload's JSON only for events some trigger may want.
  std::vector<std::string> payloads(batch.size());
  std::vector<bool> wanted(batch.size(), false);
  for (const auto& m : candidates) wanted[m.event] = true;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!wanted[i]) continue;
    auto p = PayloadJson(batch[i].envelope);
    if (!p.ok()) {
      // An envelope without a payload the catalog knows: no trigger can match it.
      spdlog::warn("triggers: event {} skipped: {}", batch[i].envelope.id(), std::string(p.status().message()));
      continue;
    }
    payloads[i] = *std::move(p);
  }
  std::erase_if(candidates, [&](const Match& m) { return payloads[m.event].empty(); });
  absl::Time t0 = absl::Now();
  PathStats path_stats;
  auto matches = set.EvaluatePaths(conn, candidates, payloads, &path_stats);
  if (!matches.ok()) return matches.status();
  out.in_paths = absl::Now() - t0;
  out.path_checks = path_stats.in_memory + path_stats.in_postgres;
  out.pg_path_checks = path_stats.in_postgres;
  // Queued a statement per ~8 MiB of bodies, so memory stays near the batch's own size.
  std::vector<NewDelivery> deliveries;
  size_t bytes = 0;
  auto flush = [&]() -> absl::Status {
    const absl::Time e0 = absl::Now();
    auto queued = Enqueue(conn, deliveries);
    out.in_enqueue += absl::Now() - e0;
    if (!queued.ok()) return queued.status();
    out.queued += *queued;
    deliveries.clear();
    bytes = 0;
    return absl::OkStatus();
  };
  // The requesters of the decided approvals some sink is told about, in one statement.
  std::vector<const v1::Envelope*> decisions;
  for (const auto& m : *matches) {
    const auto& e = batch[m.event].envelope;
    const TriggerKind kind = set.triggers()[m.trigger].kind;
    if ((kind == TriggerKind::kNotifyWebhook || kind == TriggerKind::kNotifySlack) &&
        (e.has_approval_approved() || e.has_approval_rejected()))
      decisions.push_back(&e);
  }
  Requesters requesters;
  if (!decisions.empty()) {
    auto r = LookUpRequesters(conn, decisions);
    if (!r.ok()) return r.status();
    requesters = *std::move(r);
  }
  std::vector<bool> hit(batch.size(), false);
  for (const auto& m : *matches) {
    const auto& e = batch[m.event].envelope;
    const TriggerSpec& spec = set.triggers()[m.trigger];
    if (spec.kind == TriggerKind::kWebhook) {
      deliveries.push_back({.tenant_id = e.tenant_id(),
                            .trigger_id = spec.id,
                            .event_id = e.id(),
                            .event_type = e.type(),
                            .body = CloudEventJson(e, payloads[m.event])});
    } else if (spec.kind == TriggerKind::kPublish) {
      auto body = PublishBody(e);
      if (!body.ok()) {
        spdlog::warn("triggers: event {} skipped for trigger {}: {}", e.id(), spec.id,
                     common::LogSafe(std::string(body.status().message()), 300));
        continue;
      }
      deliveries.push_back({.tenant_id = e.tenant_id(),
                            .trigger_id = spec.id,
                            .event_id = e.id(),
                            .event_type = e.type(),
                            .body = *std::move(body)});
    } else if (auto n = NotificationFor(spec, e, notifier, requesters)) {
      deliveries.push_back(*std::move(n));
    } else {
      continue;  // the event does not call for a notification
    }
    hit[m.event] = true;
    bytes += deliveries.back().body.size();
    if (bytes >= TriggerSet::kStatementBytes)
      if (auto s = flush(); !s.ok()) return s;
  }
  if (auto s = flush(); !s.ok()) return s;
  out.matched = static_cast<size_t>(std::count(hit.begin(), hit.end(), true));
  out.unmatched = batch.size() - out.refused - out.matched;
  return out;
}

absl::StatusOr<RoundStats> DeliverRound(common::PgConnection& conn, WebhookClient& client, const DeliveryPolicy& policy,
                                        const std::function<double()>& jitter, const AttemptObserver& observe,
                                        const Publisher& publish) {
  RoundStats out;
  auto claimed = Claim(conn, 1, policy, &out.interrupted);
  if (!claimed.ok()) return claimed.status();
  out.claimed = static_cast<int>(claimed->size());
  for (const auto& d : *claimed) {
    const absl::Time at = absl::Now();
    if (d.attempt > policy.max_attempts) {
      // Interrupted attempts used up what was allowed: give up without another POST.
      WebhookResult gave_up{.error = "not attempted: the attempts allowed ran out (the last one was interrupted)"};
      auto paused = Record(conn, d, at, gave_up, Outcome::kFailed, absl::ZeroDuration(), policy);
      if (!paused.ok()) return paused.status();
      if (observe) observe(d, gave_up, Outcome::kFailed, *paused);
      continue;
    }
    WebhookResult result;
    if (d.publishes()) {
      result =
          publish ? publish(d) : WebhookResult{.error = "this process publishes no derived events", .permanent = true};
    } else {
      result = client.Post({.url = d.url,
                            .secret = d.secret,
                            .timeout = d.timeout,
                            .body = d.body,
                            .event_id = d.event_id,
                            .trigger_id = d.trigger_id,
                            .attempt = d.attempt,
                            .content_type = d.cloudevent ? kCloudEventContentType : kJsonContentType},
                           at);
    }
    const Outcome outcome = Decide(result, d.attempt, policy);
    const absl::Duration next =
        outcome == Outcome::kRetry ? Backoff(d.attempt, policy, jitter()) : absl::ZeroDuration();
    auto paused = Record(conn, d, at, result, outcome, next, policy);
    if (!paused.ok()) return paused.status();
    if (observe) observe(d, result, outcome, *paused);
  }
  return out;
}

}  // namespace sluice::triggers
