#pragma once
// Notification sinks in sluice-triggers: who an approval notification is for, and the
// delivery a sink gets for an event (contracts/notification.h makes the notification).

#include <absl/status/statusor.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/pg.h"
#include "consumers/triggers/delivery_store.h"
#include "consumers/triggers/trigger_set.h"
#include "contracts/authz.h"
#include "sluice/v1/config.pb.h"

namespace sluice::triggers {

// The authorization every event passes before it is matched (its source may emit its
// type), and the principals that may decide an approval, read from the gateway's token
// file. Not thread-safe: the consumer thread owns it.
class Notifier {
 public:
  // `tokens_path` empty: approvers are unknown, so approval.created names only the role.
  Notifier(const contracts::Authorizer& authz, std::string tokens_path)
      : authz_(authz), tokens_path_(std::move(tokens_path)) {}

  // Reads the token file again when its contents changed. A file that does not read or
  // parse keeps the principals read before, and is the error returned.
  absl::Status Refresh();

  const contracts::Authorizer& authz() const { return authz_; }
  // The principals that may decide an approval of `tenant` needing `required_role`
  // requested by `requested_by` (Authorizer::MayDecide), by name, sorted.
  std::vector<std::string> Approvers(const std::string& tenant, const std::string& required_role,
                                     const std::string& requested_by) const;
  // Test seam.
  void SetPrincipalsForTesting(std::vector<v1::Principal> principals) { principals_ = std::move(principals); }

 private:
  const contracts::Authorizer& authz_;
  std::string tokens_path_, tokens_text_;
  std::vector<v1::Principal> principals_;
};

// (tenant, approval id) -> requested_by, from mdm_approval, for the approval decisions
// among `events` (ids that are not UUIDs are left out).
using Requesters = std::map<std::pair<std::string, std::string>, std::string>;
absl::StatusOr<Requesters> LookUpRequesters(common::PgConnection& conn, const std::vector<const v1::Envelope*>& events);

// What notification sink `sink` receives for `e`, or nullopt when `e` does not notify.
std::optional<NewDelivery> NotificationFor(const TriggerSpec& sink, const v1::Envelope& e, const Notifier& notifier,
                                           const Requesters& requesters);

}  // namespace sluice::triggers
