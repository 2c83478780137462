// sluicectl notify list|create|delete|test: a tenant's notification sinks (where its
// quality and approval notifications go) through the gateway's TriggerService.
#include <absl/time/clock.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/gateway_channel.h"
#include "common/env.h"
#include "common/strings.h"
#include "contracts/json.h"
#include "contracts/spellings.h"
#include "sluice/v1/trigger_service.grpc.pb.h"

namespace sluice::cli {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

struct NotifyOptions {
  GatewayTarget gateway;
  std::string token = common::EnvOr("SLUICE_TOKEN", "");
  std::string tenant, id;
  // create
  std::string name, kind = "webhook", url, url_file, secret_file;
  int quality_threshold = 0, timeout_ms = 0;
  // test
  int wait_s = 30;
  bool json = false;
  int timeout_s = 30;
};

constexpr char kCommand[] = "notify";

void Print(const NotifyOptions& o, const v1::NotificationSink& s) {
  if (o.json) {
    auto j = contracts::ToJson(s);
    std::printf("%s\n", j.ok() ? j->c_str() : "{}");
    return;
  }
  std::string state = contracts::ShortSpelling(*v1::TriggerState_descriptor()->FindValueByNumber(s.state()));
  if (s.state() == v1::TRIGGER_STATE_AUTO_PAUSED) state += Cat(" until ", TimeUtil::ToString(s.auto_resume_at()));
  std::printf("%s  %-24s %-7s %-10s below %d -> %s%s\n", s.id().c_str(), s.name().c_str(),
              s.kind() == v1::NOTIFICATION_SINK_KIND_SLACK ? "slack" : "webhook", state.c_str(), s.quality_threshold(),
              s.url().c_str(), s.has_secret() ? " (signed)" : "");
}

// A secret from a file ('-': stdin) or the environment, never from the command line.
absl::StatusOr<std::string> Secret(const std::string& file, const char* env) {
  std::string value = common::EnvOr(env, "");
  if (!file.empty()) {
    auto read = ReadInput(file);
    if (!read.ok()) return read.status();
    value = *std::move(read);
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  }
  return value;
}

int List(const NotifyOptions& o, v1::TriggerService::Stub& stub) {
  v1::ListNotificationSinksRequest req;
  req.set_tenant_id(o.tenant);
  v1::ListNotificationSinksResponse resp;
  auto s = stub.ListNotificationSinks(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  for (const auto& sink : resp.sinks()) Print(o, sink);
  return 0;
}

int Create(const NotifyOptions& o, v1::TriggerService::Stub& stub) {
  v1::CreateNotificationSinkRequest req;
  req.set_tenant_id(o.tenant);
  req.set_name(o.name);
  const bool slack = o.kind == "slack";
  if (slack && !o.url.empty())
    return Fail(absl::InvalidArgumentError(
        "--url: a Slack URL is a secret; give it with --url-file or SLUICE_NOTIFY_URL, not on the command line"));
  if (!slack && !o.url_file.empty()) return Fail(absl::InvalidArgumentError("--url-file: only for --kind slack"));
  req.set_kind(slack ? v1::NOTIFICATION_SINK_KIND_SLACK : v1::NOTIFICATION_SINK_KIND_WEBHOOK);
  req.set_quality_threshold(o.quality_threshold);
  req.set_timeout_ms(o.timeout_ms);
  // A Slack URL is the secret: from a file or the environment only.
  auto url = slack ? Secret(o.url_file, "SLUICE_NOTIFY_URL") : absl::StatusOr<std::string>(o.url);
  if (!url.ok()) return Fail(url.status());
  if (url->empty())
    return Fail(absl::InvalidArgumentError(slack ? "--url-file (or SLUICE_NOTIFY_URL): required for a Slack sink"
                                                 : "--url: required for a webhook sink"));
  req.set_url(*url);
  if (!slack) {
    auto secret = Secret(o.secret_file, "SLUICE_NOTIFY_SECRET");
    if (!secret.ok()) return Fail(secret.status());
    if (secret->empty())
      return Fail(absl::InvalidArgumentError("--secret-file (or SLUICE_NOTIFY_SECRET): required for a webhook sink"));
    req.set_secret(*secret);
  }
  v1::CreateNotificationSinkResponse resp;
  auto s = stub.CreateNotificationSink(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  Print(o, resp.sink());
  return 0;
}

int Delete(const NotifyOptions& o, v1::TriggerService::Stub& stub) {
  v1::DeleteNotificationSinkRequest req;
  req.set_tenant_id(o.tenant);
  req.set_id(o.id);
  v1::DeleteNotificationSinkResponse resp;
  auto s = stub.DeleteNotificationSink(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  std::printf("deleted %s\n", o.id.c_str());
  return 0;
}

// Queues a test notification and waits for sluice-triggers to deliver it: 0 delivered,
// 1 failed or not delivered in time (the last attempt says why).
int Test(const NotifyOptions& o, v1::TriggerService::Stub& stub) {
  v1::TestNotificationSinkRequest req;
  req.set_tenant_id(o.tenant);
  req.set_id(o.id);
  v1::TestNotificationSinkResponse resp;
  auto s = stub.TestNotificationSink(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  std::printf("queued test notification %s\n", resp.notification_id().c_str());
  if (o.wait_s == 0) return 0;
  v1::ListTriggerDeliveriesRequest history;
  history.set_tenant_id(o.tenant);
  history.set_trigger_id(o.id);
  history.set_event_id(resp.notification_id());
  history.set_page_size(1);
  std::string last;
  for (const absl::Time end = absl::Now() + absl::Seconds(o.wait_s); absl::Now() < end;) {
    v1::ListTriggerDeliveriesResponse attempts;
    auto h = stub.ListTriggerDeliveries(CallContext(o.token, o.timeout_s).get(), history, &attempts);
    if (!h.ok()) return RpcFailed(kCommand, h);
    if (attempts.attempts_size() > 0) {
      const auto& a = attempts.attempts(0);
      if (a.outcome() == v1::DELIVERY_OUTCOME_DELIVERED) {
        std::printf("delivered: HTTP %d in %d ms (attempt %d)\n", a.status_code(), a.latency_ms(), a.attempt());
        return 0;
      }
      last = Cat("attempt ", a.attempt(), ": ", a.error().empty() ? Cat("HTTP ", a.status_code()) : a.error());
      if (a.outcome() == v1::DELIVERY_OUTCOME_FAILED) {
        std::fprintf(stderr, "notify: the test notification failed: %s\n", last.c_str());
        return 1;
      }
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  std::fprintf(stderr, "notify: not delivered within %d s (%s; is sluice-triggers running?)\n", o.wait_s,
               last.empty() ? "no attempt yet" : last.c_str());
  return 1;
}

int Run(const NotifyOptions& o, int (*body)(const NotifyOptions&, v1::TriggerService::Stub&)) {
  auto channel = GatewayChannel(o.gateway);
  if (!channel.ok()) return Fail(channel.status());
  auto stub = v1::TriggerService::NewStub(*channel);
  return body(o, *stub);
}

}  // namespace

void AddNotifyCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<NotifyOptions>();
  auto* notify = app.add_subcommand(
      "notify", "A tenant's notification sinks (quality and approval notifications), through sluice-gateway");
  notify->require_subcommand(1);
  auto common_flags = [&](CLI::App* c) {
    AddGatewayFlags(*c, o->gateway);
    c->add_option("--token", o->token, "Bearer token (env SLUICE_TOKEN)");
    c->add_option("--tenant", o->tenant, "The sinks' tenant (optional for a token of one tenant)");
    c->add_option("--timeout", o->timeout_s, "Seconds before a call is abandoned")->capture_default_str();
  };
  auto json_flag = [&](CLI::App* c) { c->add_flag("--json", o->json, "JSON lines in the protobuf JSON mapping"); };
  auto* list = notify->add_subcommand("list", "The tenant's notification sinks by name");
  common_flags(list);
  json_flag(list);
  OnRun(list, g, [o] { return Run(*o, List); });

  auto* create = notify->add_subcommand(
      "create", "A sink: once a tenant has one, its quality and approval notifications go there");
  common_flags(create);
  json_flag(create);
  create->add_option("--name", o->name, "1 to 100 characters, unique among the tenant's triggers and sinks")
      ->required();
  create->add_option("--kind", o->kind, "webhook (signed JSON) or slack (a Slack-compatible incoming webhook)")
      ->check(CLI::IsMember({"webhook", "slack"}))
      ->capture_default_str();
  create->add_option("--url", o->url, "webhook: https://host[:port]/path (a Slack URL only through --url-file)");
  create->add_option("--url-file", o->url_file,
                     "slack: file holding the incoming-webhook URL, a secret ('-': stdin; default: env "
                     "SLUICE_NOTIFY_URL)");
  create->add_option("--secret-file", o->secret_file,
                     "webhook: file holding the HMAC secret, 32 to 256 printable ASCII characters ('-': stdin; "
                     "default: env SLUICE_NOTIFY_SECRET)");
  create
      ->add_option("--quality-threshold", o->quality_threshold,
                   "A completed profile scoring below this notifies, 1 to 100 (default 70)")
      ->check(CLI::Range(1, 100));
  create->add_option("--timeout-ms", o->timeout_ms, "How long one delivery may take, 100 to 30000 (default 5000)");
  OnRun(create, g, [o] { return Run(*o, Create); });

  auto* del = notify->add_subcommand("delete", "Delete a sink (its deliveries and history go with it)");
  common_flags(del);
  del->add_option("id", o->id, "The sink's id")->required();
  OnRun(del, g, [o] { return Run(*o, Delete); });

  auto* test = notify->add_subcommand(
      "test", "Send a test notification to a sink and wait for its delivery (exit 0 when delivered)");
  common_flags(test);
  test->add_option("id", o->id, "The sink's id")->required();
  test->add_option("--wait", o->wait_s, "Seconds to wait for the delivery (0: only queue it)")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  OnRun(test, g, [o] { return Run(*o, Test); });
}

}  // namespace sluice::cli
