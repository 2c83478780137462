#include "consumers/triggers/delivery_store.h"

#include <absl/strings/numbers.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "common/strings.h"

namespace sluice::triggers {

using common::Cat;
using common::PgTextArray;

namespace {

int64_t Int(std::string_view s) {
  int64_t v = 0;
  (void)absl::SimpleAtoi(std::string(s), &v);
  return v;
}

std::string Ms(absl::Duration d) { return Cat(absl::ToInt64Milliseconds(d)); }

}  // namespace

const char* OutcomeLabel(Outcome o) {
  switch (o) {
    case Outcome::kDelivered: return "delivered";
    case Outcome::kRetry: return "retry";
    case Outcome::kFailed: return "failed";
  }
  return "failed";
}

Outcome Decide(const WebhookResult& result, int attempt, const DeliveryPolicy& policy) {
  if (result.delivered()) return Outcome::kDelivered;
  if (result.retryable() && attempt < policy.max_attempts) return Outcome::kRetry;
  return Outcome::kFailed;
}

absl::Duration Backoff(int attempt, const DeliveryPolicy& policy, double jitter) {
  const int shift = std::clamp(attempt - 1, 0, 30);
  absl::Duration d = policy.retry_base * std::pow(2.0, shift);
  if (d > policy.retry_max) d = policy.retry_max;
  return d - d * (std::clamp(jitter, 0.0, 1.0) / 5.0);
}

absl::StatusOr<int64_t> Enqueue(common::PgConnection& conn, const std::vector<NewDelivery>& deliveries) {
  if (deliveries.empty()) return 0;
  std::vector<std::string> tenant, trigger, event, type, body;
  std::set<std::pair<std::string, std::string>> triggers;
  for (const auto& d : deliveries) {
    tenant.push_back(d.tenant_id);
    trigger.push_back(d.trigger_id);
    event.push_back(d.event_id);
    type.push_back(d.event_type);
    body.push_back(d.body);
    triggers.emplace(d.tenant_id, d.trigger_id);
  }
  std::vector<std::string> live_tenant, live_trigger;
  for (const auto& [t, id] : triggers) {
    live_tenant.push_back(t);
    live_trigger.push_back(id);
  }
  // Each trigger locked once (a trigger being deleted waits, then deletes what this
  // queued: migration 0021), not a foreign-key check per row.
  auto r = conn.Exec(
      "WITH live AS (SELECT t.tenant_id, t.id FROM event_trigger t"
      "   WHERE (t.tenant_id, t.id) IN (SELECT * FROM unnest($6::text[], $7::uuid[])) AND NOT t.paused"
      "   FOR KEY SHARE)"
      " INSERT INTO trigger_delivery (tenant_id, trigger_id, event_id, event_type, body)"
      " SELECT u.tenant_id, u.trigger_id, u.event_id, u.event_type, u.body"
      " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[])"
      "   AS u(tenant_id, trigger_id, event_id, event_type, body)"
      " JOIN live ON live.tenant_id = u.tenant_id AND live.id = u.trigger_id"
      " ON CONFLICT DO NOTHING",
      {PgTextArray(tenant), PgTextArray(trigger), PgTextArray(event), PgTextArray(type), PgTextArray(body),
       PgTextArray(live_tenant), PgTextArray(live_trigger)});
  if (!r.ok()) return r.status();
  return r->affected();
}

absl::StatusOr<std::vector<ClaimedDelivery>> Claim(common::PgConnection& conn, int limit, const DeliveryPolicy& policy,
                                                   int64_t* interrupted) {
  auto tx = common::PgTransaction::Begin(conn);
  if (!tx.ok()) return tx.status();
  // lease_until still set on a due row: the attempt that set it never recorded an answer.
  auto r = conn.Exec(
      "WITH due AS ("
      "  SELECT d.tenant_id, d.trigger_id, d.event_id, d.lease_until IS NOT NULL AS interrupted"
      "  FROM trigger_delivery d JOIN event_trigger t ON t.tenant_id = d.tenant_id AND t.id = d.trigger_id"
      "  WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND coalesce(d.lease_until < now(), true)"
      "    AND NOT t.paused AND coalesce(t.auto_paused_until <= now(), true)"
      "  ORDER BY d.next_attempt_at LIMIT $1::int FOR UPDATE OF d SKIP LOCKED FOR KEY SHARE OF t SKIP LOCKED)"
      " UPDATE trigger_delivery d SET attempts = d.attempts + 1,"
      "   lease_until = now() + make_interval(secs => (t.webhook_timeout_ms + $2::bigint) / 1000.0)"
      " FROM due, event_trigger t"
      " WHERE d.tenant_id = due.tenant_id AND d.trigger_id = due.trigger_id AND d.event_id = due.event_id"
      "   AND t.tenant_id = d.tenant_id AND t.id = d.trigger_id"
      " RETURNING d.tenant_id, d.trigger_id::text, d.event_id, d.attempts, d.body, t.webhook_url, t.webhook_secret,"
      "   t.webhook_timeout_ms, due.interrupted, t.kind = 'webhook', t.publish_type, t.publish_template",
      {Cat(limit), Ms(policy.lease_slack)});
  if (!r.ok()) return r.status();
  std::vector<ClaimedDelivery> out;
  std::vector<std::string> it_tenant, it_trigger, it_event, it_attempt;
  for (int i = 0; i < r->rows(); ++i) {
    ClaimedDelivery d;
    d.tenant_id = std::string(r->Get(i, 0));
    d.trigger_id = std::string(r->Get(i, 1));
    d.event_id = std::string(r->Get(i, 2));
    d.attempt = static_cast<int>(Int(r->Get(i, 3)));
    d.body = std::string(r->Get(i, 4));
    d.url = std::string(r->Get(i, 5));
    d.secret = std::string(r->Get(i, 6));
    d.timeout = absl::Milliseconds(Int(r->Get(i, 7)));
    d.cloudevent = r->Get(i, 9) == "t";
    d.publish_type = std::string(r->Get(i, 10));
    d.publish_template = std::string(r->Get(i, 11));
    if (r->Get(i, 8) == "t" && d.attempt > 1) {
      it_tenant.push_back(d.tenant_id);
      it_trigger.push_back(d.trigger_id);
      it_event.push_back(d.event_id);
      it_attempt.push_back(Cat(d.attempt - 1));
    }
    out.push_back(std::move(d));
  }
  if (!it_event.empty()) {
    auto rec = conn.Exec(
        "INSERT INTO trigger_delivery_attempt (tenant_id, trigger_id, event_id, attempt, attempted_at, error,"
        " latency_ms, outcome)"
        " SELECT u.tenant_id, u.trigger_id, u.event_id, u.attempt, now(),"
        "   'the delivering process stopped before an answer was recorded', 0, 'interrupted'"
        " FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[]) AS u(tenant_id, trigger_id, event_id, attempt)"
        " ON CONFLICT DO NOTHING",
        {PgTextArray(it_tenant), PgTextArray(it_trigger), PgTextArray(it_event), PgTextArray(it_attempt)});
    if (!rec.ok()) return rec.status();
    if (interrupted) *interrupted += rec->affected();
  }
  if (auto s = tx->Commit(); !s.ok()) return s;
  return out;
}

absl::StatusOr<bool> Record(common::PgConnection& conn, const ClaimedDelivery& d, absl::Time attempted_at,
                            const WebhookResult& result, Outcome outcome, absl::Duration next_in,
                            const DeliveryPolicy& policy) {
  const std::string label = OutcomeLabel(outcome);
  auto tx = common::PgTransaction::Begin(conn);
  if (!tx.ok()) return tx.status();
  auto ins = conn.Exec(
      "INSERT INTO trigger_delivery_attempt (tenant_id, trigger_id, event_id, attempt, attempted_at, status_code,"
      " error, latency_ms, outcome)"
      " VALUES ($1, $2::uuid, $3, $4::int, to_timestamp($5::bigint / 1000000.0), $6::int, $7, $8::int, $9)"
      " ON CONFLICT DO NOTHING",
      {d.tenant_id, d.trigger_id, d.event_id, Cat(d.attempt), Cat(absl::ToUnixMicros(attempted_at)),
       result.status_code > 0 ? std::optional<std::string>(Cat(result.status_code)) : std::nullopt, result.error,
       Cat(std::max<int64_t>(0, absl::ToInt64Milliseconds(result.latency))), label});
  // The trigger was deleted meanwhile (its deliveries went with it).
  if (!ins.ok() && common::SqlState(ins.status()) == "23503") return false;
  if (!ins.ok()) return ins.status();
  // Only while this attempt is still the delivery's latest (a worker whose lease ran out
  // leaves the row to the one that took it over).
  auto upd = conn.Exec(
      "UPDATE trigger_delivery SET lease_until = NULL,"
      " state = CASE $5 WHEN 'delivered' THEN 'delivered' WHEN 'failed' THEN 'failed' ELSE 'pending' END,"
      " next_attempt_at = now() + make_interval(secs => $6::bigint / 1000.0),"
      " finished_at = CASE WHEN $5 IN ('delivered', 'failed') THEN now() END"
      " WHERE tenant_id = $1 AND trigger_id = $2::uuid AND event_id = $3 AND attempts = $4::int",
      {d.tenant_id, d.trigger_id, d.event_id, Cat(d.attempt), label, Ms(next_in)});
  if (!upd.ok()) return upd.status();
  bool paused = false;
  if (outcome != Outcome::kDelivered) {
    // Failures since the window opened, and since the last auto-pause ended.
    auto p = conn.Exec(
        "UPDATE event_trigger t SET auto_paused_until = now() + make_interval(secs => $5::bigint / 1000.0)"
        " WHERE t.tenant_id = $1 AND t.id = $2::uuid AND NOT t.paused"
        "   AND coalesce(t.auto_paused_until <= now(), true)"
        "   AND (SELECT count(*) FROM trigger_delivery_attempt a WHERE a.tenant_id = $1 AND a.trigger_id = $2::uuid"
        "     AND a.outcome IN ('retry', 'failed')"
        "     AND a.attempted_at > greatest(now() - make_interval(secs => $4::bigint / 1000.0),"
        "                                   coalesce(t.auto_paused_until, '-infinity'))) >= $3::int"
        " RETURNING 1",
        {d.tenant_id, d.trigger_id, Cat(policy.pause_after_failures), Ms(policy.failure_window), Ms(policy.cool_off)});
    if (!p.ok()) return p.status();
    paused = p->rows() > 0;
  }
  if (auto s = tx->Commit(); !s.ok()) return s;
  return paused;
}

absl::StatusOr<int64_t> Sweep(common::PgConnection& conn, absl::Duration keep, int batch) {
  int64_t total = 0;
  const std::string statements[] = {
      "DELETE FROM trigger_delivery_attempt WHERE ctid = ANY(ARRAY(SELECT ctid FROM trigger_delivery_attempt"
      " WHERE attempted_at < now() - make_interval(secs => $1::bigint / 1000.0) LIMIT $2::int))",
      "DELETE FROM trigger_delivery WHERE ctid = ANY(ARRAY(SELECT ctid FROM trigger_delivery"
      " WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => $1::bigint / 1000.0)"
      " LIMIT $2::int))",
      // Deliveries whose trigger is gone: left by a trigger deleted without them (by hand, or
      // by a gateway older than migration 0021, which relied on a foreign key). Every
      // delivery queued since was queued while its trigger was locked, so its trigger is
      // visible here unless the trigger's deletion committed. ($1 unused: any age.)
      "DELETE FROM trigger_delivery WHERE ctid = ANY(ARRAY(SELECT d.ctid FROM trigger_delivery d"
      " WHERE $1::bigint IS NOT NULL AND NOT EXISTS (SELECT 1 FROM event_trigger t"
      "   WHERE t.tenant_id = d.tenant_id AND t.id = d.trigger_id) LIMIT $2::int))"};
  for (const auto& sql : statements) {
    for (;;) {
      auto r = conn.Exec(sql, {Ms(keep), Cat(batch)});
      if (!r.ok()) return r.status();
      total += r->affected();
      if (r->affected() < batch) break;
    }
  }
  return total;
}

absl::StatusOr<BacklogStats> Backlog(common::PgConnection& conn) {
  auto r = conn.Exec(
      "SELECT (SELECT count(*) FROM trigger_delivery d JOIN event_trigger t ON t.tenant_id = d.tenant_id AND"
      "   t.id = d.trigger_id WHERE d.state = 'pending'),"
      " (SELECT count(*) FROM trigger_delivery d JOIN event_trigger t ON t.tenant_id = d.tenant_id AND"
      "   t.id = d.trigger_id WHERE d.state = 'pending' AND d.attempts > 0),"
      " (SELECT count(*) FROM event_trigger WHERE paused),"
      " (SELECT count(*) FROM event_trigger WHERE NOT paused AND auto_paused_until > now())");
  if (!r.ok()) return r.status();
  return BacklogStats{Int(r->Get(0, 0)), Int(r->Get(0, 1)), Int(r->Get(0, 2)), Int(r->Get(0, 3))};
}

}  // namespace sluice::triggers
