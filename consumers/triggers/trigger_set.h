#pragma once
// The triggers sluice-triggers evaluates events against: every active trigger of every
// tenant, read from event_trigger and re-read when the table changed.
#include <absl/status/statusor.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/jsonpath.h"
#include "common/pg.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::triggers {

// event_trigger.kind: a trigger's webhook (the event as a CloudEvent), a trigger that
// publishes a derived event (contracts/publish_template.h), or a notification sink
// (contracts/notification.h: its own JSON, or a Slack message).
enum class TriggerKind { kWebhook, kPublish, kNotifyWebhook, kNotifySlack };

struct TriggerSpec {
  std::string tenant_id;
  std::string id;
  TriggerKind kind = TriggerKind::kWebhook;
  // Sinks: a completed profile scoring below this notifies.
  int quality_threshold = 70;
  std::set<std::string> types;    // empty: every type
  std::set<std::string> sources;  // empty: every source
  std::string json_path;          // as PostgreSQL evaluates it (enum comparisons widened); empty: none
  // json_path compiled for evaluation in memory; null when it has a form only PostgreSQL
  // evaluates (common/jsonpath.h).
  std::shared_ptr<const common::JsonPath> compiled_path;
};

// Where EvaluatePaths answered.
struct PathStats {
  size_t in_memory = 0;    // (event, trigger) pairs evaluated in memory
  size_t in_postgres = 0;  // pairs PostgreSQL evaluated
};

// One event matched against one trigger.
struct Match {
  size_t event;    // index into the batch
  size_t trigger;  // index into TriggerSet::triggers()
};

class TriggerSet {
 public:
  // Payload bytes evaluated per statement.
  static constexpr size_t kStatementBytes = 8 << 20;

  // Reads event_trigger when it changed since the last load (a count, the newest
  // updated_at and the sum of versions tell). Paused triggers are left out. A sink's
  // types are contracts::NotificationTypes(), from every source, without a JSONPath.
  absl::Status Refresh(common::PgConnection& conn);

  const std::vector<TriggerSpec>& triggers() const { return triggers_; }
  size_t size() const { return triggers_.size(); }

  // The triggers of `e`'s tenant whose types and sources `e` satisfies, appended to
  // `out` as matches of event `index` (publishing triggers never match a derived event). Those with a JSONPath still
  // need EvaluatePaths.
  void MatchTypeAndSource(const v1::Envelope& e, size_t index, std::vector<Match>& out) const;

  // Keeps the candidates whose trigger has no JSONPath, or whose JSONPath selects
  // something in the event's payload (`payloads[m.event]`, protobuf JSON): `payload @?
  // path`, the semantics of ListEvents. Paths of the common forms are evaluated in memory
  // with PostgreSQL's answers (common/jsonpath.h); the rest, and payloads jsonb would read
  // differently, or that take more than JsonPath::kDefaultBudget steps on an event, by
  // PostgreSQL in one statement.
  absl::StatusOr<std::vector<Match>> EvaluatePaths(common::PgConnection& conn, const std::vector<Match>& candidates,
                                                   const std::vector<std::string>& payloads,
                                                   PathStats* stats = nullptr) const;

  // Test seam: replaces the loaded triggers.
  void SetForTesting(std::vector<TriggerSpec> triggers);

 private:
  void Index();

  std::string fingerprint_;
  std::vector<TriggerSpec> triggers_;
  // A tenant's triggers by the types they name, and those naming none (every type).
  struct TenantIndex {
    std::map<std::string, std::vector<size_t>, std::less<>> by_type;
    std::vector<size_t> any_type;
  };
  std::map<std::string, TenantIndex, std::less<>> by_tenant_;
};

}  // namespace sluice::triggers
