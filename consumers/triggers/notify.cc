#include "consumers/triggers/notify.h"

#include <absl/strings/ascii.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/notification.h"

namespace sluice::triggers {

using common::Cat;

absl::Status Notifier::Refresh() {
  if (tokens_path_.empty()) return absl::OkStatus();
  std::ifstream in(tokens_path_, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat("--tokens: cannot read ", tokens_path_));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str() == tokens_text_) return absl::OkStatus();
  v1::TokenFile file;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &file))
    return absl::InvalidArgumentError(Cat("--tokens: ", tokens_path_, " is not a sluice.v1.TokenFile"));
  principals_.assign(file.principals().begin(), file.principals().end());
  tokens_text_ = text.str();
  return absl::OkStatus();
}

std::vector<std::string> Notifier::Approvers(const std::string& tenant, const std::string& required_role,
                                             const std::string& requested_by) const {
  std::vector<std::string> out;
  for (const auto& p : principals_)
    if (authz_.MayDecide(p, tenant, requested_by, required_role).ok()) out.push_back(p.name());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<Requesters> LookUpRequesters(common::PgConnection& conn,
                                            const std::vector<const v1::Envelope*>& events) {
  std::vector<std::string> tenants, ids;
  for (const v1::Envelope* e : events) {
    const std::string& id = e->has_approval_approved()   ? e->approval_approved().approval_id()
                            : e->has_approval_rejected() ? e->approval_rejected().approval_id()
                                                         : std::string();
    if (!contracts::IsUuid(id)) continue;
    tenants.push_back(e->tenant_id());
    ids.push_back(absl::AsciiStrToLower(id));
  }
  Requesters out;
  if (ids.empty()) return out;
  auto r = conn.Exec(
      "SELECT a.tenant_id, a.id::text, a.requested_by FROM mdm_approval a"
      " JOIN unnest($1::text[], $2::uuid[]) AS u(tenant_id, id) ON a.tenant_id = u.tenant_id AND a.id = u.id",
      {common::PgTextArray(tenants), common::PgTextArray(ids)});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->rows(); ++i)
    out[{std::string(r->Get(i, 0)), std::string(r->Get(i, 1))}] = std::string(r->Get(i, 2));
  return out;
}

std::optional<NewDelivery> NotificationFor(const TriggerSpec& sink, const v1::Envelope& e, const Notifier& notifier,
                                           const Requesters& requesters) {
  std::optional<contracts::Notification> n;
  if (e.has_profile_completed() || e.has_data_quality_degraded()) {
    n = contracts::QualityNotification(e, sink.quality_threshold);
  } else if (e.has_approval_created()) {
    const auto& c = e.approval_created();
    n = contracts::ApprovalNotification(
        e, notifier.Approvers(e.tenant_id(), c.required_role(), c.requested_by().actor_id()));
  } else if (e.has_approval_approved() || e.has_approval_rejected()) {
    const std::string& id =
        e.has_approval_approved() ? e.approval_approved().approval_id() : e.approval_rejected().approval_id();
    std::vector<std::string> requester;
    // (Keys as PostgreSQL prints a uuid: lower case.)
    if (auto it = requesters.find({e.tenant_id(), absl::AsciiStrToLower(id)}); it != requesters.end())
      requester.push_back(it->second);
    n = contracts::ApprovalNotification(e, std::move(requester));
  }
  if (!n) return std::nullopt;
  return NewDelivery{
      .tenant_id = e.tenant_id(),
      .trigger_id = sink.id,
      .event_id = n->id,
      .event_type = e.type(),
      .body = sink.kind == TriggerKind::kNotifySlack ? contracts::SlackJson(*n) : contracts::NotificationJson(*n)};
}

}  // namespace sluice::triggers
