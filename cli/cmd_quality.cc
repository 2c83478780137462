// sluicectl quality latest|history|worst|job: the profiler's results through the
// gateway's QualityService.
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/gateway_channel.h"
#include "cli/time_flag.h"
#include "common/env.h"
#include "common/strings.h"
#include "contracts/governance.h"
#include "contracts/json.h"
#include "contracts/spellings.h"
#include "sluice/v1/quality_service.grpc.pb.h"

namespace sluice::cli {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

struct QualityOptions {
  GatewayTarget gateway;
  std::string token = common::EnvOr("SLUICE_TOKEN", "");
  std::string tenant, entity_id, key, tier, from, to, job_id;
  int limit = 0;      // worst: how many; history: most profiles in all (0: every one)
  bool json = false;  // JSON lines (protobuf JSON mapping) instead of one line of text each
  int timeout_s = 30;
};

std::unique_ptr<grpc::ClientContext> Context(const QualityOptions& o) { return CallContext(o.token, o.timeout_s); }

int RpcFailed(const grpc::Status& s) { return cli::RpcFailed("quality", s); }

// One line per profile: time, key, tier, score and grade as the database spells them.
void Print(const QualityOptions& o, const v1::QualityProfile& p) {
  if (o.json) {
    auto j = contracts::ToJson(p);
    std::printf("%s\n", j.ok() ? j->c_str() : "{}");
    return;
  }
  const std::string grade =
      contracts::ShortSpelling(*v1::QualityGrade_descriptor()->FindValueByNumber(p.quality_grade()));
  std::printf(
      "%s  %-30s %-6s score %6.2f  grade %s  completeness %6.2f  uniqueness %6.2f  validity %6.2f  rows %lld  "
      "profile %s\n",
      TimeUtil::ToString(p.profiled_at()).c_str(), p.canonical_key().c_str(), contracts::TierDb(p.tier()).c_str(),
      p.quality_score(), grade.c_str(), p.completeness(), p.uniqueness(), p.validity(),
      static_cast<long long>(p.row_count()), p.id().c_str());
}

absl::StatusOr<v1::EntityRef> Entity(const QualityOptions& o, bool required) {
  v1::EntityRef ref;
  if (!o.entity_id.empty() && !o.key.empty()) return absl::InvalidArgumentError("give --entity-id or --key, not both");
  if (required && o.entity_id.empty() && o.key.empty())
    return absl::InvalidArgumentError("--entity-id or --key: required");
  ref.set_entity_id(o.entity_id);
  ref.set_canonical_key(o.key);
  return ref;
}

int Latest(const QualityOptions& o, v1::QualityService::Stub& stub) {
  auto ref = Entity(o, true);
  if (!ref.ok()) return Fail(ref.status());
  v1::GetLatestProfileRequest req;
  req.set_tenant_id(o.tenant);
  *req.mutable_entity() = *ref;
  v1::GetLatestProfileResponse resp;
  auto s = stub.GetLatestProfile(Context(o).get(), req, &resp);
  if (!s.ok()) return RpcFailed(s);
  Print(o, resp.profile());
  return 0;
}

int History(const QualityOptions& o, v1::QualityService::Stub& stub) {
  auto ref = Entity(o, false);
  if (!ref.ok()) return Fail(ref.status());
  v1::ListProfilesRequest req;
  req.set_tenant_id(o.tenant);
  if (!o.entity_id.empty() || !o.key.empty()) *req.mutable_entity() = *ref;
  auto from = ParseTimeFlag("--from", o.from);
  auto to = ParseTimeFlag("--to", o.to);
  if (!from.ok()) return Fail(from.status());
  if (!to.ok()) return Fail(to.status());
  if (*from) *req.mutable_from_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(**from));
  if (*to) *req.mutable_to_time() = TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(**to));
  req.set_limit(200);
  int printed = 0;
  while (true) {
    v1::ListProfilesResponse resp;
    auto s = stub.ListProfiles(Context(o).get(), req, &resp);
    if (!s.ok()) return RpcFailed(s);
    for (const auto& p : resp.profiles()) {
      if (o.limit > 0 && printed >= o.limit) return 0;
      Print(o, p);
      ++printed;
    }
    if (!resp.has_more()) return 0;
    req.set_cursor(resp.next_cursor());
  }
}

int Worst(const QualityOptions& o, v1::QualityService::Stub& stub) {
  v1::ListWorstEntitiesRequest req;
  req.set_tenant_id(o.tenant);
  if (!o.tier.empty()) {
    const auto* v = contracts::FindEnumValue(*v1::Tier_descriptor(), o.tier);
    if (v == nullptr || v->number() == 0)
      return Fail(absl::InvalidArgumentError(Cat("--tier: \"", o.tier, "\" is not a tier (tier1 .. tier5)")));
    req.set_tier(static_cast<v1::Tier>(v->number()));
  }
  req.set_limit(o.limit);
  v1::ListWorstEntitiesResponse resp;
  auto s = stub.ListWorstEntities(Context(o).get(), req, &resp);
  if (!s.ok()) return RpcFailed(s);
  for (const auto& p : resp.profiles()) Print(o, p);
  return 0;
}

int Job(const QualityOptions& o, v1::QualityService::Stub& stub) {
  v1::GetProfileJobRequest req;
  req.set_tenant_id(o.tenant);
  req.set_job_id(o.job_id);
  v1::GetProfileJobResponse resp;
  auto s = stub.GetProfileJob(Context(o).get(), req, &resp);
  if (!s.ok()) return RpcFailed(s);
  auto j = contracts::ToJson(resp.job(), /*pretty=*/!o.json);
  if (!j.ok()) return Fail(j.status());
  std::printf("%s\n", j->c_str());
  return 0;
}

int Run(const QualityOptions& o, int (*body)(const QualityOptions&, v1::QualityService::Stub&)) {
  auto channel = GatewayChannel(o.gateway);
  if (!channel.ok()) return Fail(channel.status());
  auto stub = v1::QualityService::NewStub(*channel);
  return body(o, *stub);
}

}  // namespace

void AddQualityCommand(CLI::App& app, Globals& g) {
  auto o = std::make_shared<QualityOptions>();
  auto* quality = app.add_subcommand("quality", "Data quality the profiler measured, through sluice-gateway");
  quality->require_subcommand(1);
  auto common_flags = [&](CLI::App* c) {
    AddGatewayFlags(*c, o->gateway);
    c->add_option("--token", o->token, "Bearer token (env SLUICE_TOKEN)");
    c->add_option("--tenant", o->tenant, "Tenant to read")->required();
    c->add_option("--timeout", o->timeout_s, "Seconds before a call is abandoned")->capture_default_str();
    c->add_flag("--json", o->json, "JSON lines in the protobuf JSON mapping (TIER_1, QUALITY_GRADE_A)");
  };
  auto entity_flags = [&](CLI::App* c) {
    c->add_option("--entity-id", o->entity_id, "The metadata entry's id");
    c->add_option("--key", o->key, "The metadata entry's canonical key");
  };
  auto* latest = quality->add_subcommand("latest", "The latest profile of one metadata entry");
  common_flags(latest);
  entity_flags(latest);
  OnRun(latest, g, [o] { return Run(*o, Latest); });

  auto* history = quality->add_subcommand("history", "Profiles newest first, of one entry or the whole tenant");
  common_flags(history);
  entity_flags(history);
  history->add_option("--from", o->from, "Only profiles at or after this ISO-8601 time");
  history->add_option("--to", o->to, "Only profiles at or before this ISO-8601 time");
  history->add_option("--max", o->limit, "Print at most this many (default: all)")->check(CLI::NonNegativeNumber);
  OnRun(history, g, [o] { return Run(*o, History); });

  auto* worst = quality->add_subcommand("worst", "Active entries by the score of their latest profile, lowest first");
  common_flags(worst);
  worst->add_option("--tier", o->tier, "Only this tier: tier1 .. tier5 (or TIER_1 .. TIER_5)");
  worst->add_option("-n,--limit", o->limit, "How many, 1 to 100 (default 10)")->check(CLI::Range(1, 100));
  OnRun(worst, g, [o] { return Run(*o, Worst); });

  auto* job = quality->add_subcommand("job", "One profile job: status, attempts, outcome");
  common_flags(job);
  job->add_option("job_id", o->job_id, "The job's id")->required();
  OnRun(job, g, [o] { return Run(*o, Job); });
}

}  // namespace sluice::cli
