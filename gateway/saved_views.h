#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <string>

#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::gateway {

// Saved views (event_saved_view): named event filters of one tenant, private to their
// owner (Principal.name) or shared read-only with every caller of the tenant. Every
// statement names the tenant, checked by the Authorizer first. Thread-safe.
class SavedViews {
 public:
  static constexpr int kMaxOwnPerTenant = 100;     // views one owner keeps in one tenant
  static constexpr int kMaxSharedPerTenant = 500;  // shared views of one tenant
  static constexpr size_t kMaxNameChars = 100, kMaxDescriptionChars = 1000;
  static constexpr size_t kMaxFilterJsonBytes = 8192;
  static constexpr size_t kMaxJsonPathBytes = 2048;
  static constexpr size_t kMaxCorrelationIdBytes = 128;
  static constexpr int64_t kMaxCounted = 10000;  // ViewActivity counts at most this many
  static constexpr absl::Duration kRecentWindow = absl::Minutes(15);
  // How long one ListSavedViews spends counting; views past it come without `recent`.
  static constexpr absl::Duration kCountBudget = absl::Seconds(2);

  SavedViews(common::PgPool& pool, const contracts::Catalog& catalog, const contracts::Authorizer& authz)
      : pool_(pool), catalog_(catalog), authz_(authz) {}

  absl::StatusOr<v1::CreateSavedViewResponse> Create(const v1::Principal& who, const v1::CreateSavedViewRequest& req);
  absl::StatusOr<v1::ListSavedViewsResponse> List(const v1::Principal& who, const v1::ListSavedViewsRequest& req);
  absl::StatusOr<v1::UseSavedViewResponse> Use(const v1::Principal& who, const v1::UseSavedViewRequest& req);
  absl::StatusOr<v1::DeleteSavedViewResponse> Delete(const v1::Principal& who, const v1::DeleteSavedViewRequest& req);

  // The tenant a request acts for: `requested`, which `who` must hold, or, when empty,
  // the principal's only tenant (InvalidArgument on "tenant_id" for a principal of
  // several tenants or of every tenant).
  static absl::StatusOr<std::string> TenantOf(const contracts::Authorizer& authz, const v1::Principal& who,
                                              const std::string& requested);
  // The checks of CreateSavedView that need no database (name, description, visibility,
  // filter: its tenants, types, sources, severities, time range and sizes), each naming
  // its field. JSONPath syntax is PostgreSQL's to judge.
  static absl::Status CheckCreate(const contracts::Catalog& catalog, const contracts::Authorizer& authz,
                                  const v1::Principal& who, const std::string& tenant,
                                  const v1::CreateSavedViewRequest& req);

 private:
  // Fills view.recent from event_log: the view's filter over the last kRecentWindow (and
  // within its own range). Leaves it unset when the figures cannot be had (logged).
  void FillRecent(common::PgConnection& c, const v1::Principal& who, v1::SavedView& view) const;

  common::PgPool& pool_;
  const contracts::Catalog& catalog_;
  const contracts::Authorizer& authz_;
};

}  // namespace sluice::gateway
