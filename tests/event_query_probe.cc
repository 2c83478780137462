// event_query_probe GATEWAY TOKEN ENVELOPE_JSON: the EventQueryService streams of a running
// gateway, for shell tests (kafka_secure_test.sh) that have no gRPC client of their own.
//   1. opens Subscribe for the envelope's tenant and waits for its headers (the gateway sends
//      them once its Kafka reader holds its start offsets);
//   2. publishes the envelope (EventGateway.Publish);
//   3. reads Subscribe until that event arrives;
//   4. replays the one offset it was written at (Replay): the event must come back.
// Prints one line per step; exit 0 when all four succeed, 1 with a line naming the step that
// failed. Every call has a deadline (--timeout seconds, default 60), so a gateway that never
// answers fails the probe instead of hanging the test.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/file.h"
#include "contracts/json.h"
#include "sluice/v1/event_query.grpc.pb.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace {

using namespace sluice;

int Failed(const char* step, const grpc::Status& s) {
  std::fprintf(stderr, "event_query_probe: %s: %d %s\n", step, static_cast<int>(s.error_code()),
               s.error_message().c_str());
  return 1;
}

int Failed(const char* step, const std::string& why) {
  std::fprintf(stderr, "event_query_probe: %s: %s\n", step, why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::string(argv[4]) == "--timeout")) {
    std::fprintf(stderr, "usage: event_query_probe GATEWAY TOKEN ENVELOPE_JSON [--timeout SECONDS]\n");
    return 2;
  }
  const std::string gateway = argv[1], token = argv[2];
  const int timeout_s = argc == 6 ? std::atoi(argv[5]) : 60;
  auto json = common::ReadFile(argv[3]);
  if (!json.ok()) return Failed("envelope", std::string(json.status().message()));
  v1::Envelope envelope;
  if (auto s = contracts::FromJson(*json, envelope); !s.ok()) return Failed("envelope", std::string(s.message()));
  if (envelope.id().empty()) return Failed("envelope", "needs an id, to recognise it on the streams");

  auto channel = grpc::CreateChannel(gateway, grpc::InsecureChannelCredentials());
  auto query = v1::EventQueryService::NewStub(channel);
  auto events = v1::EventGateway::NewStub(channel);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(timeout_s);
  auto prepare = [&](grpc::ClientContext& ctx) {
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(deadline);
  };

  // 1. Subscribe first: a live feed only carries what is appended after it opened.
  grpc::ClientContext sub_ctx;
  prepare(sub_ctx);
  v1::SubscribeRequest sub_req;
  sub_req.mutable_filter()->add_tenant_ids(envelope.tenant_id());
  auto sub = query->Subscribe(&sub_ctx, sub_req);
  sub->WaitForInitialMetadata();

  // 2. Publish.
  grpc::ClientContext pub_ctx;
  prepare(pub_ctx);
  v1::PublishRequest pub_req;
  *pub_req.mutable_envelope() = envelope;
  v1::PublishResponse pub_resp;
  if (auto s = events->Publish(&pub_ctx, pub_req, &pub_resp); !s.ok()) {
    sub_ctx.TryCancel();
    (void)sub->Finish();
    return Failed("publish", s);
  }
  const v1::Delivery& d = pub_resp.delivery();
  std::printf("publish ok %s %s[%d]@%lld\n", d.event_id().c_str(), d.topic().c_str(), d.partition(),
              static_cast<long long>(d.offset()));

  // 3. The event on the feed (other events of the tenant may come first).
  v1::SubscribeResponse got;
  bool seen = false;
  while (!seen && sub->Read(&got)) seen = got.event().envelope().id() == envelope.id();
  if (!seen) return Failed("subscribe", sub->Finish());  // the stream ended (deadline or error)
  std::printf("subscribe ok %s %s[%d]@%lld\n", envelope.id().c_str(), got.event().topic().c_str(),
              got.event().partition(), static_cast<long long>(got.event().offset()));
  sub_ctx.TryCancel();
  (void)sub->Finish();

  // 4. Replay exactly where it was written.
  grpc::ClientContext rep_ctx;
  prepare(rep_ctx);
  v1::ReplayRequest rep_req;
  rep_req.add_topics(d.topic());
  rep_req.set_partition(d.partition());
  rep_req.set_from_offset(d.offset());
  rep_req.set_to_offset(d.offset());
  rep_req.add_tenant_ids(envelope.tenant_id());
  auto rep = query->Replay(&rep_ctx, rep_req);
  v1::ReplayResponse r;
  int replayed = 0;
  seen = false;
  while (rep->Read(&r)) {
    ++replayed;
    seen = seen || r.event().envelope().id() == envelope.id();
  }
  if (auto s = rep->Finish(); !s.ok()) return Failed("replay", s);
  if (!seen) return Failed("replay", std::to_string(replayed) + " events, not " + envelope.id());
  std::printf("replay ok %s (%d event)\n", envelope.id().c_str(), replayed);
  return 0;
}
