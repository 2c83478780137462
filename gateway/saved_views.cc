#include "gateway/saved_views.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/derived.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/list_request.h"
#include "gateway/request_fields.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using common::PgConnection;
using common::PgResult;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

constexpr char kViewCols[] =
    "id::text, tenant_id, owner, name, description, filter::text, shared,"
    " (extract(epoch FROM created_at) * 1000000)::bigint, use_count,"
    " (extract(epoch FROM last_used_at) * 1000000)::bigint";

absl::StatusOr<v1::SavedView> ToView(const PgResult& r, int i) {
  v1::SavedView v;
  v.set_id(std::string(r.Get(i, 0)));
  v.set_tenant_id(std::string(r.Get(i, 1)));
  v.set_owner(std::string(r.Get(i, 2)));
  v.set_name(std::string(r.Get(i, 3)));
  v.set_description(std::string(r.Get(i, 4)));
  if (!contracts::FromJson(r.Get(i, 5), *v.mutable_filter()).ok())
    return absl::DataLossError(Cat("saved view ", v.id(), ": its stored filter does not parse"));
  v.set_visibility(r.Get(i, 6) == "t" ? v1::SAVED_VIEW_VISIBILITY_SHARED : v1::SAVED_VIEW_VISIBILITY_PRIVATE);
  *v.mutable_created_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 7)));
  v.set_use_count(PgInt(r.Get(i, 8)));
  if (!r.IsNull(i, 9)) *v.mutable_last_used_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 9)));
  return v;
}

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return Invalid("id", "required");
  if (!contracts::IsUuid(id)) return Invalid("id", "must be a UUID");
  return absl::OkStatus();
}

// A pooled connection for one call.
template <class T, class Body>
absl::StatusOr<T> WithConnection(common::PgPool& pool, Body&& body) {
  auto lease = pool.Lease();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<T> out = body(**lease);
  lease->Note(out.status());
  return out;
}

}  // namespace

absl::StatusOr<std::string> SavedViews::TenantOf(const contracts::Authorizer& authz, const v1::Principal& who,
                                                 const std::string& requested) {
  if (requested.empty()) {
    if (who.tenants_size() == 1 && who.tenants(0) != "*") return who.tenants(0);
    return Invalid("tenant_id", "required for a token of several tenants or of every tenant (*)");
  }
  if (requested.size() > contracts::kMaxTenantIdLength)
    return Invalid("tenant_id", Cat("longer than ", contracts::kMaxTenantIdLength, " bytes"));
  if (auto s = authz.MayActFor(who, requested, "tenant_id"); !s.ok()) return s;
  return requested;
}

absl::Status SavedViews::CheckCreate(const contracts::Catalog& catalog, const contracts::Authorizer& authz,
                                     const v1::Principal& who, const std::string& tenant,
                                     const v1::CreateSavedViewRequest& req) {
  std::vector<contracts::FieldViolation> v;
  auto add = [&v](const std::string& field, std::string_view what) { v.push_back({field, Cat(field, ": ", what)}); };
  CheckNameAndDescription(req.name(), kMaxNameChars, req.description(), kMaxDescriptionChars, v);
  if (!v1::SavedViewVisibility_IsValid(req.visibility())) add("visibility", "not a known visibility");
  const v1::EventFilter& f = req.filter();
  for (int i = 0; i < f.tenant_ids_size(); ++i)
    if (f.tenant_ids(i) != tenant)
      add(Cat("filter.tenant_ids[", i, "]"), Cat("a view of tenant ", tenant, " reads that tenant only"));
  if (f.json_path().size() > kMaxJsonPathBytes)
    add("filter.json_path", Cat("longer than ", kMaxJsonPathBytes, " bytes"));
  else if (HasControlChar(f.json_path(), "\n\t"))
    add("filter.json_path", "has a control character other than newline and tab");
  if (f.correlation_id().size() > kMaxCorrelationIdBytes)
    add("filter.correlation_id", Cat("longer than ", kMaxCorrelationIdBytes, " bytes"));
  else if (HasControlChar(f.correlation_id(), ""))
    add("filter.correlation_id", "has a control character");
  if (f.ByteSizeLong() > kMaxFilterJsonBytes / 2) add("filter", "too large");
  if (!v.empty()) return contracts::InvalidFields(v);
  // Types, sources, severities and the time range as ListEvents checks them.
  v1::ListEventsRequest list;
  *list.mutable_filter() = f;
  list.mutable_filter()->clear_tenant_ids();
  list.mutable_filter()->add_tenant_ids(tenant);
  auto q = CheckListRequest(catalog, authz, who, list);
  return q.ok() ? absl::OkStatus() : q.status();
}

absl::StatusOr<v1::CreateSavedViewResponse> SavedViews::Create(const v1::Principal& who,
                                                               const v1::CreateSavedViewRequest& req) {
  auto tenant = TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = CheckCreate(catalog_, authz_, who, *tenant, req); !s.ok()) return s;
  v1::EventFilter filter = req.filter();
  filter.clear_tenant_ids();
  auto filter_json = contracts::ToJson(filter);
  if (!filter_json.ok()) return filter_json.status();
  if (filter_json->size() > kMaxFilterJsonBytes) return Invalid("filter", "too large");
  const bool shared = req.visibility() == v1::SAVED_VIEW_VISIBILITY_SHARED;
  const std::string id = contracts::NewUuidV7();
  auto created = common::InTransaction<v1::SavedView>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::SavedView> {
    if (!filter.json_path().empty()) {
      if (auto p = c.Exec("SELECT $1::jsonpath", {filter.json_path()}); !p.ok()) {
        if (p.status().code() == absl::StatusCode::kUnavailable) return p.status();
        spdlog::info("gateway: CreateSavedView json_path refused: {}", p.status().message());
        return Invalid("filter.json_path", "not a valid SQL/JSON path expression");
      }
    }
    // One writer per tenant at a time, so the counts below hold until the commit.
    if (auto r = c.Exec("SELECT pg_advisory_xact_lock(hashtext('event_saved_view'), hashtext($1))", {*tenant}); !r.ok())
      return r.status();
    auto counts = c.Exec(
        "SELECT count(*) FILTER (WHERE owner = $2), count(*) FILTER (WHERE shared),"
        " count(*) FILTER (WHERE owner = $2 AND name = $3) FROM event_saved_view WHERE tenant_id = $1",
        {*tenant, who.name(), req.name()});
    if (!counts.ok()) return counts.status();
    if (PgInt(counts->Get(0, 2)) > 0)
      return absl::AlreadyExistsError(Cat("name: you have a view named \"", req.name(), "\" in tenant ", *tenant));
    if (PgInt(counts->Get(0, 0)) >= kMaxOwnPerTenant)
      return absl::ResourceExhaustedError(
          Cat("you have ", kMaxOwnPerTenant, " views in tenant ", *tenant, ", the most one caller may keep"));
    if (shared && PgInt(counts->Get(0, 1)) >= kMaxSharedPerTenant)
      return absl::ResourceExhaustedError(
          Cat("tenant ", *tenant, " has ", kMaxSharedPerTenant, " shared views, the most it may keep"));
    auto r = c.Exec(Cat("INSERT INTO event_saved_view (tenant_id, id, owner, name, description, filter, shared)"
                        " VALUES ($1, $2::uuid, $3, $4, $5, $6::jsonb, $7) RETURNING ",
                        kViewCols),
                    {*tenant, id, who.name(), req.name(), req.description(), *filter_json, shared ? "t" : "f"});
    if (!r.ok()) return r.status();
    return ToView(*r, 0);
  });
  if (!created.ok()) return created.status();
  v1::CreateSavedViewResponse out;
  *out.mutable_view() = *std::move(created);
  // The view is stored: figures that cannot be had now leave `recent` unset, no error.
  if (auto lease = pool_.Lease(); lease.ok()) FillRecent(**lease, who, *out.mutable_view());
  return out;
}

absl::StatusOr<v1::ListSavedViewsResponse> SavedViews::List(const v1::Principal& who,
                                                            const v1::ListSavedViewsRequest& req) {
  auto tenant = TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  return WithConnection<v1::ListSavedViewsResponse>(
      pool_, [&](PgConnection& c) -> absl::StatusOr<v1::ListSavedViewsResponse> {
        auto r = c.Exec(Cat("SELECT ", kViewCols,
                            " FROM event_saved_view WHERE tenant_id = $1 AND (owner = $2 OR shared)"
                            " ORDER BY name, owner, id LIMIT ",
                            kMaxOwnPerTenant + kMaxSharedPerTenant),
                        {*tenant, who.name()});
        if (!r.ok()) return r.status();
        v1::ListSavedViewsResponse out;
        // Counting stops once it has taken kCountBudget: later views come without figures.
        const absl::Time deadline = absl::Now() + kCountBudget;
        for (int i = 0; i < r->rows(); ++i) {
          auto v = ToView(*r, i);
          if (!v.ok()) return v.status();
          if (absl::Now() < deadline) FillRecent(c, who, *v);
          *out.add_views() = *std::move(v);
        }
        return out;
      });
}

absl::StatusOr<v1::UseSavedViewResponse> SavedViews::Use(const v1::Principal& who, const v1::UseSavedViewRequest& req) {
  auto tenant = TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  return WithConnection<v1::UseSavedViewResponse>(
      pool_, [&](PgConnection& c) -> absl::StatusOr<v1::UseSavedViewResponse> {
        auto r = c.Exec(Cat("UPDATE event_saved_view SET use_count = use_count + 1, last_used_at = now()"
                            " WHERE tenant_id = $1 AND id = $2::uuid AND (owner = $3 OR shared) RETURNING ",
                            kViewCols),
                        {*tenant, req.id(), who.name()});
        if (!r.ok()) return r.status();
        if (r->rows() == 0)
          return absl::NotFoundError(Cat("id: no view ", req.id(), " you can see in tenant ", *tenant));
        auto v = ToView(*r, 0);
        if (!v.ok()) return v.status();
        FillRecent(c, who, *v);
        v1::UseSavedViewResponse out;
        *out.mutable_view() = *std::move(v);
        return out;
      });
}

absl::StatusOr<v1::DeleteSavedViewResponse> SavedViews::Delete(const v1::Principal& who,
                                                               const v1::DeleteSavedViewRequest& req) {
  auto tenant = TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  return WithConnection<v1::DeleteSavedViewResponse>(
      pool_, [&](PgConnection& c) -> absl::StatusOr<v1::DeleteSavedViewResponse> {
        auto r =
            c.Exec("DELETE FROM event_saved_view WHERE tenant_id = $1 AND id = $2::uuid AND owner = $3 RETURNING 1",
                   {*tenant, req.id(), who.name()});
        if (!r.ok()) return r.status();
        if (r->rows() == 1) return v1::DeleteSavedViewResponse();
        auto seen = c.Exec("SELECT owner FROM event_saved_view WHERE tenant_id = $1 AND id = $2::uuid AND shared",
                           {*tenant, req.id()});
        if (!seen.ok()) return seen.status();
        if (seen->rows() == 1)
          return absl::PermissionDeniedError(
              Cat("id: view ", req.id(), " is shared by ", seen->Get(0, 0), "; only its owner may delete it"));
        return absl::NotFoundError(Cat("id: no view ", req.id(), " you can see in tenant ", *tenant));
      });
}

void SavedViews::FillRecent(PgConnection& c, const v1::Principal& who, v1::SavedView& view) const {
  view.clear_recent();
  const absl::Time now = absl::Now();
  // The view's own filter, its time range narrowed to the window.
  v1::ListEventsRequest list;
  v1::EventFilter& f = *list.mutable_filter();
  f = view.filter();
  f.clear_tenant_ids();
  f.add_tenant_ids(view.tenant_id());
  int64_t from = absl::ToUnixMicros(now - kRecentWindow), to = absl::ToUnixMicros(now);
  if (f.has_from_time()) from = std::max(from, TimeUtil::TimestampToMicroseconds(f.from_time()));
  if (f.has_to_time()) to = std::min(to, TimeUtil::TimestampToMicroseconds(f.to_time()));
  v1::ViewActivity& recent = *view.mutable_recent();
  if (from > to) {  // the view's range and the window do not meet: nothing, over no time
    *recent.mutable_from_time() = TimeUtil::MicrosecondsToTimestamp(to);
    *recent.mutable_to_time() = TimeUtil::MicrosecondsToTimestamp(to);
    return;
  }
  *recent.mutable_from_time() = TimeUtil::MicrosecondsToTimestamp(from);
  *recent.mutable_to_time() = TimeUtil::MicrosecondsToTimestamp(to);
  *f.mutable_from_time() = recent.from_time();
  *f.mutable_to_time() = recent.to_time();
  auto r = [&]() -> absl::StatusOr<common::PgResult> {
    auto q = CheckListRequest(catalog_, authz_, who, list);
    if (!q.ok()) return q.status();
    q->limit = static_cast<int>(kMaxCounted) - 1;  // ListStatement reads limit + 1 rows
    return c.Exec(Cat("SELECT count(*), count(*) FILTER (WHERE (", contracts::kSeveritySql,
                      ") = ", static_cast<int>(v1::EVENT_SEVERITY_ERROR), ") FROM (",
                      ListStatement(*q, "type, payload"), ") AS recent"),
                  q->params);
  }();
  if (!r.ok()) {
    // No figures for this view (a type the catalog lost, a statement timeout); the view
    // itself is still answered.
    spdlog::info("gateway: saved view {}: no recent figures: {}", view.id(), r.status().message());
    view.clear_recent();
    return;
  }
  recent.set_events(PgInt(r->Get(0, 0)));
  recent.set_errors(PgInt(r->Get(0, 1)));
  recent.set_capped(recent.events() >= kMaxCounted);
  const double minutes = std::max(static_cast<double>(to - from) / 60e6, 1.0 / 60);  // at least a second
  recent.set_events_per_minute(static_cast<double>(recent.events()) / minutes);
  recent.set_error_ratio(
      recent.events() == 0 ? 0.0 : static_cast<double>(recent.errors()) / static_cast<double>(recent.events()));
}

}  // namespace sluice::gateway
