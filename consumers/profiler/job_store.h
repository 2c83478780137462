#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/pg.h"
#include "consumers/profiler/profile.h"
#include "sluice/v1/common.pb.h"

namespace sluice::profiler {

// The definition a profile measures, as SQL over a row of mdm_global_metadata: the hex
// SHA-256 of [binding_schema, binding_table, column_rules] as jsonb text (key order and
// spacing normalized by jsonb). Stored with every profile (mdm_profile.definition_sha256).
inline constexpr char kDefinitionSql[] =
    "encode(sha256(convert_to(jsonb_build_array(binding_schema, binding_table, column_rules)::text, 'UTF8')), 'hex')";

// A job to queue in mdm_profile_job (always a metadata entity: only those are bound).
struct NewJob {
  std::string tenant_id, entity_id, canonical_key;
  v1::Tier tier = v1::TIER_UNSPECIFIED;
  v1::ProfileReason reason = v1::PROFILE_REASON_UNSPECIFIED;
  std::string priority;  // v1::Priority name
  std::string trigger_event_id, trigger_type, correlation_id, actor_id;
  v1::ActorType actor_type = v1::ACTOR_TYPE_SYSTEM;
  int max_attempts = 1;
  std::string traceparent;  // the trigger event's; "" stores NULL
};

// One trigger event's row in mdm_profile_trigger: the decision taken on it.
struct TriggerRecord {
  std::string event_id, tenant_id, event_type;
  std::optional<std::string> entity_type;  // NULL when the event named none
  std::string entity_id;                   // "" stores NULL
  bool queued = false;
  std::optional<std::string> skip_reason;  // when not queued
  std::string detail;
  std::optional<std::string> job_id;  // when queued
};

// A job this worker claimed: the row as the claim left it.
struct ClaimedJob {
  std::string id, tenant_id, entity_id, canonical_key, trigger_event_id, trigger_type, correlation_id, lease_token;
  std::string traceparent;  // the trigger event's; "" when it had none
  std::string span;         // this run's span, a child of traceparent (set when the run starts; not stored)
  v1::EntityType entity_type = v1::ENTITY_TYPE_UNSPECIFIED;
  v1::Tier tier = v1::TIER_UNSPECIFIED;
  v1::Actor actor;
  int attempt = 0, max_attempts = 1;
  bool took_over = false;  // it was running under another worker whose lease had expired
  std::string previous_worker;
};

// An entity's most recent mdm_profile row.
struct StoredProfile {
  std::string id;
  absl::Time profiled_at;
  int64_t row_count = 0;
  double quality_score = 0;
  std::string definition;  // definition_sha256; "" when stored before it was recorded
};

// metadata_tier1_compliance_ratio's inputs for one tenant.
struct ComplianceCount {
  std::string tenant_id;
  double bound_tier1 = 0;        // active, bound tier1 entries
  double profiled_recently = 0;  // of those, profiled in the last 7 days
};

// The profiler's job table protocol over mdm_profile_job, mdm_profile_trigger and
// mdm_profile: every statement the profiler runs on them, by name. Each method is one or
// two statements on the connection as it is; the caller owns the transaction (the ones
// that only make sense inside one say so). A lease is (job id, lease_token): a claim
// draws a new token, so every write fenced by the token fails for a worker that lost it.
//
// Lifetime: refers to `conn`, which must outlive it; cheap to construct per use.
// Thread-safety: none beyond the connection's (one thread at a time).
class JobStore {
 public:
  explicit JobStore(common::PgConnection& conn) : conn_(conn) {}

  // Whether the trigger event was recorded already (a redelivery or a duplicate).
  absl::StatusOr<bool> TriggerSeen(const std::string& tenant_id, const std::string& event_id);
  // Inside a transaction: serializes the decisions and outcomes of one metadata entity
  // until the transaction ends, so "last profile" and "job in flight" are read
  // consistently with a job finishing concurrently.
  absl::Status LockEntity(const std::string& tenant_id, const std::string& entity_id);
  // The entity's most recent profile; nullopt when it was never profiled.
  absl::StatusOr<std::optional<StoredProfile>> LatestProfile(const std::string& tenant_id, v1::EntityType entity_type,
                                                             const std::string& entity_id);
  // Queues a pending job; nullopt (nothing written) when one for the entity is already
  // pending or running. Returns the new job's id.
  absl::StatusOr<std::optional<std::string>> Enqueue(const NewJob& job);
  // Records the decision on a trigger event; false (nothing written) when another worker
  // recorded the same event first: its decision stands.
  absl::StatusOr<bool> RecordTrigger(const TriggerRecord& record);

  // Claims one ready job (`job_id`, or any when empty): pending and due, or running with
  // an expired lease (its worker stopped renewing it), taken-over jobs first, then by
  // priority. Sets running, `worker`, a new lease token expiring after `lease`, and
  // counts the attempt. nullopt when none is ready or every ready one is being claimed.
  absl::StatusOr<std::optional<ClaimedJob>> Claim(const std::string& job_id, const std::string& worker,
                                                  absl::Duration lease);
  // Renews the lease to now + `lease`; false when it is no longer held (taken over, or
  // the job finished).
  absl::StatusOr<bool> ExtendLease(const std::string& job_id, const std::string& lease_token, absl::Duration lease);
  // Inside a transaction: locks the job row if the lease is still held, so nobody can
  // take it over before the transaction ends; false when it is no longer held.
  absl::StatusOr<bool> LockLease(const std::string& job_id, const std::string& lease_token);
  // Stores the profile of `job` (bound to schema.table, of the definition digest
  // `definition`) and marks the job succeeded,
  // releasing its lease. Call after LockLease in the same transaction. Returns the
  // profile's id.
  absl::StatusOr<std::string> Complete(const ClaimedJob& job, const std::string& schema, const std::string& table,
                                       const std::string& definition, const ProfileResult& result,
                                       const std::string& details_json);
  // Records a failed attempt: back to pending, due after `backoff`, when `retry`; else
  // failed for good. Releases the lease; false (nothing written) when it was no longer
  // held.
  absl::StatusOr<bool> Fail(const ClaimedJob& job, const ProfileError& error, bool retry, absl::Duration backoff);

  // Per tenant: active, bound tier1 entries, and those profiled in the last 7 days.
  absl::StatusOr<std::vector<ComplianceCount>> Tier1Compliance();

 private:
  common::PgConnection& conn_;
};

}  // namespace sluice::profiler
