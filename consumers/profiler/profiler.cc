#include "consumers/profiler/profiler.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strings.h"
#include "common/tracing.h"
#include "consumers/profiler/job_store.h"
#include "consumers/profiler/lease_heartbeat.h"
#include "contracts/envelope.h"
#include "contracts/governance.h"
#include "contracts/publish_template.h"
#include "outbox/outbox.h"

namespace sluice::profiler {
namespace {

using common::Cat;
using common::PgConnection;
using common::PgResult;
using common::PgTransaction;
using contracts::EntityTypeDb;
using contracts::TierDb;
using contracts::TierFromDb;
using google::protobuf::util::TimeUtil;

constexpr char kDue[] = "metadata.profile.due";
constexpr char kRefreshed[] = "data.refreshed";
constexpr char kApproved[] = "metadata.approved";

bool IsUuidText(std::string_view s) { return contracts::IsUuid(s); }

std::string DefaultWorkerId() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return Cat(host, "-", getpid());
}

// The metadata entry a trigger names, and where its binding points. The catalog table
// is read here; everything on the job tables goes through JobStore.
const std::string kEntityColumnsSql = Cat("SELECT id::text, canonical_key, tier, binding_schema, binding_table, ",
                                          kDefinitionSql, " FROM mdm_global_metadata ");
constexpr char kEntityByUrnSql[] =
    "WHERE tenant_id = $1 AND (entity_urn = $2 OR canonical_key = $2) ORDER BY (entity_urn = $2) IS TRUE DESC LIMIT 1";
constexpr char kEntityByBindingSql[] =
    "WHERE tenant_id = $1 AND binding_schema = $2 AND binding_table = $3 ORDER BY canonical_key LIMIT 1";
constexpr char kEntityByIdSql[] = "WHERE tenant_id = $1 AND id = $2::uuid";
const std::string kBindingSql = Cat("SELECT binding_schema, binding_table, column_rules::text, ", kDefinitionSql,
                                    " FROM mdm_global_metadata WHERE tenant_id = $1 AND id = $2::uuid");

}  // namespace

// The entity fields every outcome payload shares.
template <class Payload>
void SetEntity(const ClaimedJob& job, Payload* p) {
  p->set_entity_type(job.entity_type);
  p->set_entity_id(job.entity_id);
  p->set_canonical_key(job.canonical_key);
  p->set_tier(job.tier);
}

v1::Envelope Profiler::OutcomeEvent(const ClaimedJob& job, const std::string& cause) const {
  v1::Envelope e;
  e.set_id(contracts::NewUuidV7());
  e.set_tenant_id(job.tenant_id);
  e.set_source(config_.source);
  e.set_correlation_id(job.correlation_id);
  e.set_causation_id(cause);
  e.set_traceparent(contracts::ChildTraceparent(job.span));  // a span of its own below the run's
  return e;
}

Profiler::Metrics::Metrics(prometheus::Registry& r)
    : events(prometheus::BuildCounter()
                 .Name("sluice_profiler_events_total")
                 .Help("Trigger events handled, by type and outcome (queued, skipped, duplicate)")
                 .Register(r)),
      skips(prometheus::BuildCounter()
                .Name("sluice_profiler_skips_total")
                .Help("Trigger events that did not lead to a profile run, by reason")
                .Register(r)),
      jobs(prometheus::BuildCounter()
               .Name("sluice_profiler_jobs_total")
               .Help("Profile job runs by outcome (succeeded, failed, retry, lease_lost)")
               .Register(r)),
      duration(prometheus::BuildHistogram()
                   .Name("sluice_profiler_profile_seconds")
                   .Help("Wall time of successful profile scans")
                   .Register(r)
                   .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600})),
      quality_score(prometheus::BuildGauge()
                        .Name("metadata_quality_score")
                        .Help("Latest quality score (0-100) of each profiled entity")
                        .Register(r)),
      runs(prometheus::BuildCounter()
               .Name("metadata_profile_runs_total")
               .Help("Profile runs by status: completed, failed (for good), retry (failed, will run again)")
               .Register(r)),
      run_duration(
          prometheus::BuildHistogram()
              .Name("metadata_profile_duration_seconds")
              .Help("Wall time of completed profile runs, scan and outcome")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600})),
      degraded(prometheus::BuildCounter()
                   .Name("metadata_quality_degraded_total")
                   .Help("data.quality.degraded events emitted (score fell past the threshold)")
                   .Register(r)),
      tier1_compliance(prometheus::BuildGauge()
                           .Name("metadata_tier1_compliance_ratio")
                           .Help("Share of active, bound tier1 entries profiled within the last 7 days")
                           .Register(r)) {}

Profiler::Profiler(ProfilerConfig config, BindingAllowList bindings, prometheus::Registry& registry,
                   const contracts::Catalog& catalog)
    : config_(std::move(config)),
      catalog_(catalog),
      authz_(catalog_),
      bindings_(std::move(bindings)),
      metrics_(registry) {}

Profiler::~Profiler() = default;

absl::StatusOr<std::unique_ptr<Profiler>> Profiler::Create(ProfilerConfig config, prometheus::Registry& registry,
                                                           const contracts::Catalog& catalog) {
  if (config.pg_dsn.empty()) return absl::InvalidArgumentError("pg_dsn: required");
  if (config.source_dsn.empty()) config.source_dsn = config.pg_dsn;
  if (config.worker_id.empty()) config.worker_id = DefaultWorkerId();
  if (config.lease <= absl::ZeroDuration()) return absl::InvalidArgumentError("lease: must be positive");
  if (config.heartbeat <= absl::ZeroDuration() || config.heartbeat >= config.lease)
    return absl::InvalidArgumentError("heartbeat: must be positive and shorter than the lease");
  if (config.max_attempts < 1) return absl::InvalidArgumentError("max_attempts: must be at least 1");
  if (config.profile.weights.completeness < 0 || config.profile.weights.uniqueness < 0 ||
      config.profile.weights.validity < 0 ||
      config.profile.weights.completeness + config.profile.weights.uniqueness + config.profile.weights.validity <= 0)
    return absl::InvalidArgumentError("weights: must be non-negative with a positive sum");
  auto bindings = BindingAllowList::Parse(config.allow_bindings);
  if (!bindings.ok()) return bindings.status();
  std::unique_ptr<Profiler> p(new Profiler(std::move(config), *std::move(bindings), registry, catalog));
  std::lock_guard lock(p->mu_);
  if (auto s = p->EnsureConnected(); !s.ok()) return s;
  auto governance = p->GovernanceSchemas();
  if (!governance.ok()) return governance.status();
  for (const auto& schema : *governance)
    if (auto s = p->bindings_.Protect(schema); !s.ok()) return s;
  return p;
}

absl::StatusOr<std::set<std::string>> Profiler::GovernanceSchemas() {
  std::set<std::string> out;
  // With none configured the tables live in the search_path's first schema: public unless
  // the role or the database sets another (resolved below); both are protected.
  out.insert(config_.pg_schema.empty() ? std::string("public") : config_.pg_schema);
  // Where the governance connection actually finds its tables and would create new ones.
  auto r = meta_->Exec(
      "SELECT current_schema() UNION SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
      " WHERE c.oid IN (to_regclass('mdm_global_metadata'), to_regclass('mdm_profile_job'),"
      "   to_regclass('event_outbox'), to_regclass('event_log'), to_regclass('mdm_approval'))");
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); ++i)
    if (!r->IsNull(i, 0)) out.insert(std::string(r->Get(i, 0)));
  return out;
}

absl::Status Profiler::SourceAuthorized(const v1::Envelope& event) const {
  const contracts::Route* carried = catalog_.FindByPayloadField(contracts::PayloadField(event));
  if (carried != nullptr && carried->type != event.type())
    return absl::PermissionDeniedError(Cat("type: ", event.type(), " carries a ", carried->type, " payload"));
  return authz_.SourceMayEmit(event);
}

absl::Status Profiler::EnsureConnected() {
  auto connect = [&](std::optional<PgConnection>& c, const std::string& dsn, bool governance) -> absl::Status {
    if (c && PQstatus(c->raw()) == CONNECTION_OK) return absl::OkStatus();
    c.reset();
    auto conn = common::Connect(dsn, governance ? config_.pg_schema : "");
    if (!conn.ok()) return conn.status();
    // The source connection only ever reads (each profile is also a READ ONLY
    // transaction); a read-only session keeps it so whatever runs on it.
    if (!governance)
      if (auto s = conn->ExecScript("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"); !s.ok()) return s;
    c.emplace(*std::move(conn));
    return absl::OkStatus();
  };
  if (auto s = connect(meta_, config_.pg_dsn, true); !s.ok()) return s;
  if (auto s = connect(beat_, config_.pg_dsn, true); !s.ok()) return s;
  return connect(source_, config_.source_dsn, false);
}

absl::Status Profiler::HandleBatch(const std::vector<kafka::Record>& batch) {
  std::vector<std::string> queued;
  for (const auto& r : batch) {
    auto out = HandleEvent(r.envelope);
    if (!out.ok()) return out.status();
    if (out->queued) queued.push_back(out->job_id);
  }
  for (const auto& id : queued) {
    auto ran = RunReadyJob(id);
    if (!ran.ok()) return ran.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<TriggerOutcome> Profiler::HandleEvent(const v1::Envelope& event) {
  common::ScopedLogContext log_ctx(event.id(), event.correlation_id(), event.traceparent());
  std::lock_guard lock(mu_);
  if (auto s = EnsureConnected(); !s.ok()) return s;
  auto out = HandleEventLocked(event);
  if (!out.ok()) return out.status();
  // A label from a closed set: the envelope's type is whatever the writer put there.
  const std::string type =
      event.type() == kDue || event.type() == kRefreshed || event.type() == kApproved ? event.type() : "other";
  if (out->duplicate) {
    metrics_.events.Add({{"type", type}, {"outcome", "duplicate"}}).Increment();
    spdlog::info("profiler: {} {} already handled; nothing to do", type, event.id());
  } else if (out->queued) {
    metrics_.events.Add({{"type", type}, {"outcome", "queued"}}).Increment();
    spdlog::info("profiler: {} {} tenant={} queued job {} ({})", type, event.id(), event.tenant_id(), out->job_id,
                 out->detail);
  } else if (out->skip_reason == "source_not_allowed" || out->skip_reason == "binding_not_allowed") {
    metrics_.events.Add({{"type", type}, {"outcome", "skipped"}}).Increment();
    metrics_.skips.Add({{"reason", out->skip_reason}}).Increment();
    spdlog::warn("profiler: {} {} tenant={} source={} refused: {} ({})", event.type(), event.id(), event.tenant_id(),
                 event.source(), out->skip_reason, out->detail);
  } else {
    metrics_.events.Add({{"type", type}, {"outcome", "skipped"}}).Increment();
    metrics_.skips.Add({{"reason", out->skip_reason}}).Increment();
    spdlog::info("profiler: {} {} tenant={} skipped: {} ({})", type, event.id(), event.tenant_id(), out->skip_reason,
                 out->detail);
  }
  return out;
}

absl::StatusOr<TriggerOutcome> Profiler::HandleEventLocked(const v1::Envelope& event) {
  PgConnection& c = *meta_;
  JobStore jobs(c);
  TriggerOutcome out;
  // Decided before anything touches the database: a forged event must not even claim its
  // id in mdm_profile_trigger (the genuine event with that id would then be a duplicate).
  // Not retryable, so the offset is committed like any other skip.
  if (auto s = SourceAuthorized(event); !s.ok()) {
    out.skip_reason = "source_not_allowed";
    out.detail = std::string(s.message());
    return out;
  }
  auto seen = jobs.TriggerSeen(event.tenant_id(), event.id());
  if (!seen.ok()) return seen.status();
  if (*seen) {
    out.duplicate = true;
    return out;
  }

  Trigger trigger;
  v1::EntityType entity_type = v1::ENTITY_TYPE_METADATA;
  std::string entity_id, urn, schema, table, priority = "PRIORITY_NORMAL";
  v1::Actor actor;
  actor.set_actor_id(event.source());
  actor.set_actor_type(v1::ACTOR_TYPE_SYSTEM);
  switch (event.payload_case()) {
    case v1::Envelope::kProfileDue:
      trigger.kind = TriggerKind::kProfileDue;
      trigger.reason = event.profile_due().reason();
      trigger.priority = event.profile_due().priority();
      trigger.derived = event.source() == contracts::kTriggerSource;
      entity_type = event.profile_due().entity_type();
      entity_id = event.profile_due().entity_id();
      priority = v1::Priority_Name(event.profile_due().priority());
      break;
    case v1::Envelope::kDataRefreshed:
      trigger.kind = TriggerKind::kDataRefreshed;
      trigger.reason = v1::PROFILE_REASON_DATA_REFRESH;
      urn = event.data_refreshed().entity_urn();
      schema = event.data_refreshed().service().schema();
      table = event.data_refreshed().service().table();
      trigger.rows_affected = event.data_refreshed().rows_affected();
      if (event.data_refreshed().has_triggered_by()) actor = event.data_refreshed().triggered_by();
      break;
    case v1::Envelope::kMetadataApproved:
      trigger.kind = TriggerKind::kMetadataApproved;
      trigger.reason = v1::PROFILE_REASON_STRUCTURAL_CHANGE;
      entity_id = event.metadata_approved().entity_id();
      priority = "PRIORITY_HIGH";
      if (event.metadata_approved().has_approved_by()) actor = event.metadata_approved().approved_by();
      break;
    default:
      // Not a trigger (the consumer filters by type, so only a mislabelled record gets
      // here): skipped, never retried, so it cannot block its partition.
      out.skip_reason = "not_a_trigger";
      out.detail = Cat("payload ", contracts::PayloadField(event), " is not a profile trigger");
      return out;
  }

  auto tx = PgTransaction::Begin(c);
  if (!tx.ok()) return tx.status();
  // Only metadata entities carry a physical binding.
  EntityFacts facts;
  std::string canonical_key;
  if (entity_type == v1::ENTITY_TYPE_METADATA) {
    absl::StatusOr<PgResult> e = absl::NotFoundError("");
    if (trigger.kind == TriggerKind::kDataRefreshed) {
      e = c.Exec(Cat(kEntityColumnsSql, kEntityByUrnSql), {event.tenant_id(), urn});
      if (e.ok() && e->rows() == 0)
        e = c.Exec(Cat(kEntityColumnsSql, kEntityByBindingSql), {event.tenant_id(), schema, table});
    } else if (IsUuidText(entity_id)) {
      e = c.Exec(Cat(kEntityColumnsSql, kEntityByIdSql), {event.tenant_id(), entity_id});
    }
    if (!e.ok() && !absl::IsNotFound(e.status())) return e.status();
    if (e.ok() && e->rows() > 0) {
      facts.found = true;
      entity_id = std::string(e->Get(0, 0));
      canonical_key = std::string(e->Get(0, 1));
      facts.tier = TierFromDb(e->Get(0, 2));
      facts.bound = !e->IsNull(0, 3) && !e->IsNull(0, 4);
      facts.definition = std::string(e->Get(0, 5));
      // Names only: nothing about the table is looked up, so a refusal tells nothing.
      if (facts.bound)
        if (auto s = bindings_.Check(event.tenant_id(), e->Get(0, 3), e->Get(0, 4)); !s.ok())
          facts.binding_refused = std::string(s.message());
    }
  } else {
    facts.found = true;  // other entity types are never bound; the policy says why it skips
  }

  std::optional<LastProfile> last;
  if (facts.found && facts.bound && facts.binding_refused.empty()) {
    // Serializes decisions and outcomes of one entity, so "last profile" and "job in
    // flight" are read consistently with a job finishing concurrently.
    if (auto s = jobs.LockEntity(event.tenant_id(), entity_id); !s.ok()) return s;
    auto lp = jobs.LatestProfile(event.tenant_id(), v1::ENTITY_TYPE_METADATA, entity_id);
    if (!lp.ok()) return lp.status();
    if (*lp) last = LastProfile{(*lp)->profiled_at, (*lp)->row_count, (*lp)->definition};
  }
  Decision d = Decide(config_.policy, trigger, facts, last, absl::Now());
  out.detail = d.detail;
  std::optional<std::string> job_id;
  if (d.profile) {
    auto job = jobs.Enqueue({.tenant_id = event.tenant_id(),
                             .entity_id = entity_id,
                             .canonical_key = canonical_key,
                             .tier = facts.tier,
                             .reason = trigger.reason,
                             .priority = priority,
                             .trigger_event_id = event.id(),
                             .trigger_type = event.type(),
                             .correlation_id = event.correlation_id().empty() ? event.id() : event.correlation_id(),
                             .actor_id = actor.actor_id().empty() ? event.source() : actor.actor_id(),
                             .actor_type = actor.actor_type(),
                             .max_attempts = config_.max_attempts,
                             .traceparent = event.traceparent()});
    if (!job.ok()) return job.status();
    if (*job) {
      out.queued = true;
      out.job_id = **job;
      job_id = out.job_id;
    } else {
      d.skip_reason = "job_in_flight";
      out.detail = "a job for this entity is already pending or running";
    }
  }
  if (!out.queued) out.skip_reason = d.skip_reason;
  std::optional<std::string> entity_type_db;
  if (entity_type != v1::ENTITY_TYPE_UNSPECIFIED) entity_type_db = EntityTypeDb(entity_type);
  auto recorded =
      jobs.RecordTrigger({.event_id = event.id(),
                          .tenant_id = event.tenant_id(),
                          .event_type = event.type(),
                          .entity_type = entity_type_db,
                          .entity_id = facts.found && IsUuidText(entity_id) ? entity_id : "",
                          .queued = out.queued,
                          .skip_reason = out.queued ? std::nullopt : std::optional<std::string>(out.skip_reason),
                          .detail = out.detail,
                          .job_id = job_id});
  if (!recorded.ok()) return recorded.status();
  if (!*recorded) {  // another worker handled the same event meanwhile: its decision stands
    if (auto s = tx->Rollback(); !s.ok()) return s;
    return TriggerOutcome{.duplicate = true};
  }
  if (auto s = tx->Commit(); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::optional<JobOutcome>> Profiler::RunReadyJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  if (auto s = EnsureConnected(); !s.ok()) return s;
  auto out = RunReadyJobLocked(job_id);
  if (!out.ok()) return out.status();
  if (*out) metrics_.jobs.Add({{"outcome", (*out)->status}}).Increment();
  return out;
}

absl::StatusOr<std::optional<JobOutcome>> Profiler::RunReadyJobLocked(const std::string& job_id) {
  PgConnection& c = *meta_;
  auto claimed = JobStore(c).Claim(job_id, config_.worker_id, config_.lease);
  if (!claimed.ok()) return claimed.status();
  if (!*claimed) return std::optional<JobOutcome>();
  ClaimedJob job = **claimed;
  // The run is a span of the trigger's trace; its outcome events are spans below it.
  job.span = contracts::ChildTraceparent(job.traceparent);
  const absl::Time started = absl::Now();
  auto out = RunClaimed(job);
  if (common::SpansWanted()) {
    if (auto span = common::SpanOf(job.span, job.traceparent, "profile " + job.canonical_key, common::Span::kConsumer,
                                   started, absl::Now())) {
      span->attributes = {{"sluice.job.id", job.id},
                          {"sluice.tenant_id", job.tenant_id},
                          {"sluice.canonical_key", job.canonical_key},
                          {"sluice.trigger.event_id", job.trigger_event_id},
                          {"sluice.job.attempt", Cat(job.attempt)},
                          {"sluice.job.outcome", out.ok() ? out->status : "error"}};
      span->error = !out.ok() || out->status != "succeeded";
      common::ExportSpan(*std::move(span));
    }
  }
  if (!out.ok()) return out.status();
  return std::optional<JobOutcome>(*std::move(out));
}

absl::StatusOr<JobOutcome> Profiler::RunClaimed(const ClaimedJob& job) {
  PgConnection& c = *meta_;
  // The job's log lines carry the event that asked for it.
  common::ScopedLogContext log_ctx(job.trigger_event_id, job.correlation_id, job.traceparent);
  if (job.took_over)
    spdlog::warn("profiler: took over job {} from {} (lease expired), attempt {}", job.id, job.previous_worker,
                 job.attempt);
  else
    spdlog::info("profiler: running job {} ({} {}), attempt {}", job.id, job.tenant_id, job.canonical_key, job.attempt);

  if (job.attempt > job.max_attempts)
    return Fail(job,
                {"ATTEMPTS_EXHAUSTED",
                 Cat(job.max_attempts, " attempts made; the last one's worker stopped renewing its lease"), false});

  auto binding = c.Exec(kBindingSql, {job.tenant_id, job.entity_id});
  if (!binding.ok()) return binding.status();
  if (binding->rows() == 0) return Fail(job, {"ENTITY_NOT_FOUND", "the entity was deleted", false});
  if (binding->IsNull(0, 0) || binding->IsNull(0, 1))
    return Fail(job, {"NO_BINDING", "the entity has no physical binding", false});
  const std::string schema(binding->Get(0, 0)), table(binding->Get(0, 1)), rules(binding->Get(0, 2)),
      definition(binding->Get(0, 3));
  // Again right before the scan: the binding or the allow-list may have changed since the
  // job was queued. Fails before any statement on the source connection.
  if (auto s = bindings_.Check(job.tenant_id, schema, table); !s.ok())
    return Fail(job, {"BINDING_NOT_ALLOWED", std::string(s.message()), false});

  // Renews the lease while the scan runs; if the lease is lost (a stall longer than the
  // lease let another worker take over) it cancels the scan.
  LeaseHeartbeat heartbeat(*beat_, *source_,
                           {.job_id = job.id,
                            .lease_token = job.lease_token,
                            .lease = config_.lease,
                            .interval = config_.heartbeat,
                            .schema = config_.pg_schema});
  ProfileError error;
  auto result = ProfileTable(*source_, schema, table, rules, config_.profile, &error);
  heartbeat.Stop();  // before the outcome, so a loss found meanwhile is seen below
  if (heartbeat.lost()) return JobOutcome{.job_id = job.id, .status = "lease_lost", .attempt = job.attempt};
  if (!result.ok()) {
    spdlog::warn("profiler: job {} failed: {} {}", job.id, error.code, error.message);
    return Fail(job, error);
  }
  metrics_.duration.Observe(absl::ToDoubleSeconds(result->duration));
  auto out = Succeed(job, *result, schema, table, definition);
  if (out.ok()) out->took_over = job.took_over;
  return out;
}

absl::StatusOr<JobOutcome> Profiler::Succeed(const ClaimedJob& job, const ProfileResult& r, const std::string& schema,
                                             const std::string& table, const std::string& definition) {
  PgConnection& c = *meta_;
  JobStore jobs(c);
  auto tx = PgTransaction::Begin(c);
  if (!tx.ok()) return tx.status();
  if (auto s = jobs.LockEntity(job.tenant_id, job.entity_id); !s.ok()) return s;
  auto held = jobs.LockLease(job.id, job.lease_token);
  if (!held.ok()) return held.status();
  if (!*held) {
    spdlog::error("profiler: job {} lost its lease before its outcome was stored; discarding it", job.id);
    if (auto s = tx->Rollback(); !s.ok()) return s;
    return JobOutcome{.job_id = job.id, .status = "lease_lost", .attempt = job.attempt};
  }
  auto prev = jobs.LatestProfile(job.tenant_id, job.entity_type, job.entity_id);
  if (!prev.ok()) return prev.status();
  auto stored = jobs.Complete(job, schema, table, definition, r, r.DetailsJson(config_.profile.weights));
  if (!stored.ok()) return stored.status();
  const std::string& profile_id = *stored;

  std::vector<v1::Envelope> events;
  v1::Envelope done = OutcomeEvent(job, job.trigger_event_id);
  auto* p = done.mutable_profile_completed();
  SetEntity(job, p);
  p->set_profile_id(profile_id);
  p->set_completeness(r.completeness);
  p->set_uniqueness(r.uniqueness);
  p->set_validity(r.validity);
  p->set_quality_score(r.quality_score);
  p->set_quality_grade(r.grade);
  p->set_row_count(r.row_count);
  *p->mutable_duration() = TimeUtil::MillisecondsToDuration(absl::ToInt64Milliseconds(r.duration));
  *p->mutable_triggered_by() = job.actor;
  p->set_method(r.method);
  events.push_back(done);
  if (*prev) {
    const double before = (*prev)->quality_score;
    const double drop = before > 0 ? (before - r.quality_score) / before * 100 : 0;
    if (drop > config_.degradation_threshold_percent) {
      v1::Envelope deg = OutcomeEvent(job, done.id());
      auto* d = deg.mutable_data_quality_degraded();
      SetEntity(job, d);
      d->set_previous_score(before);
      d->set_current_score(r.quality_score);
      d->set_drop_percent(drop);
      v1::QualityGrade pg = GradeFor(before);
      d->set_previous_grade(pg);
      d->set_current_grade(r.grade);
      d->set_previous_profile_id((*prev)->id);
      d->set_profile_id(profile_id);
      events.push_back(deg);
      spdlog::warn("profiler: {} {} quality fell {:.1f}% ({:.1f} -> {:.1f})", job.tenant_id, job.canonical_key, drop,
                   before, r.quality_score);
    }
  }
  if (auto s = outbox::AppendToOutbox(c, events, catalog_); !s.ok()) return s;
  if (auto s = tx->Commit(); !s.ok()) return s;
  outbox::ExportEmitSpans(events, job.span);
  metrics_.quality_score
      .Add({{"tenant_id", job.tenant_id}, {"tier", TierDb(job.tier)}, {"canonical_key", job.canonical_key}})
      .Set(r.quality_score);
  metrics_.runs.Add({{"status", "completed"}}).Increment();
  metrics_.run_duration.Observe(absl::ToDoubleSeconds(r.duration));
  if (events.size() > 1)
    metrics_.degraded
        .Add({{"tenant_id", job.tenant_id}, {"tier", TierDb(job.tier)}, {"canonical_key", job.canonical_key}})
        .Increment();
  spdlog::info("profiler: job {} succeeded: {} {} rows={} score={:.2f} grade={} in {}", job.id, job.tenant_id,
               job.canonical_key, r.row_count, r.quality_score, GradeLetter(r.grade), absl::FormatDuration(r.duration));
  return JobOutcome{.job_id = job.id, .status = "succeeded", .profile_id = profile_id, .attempt = job.attempt};
}

absl::StatusOr<JobOutcome> Profiler::Fail(const ClaimedJob& job, const ProfileError& error) {
  PgConnection& c = *meta_;
  const bool retry = error.retryable && job.attempt < job.max_attempts;
  absl::Duration backoff = config_.retry_backoff;
  for (int i = 1; i < job.attempt && backoff < config_.max_retry_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, config_.max_retry_backoff);
  auto tx = PgTransaction::Begin(c);
  if (!tx.ok()) return tx.status();
  auto held = JobStore(c).Fail(job, error, retry, backoff);
  if (!held.ok()) return held.status();
  if (!*held) {
    if (auto s = tx->Rollback(); !s.ok()) return s;
    return JobOutcome{.job_id = job.id, .status = "lease_lost", .attempt = job.attempt};
  }
  v1::Envelope e = OutcomeEvent(job, job.trigger_event_id);
  auto* f = e.mutable_profile_failed();
  SetEntity(job, f);
  f->set_error_code(error.code);
  f->set_error_message(error.message.substr(0, 1024));
  f->set_retryable(error.retryable);
  f->set_job_id(job.id);
  f->set_attempt(job.attempt);
  *f->mutable_triggered_by() = job.actor;
  std::vector<v1::Envelope> events{e};
  if (auto s = outbox::AppendToOutbox(c, events, catalog_); !s.ok()) return s;
  if (auto s = tx->Commit(); !s.ok()) return s;
  outbox::ExportEmitSpans(events, job.span);
  metrics_.runs.Add({{"status", retry ? "retry" : "failed"}}).Increment();
  if (retry)
    spdlog::warn("profiler: job {} attempt {} failed ({}); retry in {}", job.id, job.attempt, error.code,
                 absl::FormatDuration(backoff));
  else
    spdlog::error("profiler: job {} failed for good after attempt {}: {} {}", job.id, job.attempt, error.code,
                  error.message);
  return JobOutcome{.job_id = job.id, .status = retry ? "retry" : "failed", .attempt = job.attempt};
}

absl::Status Profiler::UpdateComplianceMetrics() {
  std::lock_guard lock(mu_);
  if (auto s = EnsureConnected(); !s.ok()) return s;
  auto counts = JobStore(*meta_).Tier1Compliance();
  if (!counts.ok()) return counts.status();
  for (const auto& n : *counts)
    metrics_.tier1_compliance.Add({{"tenant_id", n.tenant_id}})
        .Set(n.bound_tier1 > 0 ? n.profiled_recently / n.bound_tier1 : 1.0);
  return absl::OkStatus();
}

void Profiler::SweepLoop(const std::atomic<bool>& stop) {
  absl::Time next_compliance = absl::Now();
  while (!stop.load()) {
    if (absl::Now() >= next_compliance) {
      if (auto s = UpdateComplianceMetrics(); !s.ok()) spdlog::warn("profiler: compliance gauge: {}", s.message());
      next_compliance = absl::Now() + config_.compliance_interval;
    }
    auto ran = RunReadyJob();
    if (!ran.ok()) spdlog::warn("profiler: sweep: {}", ran.status().message());
    if (ran.ok() && *ran) continue;  // maybe more are ready
    for (absl::Time until = absl::Now() + config_.sweep_interval; !stop.load() && absl::Now() < until;)
      absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace sluice::profiler
