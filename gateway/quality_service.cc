#include "gateway/quality_service.h"

#include <google/protobuf/util/time_util.h>

#include <charconv>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/governance.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"
#include "gateway/list_request.h"
#include "gateway/request_fields.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using common::PgConnection;
using common::PgResult;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

// A timestamp column as microseconds since the epoch, bound back the same way.
std::string Micros(std::string_view col) { return Cat("(extract(epoch FROM ", col, ") * 1000000)::bigint"); }
constexpr char kFromMicros[] = "('epoch'::timestamptz + $%d::bigint * interval '1 microsecond')";
std::string AtMicros(int param) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), kFromMicros, param);
  return buf;
}

// Profiles with their entry's tier now. Only metadata entities are profiled.
const std::string kProfileSelect =
    Cat("SELECT p.id::text, p.tenant_id, p.entity_type, p.entity_id::text, p.canonical_key, coalesce(m.tier, ''),"
        " p.binding_schema, p.binding_table, p.row_count, p.completeness, p.uniqueness, p.validity, p.quality_score,"
        " p.quality_grade, p.duration_ms, p.method, p.job_id::text, ",
        Micros("p.profiled_at"),
        ", p.details::text"
        " FROM mdm_profile p LEFT JOIN mdm_global_metadata m ON m.tenant_id = p.tenant_id AND m.id = p.entity_id ");

v1::QualityGrade GradeFromDb(std::string_view g) {
  if (g == "A") return v1::QUALITY_GRADE_A;
  if (g == "B") return v1::QUALITY_GRADE_B;
  if (g == "C") return v1::QUALITY_GRADE_C;
  if (g == "D") return v1::QUALITY_GRADE_D;
  if (g == "F") return v1::QUALITY_GRADE_F;
  return v1::QUALITY_GRADE_UNSPECIFIED;
}

absl::StatusOr<v1::QualityProfile> ToProfile(const PgResult& r, int i) {
  v1::QualityProfile p;
  p.set_id(std::string(r.Get(i, 0)));
  p.set_tenant_id(std::string(r.Get(i, 1)));
  p.set_entity_type(contracts::EntityTypeFromDb(r.Get(i, 2)));
  p.set_entity_id(std::string(r.Get(i, 3)));
  p.set_canonical_key(std::string(r.Get(i, 4)));
  p.set_tier(contracts::TierFromDb(r.Get(i, 5)));
  p.set_binding_schema(std::string(r.Get(i, 6)));
  p.set_binding_table(std::string(r.Get(i, 7)));
  p.set_row_count(PgInt(r.Get(i, 8)));
  p.set_completeness(std::stod(std::string(r.Get(i, 9))));
  p.set_uniqueness(std::stod(std::string(r.Get(i, 10))));
  p.set_validity(std::stod(std::string(r.Get(i, 11))));
  p.set_quality_score(std::stod(std::string(r.Get(i, 12))));
  p.set_quality_grade(GradeFromDb(r.Get(i, 13)));
  p.set_duration_ms(PgInt(r.Get(i, 14)));
  p.set_method(std::string(r.Get(i, 15)));
  p.set_job_id(std::string(r.Get(i, 16)));
  *p.mutable_profiled_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 17)));
  if (auto s = contracts::FromJson(r.Get(i, 18), *p.mutable_details()); !s.ok())
    return absl::DataLossError(Cat("profile ", p.id(), ": stored details are not a JSON object"));
  return p;
}

// The tenant's metadata entity named by `ref`; NotFound when it has none.
absl::StatusOr<std::string> ResolveEntity(PgConnection& c, const std::string& tenant, const v1::EntityRef& ref,
                                          std::string_view field) {
  const bool by_id = !ref.entity_id().empty(), by_key = !ref.canonical_key().empty();
  if (by_id == by_key) return Invalid(field, "name the entity by entity_id or by canonical_key (exactly one)");
  if (by_id && !contracts::IsUuid(ref.entity_id())) return Invalid(Cat(field, ".entity_id"), "not a UUID");
  if (by_key && ref.canonical_key().size() > QualityServiceImpl::kMaxCanonicalKeyBytes)
    return Invalid(Cat(field, ".canonical_key"),
                   Cat("longer than ", QualityServiceImpl::kMaxCanonicalKeyBytes, " bytes"));
  auto r = by_id ? c.Exec("SELECT id::text FROM mdm_global_metadata WHERE tenant_id = $1 AND id = $2::uuid",
                          {tenant, ref.entity_id()})
                 : c.Exec("SELECT id::text FROM mdm_global_metadata WHERE tenant_id = $1 AND canonical_key = $2",
                          {tenant, ref.canonical_key()});
  if (!r.ok()) return r.status();
  if (r->rows() == 0)
    return absl::NotFoundError(
        Cat(field, ": tenant ", tenant, " has no metadata entry ", by_id ? ref.entity_id() : ref.canonical_key()));
  return std::string(r->Get(0, 0));
}

// "<profiled_at micros>.<profile id>" of the last profile of a page.
std::string EncodeCursor(const v1::QualityProfile& p) {
  return Cat(TimeUtil::TimestampToMicroseconds(p.profiled_at()), ".", p.id());
}
absl::Status DecodeCursor(const std::string& cursor, std::string* micros, std::string* id) {
  constexpr int64_t kMaxMicros = 253402300799999999;  // 9999-12-31T23:59:59.999999Z
  const auto dot = cursor.find('.');
  int64_t at = -1;
  if (dot == std::string::npos || dot == 0) return Invalid("cursor", "not a cursor from this API");
  const auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + dot, at);
  if (ec != std::errc() || end != cursor.data() + dot || at < 0 || at > kMaxMicros)
    return Invalid("cursor", "not a cursor from this API");
  *micros = Cat(at);
  *id = cursor.substr(dot + 1);
  if (!contracts::IsUuid(*id)) return Invalid("cursor", "not a cursor from this API");
  return absl::OkStatus();
}

google::protobuf::Timestamp TimestampOrUnset(const PgResult& r, int i, int col, bool* set) {
  *set = !r.IsNull(i, col);
  return *set ? TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, col))) : google::protobuf::Timestamp();
}

}  // namespace

std::string QualityServiceImpl::DescribeErrorCode(std::string_view code) {
  if (code.empty()) return "";
  if (code == "TABLE_NOT_FOUND") return "the bound table does not exist (or the profiler may not see it)";
  if (code == "COLUMN_NOT_FOUND") return "a column rule names a column the bound table does not have";
  if (code == "INVALID_RULE") return "a column rule is malformed or does not apply to its column's values";
  if (code == "INVALID_BINDING") return "the binding is not a usable schema and table name";
  if (code == "BINDING_NOT_ALLOWED") return "the binding is outside the profiler's allow-list for this tenant";
  if (code == "NO_BINDING") return "the entity has no physical binding";
  if (code == "ENTITY_NOT_FOUND") return "the entity was deleted";
  if (code == "PERMISSION_DENIED") return "the profiler's database role may not read the bound table";
  if (code == "STATEMENT_TIMEOUT") return "the scan ran past the profiler's statement timeout";
  if (code == "DATABASE_UNAVAILABLE") return "the database holding the bound table was unavailable";
  if (code == "ATTEMPTS_EXHAUSTED") return "every attempt was used; the last one's worker stopped renewing its lease";
  return "the profile failed; the profiler's log has the details";
}

template <class Body>
absl::Status QualityServiceImpl::Run(const v1::Principal& who, const std::string& tenant, Body&& body) const {
  if (tenant.empty()) return Invalid("tenant_id", "required");
  if (tenant.size() > contracts::kMaxTenantIdLength)
    return Invalid("tenant_id", Cat("longer than ", contracts::kMaxTenantIdLength, " bytes"));
  if (auto s = authz_.MayActFor(who, tenant); !s.ok()) return s;
  if (pool_ == nullptr) return absl::FailedPreconditionError("QualityService: this gateway has no --pg-dsn");
  auto lease = pool_->Lease();
  if (!lease.ok()) return lease.status();
  absl::Status s = body(**lease);
  lease->Note(s);
  return s;
}

template <class Core>
grpc::Status QualityServiceImpl::Call(grpc::ServerContext* ctx, Core&& core) const {
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  // A database error reaches the caller as its SQLSTATE only (ToGrpcStatus).
  return ToGrpcStatus(core(**who));
}

absl::Status QualityServiceImpl::Latest(const v1::Principal& who, const v1::GetLatestProfileRequest* req,
                                        v1::GetLatestProfileResponse* resp) const {
  return Run(who, req->tenant_id(), [&](PgConnection& c) -> absl::Status {
    auto entity = ResolveEntity(c, req->tenant_id(), req->entity(), "entity");
    if (!entity.ok()) return entity.status();
    auto r = c.Exec(Cat(kProfileSelect,
                        "WHERE p.tenant_id = $1 AND p.entity_type = 'metadata' AND p.entity_id = $2::uuid"
                        " ORDER BY p.profiled_at DESC, p.id DESC LIMIT 1"),
                    {req->tenant_id(), *entity});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return absl::NotFoundError(Cat("entity: ", *entity, " has no successful profile yet"));
    auto p = ToProfile(*r, 0);
    if (!p.ok()) return p.status();
    *resp->mutable_profile() = *std::move(p);
    return absl::OkStatus();
  });
}

absl::Status QualityServiceImpl::Profiles(const v1::Principal& who, const v1::ListProfilesRequest* req,
                                          v1::ListProfilesResponse* resp) const {
  if (req->limit() < 0 || req->limit() > kMaxPage)
    return Invalid("limit", Cat("must be 0 (", kDefaultPage, ") to ", kMaxPage));
  const int limit = req->limit() == 0 ? kDefaultPage : req->limit();
  if (auto s = CheckTimeRange(req->has_from_time() ? &req->from_time() : nullptr,
                              req->has_to_time() ? &req->to_time() : nullptr, "from_time", "to_time");
      !s.ok())
    return s;
  std::string cursor_micros, cursor_id;
  if (!req->cursor().empty())
    if (auto s = DecodeCursor(req->cursor(), &cursor_micros, &cursor_id); !s.ok()) return s;
  return Run(who, req->tenant_id(), [&](PgConnection& c) -> absl::Status {
    std::vector<std::optional<std::string>> params{req->tenant_id()};
    std::string where = "WHERE p.tenant_id = $1";
    if (req->has_entity()) {
      auto entity = ResolveEntity(c, req->tenant_id(), req->entity(), "entity");
      if (!entity.ok()) return entity.status();
      params.push_back(*entity);
      where += Cat(" AND p.entity_type = 'metadata' AND p.entity_id = $", params.size(), "::uuid");
    }
    if (req->has_from_time()) {
      params.push_back(Cat(TimeUtil::TimestampToMicroseconds(req->from_time())));
      where += Cat(" AND p.profiled_at >= ", AtMicros(static_cast<int>(params.size())));
    }
    if (req->has_to_time()) {
      params.push_back(Cat(TimeUtil::TimestampToMicroseconds(req->to_time())));
      where += Cat(" AND p.profiled_at <= ", AtMicros(static_cast<int>(params.size())));
    }
    if (!cursor_id.empty()) {
      params.push_back(cursor_micros);
      const std::string at = AtMicros(static_cast<int>(params.size()));
      params.push_back(cursor_id);
      where += Cat(" AND (p.profiled_at, p.id) < (", at, ", $", params.size(), "::uuid)");
    }
    params.push_back(Cat(limit + 1));
    auto r = c.Exec(
        Cat(kProfileSelect, where, " ORDER BY p.profiled_at DESC, p.id DESC LIMIT $", params.size(), "::integer"),
        params);
    if (!r.ok()) return r.status();
    const int n = std::min(r->rows(), limit);
    for (int i = 0; i < n; ++i) {
      auto p = ToProfile(*r, i);
      if (!p.ok()) return p.status();
      *resp->add_profiles() = *std::move(p);
    }
    if (r->rows() > limit) {
      resp->set_has_more(true);
      resp->set_next_cursor(EncodeCursor(resp->profiles(n - 1)));
    }
    return absl::OkStatus();
  });
}

absl::Status QualityServiceImpl::Worst(const v1::Principal& who, const v1::ListWorstEntitiesRequest* req,
                                       v1::ListWorstEntitiesResponse* resp) const {
  if (req->limit() < 0 || req->limit() > kMaxWorst)
    return Invalid("limit", Cat("must be 0 (", kDefaultWorst, ") to ", kMaxWorst));
  const int limit = req->limit() == 0 ? kDefaultWorst : req->limit();
  if (!v1::Tier_IsValid(req->tier())) return Invalid("tier", "not a tier");
  const std::string tier = req->tier() == v1::TIER_UNSPECIFIED ? "" : contracts::TierDb(req->tier());
  return Run(who, req->tenant_id(), [&](PgConnection& c) -> absl::Status {
    // Each active entry's latest profile: one lookup in mdm_profile_latest per entry.
    auto r = c.Exec(Cat("SELECT l.* FROM mdm_global_metadata e CROSS JOIN LATERAL (", kProfileSelect,
                        "WHERE p.tenant_id = e.tenant_id AND p.entity_type = 'metadata' AND p.entity_id = e.id"
                        " ORDER BY p.profiled_at DESC, p.id DESC LIMIT 1) l"
                        " WHERE e.tenant_id = $1 AND e.status = 'active' AND ($2 = '' OR e.tier = $2)"
                        " ORDER BY l.quality_score, l.canonical_key, l.id LIMIT $3::integer"),
                    {req->tenant_id(), tier, Cat(limit)});
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      auto p = ToProfile(*r, i);
      if (!p.ok()) return p.status();
      *resp->add_profiles() = *std::move(p);
    }
    return absl::OkStatus();
  });
}

absl::Status QualityServiceImpl::Job(const v1::Principal& who, const v1::GetProfileJobRequest* req,
                                     v1::GetProfileJobResponse* resp) const {
  if (!contracts::IsUuid(req->job_id())) return Invalid("job_id", "not a UUID");
  return Run(who, req->tenant_id(), [&](PgConnection& c) -> absl::Status {
    auto r =
        c.Exec(Cat("SELECT id::text, tenant_id, entity_type, entity_id::text, canonical_key, tier, reason, priority,"
                   " status, trigger_event_id, trigger_type, correlation_id, attempts, max_attempts, ",
                   "CASE WHEN status = 'pending' THEN ", Micros("next_attempt_at"), " END, ",
                   "coalesce(last_error_code, ''), coalesce(profile_id::text, ''), ", Micros("created_at"), ", ",
                   Micros("started_at"), ", ", Micros("finished_at"),
                   " FROM mdm_profile_job WHERE tenant_id = $1 AND id = $2::uuid"),
               {req->tenant_id(), req->job_id()});
    if (!r.ok()) return r.status();
    if (r->rows() == 0)
      return absl::NotFoundError(Cat("job_id: tenant ", req->tenant_id(), " has no job ", req->job_id()));
    v1::ProfileJob& j = *resp->mutable_job();
    j.set_id(std::string(r->Get(0, 0)));
    j.set_tenant_id(std::string(r->Get(0, 1)));
    j.set_entity_type(contracts::EntityTypeFromDb(r->Get(0, 2)));
    j.set_entity_id(std::string(r->Get(0, 3)));
    j.set_canonical_key(std::string(r->Get(0, 4)));
    j.set_tier(contracts::TierFromDb(r->Get(0, 5)));
    v1::ProfileReason reason = v1::PROFILE_REASON_UNSPECIFIED;
    v1::ProfileReason_Parse(std::string(r->Get(0, 6)), &reason);
    j.set_reason(reason);
    v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
    v1::Priority_Parse(std::string(r->Get(0, 7)), &priority);
    j.set_priority(priority);
    j.set_status(std::string(r->Get(0, 8)));
    j.set_trigger_event_id(std::string(r->Get(0, 9)));
    j.set_trigger_type(std::string(r->Get(0, 10)));
    j.set_correlation_id(std::string(r->Get(0, 11)));
    j.set_attempts(static_cast<int32_t>(PgInt(r->Get(0, 12))));
    j.set_max_attempts(static_cast<int32_t>(PgInt(r->Get(0, 13))));
    bool set = false;
    auto next = TimestampOrUnset(*r, 0, 14, &set);
    if (set) *j.mutable_next_attempt_at() = next;
    j.set_last_error_code(std::string(r->Get(0, 15)));
    j.set_last_error(DescribeErrorCode(r->Get(0, 15)));
    j.set_profile_id(std::string(r->Get(0, 16)));
    for (auto [col, field] : {std::pair{17, j.mutable_created_at()}, std::pair{18, j.mutable_started_at()},
                              std::pair{19, j.mutable_finished_at()}}) {
      auto t = TimestampOrUnset(*r, 0, col, &set);
      if (set) *field = t;
    }
    return absl::OkStatus();
  });
}

grpc::Status QualityServiceImpl::GetLatestProfile(grpc::ServerContext* ctx, const v1::GetLatestProfileRequest* req,
                                                  v1::GetLatestProfileResponse* resp) {
  return Call(ctx, [&](const v1::Principal& who) { return Latest(who, req, resp); });
}

grpc::Status QualityServiceImpl::ListProfiles(grpc::ServerContext* ctx, const v1::ListProfilesRequest* req,
                                              v1::ListProfilesResponse* resp) {
  return Call(ctx, [&](const v1::Principal& who) { return Profiles(who, req, resp); });
}

grpc::Status QualityServiceImpl::ListWorstEntities(grpc::ServerContext* ctx, const v1::ListWorstEntitiesRequest* req,
                                                   v1::ListWorstEntitiesResponse* resp) {
  return Call(ctx, [&](const v1::Principal& who) { return Worst(who, req, resp); });
}

grpc::Status QualityServiceImpl::GetProfileJob(grpc::ServerContext* ctx, const v1::GetProfileJobRequest* req,
                                               v1::GetProfileJobResponse* resp) {
  return Call(ctx, [&](const v1::Principal& who) { return Job(who, req, resp); });
}

}  // namespace sluice::gateway
