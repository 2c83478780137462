#include "gateway/grpc_status.h"

#include <gtest/gtest.h>

#include "common/pg.h"
#include "contracts/validate.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace sluice::gateway {
namespace {

TEST(ToGrpcStatus, CodesMapOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("x")).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(ToGrpcStatus(absl::UnavailableError("x")).error_details().empty());
}

TEST(ToGrpcStatus, DatabaseTextNeverReachesTheCaller) {
  // What PgStatus builds for a failed statement: PostgreSQL's text, which can quote rows.
  absl::Status s =
      common::MapSqlState("23505", "duplicate key value violates unique constraint: Key (x)=(secret)", false);
  s.SetPayload(common::kSqlStatePayload, absl::Cord("23505"));
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), static_cast<grpc::StatusCode>(static_cast<int>(s.code())));
  EXPECT_EQ(g.error_message(), "database error (SQLSTATE 23505)");
  EXPECT_EQ(g.error_message().find("secret"), std::string::npos);
}

TEST(ToGrpcStatus, AFailedConnectDoesNotNameTheServer) {
  // libpq's text names the socket or host, the user and the database.
  auto c =
      common::PgConnection::Connect("host=/nonexistent-sluice-dir user=secret-user dbname=secret-db", absl::Seconds(2));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(common::IsPgError(c.status()));
  EXPECT_NE(std::string(c.status().message()).find("nonexistent-sluice-dir"), std::string::npos) << c.status();
  grpc::Status g = ToGrpcStatus(c.status());
  EXPECT_EQ(g.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(g.error_message(), "database unavailable");
  EXPECT_EQ(CallerMessage(c.status()), "database unavailable");
}

TEST(ToGrpcStatus, FieldErrorsCarryBadRequestDetails) {
  absl::Status s = contracts::WithFieldPath(absl::InvalidArgumentError("tenant_id: required"), "tenant_id");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "tenant_id: required");
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(g.error_details()));
  EXPECT_EQ(rich.code(), 3);
  ASSERT_EQ(rich.details_size(), 1);
  google::rpc::BadRequest bad;
  ASSERT_TRUE(rich.details(0).UnpackTo(&bad));
  ASSERT_EQ(bad.field_violations_size(), 1);
  EXPECT_EQ(bad.field_violations(0).field(), "tenant_id");
}

}  // namespace
}  // namespace sluice::gateway
