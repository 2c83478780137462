#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/pg_pool.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "contracts/validate.h"
#include "gateway/auth.h"
#include "sluice/v1/trigger_service.grpc.pb.h"

namespace sluice::gateway {

// Triggers (event_trigger, migrations 0017 and 0020): a tenant's predicate over its events
// and its action, the webhook each match goes to or the derived event it publishes. Every statement names the tenant
// the Authorizer checked; changes need MayManageTriggers. The webhook secret is written, never read back out.
// Thread-safe; refers to its arguments, which must outlive it. `pool` null: every call is
// FAILED_PRECONDITION.
class TriggerServiceImpl final : public v1::TriggerService::Service {
 public:
  static constexpr int kMaxPerTenant = 100;
  static constexpr size_t kMaxNameChars = 100, kMaxDescriptionChars = 1000;
  static constexpr size_t kMaxJsonPathBytes = 2048, kMaxUrlBytes = 2048;
  static constexpr size_t kMinSecretChars = 32, kMaxSecretChars = 256;
  static constexpr int kDefaultTimeoutMs = 5000, kMinTimeoutMs = 100, kMaxTimeoutMs = 30000;
  static constexpr int kDefaultHistoryPage = 50, kMaxHistoryPage = 500;
  static constexpr size_t kMaxEventIdBytes = 128;
  static constexpr int kMaxSinksPerTenant = 10;
  // A publishing trigger's timeout: how long sluice-triggers waits for the broker.
  static constexpr int kPublishTimeoutMs = 10000;

  struct Options {
    // Accept http:// webhooks to a loopback address (local development and tests).
    bool allow_http_loopback = false;
  };
  TriggerServiceImpl(const TokenStore& tokens, const contracts::Authorizer& authz, common::PgPool* pool,
                     Options options)
      : tokens_(tokens), authz_(authz), pool_(pool), options_(options) {}

  grpc::Status CreateTrigger(grpc::ServerContext*, const v1::CreateTriggerRequest*,
                             v1::CreateTriggerResponse*) override;
  grpc::Status GetTrigger(grpc::ServerContext*, const v1::GetTriggerRequest*, v1::GetTriggerResponse*) override;
  grpc::Status ListTriggers(grpc::ServerContext*, const v1::ListTriggersRequest*, v1::ListTriggersResponse*) override;
  grpc::Status UpdateTrigger(grpc::ServerContext*, const v1::UpdateTriggerRequest*,
                             v1::UpdateTriggerResponse*) override;
  grpc::Status DeleteTrigger(grpc::ServerContext*, const v1::DeleteTriggerRequest*,
                             v1::DeleteTriggerResponse*) override;
  grpc::Status PauseTrigger(grpc::ServerContext*, const v1::PauseTriggerRequest*, v1::PauseTriggerResponse*) override;
  grpc::Status ResumeTrigger(grpc::ServerContext*, const v1::ResumeTriggerRequest*,
                             v1::ResumeTriggerResponse*) override;
  grpc::Status ListTriggerDeliveries(grpc::ServerContext*, const v1::ListTriggerDeliveriesRequest*,
                                     v1::ListTriggerDeliveriesResponse*) override;
  grpc::Status CreateNotificationSink(grpc::ServerContext*, const v1::CreateNotificationSinkRequest*,
                                      v1::CreateNotificationSinkResponse*) override;
  grpc::Status ListNotificationSinks(grpc::ServerContext*, const v1::ListNotificationSinksRequest*,
                                     v1::ListNotificationSinksResponse*) override;
  grpc::Status DeleteNotificationSink(grpc::ServerContext*, const v1::DeleteNotificationSinkRequest*,
                                      v1::DeleteNotificationSinkResponse*) override;
  grpc::Status TestNotificationSink(grpc::ServerContext*, const v1::TestNotificationSinkRequest*,
                                    v1::TestNotificationSinkResponse*) override;

  // The calls without their transport, for a principal the caller authenticated.
  absl::StatusOr<v1::Trigger> Create(const v1::Principal& who, const v1::CreateTriggerRequest& req) const;
  absl::StatusOr<v1::Trigger> Get(const v1::Principal& who, const std::string& tenant, const std::string& id) const;
  absl::StatusOr<v1::ListTriggersResponse> List(const v1::Principal& who, const std::string& tenant) const;
  absl::StatusOr<v1::Trigger> Update(const v1::Principal& who, const v1::UpdateTriggerRequest& req) const;
  absl::Status Delete(const v1::Principal& who, const std::string& tenant, const std::string& id) const;
  absl::StatusOr<v1::Trigger> SetPaused(const v1::Principal& who, const std::string& tenant, const std::string& id,
                                        bool paused) const;

  // A trigger's delivery attempts, newest first (ListTriggerDeliveries).
  absl::StatusOr<v1::ListTriggerDeliveriesResponse> ListDeliveries(const v1::Principal& who,
                                                                   const v1::ListTriggerDeliveriesRequest& req) const;
  // Notification sinks (notification_sinks.cc): rows of event_trigger of kind
  // notify_webhook or notify_slack; the trigger calls above other than pause, resume and
  // the delivery history do not see them.
  absl::StatusOr<v1::NotificationSink> CreateSink(const v1::Principal& who,
                                                  const v1::CreateNotificationSinkRequest& req) const;
  absl::StatusOr<v1::ListNotificationSinksResponse> ListSinks(const v1::Principal& who,
                                                              const std::string& tenant) const;
  absl::Status DeleteSink(const v1::Principal& who, const std::string& tenant, const std::string& id) const;
  // Queues a test notification; its id.
  absl::StatusOr<std::string> TestSink(const v1::Principal& who, const std::string& tenant,
                                       const std::string& id) const;
  // A Slack webhook URL as it may be shown: scheme and host, the rest (the secret) elided.
  static std::string RedactedUrl(std::string_view url);

  // The checks that need no database, every wrong field named at once: name,
  // description, predicate (types and sources in the catalog, JSONPath size), and the
  // action: webhook (URL, secret, timeout; `secret_required`: a create, as an update may
  // keep the secret), or with `publish` its type and payload template (and no webhook).
  static absl::Status CheckFields(const contracts::Catalog& catalog, Options options, const std::string& name,
                                  const std::string& description, const v1::TriggerPredicate& predicate,
                                  const v1::WebhookAction& webhook, bool secret_required,
                                  const v1::PublishAction* publish = nullptr);
  // URL, secret and timeout of `webhook`, a violation per wrong field named `prefix` +
  // "url" / "secret" / "timeout_ms".
  static void CheckWebhook(Options options, const v1::WebhookAction& webhook, bool secret_required,
                           std::string_view prefix, std::vector<contracts::FieldViolation>& v);
  // A webhook URL: https://host[:port][/path] without user info, spaces or controls;
  // http:// only to 127.0.0.1, [::1] or localhost when `allow_http_loopback`. The reason
  // it is refused, or "" when it is fine.
  static std::string UrlProblem(std::string_view url, bool allow_http_loopback);

 private:
  // The tenant `who` may change `id` of (the tenant checked, the role, the id a UUID, a
  // database configured).
  absl::StatusOr<std::string> ForChange(const v1::Principal& who, const std::string& tenant_id,
                                        const std::string& id) const;
  template <class Resp, class Core>
  grpc::Status Unary(grpc::ServerContext* ctx, Resp* resp, Core&& core) const;

  const TokenStore& tokens_;
  const contracts::Authorizer& authz_;
  common::PgPool* pool_;
  const Options options_;
};

}  // namespace sluice::gateway
