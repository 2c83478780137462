#pragma once

#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "gateway/auth.h"
#include "sluice/v1/quality_service.grpc.pb.h"

namespace sluice::gateway {

// QualityService: the profiler's results (mdm_profile, mdm_profile_job) for the caller's
// tenant. Every request names one tenant, checked by the Authorizer; every statement
// filters by it. Thread-safe; refers to its arguments, which must outlive it. `pool` null:
// every call is FAILED_PRECONDITION (a gateway without --pg-dsn).
class QualityServiceImpl final : public v1::QualityService::Service {
 public:
  // Bounds of the requests.
  static constexpr int kDefaultPage = 50, kMaxPage = 200;
  static constexpr int kDefaultWorst = 10, kMaxWorst = 100;
  static constexpr size_t kMaxCanonicalKeyBytes = 256;

  QualityServiceImpl(const TokenStore& tokens, const contracts::Authorizer& authz, common::PgPool* pool)
      : tokens_(tokens), authz_(authz), pool_(pool) {}

  grpc::Status GetLatestProfile(grpc::ServerContext*, const v1::GetLatestProfileRequest*,
                                v1::GetLatestProfileResponse*) override;
  grpc::Status ListProfiles(grpc::ServerContext*, const v1::ListProfilesRequest*, v1::ListProfilesResponse*) override;
  grpc::Status ListWorstEntities(grpc::ServerContext*, const v1::ListWorstEntitiesRequest*,
                                 v1::ListWorstEntitiesResponse*) override;
  grpc::Status GetProfileJob(grpc::ServerContext*, const v1::GetProfileJobRequest*,
                             v1::GetProfileJobResponse*) override;

  // What a profile job's last_error_code means, as returned to callers (the stored
  // message can hold PostgreSQL's own text, which is never returned).
  static std::string DescribeErrorCode(std::string_view code);

  // The calls without their transport, for a principal the caller authenticated with
  // `tokens()`: the gRPC methods above and the HTTP API (http_api.h) answer the same.
  absl::Status Latest(const v1::Principal& who, const v1::GetLatestProfileRequest* req,
                      v1::GetLatestProfileResponse* resp) const;
  absl::Status Profiles(const v1::Principal& who, const v1::ListProfilesRequest* req,
                        v1::ListProfilesResponse* resp) const;
  absl::Status Worst(const v1::Principal& who, const v1::ListWorstEntitiesRequest* req,
                     v1::ListWorstEntitiesResponse* resp) const;
  absl::Status Job(const v1::Principal& who, const v1::GetProfileJobRequest* req,
                   v1::GetProfileJobResponse* resp) const;
  const TokenStore& tokens() const { return tokens_; }

 private:
  // Checks the tenant (present, bounded, the principal's) and runs `body` on a pooled
  // connection.
  template <class Body>
  absl::Status Run(const v1::Principal& who, const std::string& tenant, Body&& body) const;
  // Authenticates a gRPC call and answers what `core` returns.
  template <class Core>
  grpc::Status Call(grpc::ServerContext* ctx, Core&& core) const;

  const TokenStore& tokens_;
  const contracts::Authorizer& authz_;
  common::PgPool* pool_;
};

}  // namespace sluice::gateway
