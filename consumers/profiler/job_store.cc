#include "consumers/profiler/job_store.h"

#include <fmt/format.h>

#include "common/strings.h"
#include "contracts/governance.h"

namespace sluice::profiler {
namespace {

using common::Cat;
using contracts::EntityTypeDb;
using contracts::EntityTypeFromDb;
using contracts::TierDb;
using contracts::TierFromDb;

constexpr char kTriggerSeenSql[] = "SELECT 1 FROM mdm_profile_trigger WHERE tenant_id = $1 AND event_id = $2";

// The same key in decisions and outcomes of the entity.
constexpr char kLockEntitySql[] = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";

constexpr char kLatestProfileSql[] =
    "SELECT id::text, extract(epoch FROM profiled_at)::float8, row_count, quality_score,"
    "  coalesce(definition_sha256, '') FROM mdm_profile"
    " WHERE tenant_id = $1 AND entity_type = $2 AND entity_id = $3::uuid ORDER BY profiled_at DESC LIMIT 1";

// The partial unique index allows one pending or running job per entity.
constexpr char kEnqueueSql[] =
    "INSERT INTO mdm_profile_job (tenant_id, entity_type, entity_id, canonical_key, tier, reason, priority,"
    "  trigger_event_id, trigger_type, correlation_id, actor_id, actor_type, max_attempts, traceparent)"
    " VALUES ($1, 'metadata', $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::integer, nullif($13, ''))"
    " ON CONFLICT (tenant_id, entity_type, entity_id) WHERE status IN ('pending', 'running') DO NOTHING"
    " RETURNING id::text";

constexpr char kRecordTriggerSql[] =
    "INSERT INTO mdm_profile_trigger (event_id, tenant_id, event_type, entity_type, entity_id, decision, skip_reason,"
    "  detail, job_id)"
    " VALUES ($1, $2, $3, $4, CASE WHEN $5 = '' THEN NULL ELSE $5::uuid END, $6, $7, $8, $9::uuid)"
    " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING 1";

// Also finds the stuck jobs: running with an expired lease. SKIP LOCKED lets concurrent
// workers claim different jobs instead of queueing behind one row.
constexpr char kClaimSql[] =
    "WITH ready AS ("
    "  SELECT id, status AS was, worker_id AS prev_worker FROM mdm_profile_job"
    "  WHERE ((status = 'pending' AND next_attempt_at <= now()) OR (status = 'running' AND lease_expires_at < now()))"
    "    AND ($1 = '' OR id = nullif($1, '')::uuid)"
    "  ORDER BY (status = 'running') DESC,"
    "    CASE priority WHEN 'PRIORITY_CRITICAL' THEN 0 WHEN 'PRIORITY_HIGH' THEN 1 ELSE 2 END, next_attempt_at"
    "  LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " UPDATE mdm_profile_job j SET status = 'running', worker_id = $2, lease_token = gen_random_uuid(),"
    "   attempts = j.attempts + 1, started_at = now(), heartbeat_at = now(), lease_expires_at = now() + $3::interval"
    " FROM ready WHERE j.id = ready.id"
    " RETURNING j.id::text, j.tenant_id, j.entity_type, j.entity_id::text, j.canonical_key, j.tier,"
    "   j.trigger_event_id, j.trigger_type, j.correlation_id, j.actor_id, j.actor_type, j.attempts, j.max_attempts,"
    "   j.lease_token::text, ready.was, coalesce(ready.prev_worker, ''), coalesce(j.traceparent, '')";

constexpr char kExtendLeaseSql[] =
    "UPDATE mdm_profile_job SET heartbeat_at = now(), lease_expires_at = now() + $3::interval"
    " WHERE id = $1::uuid AND lease_token = $2::uuid AND status = 'running'";

constexpr char kLockLeaseSql[] =
    "SELECT 1 FROM mdm_profile_job WHERE id = $1::uuid AND lease_token = $2::uuid AND status = 'running' FOR UPDATE";

constexpr char kInsertProfileSql[] =
    "INSERT INTO mdm_profile (tenant_id, entity_type, entity_id, canonical_key, job_id, binding_schema, binding_table,"
    "  row_count, completeness, uniqueness, validity, quality_score, quality_grade, duration_ms, method, details,"
    "  definition_sha256)"
    " VALUES ($1, $2, $3::uuid, $4, $5::uuid, $6, $7, $8::bigint, $9::float8, $10::float8, $11::float8, $12::float8,"
    "  $13, $14::bigint, $15, $16::jsonb, $17)"
    " RETURNING id::text";

constexpr char kCompleteSql[] =
    "UPDATE mdm_profile_job SET status = 'succeeded', finished_at = now(), profile_id = $2::uuid, lease_token = NULL,"
    " lease_expires_at = NULL WHERE id = $1::uuid";

constexpr char kFailSql[] =
    "UPDATE mdm_profile_job SET status = $3, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL,"
    "  last_error_code = $4, last_error = $5, next_attempt_at = now() + $6::interval,"
    "  finished_at = CASE WHEN $3 = 'failed' THEN now() END"
    " WHERE id = $1::uuid AND lease_token = $2::uuid AND status = 'running'";

constexpr char kTier1ComplianceSql[] =
    "SELECT m.tenant_id, count(*)::float8, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM mdm_profile p"
    "   WHERE p.tenant_id = m.tenant_id AND p.entity_type = $1 AND p.entity_id = m.id"
    "   AND p.profiled_at > now() - interval '7 days'))::float8"
    " FROM mdm_global_metadata m WHERE m.tier = 'tier1' AND m.status = 'active' AND m.binding_table IS NOT NULL"
    " GROUP BY m.tenant_id";

// An interval literal PostgreSQL parses ("2.5 seconds").
std::string Interval(absl::Duration d) { return Cat(absl::ToDoubleSeconds(d), " seconds"); }

// Full precision, so the stored score reads back as the computed double.
std::string Float(double v) { return fmt::format("{:.17g}", v); }

}  // namespace

absl::StatusOr<bool> JobStore::TriggerSeen(const std::string& tenant_id, const std::string& event_id) {
  auto r = conn_.Exec(kTriggerSeenSql, {tenant_id, event_id});
  if (!r.ok()) return r.status();
  return r->rows() > 0;
}

absl::Status JobStore::LockEntity(const std::string& tenant_id, const std::string& entity_id) {
  return conn_.Exec(kLockEntitySql, {Cat(tenant_id, "/metadata/", entity_id)}).status();
}

absl::StatusOr<std::optional<StoredProfile>> JobStore::LatestProfile(const std::string& tenant_id,
                                                                     v1::EntityType entity_type,
                                                                     const std::string& entity_id) {
  auto r = conn_.Exec(kLatestProfileSql, {tenant_id, EntityTypeDb(entity_type), entity_id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<StoredProfile>();
  return StoredProfile{
      .id = std::string(r->Get(0, 0)),
      .profiled_at = absl::FromUnixMicros(static_cast<int64_t>(std::stod(std::string(r->Get(0, 1))) * 1e6)),
      .row_count = std::stoll(std::string(r->Get(0, 2))),
      .quality_score = std::stod(std::string(r->Get(0, 3))),
      .definition = std::string(r->Get(0, 4))};
}

absl::StatusOr<std::optional<std::string>> JobStore::Enqueue(const NewJob& job) {
  auto r = conn_.Exec(kEnqueueSql, {job.tenant_id, job.entity_id, job.canonical_key, TierDb(job.tier),
                                    v1::ProfileReason_Name(job.reason), job.priority, job.trigger_event_id,
                                    job.trigger_type, job.correlation_id, job.actor_id,
                                    v1::ActorType_Name(job.actor_type), Cat(job.max_attempts), job.traceparent});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<std::string>();
  return std::optional<std::string>(std::string(r->Get(0, 0)));
}

absl::StatusOr<bool> JobStore::RecordTrigger(const TriggerRecord& t) {
  auto r = conn_.Exec(kRecordTriggerSql, {t.event_id, t.tenant_id, t.event_type, t.entity_type, t.entity_id,
                                          t.queued ? "queued" : "skipped", t.skip_reason, t.detail, t.job_id});
  if (!r.ok()) return r.status();
  return r->rows() > 0;
}

absl::StatusOr<std::optional<ClaimedJob>> JobStore::Claim(const std::string& job_id, const std::string& worker,
                                                          absl::Duration lease) {
  auto r = conn_.Exec(kClaimSql, {job_id, worker, Interval(lease)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return std::optional<ClaimedJob>();
  ClaimedJob job;
  job.id = r->Get(0, 0);
  job.tenant_id = r->Get(0, 1);
  job.entity_type = EntityTypeFromDb(r->Get(0, 2));
  job.entity_id = r->Get(0, 3);
  job.canonical_key = r->Get(0, 4);
  job.tier = TierFromDb(r->Get(0, 5));
  job.trigger_event_id = r->Get(0, 6);
  job.trigger_type = r->Get(0, 7);
  job.correlation_id = r->Get(0, 8);
  job.actor.set_actor_id(std::string(r->Get(0, 9)));
  v1::ActorType at = v1::ACTOR_TYPE_SYSTEM;
  v1::ActorType_Parse(std::string(r->Get(0, 10)), &at);
  job.actor.set_actor_type(at == v1::ACTOR_TYPE_UNSPECIFIED ? v1::ACTOR_TYPE_SYSTEM : at);
  job.attempt = std::stoi(std::string(r->Get(0, 11)));
  job.max_attempts = std::stoi(std::string(r->Get(0, 12)));
  job.lease_token = r->Get(0, 13);
  job.took_over = r->Get(0, 14) == "running";
  job.previous_worker = r->Get(0, 15);
  job.traceparent = r->Get(0, 16);
  return std::optional<ClaimedJob>(std::move(job));
}

absl::StatusOr<bool> JobStore::ExtendLease(const std::string& job_id, const std::string& lease_token,
                                           absl::Duration lease) {
  auto r = conn_.Exec(kExtendLeaseSql, {job_id, lease_token, Interval(lease)});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

absl::StatusOr<bool> JobStore::LockLease(const std::string& job_id, const std::string& lease_token) {
  auto r = conn_.Exec(kLockLeaseSql, {job_id, lease_token});
  if (!r.ok()) return r.status();
  return r->rows() > 0;
}

absl::StatusOr<std::string> JobStore::Complete(const ClaimedJob& job, const std::string& schema,
                                               const std::string& table, const std::string& definition,
                                               const ProfileResult& p, const std::string& details_json) {
  auto ins = conn_.Exec(
      kInsertProfileSql,
      {job.tenant_id, EntityTypeDb(job.entity_type), job.entity_id, job.canonical_key, job.id, schema, table,
       Cat(p.row_count), Float(p.completeness), Float(p.uniqueness), Float(p.validity), Float(p.quality_score),
       GradeLetter(p.grade), Cat(absl::ToInt64Milliseconds(p.duration)), p.method, details_json, definition});
  if (!ins.ok()) return ins.status();
  std::string profile_id(ins->Get(0, 0));
  if (auto upd = conn_.Exec(kCompleteSql, {job.id, profile_id}); !upd.ok()) return upd.status();
  return profile_id;
}

absl::StatusOr<bool> JobStore::Fail(const ClaimedJob& job, const ProfileError& error, bool retry,
                                    absl::Duration backoff) {
  auto r = conn_.Exec(
      kFailSql, {job.id, job.lease_token, retry ? "pending" : "failed", error.code, error.message, Interval(backoff)});
  if (!r.ok()) return r.status();
  return r->affected() > 0;
}

absl::StatusOr<std::vector<ComplianceCount>> JobStore::Tier1Compliance() {
  auto r = conn_.Exec(kTier1ComplianceSql, {EntityTypeDb(v1::ENTITY_TYPE_METADATA)});
  if (!r.ok()) return r.status();
  std::vector<ComplianceCount> out;
  for (int i = 0; i < r->rows(); ++i)
    out.push_back({.tenant_id = std::string(r->Get(i, 0)),
                   .bound_tier1 = std::stod(std::string(r->Get(i, 1))),
                   .profiled_recently = std::stod(std::string(r->Get(i, 2)))});
  return out;
}

}  // namespace sluice::profiler
