// sluice-gateway over real gRPC against the real local broker.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/file.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "contracts/vectors.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "tests/gateway_fixture.h"
#include "tests/subprocess.h"

namespace sluice {
namespace {

using contracts::testing::Golden;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ViolationField;

class GatewayKafka : public testing::GatewayTest {
 protected:
  grpc::Status Publish(const v1::Envelope& e, const char* token, v1::PublishResponse* out = nullptr) {
    v1::PublishRequest req;
    *req.mutable_envelope() = e;
    v1::PublishResponse resp;
    auto ctx = Ctx(token);
    grpc::Status s = events_->Publish(ctx.get(), req, &resp);
    if (out) *out = resp;
    return s;
  }
};

TEST_F(GatewayKafka, PublishAnswersAfterTheBrokerWithTheGoldenBytesInKafka) {
  v1::Envelope e = Golden("data.refreshed");
  v1::PublishResponse resp;
  grpc::Status s = Publish(e, testing::kTokenA, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.delivery().event_id(), e.id());
  EXPECT_EQ(resp.delivery().topic(), catalog_->Find("data.refreshed")->topic);
  EXPECT_EQ(resp.delivery().partition(), kafka::PartitionForKey("tenant-acme", 12));
  EXPECT_FALSE(resp.delivery().duplicate());

  auto records = ReadTopic(resp.delivery().topic(), 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].offset, resp.delivery().offset());
  auto golden = common::ReadFile(contracts::testing::VectorsDir() + "/data.refreshed.binpb");
  ASSERT_TRUE(golden.ok());
  EXPECT_EQ(records[0].value, *golden);
}

TEST_F(GatewayKafka, AssignsMissingIdsAndAnswersRepeatsFromTheDedupWindow) {
  v1::Envelope e = Golden("kpi.changed");
  e.set_source("metadata-studio.api");  // the vector's own source is the approval workflow's
  e.clear_id();
  v1::PublishResponse first;
  ASSERT_TRUE(Publish(e, testing::kTokenA, &first).ok());
  EXPECT_TRUE(contracts::IsUuid(first.delivery().event_id())) << first.delivery().event_id();

  v1::Envelope again = Golden("kpi.changed");
  again.set_source("metadata-studio.api");
  v1::PublishResponse a, b;
  ASSERT_TRUE(Publish(again, testing::kTokenA, &a).ok());
  ASSERT_TRUE(Publish(again, testing::kTokenA, &b).ok());
  EXPECT_FALSE(a.delivery().duplicate());
  EXPECT_TRUE(b.delivery().duplicate());
  EXPECT_EQ(a.delivery().offset(), b.delivery().offset());
  auto records = ReadTopic(catalog_->Find("kpi.approved")->topic, 2);
  EXPECT_EQ(records.size(), 2u);  // the first kpi.changed once, the repeated one once
}

TEST_F(GatewayKafka, EveryErrorCaseHasItsCode) {
  struct Case {
    const char* name;
    std::function<void(v1::Envelope&)> mutate;
    const char* token;
    grpc::StatusCode code;
    const char* field;
  };
  const std::string big(300 * 1024, 'x');
  const Case cases[] = {
      {"missing tenant", [](auto& e) { e.clear_tenant_id(); }, testing::kTokenA, grpc::INVALID_ARGUMENT, "tenant_id"},
      {"missing payload field", [](auto& e) { e.mutable_data_refreshed()->clear_entity_urn(); }, testing::kTokenA,
       grpc::INVALID_ARGUMENT, "data_refreshed.entity_urn"},
      {"unknown type", [](auto& e) { e.set_type("data.exploded"); }, testing::kTokenA, grpc::INVALID_ARGUMENT, "type"},
      {"unknown source", [](auto& e) { e.set_source("nobody"); }, testing::kTokenA, grpc::INVALID_ARGUMENT, "source"},
      {"payload over 256 KiB", [&](auto& e) { e.mutable_data_refreshed()->set_entity_urn(big); }, testing::kTokenA,
       grpc::INVALID_ARGUMENT, "data_refreshed"},
      {"no token", [](auto&) {}, nullptr, grpc::UNAUTHENTICATED, ""},
      {"bad token", [](auto&) {}, "not-a-token", grpc::UNAUTHENTICATED, ""},
      {"another tenant", [](auto&) {}, testing::kTokenB, grpc::PERMISSION_DENIED, ""},
      {"source not allowed", [](auto& e) { e.set_source("kernel.scheduler"); }, testing::kTokenEtl,
       grpc::PERMISSION_DENIED, ""},
  };
  for (const auto& c : cases) {
    v1::Envelope e = Golden("data.refreshed");
    e.clear_id();
    c.mutate(e);
    grpc::Status s = Publish(e, c.token);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_EQ(ViolationField(s), c.field) << c.name;
  }
  // Nothing of the above reached Kafka.
  EXPECT_TRUE(ReadTopic(catalog_->Find("data.refreshed")->topic, 1, absl::Seconds(4)).empty());
}

TEST_F(GatewayKafka, EveryViolationIsReportedInOneBadRequest) {
  // A type and nothing else that a producer must supply: no payload (and so no version to
  // infer from it), an unknown source and a negative TTL.
  v1::Envelope e = Golden("data.refreshed");
  e.clear_id();
  e.clear_version();
  e.clear_data_refreshed();
  e.set_source("nobody");
  e.set_ttl_ms(-5);
  grpc::Status s = Publish(e, testing::kTokenA);
  ASSERT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(testing::ViolationFields(s), ElementsAre("source", "ttl_ms", "payload")) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("payload: required (data_refreshed)"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("version")));
}

TEST_F(GatewayKafka, TenantATokenCannotPublishForTenantBOnEitherRpc) {
  v1::Envelope e = Golden("metadata.deprecated");
  e.set_tenant_id("tenant-b");
  EXPECT_EQ(Publish(e, testing::kTokenA).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_TRUE(Publish(e, testing::kTokenB).ok());  // B may

  auto ctx = Ctx(testing::kTokenA);
  auto stream = events_->PublishStream(ctx.get());
  v1::PublishStreamRequest req;
  req.set_sequence(7);
  *req.mutable_envelope() = Golden("data.refreshed");
  req.mutable_envelope()->set_tenant_id("tenant-b");
  ASSERT_TRUE(stream->Write(req));
  stream->WritesDone();
  v1::PublishStreamResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.sequence(), 7u);
  EXPECT_EQ(resp.error().code(), grpc::PERMISSION_DENIED);
  EXPECT_TRUE(stream->Finish().ok());
  auto records = ReadTopic(catalog_->Find("metadata.deprecated")->topic, 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "tenant-b");
  EXPECT_TRUE(ReadTopic(catalog_->Find("data.refreshed")->topic, 1, absl::Seconds(2)).empty());
}

TEST_F(GatewayKafka, RateLimitPausesTheSource) {
  v1::Envelope e = Golden("data.refreshed");
  e.set_source("finance.service");
  for (int i = 0; i < 3; ++i) {
    e.clear_id();
    ASSERT_TRUE(Publish(e, testing::kTokenA).ok()) << i;
  }
  e.clear_id();
  grpc::Status s = Publish(e, testing::kTokenA);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED);
  e.clear_id();
  EXPECT_EQ(Publish(e, testing::kTokenA).error_code(), grpc::RESOURCE_EXHAUSTED);  // still paused
  e.set_source("etl.pipeline");
  e.clear_id();
  EXPECT_TRUE(Publish(e, testing::kTokenA).ok());  // other sources unaffected
}

TEST_F(GatewayKafka, WorkflowMetadataIsCopiedIntoTheEnvelope) {
  v1::Envelope e = Golden("metadata.changed");
  e.set_source("metadata-studio.api");
  e.clear_id();
  e.clear_traceparent();
  v1::PublishRequest req;
  *req.mutable_envelope() = e;
  v1::PublishResponse resp;
  auto ctx = Ctx(testing::kTokenA);
  ctx->AddMetadata("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ctx->AddMetadata("sluice-workflow-run-id", " run-42 ");
  ASSERT_TRUE(events_->Publish(ctx.get(), req, &resp).ok());
  auto records = ReadTopic(resp.delivery().topic(), 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].envelope.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(records[0].envelope.metadata().at("sluice.workflow.run_id"), "run-42");
}

TEST_F(GatewayKafka, NotifyDataRefreshedBuildsTheEvent) {
  v1::NotifyDataRefreshedRequest req;
  req.set_tenant_id("tenant-acme");
  req.set_entity_urn("sales.transactions");
  req.set_schema("public");
  req.set_table("sales_transactions");
  req.set_rows_affected(25000);
  req.set_refresh_type(v1::REFRESH_TYPE_INCREMENTAL);
  req.mutable_triggered_by()->set_actor_id("etl-daily-sales");
  req.mutable_triggered_by()->set_actor_type(v1::ACTOR_TYPE_SYSTEM);
  v1::NotifyDataRefreshedResponse resp;
  auto ctx = Ctx(testing::kTokenEtl);
  grpc::Status s = refresh_->NotifyDataRefreshed(ctx.get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto records = ReadTopic(resp.delivery().topic(), 1);
  ASSERT_EQ(records.size(), 1u);
  const v1::Envelope& got = records[0].envelope;
  EXPECT_EQ(got.type(), "data.refreshed");
  EXPECT_EQ(got.source(), "etl.pipeline");
  EXPECT_EQ(got.data_refreshed().service().table(), "sales_transactions");
  EXPECT_EQ(got.data_refreshed().rows_affected(), 25000);
  EXPECT_TRUE(got.data_refreshed().has_completed_at());

  req.clear_entity_urn();
  auto ctx2 = Ctx(testing::kTokenEtl);
  s = refresh_->NotifyDataRefreshed(ctx2.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(ViolationField(s), "entity_urn");
  EXPECT_THAT(s.error_message(), ::testing::StartsWith("entity_urn: required"));

  // Several fields wrong at once: each is named as the request names it.
  req.set_correlation_id(std::string(200, 'c'));
  auto ctx3 = Ctx(testing::kTokenEtl);
  s = refresh_->NotifyDataRefreshed(ctx3.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(testing::ViolationFields(s), ElementsAre("correlation_id", "entity_urn")) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("entity_urn: required"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("data_refreshed.")));
}

TEST_F(GatewayKafka, StreamOfTenThousandIsFullyAcknowledgedAndStoredExactlyOnce) {
  constexpr int kEvents = 10000;
  v1::Envelope base = Golden("metadata.profile.due");
  auto ctx = Ctx(testing::kTokenA);
  auto stream = events_->PublishStream(ctx.get());
  std::set<std::string> sent;
  std::map<uint64_t, v1::PublishStreamResponse> acks;
  std::thread reader([&] {
    v1::PublishStreamResponse r;
    while (stream->Read(&r)) acks[r.sequence()] = r;
  });
  for (int i = 0; i < kEvents; ++i) {
    v1::PublishStreamRequest req;
    req.set_sequence(static_cast<uint64_t>(i));
    *req.mutable_envelope() = base;
    req.mutable_envelope()->set_id(contracts::NewUuidV7());
    sent.insert(req.envelope().id());
    ASSERT_TRUE(stream->Write(req)) << i;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(acks.size(), static_cast<size_t>(kEvents));
  for (const auto& [seq, r] : acks) ASSERT_TRUE(r.has_ack()) << seq << ": " << r.error().message();

  auto records = ReadTopic(catalog_->Find("metadata.profile.due")->topic, kEvents, absl::Seconds(120));
  std::map<std::string, int> seen;
  for (const auto& r : records) ++seen[r.envelope.id()];
  EXPECT_EQ(records.size(), static_cast<size_t>(kEvents));
  for (const auto& id : sent) EXPECT_EQ(seen[id], 1) << id;
}

TEST_F(GatewayKafka, HealthAndReflectionAreServed) {
  // grpc.health.v1.Health/Check with an empty request: the answer is {status: SERVING} = 08 01.
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  auto unary = [&](const std::string& method, const std::string& body) {
    grpc::ClientContext ctx;
    grpc::Slice slice(body);
    grpc::ByteBuffer req(&slice, 1), resp;
    grpc::Status status;
    auto call = generic.PrepareUnaryCall(&ctx, method, req, &cq);
    call->StartCall();
    call->Finish(&resp, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    std::vector<grpc::Slice> slices;
    (void)resp.Dump(&slices);
    std::string out;
    for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
    EXPECT_TRUE(status.ok()) << method << ": " << status.error_message();
    return out;
  };
  EXPECT_EQ(unary("/grpc.health.v1.Health/Check", ""), std::string("\x08\x01", 2));

  // grpc.reflection.v1alpha.ServerReflection: list_services (field 7, empty string).
  grpc::ClientContext ctx;
  auto call = generic.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer req(&slice, 1), resp;
  call->Write(req, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  call->Read(&resp, reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  ASSERT_TRUE(ok);
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(out, HasSubstr("sluice.v1.EventGateway"));
  EXPECT_THAT(out, HasSubstr("sluice.v1.DataRefreshService"));
  ctx.TryCancel();
  grpc::Status st;
  call->Finish(&st, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(GatewayKafka, HealthResolvesByReflectionAsGrpcurlNeeds) {
  // A reflection client (grpcio-reflection) resolves every service the server lists,
  // grpc.health.v1.Health included, then calls Health/Check built from the reflected
  // descriptor for the server and for each service by name.
  const std::string root = SLUICE_SOURCE_DIR;
  const std::string python = root + "/.cache/venv-clients/bin/python";
  ASSERT_EQ(access(python.c_str(), X_OK), 0) << python << " missing: run bash clients/build.sh python";
  const std::string log = ::testing::TempDir() + "/reflect_health.log";
  auto [rc, out] = testing::RunCaptured(
      python.c_str(),
      {root + "/tests/lib/reflect_health.py", common::Cat("127.0.0.1:", gateway_->port()), "sluice.v1.EventGateway",
       "sluice.v1.DataRefreshService", "sluice.v1.EventQueryService", "sluice.v1.QualityService"},
      log);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("resolved: grpc.health.v1.Health"));
  EXPECT_THAT(out, HasSubstr("ok: Check('sluice.v1.QualityService') = SERVING"));
  EXPECT_THAT(out, Not(HasSubstr("UNRESOLVED")));

  // A name the server does not serve is NOT_FOUND, as the health protocol says.
  grpc::ClientContext ctx;
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  std::string body = "\x0a\x07nothing";
  grpc::Slice slice(body);
  grpc::ByteBuffer req(&slice, 1), resp;
  grpc::Status status;
  auto call = generic.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  call->Finish(&resp, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::NOT_FOUND) << status.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(GatewayKafka, UnreachableBrokerIsUnavailableAfterTheDeliveryTimeout) {
  auto dead = StartGateway("127.0.0.1:1", [](gateway::GatewayConfig& c) { c.delivery_timeout = absl::Seconds(2); });
  ASSERT_NE(dead, nullptr);
  auto ch = grpc::CreateChannel(common::Cat("127.0.0.1:", dead->port()), grpc::InsecureChannelCredentials());
  auto stub = v1::EventGateway::NewStub(ch);
  v1::PublishRequest req;
  *req.mutable_envelope() = Golden("data.refreshed");
  v1::PublishResponse resp;
  auto ctx = Ctx(testing::kTokenA);
  const absl::Time start = absl::Now();
  grpc::Status s = stub->Publish(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::UNAVAILABLE) << s.error_message();
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
}

}  // namespace
}  // namespace sluice
