#include "gateway/triggers.h"

#include <absl/strings/ascii.h>
#include <absl/strings/escaping.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/notification.h"
#include "contracts/publish_template.h"
#include "contracts/spellings.h"
#include "contracts/validate.h"
#include "gateway/grpc_status.h"
#include "gateway/request_fields.h"
#include "gateway/saved_views.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using common::PgConnection;
using common::PgResult;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

constexpr char kCols[] =
    "id::text, tenant_id, name, description, array_to_string(types, ','), array_to_string(sources, ','),"
    " json_path, webhook_url, webhook_timeout_ms, webhook_secret <> '', paused, created_by, updated_by,"
    " (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint,"
    " version, (extract(epoch FROM auto_paused_until) * 1000000)::bigint, auto_paused_until > now(), kind,"
    " publish_type, publish_template";

// The kinds of row the trigger calls see (the others are notification sinks).
constexpr char kTriggerKinds[] = "kind IN ('webhook', 'publish')";
constexpr char kSinkKinds[] = "kind IN ('notify_webhook', 'notify_slack')";

v1::Trigger ToTrigger(const PgResult& r, int i) {
  v1::Trigger t;
  t.set_id(std::string(r.Get(i, 0)));
  t.set_tenant_id(std::string(r.Get(i, 1)));
  t.set_name(std::string(r.Get(i, 2)));
  t.set_description(std::string(r.Get(i, 3)));
  // (Catalog names have no comma.)
  for (const auto& type : absl::StrSplit(std::string(r.Get(i, 4)), ',', absl::SkipEmpty()))
    t.mutable_predicate()->add_types(std::string(type));
  for (const auto& source : absl::StrSplit(std::string(r.Get(i, 5)), ',', absl::SkipEmpty()))
    t.mutable_predicate()->add_sources(std::string(source));
  t.mutable_predicate()->set_json_path(std::string(r.Get(i, 6)));
  // PauseTrigger and ResumeTrigger also answer for a notification sink: a Slack sink's URL
  // is its secret.
  t.mutable_webhook()->set_url(r.Get(i, 18) == "notify_slack" ? TriggerServiceImpl::RedactedUrl(r.Get(i, 7))
                                                              : std::string(r.Get(i, 7)));
  t.mutable_webhook()->set_timeout_ms(static_cast<int32_t>(PgInt(r.Get(i, 8))));
  t.set_has_secret(r.Get(i, 9) == "t");
  if (r.Get(i, 18) == "publish") {
    t.clear_webhook();
    t.mutable_publish()->set_type(std::string(r.Get(i, 19)));
    t.mutable_publish()->set_payload_template(std::string(r.Get(i, 20)));
  }
  if (r.Get(i, 10) == "t") {
    t.set_state(v1::TRIGGER_STATE_PAUSED);
  } else if (r.Get(i, 17) == "t") {
    t.set_state(v1::TRIGGER_STATE_AUTO_PAUSED);
    *t.mutable_auto_resume_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 16)));
  } else {
    t.set_state(v1::TRIGGER_STATE_ACTIVE);
  }
  t.set_created_by(std::string(r.Get(i, 11)));
  t.set_updated_by(std::string(r.Get(i, 12)));
  *t.mutable_created_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 13)));
  *t.mutable_updated_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 14)));
  t.set_version(PgInt(r.Get(i, 15)));
  return t;
}

absl::Status CheckId(const std::string& id) {
  if (id.empty()) return Invalid("id", "required");
  if (!contracts::IsUuid(id)) return Invalid("id", "must be a UUID");
  return absl::OkStatus();
}

absl::Status NotFound(const std::string& tenant, const std::string& id) {
  return absl::NotFoundError(Cat("id: tenant ", tenant, " has no trigger ", id));
}

int TimeoutOf(const v1::WebhookAction& w) {
  return w.timeout_ms() == 0 ? TriggerServiceImpl::kDefaultTimeoutMs : w.timeout_ms();
}

// The columns of a trigger's action: a webhook's, or a publishing trigger's (no URL nor
// secret; the timeout bounds the wait for the broker).
struct ActionColumns {
  std::string kind, url, secret, timeout_ms, publish_type, publish_template;
};

ActionColumns ColumnsOf(const v1::WebhookAction& webhook, const v1::PublishAction* publish) {
  if (publish != nullptr)
    return {
        "publish", "", "", Cat(TriggerServiceImpl::kPublishTimeoutMs), publish->type(), publish->payload_template()};
  return {"webhook", webhook.url(), webhook.secret(), Cat(TimeoutOf(webhook)), "", ""};
}

// A JSONPath PostgreSQL accepts; its own words stay in the log.
absl::Status CheckJsonPath(PgConnection& c, const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  // As sluice-triggers runs it: enum comparisons widened to both spellings.
  auto r = c.Exec("SELECT $1::jsonpath, $2::jsonpath", {path, contracts::WidenEnumComparisons(path)});
  if (r.ok() || r.status().code() == absl::StatusCode::kUnavailable) return r.status();
  spdlog::info("gateway: trigger json_path refused: {}", r.status().message());
  return Invalid("predicate.json_path", "not a valid SQL/JSON path expression");
}

// One statement on a pooled connection.
absl::StatusOr<PgResult> Exec(common::PgPool& pool, std::string_view sql,
                              const std::vector<std::optional<std::string>>& params) {
  auto lease = pool.Lease();
  if (!lease.ok()) return lease.status();
  auto r = (*lease)->Exec(sql, params);
  lease->Note(r.status());
  return r;
}

// A unique-name conflict as the caller's error.
absl::Status NameTaken(const absl::Status& s, const std::string& tenant, const std::string& name) {
  if (common::SqlState(s) == "23505")
    return absl::AlreadyExistsError(
        Cat("name: tenant ", tenant, " has a trigger or notification sink named \"", name, "\""));
  return s;
}

}  // namespace

std::string TriggerServiceImpl::UrlProblem(std::string_view url, bool allow_http_loopback) {
  if (url.empty()) return "required";
  if (url.size() > kMaxUrlBytes) return Cat("longer than ", kMaxUrlBytes, " bytes");
  if (std::any_of(url.begin(), url.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F; }))
    return "has a space or a control character";
  const std::string scheme = absl::AsciiStrToLower(std::string(url.substr(0, 8)));
  const bool https = scheme.rfind("https://", 0) == 0;
  const bool http = scheme.rfind("http://", 0) == 0;
  if (!https && !http) return "must be an https:// URL";
  std::string_view rest = url.substr(https ? 8 : 7);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return "must not carry user info (user@host)";
  std::string_view host = authority, port;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return "has an unclosed [IPv6] host";
    port = host.substr(close + 1);
    host = host.substr(0, close + 1);
    if (!port.empty() && port.front() != ':') return "has something after its [IPv6] host that is not a port";
    if (!port.empty()) port.remove_prefix(1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return "has no host";
  int port_number = 0;
  if (!port.empty() && (!absl::SimpleAtoi(std::string(port), &port_number) || port_number < 1 || port_number > 65535))
    return "has a port that is not 1 to 65535";
  if (http) {
    const std::string lower = absl::AsciiStrToLower(std::string(host));
    const bool loopback = lower == "127.0.0.1" || lower == "[::1]" || lower == "localhost";
    if (!allow_http_loopback || !loopback)
      return "must be an https:// URL (http:// only to a loopback address on a gateway with "
             "--trigger-allow-http-loopback)";
  }
  return "";
}

absl::Status TriggerServiceImpl::CheckFields(const contracts::Catalog& catalog, Options options,
                                             const std::string& name, const std::string& description,
                                             const v1::TriggerPredicate& predicate, const v1::WebhookAction& webhook,
                                             bool secret_required, const v1::PublishAction* publish) {
  std::vector<contracts::FieldViolation> v;
  auto add = [&v](const std::string& field, std::string_view what) { v.push_back({field, Cat(field, ": ", what)}); };
  CheckNameAndDescription(name, kMaxNameChars, description, kMaxDescriptionChars, v);
  for (int i = 0; i < predicate.types_size(); ++i)
    if (catalog.Find(predicate.types(i)) == nullptr) add(Cat("predicate.types[", i, "]"), "not a type of the catalog");
  for (int i = 0; i < predicate.sources_size(); ++i)
    if (!catalog.IsKnownSource(predicate.sources(i)))
      add(Cat("predicate.sources[", i, "]"), "not a source of the catalog");
  if (predicate.json_path().size() > kMaxJsonPathBytes)
    add("predicate.json_path", Cat("longer than ", kMaxJsonPathBytes, " bytes"));
  else if (HasControlChar(predicate.json_path(), "\n\t"))
    add("predicate.json_path", "has a control character other than newline and tab");
  if (publish == nullptr) {
    CheckWebhook(options, webhook, secret_required, "webhook.", v);
  } else {
    if (!webhook.url().empty() || !webhook.secret().empty() || webhook.timeout_ms() != 0)
      add("webhook", "must be empty for a trigger that publishes (one action: webhook or publish)");
    const auto violations = contracts::ViolationsOf(
        contracts::CheckPublishAction(catalog, publish->type(), publish->payload_template(), "publish."));
    v.insert(v.end(), violations.begin(), violations.end());
  }
  if (!v.empty()) return contracts::InvalidFields(v);
  return absl::OkStatus();
}

void TriggerServiceImpl::CheckWebhook(Options options, const v1::WebhookAction& webhook, bool secret_required,
                                      std::string_view prefix, std::vector<contracts::FieldViolation>& v) {
  auto add = [&v, prefix](std::string_view name, std::string_view what) {
    const std::string field = Cat(prefix, name);
    v.push_back({field, Cat(field, ": ", what)});
  };
  if (const std::string problem = UrlProblem(webhook.url(), options.allow_http_loopback); !problem.empty())
    add("url", problem);
  const std::string& secret = webhook.secret();
  if (secret.empty()) {
    if (secret_required) add("secret", "required: the key deliveries are signed with (HMAC-SHA256)");
  } else if (secret.size() < kMinSecretChars || secret.size() > kMaxSecretChars) {
    add("secret", Cat("must be ", kMinSecretChars, " to ", kMaxSecretChars, " characters, not ", secret.size()));
  } else if (std::any_of(secret.begin(), secret.end(), [](char c) { return c < 0x21 || c > 0x7E; })) {
    add("secret", "must be printable ASCII without spaces");
  }
  if (webhook.timeout_ms() != 0 && (webhook.timeout_ms() < kMinTimeoutMs || webhook.timeout_ms() > kMaxTimeoutMs))
    add("timeout_ms", Cat("must be ", kMinTimeoutMs, " to ", kMaxTimeoutMs, " (0: ", kDefaultTimeoutMs, ")"));
}

absl::StatusOr<std::string> TriggerServiceImpl::ForChange(const v1::Principal& who, const std::string& tenant_id,
                                                          const std::string& id) const {
  auto tenant = SavedViews::TenantOf(authz_, who, tenant_id);
  if (!tenant.ok()) return tenant.status();
  if (auto s = authz_.MayManageTriggers(who, *tenant); !s.ok()) return s;
  if (auto s = CheckId(id); !s.ok()) return s;
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  return tenant;
}

namespace {

absl::Status SinkNotFound(const std::string& tenant, const std::string& id) {
  return absl::NotFoundError(Cat("id: tenant ", tenant, " has no notification sink ", id));
}

// DeleteTrigger and DeleteNotificationSink: each finds only its own kind of row.
// Its history goes with it (a foreign key), and its queued deliveries, deleted after the
// trigger row: a queueing statement holding the trigger's lock is waited for, and what it
// queued is deleted too (migration 0021).
absl::Status DeleteRow(common::PgPool& pool, const v1::Principal& who, const std::string& tenant, const std::string& id,
                       bool sink) {
  auto deleted = common::InTransaction<bool>(pool, [&](PgConnection& c) -> absl::StatusOr<bool> {
    auto r = c.Exec(Cat("DELETE FROM event_trigger WHERE tenant_id = $1 AND id = $2::uuid AND ",
                        sink ? kSinkKinds : kTriggerKinds, " RETURNING 1"),
                    {tenant, id});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return false;
    auto d = c.Exec("DELETE FROM trigger_delivery WHERE tenant_id = $1 AND trigger_id = $2::uuid", {tenant, id});
    if (!d.ok()) return d.status();
    return true;
  });
  if (!deleted.ok()) return deleted.status();
  if (!*deleted) return sink ? SinkNotFound(tenant, id) : NotFound(tenant, id);
  spdlog::info("gateway: {} {} of tenant {} deleted by {}", sink ? "notification sink" : "trigger", id, tenant,
               who.name());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Trigger> TriggerServiceImpl::Create(const v1::Principal& who,
                                                       const v1::CreateTriggerRequest& req) const {
  auto tenant = SavedViews::TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = authz_.MayManageTriggers(who, *tenant); !s.ok()) return s;
  const v1::PublishAction* publish = req.has_publish() ? &req.publish() : nullptr;
  if (auto s = CheckFields(authz_.catalog(), options_, req.name(), req.description(), req.predicate(), req.webhook(),
                           /*secret_required=*/true, publish);
      !s.ok())
    return s;
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  const std::string id = contracts::NewUuidV7();
  const ActionColumns action = ColumnsOf(req.webhook(), publish);
  auto created = common::InTransaction<v1::Trigger>(*pool_, [&](PgConnection& c) -> absl::StatusOr<v1::Trigger> {
    if (auto s = CheckJsonPath(c, req.predicate().json_path()); !s.ok()) return s;
    if (auto r = c.Exec("SELECT pg_advisory_xact_lock(hashtext('event_trigger'), hashtext($1))", {*tenant}); !r.ok())
      return r.status();
    auto n = c.Exec(Cat("SELECT count(*) FROM event_trigger WHERE tenant_id = $1 AND ", kTriggerKinds), {*tenant});
    if (!n.ok()) return n.status();
    if (PgInt(n->Get(0, 0)) >= kMaxPerTenant)
      return absl::ResourceExhaustedError(
          Cat("tenant ", *tenant, " has ", kMaxPerTenant, " triggers, the most it may keep"));
    const auto& p = req.predicate();
    auto r = c.Exec(Cat("INSERT INTO event_trigger (tenant_id, id, name, description, types, sources, json_path,"
                        " webhook_url, webhook_secret, webhook_timeout_ms, paused, created_by, updated_by, kind,"
                        " publish_type, publish_template)"
                        " VALUES ($1, $2::uuid, $3, $4, $5::text[], $6::text[], $7, $8, $9, $10::int, $11, $12, $12,"
                        " $13, $14, $15) RETURNING ",
                        kCols),
                    {*tenant, id, req.name(), req.description(), common::PgTextArray(p.types()),
                     common::PgTextArray(p.sources()), p.json_path(), action.url, action.secret, action.timeout_ms,
                     req.paused() ? "t" : "f", who.name(), action.kind, action.publish_type, action.publish_template});
    if (!r.ok()) return NameTaken(r.status(), *tenant, req.name());
    return ToTrigger(*r, 0);
  });
  if (created.ok())
    spdlog::info("gateway: trigger {} \"{}\" of tenant {} created by {}", created->id(), created->name(), *tenant,
                 who.name());
  return created;
}

absl::StatusOr<v1::Trigger> TriggerServiceImpl::Get(const v1::Principal& who, const std::string& tenant_id,
                                                    const std::string& id) const {
  auto tenant = SavedViews::TenantOf(authz_, who, tenant_id);
  if (!tenant.ok()) return tenant.status();
  if (auto s = CheckId(id); !s.ok()) return s;
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  auto r = Exec(*pool_,
                Cat("SELECT ", kCols, " FROM event_trigger WHERE tenant_id = $1 AND id = $2::uuid AND ", kTriggerKinds),
                {*tenant, id});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound(*tenant, id);
  return ToTrigger(*r, 0);
}

absl::StatusOr<v1::ListTriggersResponse> TriggerServiceImpl::List(const v1::Principal& who,
                                                                  const std::string& tenant_id) const {
  auto tenant = SavedViews::TenantOf(authz_, who, tenant_id);
  if (!tenant.ok()) return tenant.status();
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  auto r = Exec(*pool_,
                Cat("SELECT ", kCols, " FROM event_trigger WHERE tenant_id = $1 AND ", kTriggerKinds,
                    " ORDER BY name, id LIMIT ", kMaxPerTenant),
                {*tenant});
  if (!r.ok()) return r.status();
  v1::ListTriggersResponse out;
  for (int i = 0; i < r->rows(); ++i) *out.add_triggers() = ToTrigger(*r, i);
  return out;
}

absl::StatusOr<v1::Trigger> TriggerServiceImpl::Update(const v1::Principal& who,
                                                       const v1::UpdateTriggerRequest& req) const {
  auto tenant = SavedViews::TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = authz_.MayManageTriggers(who, *tenant); !s.ok()) return s;
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  const v1::PublishAction* publish = req.has_publish() ? &req.publish() : nullptr;
  if (auto s = CheckFields(authz_.catalog(), options_, req.name(), req.description(), req.predicate(), req.webhook(),
                           /*secret_required=*/false, publish);
      !s.ok())
    return s;
  const ActionColumns action = ColumnsOf(req.webhook(), publish);
  if (req.expected_version() < 0) return Invalid("expected_version", "must not be negative");
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  return common::InTransaction<v1::Trigger>(*pool_, [&](PgConnection& c) -> absl::StatusOr<v1::Trigger> {
    if (auto s = CheckJsonPath(c, req.predicate().json_path()); !s.ok()) return s;
    const auto& p = req.predicate();
    // The secret stays when none is given ($9 empty).
    auto r =
        c.Exec(Cat("UPDATE event_trigger SET name = $3, description = $4, types = $5::text[],"
                   " sources = $6::text[], json_path = $7, webhook_url = $8,"
                   " webhook_secret = CASE WHEN $9 = '' THEN webhook_secret ELSE $9 END,"
                   " webhook_timeout_ms = $10::int, publish_type = $14, publish_template = $15,"
                   " updated_by = $11, updated_at = now(), version = version + 1"
                   " WHERE tenant_id = $1 AND id = $2::uuid AND kind = $13 AND ($12::bigint = 0 OR version "
                   "= $12::bigint)"
                   " RETURNING ",
                   kCols),
               {*tenant, req.id(), req.name(), req.description(), common::PgTextArray(p.types()),
                common::PgTextArray(p.sources()), p.json_path(), action.url, action.secret, action.timeout_ms,
                who.name(), Cat(req.expected_version()), action.kind, action.publish_type, action.publish_template});
    if (!r.ok()) return NameTaken(r.status(), *tenant, req.name());
    if (r->rows() == 1) return ToTrigger(*r, 0);
    auto exists = c.Exec(
        Cat("SELECT version, kind FROM event_trigger WHERE tenant_id = $1 AND id = $2::uuid AND ", kTriggerKinds),
        {*tenant, req.id()});
    if (!exists.ok()) return exists.status();
    if (exists->rows() == 0) return NotFound(*tenant, req.id());
    if (exists->Get(0, 1) != action.kind)
      return publish != nullptr
                 ? Invalid("publish", Cat("trigger ", req.id(), " calls a webhook; the kind of its action stays"))
                 : Invalid("webhook", Cat("trigger ", req.id(), " publishes a derived event; give its publish action"));
    return absl::FailedPreconditionError(
        Cat("expected_version: the trigger is at version ", exists->Get(0, 0), ", not ", req.expected_version()));
  });
}

absl::Status TriggerServiceImpl::Delete(const v1::Principal& who, const std::string& tenant_id,
                                        const std::string& id) const {
  auto tenant = ForChange(who, tenant_id, id);
  if (!tenant.ok()) return tenant.status();
  return DeleteRow(*pool_, who, *tenant, id, /*sink=*/false);
}

absl::StatusOr<v1::Trigger> TriggerServiceImpl::SetPaused(const v1::Principal& who, const std::string& tenant_id,
                                                          const std::string& id, bool paused) const {
  auto tenant = ForChange(who, tenant_id, id);
  if (!tenant.ok()) return tenant.status();
  auto r = Exec(*pool_,
                Cat("UPDATE event_trigger SET paused = $3, updated_by = $4, updated_at = now(),"
                    " auto_paused_until = CASE WHEN $3 THEN auto_paused_until ELSE least(auto_paused_until, now()) END,"
                    " version = version + 1 WHERE tenant_id = $1 AND id = $2::uuid RETURNING ",
                    kCols),
                {*tenant, id, paused ? "t" : "f", who.name()});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return NotFound(*tenant, id);
  return ToTrigger(*r, 0);
}

namespace {

// A history cursor: the last attempt of the page (attempted_at in microseconds, event id,
// attempt), base64url so it reads as opaque.
std::string EncodeCursor(std::string_view micros, std::string_view event_id, std::string_view attempt) {
  return absl::WebSafeBase64Escape(Cat(micros, "|", event_id, "|", attempt));
}

struct HistoryCursor {
  std::string micros, event_id, attempt;
};

absl::StatusOr<HistoryCursor> DecodeCursor(const std::string& cursor) {
  auto bad = Invalid("cursor", "not a cursor this API returned");
  std::string raw;
  if (cursor.size() > 400 || !absl::WebSafeBase64Unescape(cursor, &raw)) return bad;
  std::vector<std::string> parts = absl::StrSplit(raw, '|');
  if (parts.size() != 3) return bad;
  int64_t micros = 0;
  int attempt = 0;
  if (!absl::SimpleAtoi(parts[0], &micros) || !absl::SimpleAtoi(parts[2], &attempt) || attempt < 1 ||
      parts[1].empty() || parts[1].size() > TriggerServiceImpl::kMaxEventIdBytes)
    return bad;
  return HistoryCursor{Cat(micros), parts[1], Cat(attempt)};
}

v1::DeliveryOutcome OutcomeOf(std::string_view s) {
  if (s == "delivered") return v1::DELIVERY_OUTCOME_DELIVERED;
  if (s == "retry") return v1::DELIVERY_OUTCOME_RETRY;
  if (s == "failed") return v1::DELIVERY_OUTCOME_FAILED;
  if (s == "interrupted") return v1::DELIVERY_OUTCOME_INTERRUPTED;
  return v1::DELIVERY_OUTCOME_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<v1::ListTriggerDeliveriesResponse> TriggerServiceImpl::ListDeliveries(
    const v1::Principal& who, const v1::ListTriggerDeliveriesRequest& req) const {
  auto tenant = SavedViews::TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (req.trigger_id().empty()) return Invalid("trigger_id", "required");
  if (!contracts::IsUuid(req.trigger_id())) return Invalid("trigger_id", "must be a UUID");
  if (req.event_id().size() > kMaxEventIdBytes)
    return Invalid("event_id", Cat("longer than ", kMaxEventIdBytes, " bytes"));
  if (req.page_size() < 0 || req.page_size() > kMaxHistoryPage)
    return Invalid("page_size", Cat("must be 0 to ", kMaxHistoryPage));
  const int page = req.page_size() == 0 ? kDefaultHistoryPage : req.page_size();
  std::optional<HistoryCursor> after;
  if (!req.cursor().empty()) {
    auto c = DecodeCursor(req.cursor());
    if (!c.ok()) return c.status();
    after = *std::move(c);
  }
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  auto exists =
      Exec(*pool_, "SELECT 1 FROM event_trigger WHERE tenant_id = $1 AND id = $2::uuid", {*tenant, req.trigger_id()});
  if (!exists.ok()) return exists.status();
  if (exists->rows() == 0)
    return absl::NotFoundError(
        Cat("trigger_id: tenant ", *tenant, " has no trigger or notification sink ", req.trigger_id()));
  // One more row than the page tells whether another page follows.
  auto r =
      Exec(*pool_,
           Cat("SELECT event_id, attempt, (extract(epoch FROM attempted_at) * 1000000)::bigint,"
               " coalesce(status_code, 0), error, latency_ms, outcome"
               " FROM trigger_delivery_attempt WHERE tenant_id = $1 AND trigger_id = $2::uuid"
               " AND ($3 = '' OR event_id = $3)"
               " AND ($4::bigint IS NULL OR (attempted_at, event_id, attempt) <"
               " (to_timestamp($4::bigint / 1000000.0), $5, $6::int))"
               " ORDER BY attempted_at DESC, event_id DESC, attempt DESC LIMIT ",
               page + 1),
           {*tenant, req.trigger_id(), req.event_id(), after ? std::optional<std::string>(after->micros) : std::nullopt,
            after ? after->event_id : std::string(), after ? after->attempt : std::string("1")});
  if (!r.ok()) return r.status();
  v1::ListTriggerDeliveriesResponse out;
  const int n = std::min(r->rows(), page);
  for (int i = 0; i < n; ++i) {
    v1::DeliveryAttempt* a = out.add_attempts();
    a->set_trigger_id(req.trigger_id());
    a->set_event_id(std::string(r->Get(i, 0)));
    a->set_attempt(static_cast<int32_t>(PgInt(r->Get(i, 1))));
    *a->mutable_attempted_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r->Get(i, 2)));
    a->set_status_code(static_cast<int32_t>(PgInt(r->Get(i, 3))));
    a->set_error(std::string(r->Get(i, 4)));
    a->set_latency_ms(static_cast<int32_t>(PgInt(r->Get(i, 5))));
    a->set_outcome(OutcomeOf(r->Get(i, 6)));
  }
  if (r->rows() > page) out.set_next_cursor(EncodeCursor(r->Get(n - 1, 2), r->Get(n - 1, 0), r->Get(n - 1, 1)));
  return out;
}

// ---- notification sinks ----

namespace {

constexpr char kSinkCols[] =
    "id::text, tenant_id, name, kind, webhook_url, webhook_secret <> '', quality_threshold, paused,"
    " (extract(epoch FROM auto_paused_until) * 1000000)::bigint, auto_paused_until > now(), created_by,"
    " (extract(epoch FROM created_at) * 1000000)::bigint";

v1::NotificationSink ToSink(const PgResult& r, int i) {
  v1::NotificationSink s;
  s.set_id(std::string(r.Get(i, 0)));
  s.set_tenant_id(std::string(r.Get(i, 1)));
  s.set_name(std::string(r.Get(i, 2)));
  const bool slack = r.Get(i, 3) == "notify_slack";
  s.set_kind(slack ? v1::NOTIFICATION_SINK_KIND_SLACK : v1::NOTIFICATION_SINK_KIND_WEBHOOK);
  s.set_url(slack ? TriggerServiceImpl::RedactedUrl(r.Get(i, 4)) : std::string(r.Get(i, 4)));
  s.set_has_secret(!slack && r.Get(i, 5) == "t");
  s.set_quality_threshold(static_cast<int32_t>(PgInt(r.Get(i, 6))));
  if (r.Get(i, 7) == "t") {
    s.set_state(v1::TRIGGER_STATE_PAUSED);
  } else if (r.Get(i, 9) == "t") {
    s.set_state(v1::TRIGGER_STATE_AUTO_PAUSED);
    *s.mutable_auto_resume_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 8)));
  } else {
    s.set_state(v1::TRIGGER_STATE_ACTIVE);
  }
  s.set_created_by(std::string(r.Get(i, 10)));
  *s.mutable_created_at() = TimeUtil::MicrosecondsToTimestamp(PgInt(r.Get(i, 11)));
  return s;
}

}  // namespace

std::string TriggerServiceImpl::RedactedUrl(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "…";
  const size_t path = url.find_first_of("/?#", scheme + 3);
  return Cat(url.substr(0, path == std::string_view::npos ? url.size() : path), "/…");
}

absl::StatusOr<v1::NotificationSink> TriggerServiceImpl::CreateSink(
    const v1::Principal& who, const v1::CreateNotificationSinkRequest& req) const {
  auto tenant = SavedViews::TenantOf(authz_, who, req.tenant_id());
  if (!tenant.ok()) return tenant.status();
  if (auto s = authz_.MayManageTriggers(who, *tenant); !s.ok()) return s;
  const bool slack = req.kind() == v1::NOTIFICATION_SINK_KIND_SLACK;
  std::vector<contracts::FieldViolation> v;
  auto add = [&v](const std::string& field, std::string_view what) { v.push_back({field, Cat(field, ": ", what)}); };
  if (req.kind() != v1::NOTIFICATION_SINK_KIND_WEBHOOK && !slack)
    add("kind", "must be NOTIFICATION_SINK_KIND_WEBHOOK or NOTIFICATION_SINK_KIND_SLACK");
  if (req.quality_threshold() < 0 || req.quality_threshold() > 100)
    add("quality_threshold", Cat("must be 1 to 100 (0: ", contracts::kDefaultQualityThreshold, ")"));
  // Name, URL, secret and timeout as for a trigger's webhook (a Slack sink has no secret).
  // A Slack URL is a secret: a reason names the field, never echoes the value.
  v1::WebhookAction webhook;
  webhook.set_url(req.url());
  webhook.set_secret(req.secret());
  webhook.set_timeout_ms(req.timeout_ms());
  CheckNameAndDescription(req.name(), kMaxNameChars, "", kMaxDescriptionChars, v);
  CheckWebhook(options_, webhook, /*secret_required=*/!slack, "", v);
  if (slack && !req.secret().empty())
    add("secret", "must be empty for a Slack sink (its URL is the secret; Slack checks no signature)");
  if (!v.empty()) return contracts::InvalidFields(v);
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  const std::string id = contracts::NewUuidV7();
  const int threshold =
      req.quality_threshold() == 0 ? contracts::kDefaultQualityThreshold : static_cast<int>(req.quality_threshold());
  auto created =
      common::InTransaction<v1::NotificationSink>(*pool_, [&](PgConnection& c) -> absl::StatusOr<v1::NotificationSink> {
        if (auto r = c.Exec("SELECT pg_advisory_xact_lock(hashtext('event_trigger'), hashtext($1))", {*tenant});
            !r.ok())
          return r.status();
        auto n = c.Exec(Cat("SELECT count(*) FROM event_trigger WHERE tenant_id = $1 AND ", kSinkKinds), {*tenant});
        if (!n.ok()) return n.status();
        if (PgInt(n->Get(0, 0)) >= kMaxSinksPerTenant)
          return absl::ResourceExhaustedError(
              Cat("tenant ", *tenant, " has ", kMaxSinksPerTenant, " notification sinks, the most it may keep"));
        auto r = c.Exec(Cat("INSERT INTO event_trigger (tenant_id, id, name, kind, quality_threshold, webhook_url,"
                            " webhook_secret, webhook_timeout_ms, created_by, updated_by)"
                            " VALUES ($1, $2::uuid, $3, $4, $5::int, $6, $7, $8::int, $9, $9) RETURNING ",
                            kSinkCols),
                        {*tenant, id, req.name(), slack ? "notify_slack" : "notify_webhook", Cat(threshold), req.url(),
                         req.secret(), Cat(TimeoutOf(webhook)), who.name()});
        if (!r.ok()) return NameTaken(r.status(), *tenant, req.name());
        return ToSink(*r, 0);
      });
  if (created.ok())
    spdlog::info("gateway: notification sink {} \"{}\" ({}) of tenant {} created by {}", created->id(), created->name(),
                 slack ? "slack" : "webhook", *tenant, who.name());
  return created;
}

absl::StatusOr<v1::ListNotificationSinksResponse> TriggerServiceImpl::ListSinks(const v1::Principal& who,
                                                                                const std::string& tenant_id) const {
  auto tenant = SavedViews::TenantOf(authz_, who, tenant_id);
  if (!tenant.ok()) return tenant.status();
  if (pool_ == nullptr) return absl::FailedPreconditionError("TriggerService: this gateway has no --pg-dsn");
  auto r = Exec(*pool_,
                Cat("SELECT ", kSinkCols, " FROM event_trigger WHERE tenant_id = $1 AND ", kSinkKinds,
                    " ORDER BY name, id LIMIT ", kMaxSinksPerTenant),
                {*tenant});
  if (!r.ok()) return r.status();
  v1::ListNotificationSinksResponse out;
  for (int i = 0; i < r->rows(); ++i) *out.add_sinks() = ToSink(*r, i);
  return out;
}

absl::Status TriggerServiceImpl::DeleteSink(const v1::Principal& who, const std::string& tenant_id,
                                            const std::string& id) const {
  auto tenant = ForChange(who, tenant_id, id);
  if (!tenant.ok()) return tenant.status();
  return DeleteRow(*pool_, who, *tenant, id, /*sink=*/true);
}

absl::StatusOr<std::string> TriggerServiceImpl::TestSink(const v1::Principal& who, const std::string& tenant_id,
                                                         const std::string& id) const {
  auto tenant = ForChange(who, tenant_id, id);
  if (!tenant.ok()) return tenant.status();
  auto sink =
      Exec(*pool_,
           Cat("SELECT kind, name, paused, auto_paused_until > now(), auto_paused_until::text FROM event_trigger"
               " WHERE tenant_id = $1 AND id = $2::uuid AND ",
               kSinkKinds),
           {*tenant, id});
  if (!sink.ok()) return sink.status();
  if (sink->rows() == 0) return SinkNotFound(*tenant, id);
  if (sink->Get(0, 2) == "t")
    return absl::FailedPreconditionError(Cat("id: notification sink ", id, " is paused; resume it first"));
  if (sink->Get(0, 3) == "t")
    return absl::FailedPreconditionError(Cat("id: notification sink ", id, " failed too often and is paused until ",
                                             sink->Get(0, 4), "; resume it first"));
  const std::string notification_id = Cat("test-", contracts::NewUuidV7());
  const auto n = contracts::TestNotification(*tenant, notification_id, sink->Get(0, 1));
  const std::string body = sink->Get(0, 0) == "notify_slack" ? contracts::SlackJson(n) : contracts::NotificationJson(n);
  // Only while the sink exists, which it locks (migration 0021).
  auto r = Exec(*pool_,
                "INSERT INTO trigger_delivery (tenant_id, trigger_id, event_id, event_type, body)"
                " SELECT $1, t.id, $3, 'notification.test', $4 FROM event_trigger t"
                " WHERE t.tenant_id = $1 AND t.id = $2::uuid FOR KEY SHARE",
                {*tenant, id, notification_id, body});
  if (!r.ok()) return r.status();
  if (r->affected() == 0) return SinkNotFound(*tenant, id);
  spdlog::info("gateway: test notification {} queued for sink {} of tenant {} by {}", notification_id, id, *tenant,
               who.name());
  return notification_id;
}

template <class Resp, class Core>
grpc::Status TriggerServiceImpl::Unary(grpc::ServerContext* ctx, Resp* resp, Core&& core) const {
  auto who = tokens_.Authenticate(*ctx);
  if (!who.ok()) return ToGrpcStatus(who.status());
  return ToGrpcStatus(core(**who, *resp));
}

grpc::Status TriggerServiceImpl::CreateTrigger(grpc::ServerContext* ctx, const v1::CreateTriggerRequest* req,
                                               v1::CreateTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::CreateTriggerResponse& out) -> absl::Status {
    auto t = Create(who, *req);
    if (!t.ok()) return t.status();
    *out.mutable_trigger() = *std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::GetTrigger(grpc::ServerContext* ctx, const v1::GetTriggerRequest* req,
                                            v1::GetTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::GetTriggerResponse& out) -> absl::Status {
    auto t = Get(who, req->tenant_id(), req->id());
    if (!t.ok()) return t.status();
    *out.mutable_trigger() = *std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::ListTriggers(grpc::ServerContext* ctx, const v1::ListTriggersRequest* req,
                                              v1::ListTriggersResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::ListTriggersResponse& out) -> absl::Status {
    auto l = List(who, req->tenant_id());
    if (!l.ok()) return l.status();
    out = *std::move(l);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::UpdateTrigger(grpc::ServerContext* ctx, const v1::UpdateTriggerRequest* req,
                                               v1::UpdateTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::UpdateTriggerResponse& out) -> absl::Status {
    auto t = Update(who, *req);
    if (!t.ok()) return t.status();
    *out.mutable_trigger() = *std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::DeleteTrigger(grpc::ServerContext* ctx, const v1::DeleteTriggerRequest* req,
                                               v1::DeleteTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::DeleteTriggerResponse&) -> absl::Status {
    return Delete(who, req->tenant_id(), req->id());
  });
}

grpc::Status TriggerServiceImpl::PauseTrigger(grpc::ServerContext* ctx, const v1::PauseTriggerRequest* req,
                                              v1::PauseTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::PauseTriggerResponse& out) -> absl::Status {
    auto t = SetPaused(who, req->tenant_id(), req->id(), true);
    if (!t.ok()) return t.status();
    *out.mutable_trigger() = *std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::ResumeTrigger(grpc::ServerContext* ctx, const v1::ResumeTriggerRequest* req,
                                               v1::ResumeTriggerResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::ResumeTriggerResponse& out) -> absl::Status {
    auto t = SetPaused(who, req->tenant_id(), req->id(), false);
    if (!t.ok()) return t.status();
    *out.mutable_trigger() = *std::move(t);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::ListTriggerDeliveries(grpc::ServerContext* ctx,
                                                       const v1::ListTriggerDeliveriesRequest* req,
                                                       v1::ListTriggerDeliveriesResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::ListTriggerDeliveriesResponse& out) -> absl::Status {
    auto l = ListDeliveries(who, *req);
    if (!l.ok()) return l.status();
    out = *std::move(l);
    return absl::OkStatus();
  });
}

}  // namespace sluice::gateway

namespace sluice::gateway {

grpc::Status TriggerServiceImpl::CreateNotificationSink(grpc::ServerContext* ctx,
                                                        const v1::CreateNotificationSinkRequest* req,
                                                        v1::CreateNotificationSinkResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::CreateNotificationSinkResponse& out) -> absl::Status {
    auto s = CreateSink(who, *req);
    if (!s.ok()) return s.status();
    *out.mutable_sink() = *std::move(s);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::ListNotificationSinks(grpc::ServerContext* ctx,
                                                       const v1::ListNotificationSinksRequest* req,
                                                       v1::ListNotificationSinksResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::ListNotificationSinksResponse& out) -> absl::Status {
    auto l = ListSinks(who, req->tenant_id());
    if (!l.ok()) return l.status();
    out = *std::move(l);
    return absl::OkStatus();
  });
}

grpc::Status TriggerServiceImpl::DeleteNotificationSink(grpc::ServerContext* ctx,
                                                        const v1::DeleteNotificationSinkRequest* req,
                                                        v1::DeleteNotificationSinkResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::DeleteNotificationSinkResponse&) -> absl::Status {
    return DeleteSink(who, req->tenant_id(), req->id());
  });
}

grpc::Status TriggerServiceImpl::TestNotificationSink(grpc::ServerContext* ctx,
                                                      const v1::TestNotificationSinkRequest* req,
                                                      v1::TestNotificationSinkResponse* resp) {
  return Unary(ctx, resp, [&](const v1::Principal& who, v1::TestNotificationSinkResponse& out) -> absl::Status {
    auto id = TestSink(who, req->tenant_id(), req->id());
    if (!id.ok()) return id.status();
    out.set_notification_id(*std::move(id));
    return absl::OkStatus();
  });
}

}  // namespace sluice::gateway
