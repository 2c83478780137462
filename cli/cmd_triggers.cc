// sluicectl triggers list|create|delete|pause|resume|history: a tenant's triggers and
// their delivery attempts through the gateway's TriggerService.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
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

struct TriggersOptions {
  GatewayTarget gateway;
  std::string token = common::EnvOr("SLUICE_TOKEN", "");
  std::string tenant, id, event_id;
  // create
  std::string name, description, json_path, url, secret_file, publish_type, template_file;
  std::vector<std::string> types, sources;
  int timeout_ms = 0;
  bool paused = false;
  int limit = 0;  // history: most attempts printed (0: all)
  bool json = false;
  int timeout_s = 30;
};

constexpr char kCommand[] = "triggers";

std::string State(v1::TriggerState s) {
  return contracts::ShortSpelling(*v1::TriggerState_descriptor()->FindValueByNumber(s));
}

void Print(const TriggersOptions& o, const v1::Trigger& t) {
  if (o.json) {
    auto j = contracts::ToJson(t);
    std::printf("%s\n", j.ok() ? j->c_str() : "{}");
    return;
  }
  const auto& p = t.predicate();
  std::string state = State(t.state());
  if (t.state() == v1::TRIGGER_STATE_AUTO_PAUSED) state += Cat(" until ", TimeUtil::ToString(t.auto_resume_at()));
  const std::string action = t.has_publish() ? Cat("publish ", t.publish().type())
                                             : Cat(t.webhook().url(), " (timeout ", t.webhook().timeout_ms(), " ms)");
  std::printf("%s  %-24s %-10s types [%s] sources [%s]%s -> %s v%lld\n", t.id().c_str(), t.name().c_str(),
              state.c_str(), absl::StrJoin(p.types(), ",").c_str(), absl::StrJoin(p.sources(), ",").c_str(),
              p.json_path().empty() ? "" : Cat(" path ", p.json_path()).c_str(), action.c_str(),
              static_cast<long long>(t.version()));
}

void Print(const TriggersOptions& o, const v1::DeliveryAttempt& a) {
  if (o.json) {
    auto j = contracts::ToJson(a);
    std::printf("%s\n", j.ok() ? j->c_str() : "{}");
    return;
  }
  const std::string outcome =
      contracts::ShortSpelling(*v1::DeliveryOutcome_descriptor()->FindValueByNumber(a.outcome()));
  std::printf("%s  event %s  attempt %d  %-11s %s  %d ms%s%s\n", TimeUtil::ToString(a.attempted_at()).c_str(),
              a.event_id().c_str(), a.attempt(), outcome.c_str(),
              a.status_code() > 0                             ? Cat("HTTP ", a.status_code()).c_str()
              : a.outcome() == v1::DELIVERY_OUTCOME_DELIVERED ? "acknowledged"
                                                              : "no answer",
              a.latency_ms(), a.error().empty() ? "" : "  ", a.error().c_str());
}

int List(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  v1::ListTriggersRequest req;
  req.set_tenant_id(o.tenant);
  v1::ListTriggersResponse resp;
  auto s = stub.ListTriggers(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  for (const auto& t : resp.triggers()) Print(o, t);
  return 0;
}

int Create(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  v1::CreateTriggerRequest req;
  req.set_tenant_id(o.tenant);
  req.set_name(o.name);
  req.set_description(o.description);
  for (const auto& t : o.types) req.mutable_predicate()->add_types(t);
  for (const auto& s : o.sources) req.mutable_predicate()->add_sources(s);
  req.mutable_predicate()->set_json_path(o.json_path);
  req.set_paused(o.paused);
  if (o.url.empty() && o.publish_type.empty())
    return Fail(absl::InvalidArgumentError("--url or --publish-type: required (the trigger's action)"));
  if (!o.publish_type.empty()) {
    // A publishing trigger: its payload template from a file (or stdin).
    if (o.template_file.empty()) return Fail(absl::InvalidArgumentError("--publish-template-file: required"));
    auto tmpl = ReadInput(o.template_file);
    if (!tmpl.ok()) return Fail(tmpl.status());
    req.mutable_publish()->set_type(o.publish_type);
    req.mutable_publish()->set_payload_template(*std::move(tmpl));
    v1::CreateTriggerResponse resp;
    auto s = stub.CreateTrigger(CallContext(o.token, o.timeout_s).get(), req, &resp);
    if (!s.ok()) return RpcFailed(kCommand, s);
    Print(o, resp.trigger());
    return 0;
  }
  req.mutable_webhook()->set_url(o.url);
  req.mutable_webhook()->set_timeout_ms(o.timeout_ms);
  // The secret from a file (or stdin), never from the command line where `ps` shows it.
  std::string secret = common::EnvOr("SLUICE_TRIGGER_SECRET", "");
  if (!o.secret_file.empty()) {
    auto read = ReadInput(o.secret_file);
    if (!read.ok()) return Fail(read.status());
    secret = *std::move(read);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  }
  if (secret.empty()) return Fail(absl::InvalidArgumentError("--secret-file (or SLUICE_TRIGGER_SECRET): required"));
  req.mutable_webhook()->set_secret(secret);
  v1::CreateTriggerResponse resp;
  auto s = stub.CreateTrigger(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  Print(o, resp.trigger());
  return 0;
}

int Delete(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  v1::DeleteTriggerRequest req;
  req.set_tenant_id(o.tenant);
  req.set_id(o.id);
  v1::DeleteTriggerResponse resp;
  auto s = stub.DeleteTrigger(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  std::printf("deleted %s\n", o.id.c_str());
  return 0;
}

// PauseTrigger or ResumeTrigger (the same request and answer shape); prints the trigger.
template <class Req, class Resp>
int SetPaused(const TriggersOptions& o, v1::TriggerService::Stub& stub,
              grpc::Status (v1::TriggerService::Stub::*call)(grpc::ClientContext*, const Req&, Resp*)) {
  Req req;
  req.set_tenant_id(o.tenant);
  req.set_id(o.id);
  Resp resp;
  auto s = (stub.*call)(CallContext(o.token, o.timeout_s).get(), req, &resp);
  if (!s.ok()) return RpcFailed(kCommand, s);
  Print(o, resp.trigger());
  return 0;
}

int Pause(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  return SetPaused(o, stub, &v1::TriggerService::Stub::PauseTrigger);
}

int Resume(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  return SetPaused(o, stub, &v1::TriggerService::Stub::ResumeTrigger);
}

int History(const TriggersOptions& o, v1::TriggerService::Stub& stub) {
  v1::ListTriggerDeliveriesRequest req;
  req.set_tenant_id(o.tenant);
  req.set_trigger_id(o.id);
  req.set_event_id(o.event_id);
  req.set_page_size(500);
  int printed = 0;
  while (true) {
    v1::ListTriggerDeliveriesResponse resp;
    auto s = stub.ListTriggerDeliveries(CallContext(o.token, o.timeout_s).get(), req, &resp);
    if (!s.ok()) return RpcFailed(kCommand, s);
    for (const auto& a : resp.attempts()) {
      if (o.limit > 0 && printed >= o.limit) return 0;
      Print(o, a);
      ++printed;
    }
    if (resp.next_cursor().empty()) return 0;
    req.set_cursor(resp.next_cursor());
  }
}

int Run(const TriggersOptions& o, int (*body)(const TriggersOptions&, v1::TriggerService::Stub&)) {
  auto channel = GatewayChannel(o.gateway);
  if (!channel.ok()) return Fail(channel.status());
  auto stub = v1::TriggerService::NewStub(*channel);
  return body(o, *stub);
}

}  // namespace

void AddTriggersCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<TriggersOptions>();
  auto* triggers = app.add_subcommand("triggers", "A tenant's triggers and their deliveries, through sluice-gateway");
  triggers->require_subcommand(1);
  auto common_flags = [&](CLI::App* c) {
    AddGatewayFlags(*c, o->gateway);
    c->add_option("--token", o->token, "Bearer token (env SLUICE_TOKEN)");
    c->add_option("--tenant", o->tenant, "The triggers' tenant (optional for a token of one tenant)");
    c->add_option("--timeout", o->timeout_s, "Seconds before a call is abandoned")->capture_default_str();
    c->add_flag("--json", o->json, "JSON lines in the protobuf JSON mapping");
  };
  auto* list = triggers->add_subcommand("list", "The tenant's triggers by name");
  common_flags(list);
  OnRun(list, g, [o] { return Run(*o, List); });

  auto* create = triggers->add_subcommand(
      "create",
      "A trigger: which events (types, sources, a JSONPath over the payload) go to which webhook, or make which "
      "derived event");
  common_flags(create);
  create->add_option("--name", o->name, "1 to 100 characters, unique in the tenant")->required();
  create->add_option("--description", o->description, "At most 1,000 characters");
  create->add_option("--type", o->types, "A catalog event type to match (repeat for several; none: every type)");
  create->add_option("--source", o->sources, "A catalog source to match (repeat for several; none: every source)");
  create->add_option("--json-path", o->json_path,
                     "A SQL/JSON path over the payload that must select something ($.rowsAffected.double() ? (@ > "
                     "1000))");
  auto* url = create->add_option("--url", o->url, "The webhook: https://host[:port]/path");
  auto* secret =
      create->add_option("--secret-file", o->secret_file,
                         "File holding the HMAC secret, 32 to 256 printable ASCII characters ('-': stdin; default: env "
                         "SLUICE_TRIGGER_SECRET)");
  auto* timeout =
      create->add_option("--timeout-ms", o->timeout_ms, "How long one delivery may take, 100 to 30000 (default 5000)");
  auto* publish = create->add_option("--publish-type", o->publish_type,
                                     "Instead of a webhook: publish a derived event of this type "
                                     "(metadata.profile.due) for each match");
  auto* tmpl = create->add_option("--publish-template-file", o->template_file,
                                  "File holding the derived event's payload template, protobuf JSON with "
                                  "{{event.id}} / {{payload.<name>}} placeholders ('-': stdin)");
  publish->excludes(url)->excludes(secret)->excludes(timeout);
  tmpl->needs(publish);
  url->excludes(publish);
  create->add_flag("--paused", o->paused, "Create it paused");
  OnRun(create, g, [o] { return Run(*o, Create); });

  struct ById {
    const char* name;
    const char* help;
    int (*body)(const TriggersOptions&, v1::TriggerService::Stub&);
  };
  for (const ById& c : {ById{"delete", "Delete a trigger (its deliveries and history go with it)", Delete},
                        ById{"pause", "Pause a trigger: it matches nothing until resumed", Pause},
                        ById{"resume", "Resume a trigger paused by a caller or by failures", Resume}}) {
    auto* sub = triggers->add_subcommand(c.name, c.help);
    common_flags(sub);
    sub->add_option("id", o->id, "The trigger's id")->required();
    OnRun(sub, g, [o, body = c.body] { return Run(*o, body); });
  }

  auto* history = triggers->add_subcommand("history", "A trigger's delivery attempts, newest first");
  common_flags(history);
  history->add_option("id", o->id, "The trigger's id")->required();
  history->add_option("--event-id", o->event_id, "Only the attempts at this event");
  history->add_option("--max", o->limit, "Print at most this many (default: all)")->check(CLI::NonNegativeNumber);
  OnRun(history, g, [o] { return Run(*o, History); });
}

}  // namespace sluice::cli
