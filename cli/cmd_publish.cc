// sluicectl publish: envelopes through sluice-gateway over gRPC.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/envelope_io.h"
#include "cli/gateway_channel.h"
#include "common/env.h"
#include "common/file.h"
#include "common/strings.h"
#include "contracts/vectors.h"
#include "sluice/v1/gateway.grpc.pb.h"

namespace sluice::cli {
namespace {

struct PublishOptions {
  GatewayTarget gateway;
  std::string token = common::EnvOr("SLUICE_TOKEN", "");
  std::vector<std::string> files{"-"};
  std::vector<std::string> metadata;  // KEY=VALUE gRPC metadata (traceparent, sluice-workflow-*)
  int timeout_s = 30;
};

// One Publish per envelope for a single event, one PublishStream for several.
int Publish(const PublishOptions& o) {
  std::vector<v1::Envelope> envelopes;
  for (const auto& f : o.files) {
    auto text = ReadInput(f);
    if (!text.ok()) return Fail(text.status());
    auto parsed = ParseEnvelopes(*text);
    if (!parsed.ok()) return Fail(absl::InvalidArgumentError(common::Cat(f, ": ", parsed.status().message())));
    envelopes.insert(envelopes.end(), parsed->begin(), parsed->end());
  }
  if (envelopes.empty()) return Fail(absl::InvalidArgumentError("no envelopes in the input"));
  auto channel = GatewayChannel(o.gateway);
  if (!channel.ok()) return Fail(channel.status());
  auto stub = v1::EventGateway::NewStub(*channel);
  auto context = [&] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!o.token.empty()) ctx->AddMetadata("authorization", "Bearer " + o.token);
    for (const auto& kv : o.metadata) {
      auto eq = kv.find('=');
      if (eq != std::string::npos) ctx->AddMetadata(kv.substr(0, eq), kv.substr(eq + 1));
    }
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
    return ctx;
  };
  auto print_ok = [](const v1::Delivery& d) {
    std::printf("ok %s %s[%d]@%lld%s\n", d.event_id().c_str(), d.topic().c_str(), d.partition(),
                static_cast<long long>(d.offset()), d.duplicate() ? " (duplicate)" : "");
  };
  int failed = 0;
  if (envelopes.size() == 1) {
    v1::PublishRequest req;
    *req.mutable_envelope() = envelopes[0];
    v1::PublishResponse resp;
    auto ctx = context();
    grpc::Status s = stub->Publish(ctx.get(), req, &resp);
    if (!s.ok()) {
      std::printf("error %d %s\n", static_cast<int>(s.error_code()), s.error_message().c_str());
      return 1;
    }
    print_ok(resp.delivery());
    return 0;
  }
  auto ctx = context();
  auto stream = stub->PublishStream(ctx.get());
  std::thread writer([&] {
    for (size_t i = 0; i < envelopes.size(); ++i) {
      v1::PublishStreamRequest req;
      req.set_sequence(i + 1);
      *req.mutable_envelope() = envelopes[i];
      if (!stream->Write(req)) break;
    }
    stream->WritesDone();
  });
  v1::PublishStreamResponse r;
  size_t answered = 0;
  while (stream->Read(&r)) {
    ++answered;
    if (r.has_ack()) {
      print_ok(r.ack());
    } else {
      ++failed;
      std::printf("error #%llu %d %s\n", static_cast<unsigned long long>(r.sequence()), r.error().code(),
                  r.error().message().c_str());
    }
  }
  writer.join();
  grpc::Status s = stream->Finish();
  if (!s.ok()) return Fail(absl::UnavailableError(common::Cat("stream: ", s.error_message())));
  if (answered != envelopes.size()) return Fail(absl::DataLossError("the gateway did not answer every event"));
  return failed == 0 ? 0 : 1;
}

}  // namespace

void AddPublishCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<PublishOptions>();
  auto* publish =
      app.add_subcommand("publish", "Publish envelopes through sluice-gateway (JSON, JSON lines or text format)");
  publish->add_option("files", o->files, "Input files; '-' reads stdin")->capture_default_str();
  AddGatewayFlags(*publish, o->gateway);
  publish->add_option("--token", o->token, "Bearer token (env SLUICE_TOKEN)");
  publish->add_option("--metadata", o->metadata,
                      "Extra gRPC metadata KEY=VALUE, e.g. sluice-workflow-run-id=r1 (repeatable)");
  publish->add_option("--timeout", o->timeout_s, "Seconds before the call is abandoned")->capture_default_str();
  OnRun(publish, g, [o] { return Publish(*o); });
}

}  // namespace sluice::cli
