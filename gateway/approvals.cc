#include "gateway/approvals.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/governance.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/approval_payload.h"
#include "outbox/outbox.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using common::PgConnection;
using contracts::ApprovalStatusDb;
using contracts::ApprovalStatusFromDb;
using contracts::EntityTypeDb;
using contracts::EntityTypeFromDb;
using contracts::LaneDb;
using contracts::LaneFromDb;
using contracts::TierDb;
using contracts::TierFromDb;
using google::protobuf::Struct;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

absl::Status CheckTenant(const contracts::Authorizer& authz, const v1::Principal& who, const std::string& tenant) {
  if (tenant.empty()) return Invalid("tenant_id", "required");
  if (!contracts::IsValidTenantId(tenant)) return Invalid("tenant_id", "not a valid tenant id");
  return authz.MayActFor(who, tenant);
}

// The decider holds the tenant and the role the policy names for the approval's entity
// type and tier today (not the role stored at creation), and is not the requester.
absl::Status MayDecide(const contracts::Authorizer& authz, const v1::Principal& who, const v1::Approval& a) {
  return authz.MayDecide(who, a.tenant_id(), a.requested_by(), authz.RequiredRole(a.entity_type(), a.tier()));
}

absl::Status CheckId(const std::string& id) {
  if (!contracts::IsUuid(id)) return Invalid("id", "must be a UUID");
  return absl::OkStatus();
}

google::protobuf::Timestamp Micros(std::string_view v) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(std::stoll(std::string(v)));
}

constexpr char kCols[] =
    "id::text, tenant_id, entity_type, coalesce(entity_id::text, ''), coalesce(entity_key, ''), tier, lane,"
    " payload::text, coalesce(current_state::text, ''), status, coalesce(decision_reason, ''), requested_by,"
    " coalesce(decided_by, ''), (extract(epoch FROM requested_at) * 1000000)::bigint,"
    " coalesce((extract(epoch FROM decided_at) * 1000000)::bigint, 0), required_role,"
    " coalesce(created_event_id::text, ''), coalesce(traceparent, '')";

struct Row {
  v1::Approval approval;
  std::string created_event_id;
  std::string traceparent;  // CreateApproval's
};

Row ToRow(const common::PgResult& r, int i) {
  Row row;
  v1::Approval& a = row.approval;
  a.set_id(std::string(r.Get(i, 0)));
  a.set_tenant_id(std::string(r.Get(i, 1)));
  a.set_entity_type(EntityTypeFromDb(r.Get(i, 2)));
  a.set_entity_id(std::string(r.Get(i, 3)));
  a.set_entity_key(std::string(r.Get(i, 4)));
  a.set_tier(TierFromDb(r.Get(i, 5)));
  a.set_lane(LaneFromDb(r.Get(i, 6)));
  (void)contracts::FromJson(r.Get(i, 7), *a.mutable_payload());
  if (!r.Get(i, 8).empty() && r.Get(i, 8) != "null") (void)contracts::FromJson(r.Get(i, 8), *a.mutable_current_state());
  a.set_status(ApprovalStatusFromDb(r.Get(i, 9)));
  a.set_decision_reason(std::string(r.Get(i, 10)));
  a.set_requested_by(std::string(r.Get(i, 11)));
  a.set_decided_by(std::string(r.Get(i, 12)));
  *a.mutable_requested_at() = Micros(r.Get(i, 13));
  if (r.Get(i, 14) != "0") *a.mutable_decided_at() = Micros(r.Get(i, 14));
  a.set_required_role(std::string(r.Get(i, 15)));
  row.created_event_id = std::string(r.Get(i, 16));
  row.traceparent = std::string(r.Get(i, 17));
  return row;
}

v1::Actor Human(const v1::Principal& who) {
  v1::Actor a;
  a.set_actor_id(who.name());
  a.set_actor_type(v1::ACTOR_TYPE_HUMAN);
  return a;
}

// `trace`: the traceparent of what caused the event; the event gets a child span of it.
v1::Envelope Event(const v1::Approval& a, const std::string& cause, const std::string& trace) {
  v1::Envelope e;
  e.set_id(contracts::NewUuidV7());
  e.set_tenant_id(a.tenant_id());
  e.set_source("metadata-studio.approval");
  e.set_correlation_id(a.id());  // every event of one approval shares it
  e.set_causation_id(cause);
  e.set_traceparent(contracts::ChildTraceparent(trace));
  return e;
}

// The trace a decision's events continue: the deciding call's, else the request's.
std::string DecisionTrace(const std::string& call, const Row& row) {
  return contracts::IsValidTraceparent(call) ? call : row.traceparent;
}

absl::StatusOr<Row> LockPending(PgConnection& c, const std::string& tenant, const std::string& id) {
  auto r = c.Exec(Cat("SELECT ", kCols, " FROM mdm_approval WHERE id = $1::uuid AND tenant_id = $2 FOR UPDATE"),
                  {id, tenant});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(Cat("approval ", id, " not found"));
  Row row = ToRow(*r, 0);
  if (row.approval.status() != v1::APPROVAL_STATUS_PENDING)
    return absl::FailedPreconditionError(
        Cat("approval ", id, " is ", ApprovalStatusDb(row.approval.status()), ", not pending"));
  return row;
}

absl::StatusOr<Row> Decide(PgConnection& c, const std::string& id, const char* status, const v1::Principal& who,
                           const std::string& reason, const std::string& prior, const std::string& entity_id) {
  auto r = c.Exec(Cat("UPDATE mdm_approval SET status = $2, decided_by = $3, decided_at = now(),"
                      " decision_reason = nullif($4, ''), current_state = coalesce($5::jsonb, current_state),"
                      " entity_id = coalesce($6::uuid, entity_id) WHERE id = $1::uuid RETURNING ",
                      kCols),
                  {id, status, who.name(), reason, prior.empty() ? std::nullopt : std::optional<std::string>(prior),
                   entity_id.empty() ? std::nullopt : std::optional<std::string>(entity_id)});
  if (!r.ok()) return r.status();
  return ToRow(*r, 0);
}

}  // namespace

absl::StatusOr<v1::Approval> Approvals::Create(const v1::Principal& who, const v1::CreateApprovalRequest& req,
                                               const std::string& trace) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  if (contracts::EntityTable(req.entity_type()) == nullptr)
    return Invalid("entity_type", "must be METADATA, KPI, GLOSSARY or BUSINESS_RULE");
  const std::string type = EntityTypeDb(req.entity_type());
  if (req.tier() == v1::TIER_UNSPECIFIED) return Invalid("tier", "required");
  if (LaneDb(req.lane()).empty()) return Invalid("lane", "required");
  const std::string role = authz_.RequiredRole(req.entity_type(), req.tier());
  if (role.empty()) return Invalid("entity_type", "no role decides approvals of this entity type");
  if (!req.required_role().empty() && req.required_role() != role)
    return Invalid("required_role",
                   Cat("set by policy: \"", role, "\" decides ", v1::EntityType_Name(req.entity_type()), " at ",
                       v1::Tier_Name(req.tier()), "; leave it empty"));
  if (!req.has_payload()) return Invalid("payload", "required");
  if (!req.entity_id().empty() && !contracts::IsUuid(req.entity_id())) return Invalid("entity_id", "must be a UUID");
  std::string key = req.entity_key().empty() ? StringField(req.payload(), "canonicalKey") : req.entity_key();
  if (key.empty()) return Invalid("entity_key", "required (or payload.canonicalKey)");
  if (auto s = ValidatePayload(req.entity_type(), req.payload()); !s.ok()) return s;
  // The approval's tier decides who approves; the payload cannot carry another one.
  if (auto t = req.payload().fields().find("tier"); t != req.payload().fields().end()) {
    if (!t->second.has_string_value() || TierFromDb(t->second.string_value()) != req.tier())
      return Invalid("payload.tier", Cat("must be absent or \"", TierDb(req.tier()), "\" (the approval's tier)"));
  }
  auto payload = contracts::ToJson(req.payload());
  if (!payload.ok()) return payload.status();

  std::vector<v1::Envelope> emitted;  // spans go out once the transaction committed
  std::string parent;
  auto result = InTransaction<v1::Approval>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::Approval> {
    auto r = c.Exec(Cat("INSERT INTO mdm_approval (tenant_id, entity_type, entity_id, entity_key, tier, lane, payload,"
                        " requested_by, required_role, traceparent)"
                        " VALUES ($1, $2, nullif($3, '')::uuid, $4, $5, $6, $7::jsonb, $8, $9, nullif($10, ''))"
                        " RETURNING ",
                        kCols),
                    {req.tenant_id(), type, req.entity_id(), key, TierDb(req.tier()), LaneDb(req.lane()), *payload,
                     who.name(), role, contracts::IsValidTraceparent(trace) ? trace : ""});
    if (!r.ok()) return r.status();
    const Row created = ToRow(*r, 0);
    const v1::Approval& a = created.approval;
    v1::Envelope e = Event(a, "", created.traceparent);
    auto* p = e.mutable_approval_created();
    p->set_approval_id(a.id());
    p->set_entity_type(a.entity_type());
    p->set_entity_id(a.entity_id());
    p->set_entity_key(a.entity_key());
    p->set_tier(a.tier());
    p->set_lane(a.lane());
    p->set_required_role(a.required_role());
    *p->mutable_requested_by() = Human(who);
    *p->mutable_requested_at() = a.requested_at();
    *p->mutable_payload() = a.payload();
    std::vector<v1::Envelope> events{e};
    if (auto s = outbox::AppendToOutbox(c, events, catalog_); !s.ok()) return s;
    auto u =
        c.Exec("UPDATE mdm_approval SET created_event_id = $2::uuid WHERE id = $1::uuid", {a.id(), events[0].id()});
    if (!u.ok()) return u.status();
    emitted = events;
    parent = created.traceparent;
    return a;
  });
  if (result.ok()) outbox::ExportEmitSpans(emitted, parent);
  return result;
}

absl::StatusOr<v1::Approval> Approvals::Get(const v1::Principal& who, const v1::GetApprovalRequest& req) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  return InTransaction<v1::Approval>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::Approval> {
    auto r = c.Exec(Cat("SELECT ", kCols, " FROM mdm_approval WHERE id = $1::uuid AND tenant_id = $2"),
                    {req.id(), req.tenant_id()});
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return absl::NotFoundError(Cat("approval ", req.id(), " not found"));
    return ToRow(*r, 0).approval;
  });
}

absl::StatusOr<v1::ListApprovalsResponse> Approvals::List(const v1::Principal& who,
                                                          const v1::ListApprovalsRequest& req) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  int limit = req.page_size() == 0 ? 50 : req.page_size();
  if (limit < 1 || limit > 200) return Invalid("page_size", "must be 1 to 200");
  std::string after_micros, after_id;
  if (!req.cursor().empty()) {
    auto colon = req.cursor().find(':');
    if (colon == std::string::npos || !contracts::IsUuid(req.cursor().substr(colon + 1)))
      return Invalid("cursor", "not a cursor from this service");
    after_micros = req.cursor().substr(0, colon);
    after_id = req.cursor().substr(colon + 1);
    if (after_micros.empty() || !std::all_of(after_micros.begin(), after_micros.end(), ::isdigit))
      return Invalid("cursor", "not a cursor from this service");
  }
  if (req.entity_type() != v1::ENTITY_TYPE_UNSPECIFIED && contracts::EntityTable(req.entity_type()) == nullptr)
    return Invalid("entity_type", "not an approvable entity type");
  const std::string type = EntityTypeDb(req.entity_type());  // "" when unspecified: any
  return InTransaction<v1::ListApprovalsResponse>(
      pool_, [&](PgConnection& c) -> absl::StatusOr<v1::ListApprovalsResponse> {
        auto r = c.Exec(Cat("SELECT ", kCols,
                            " FROM mdm_approval WHERE tenant_id = $1 AND ($2 = '' OR status = $2)"
                            " AND ($3 = '' OR entity_type = $3) AND ($4 = '' OR tier = $4)"
                            " AND ($5 = '' OR (requested_at, id) < (timestamptz 'epoch' + $5::bigint * interval '1 "
                            "microsecond', nullif($6, '')::uuid))"
                            " ORDER BY requested_at DESC, id DESC LIMIT $7"),
                        {req.tenant_id(), ApprovalStatusDb(req.status()), type, TierDb(req.tier()), after_micros,
                         after_id, std::to_string(limit + 1)});
        if (!r.ok()) return r.status();
        v1::ListApprovalsResponse out;
        for (int i = 0; i < std::min(r->rows(), limit); ++i) *out.add_approvals() = ToRow(*r, i).approval;
        if (r->rows() > limit) {
          const v1::Approval& last = out.approvals(limit - 1);
          out.set_next_cursor(
              Cat(google::protobuf::util::TimeUtil::TimestampToMicroseconds(last.requested_at()), ":", last.id()));
        }
        return out;
      });
}

absl::StatusOr<v1::ApproveResponse> Approvals::Approve(const v1::Principal& who, const v1::ApproveRequest& req,
                                                       const std::string& trace) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  std::vector<v1::Envelope> emitted;  // spans go out once the transaction committed
  std::string emitted_parent;
  auto result = InTransaction<v1::ApproveResponse>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::ApproveResponse> {
    auto row = LockPending(c, req.tenant_id(), req.id());  // row lock: concurrent decisions wait here
    if (!row.ok()) return row.status();
    if (auto s = MayDecide(authz_, who, row->approval); !s.ok()) return s;
    const v1::Approval& pending = row->approval;
    auto payload = contracts::ToJson(pending.payload());
    if (!payload.ok()) return payload.status();
    auto up = c.Exec(contracts::EntityUpsertSql(pending.entity_type()),
                     {pending.tenant_id(), pending.entity_key(), *payload, TierDb(pending.tier())});
    if (!up.ok()) return up.status();
    const std::string entity_id(up->Get(0, 0));
    const std::string prior = up->IsNull(0, 1) ? "" : std::string(up->Get(0, 1));
    auto decided = Decide(c, pending.id(), "approved", who, "", prior, entity_id);
    if (!decided.ok()) return decided.status();
    const v1::Approval& a = decided->approval;

    const std::string parent = DecisionTrace(trace, *row);
    std::vector<v1::Envelope> events;
    const v1::Actor by = Human(who);
    const std::string key = a.entity_key();
    std::string cause = row->created_event_id;
    auto add = [&](v1::Envelope e) {
      cause = e.id();
      events.push_back(std::move(e));
      return events.back().id();
    };
    std::string first;  // the entity type's own "approved" event causes the rest
    if (a.entity_type() == v1::ENTITY_TYPE_METADATA) {
      v1::Envelope approved = Event(a, cause, parent);
      auto* m = approved.mutable_metadata_approved();
      m->set_approval_id(a.id());
      m->set_entity_id(entity_id);
      m->set_canonical_key(key);
      m->set_tier(a.tier());
      *m->mutable_approved_by() = by;
      *m->mutable_approved_at() = a.decided_at();
      first = add(std::move(approved));
      v1::Envelope changed = Event(a, first, parent);
      auto* ch = changed.mutable_metadata_changed();
      ch->set_entity_id(entity_id);
      ch->set_canonical_key(key);
      ch->set_tier(a.tier());
      ch->set_change_type(v1::CHANGE_TYPE_APPROVAL);
      for (const auto& f : ChangedFields(a.payload(), prior)) ch->add_changed_fields(f);
      *ch->mutable_changed_by() = by;
      *ch->mutable_changed_at() = a.decided_at();
      ch->set_approval_id(a.id());
      // Profiling after a structural change is sluice-profiler's call: it acts on
      // metadata.approved itself (tier1 and tier2), so no profile.due is emitted here.
      std::string changed_id = add(std::move(changed));
      if (StringField(a.payload(), "status") == "deprecated") {
        v1::Envelope dep = Event(a, changed_id, parent);
        auto* d = dep.mutable_metadata_deprecated();
        d->set_entity_id(entity_id);
        d->set_canonical_key(key);
        d->set_tier(a.tier());
        d->set_reason(StringField(a.payload(), "deprecationReason"));
        d->set_replaced_by(StringField(a.payload(), "replacedBy"));
        *d->mutable_deprecated_by() = by;
        *d->mutable_deprecated_at() = a.decided_at();
        d->set_approval_id(a.id());
        add(std::move(dep));
      }
    } else if (a.entity_type() == v1::ENTITY_TYPE_KPI) {
      v1::Envelope approved = Event(a, cause, parent);
      auto* k = approved.mutable_kpi_approved();
      k->set_approval_id(a.id());
      k->set_kpi_id(entity_id);
      k->set_canonical_key(key);
      k->set_tier(a.tier());
      *k->mutable_approved_by() = by;
      *k->mutable_approved_at() = a.decided_at();
      first = add(std::move(approved));
      v1::Envelope changed = Event(a, first, parent);
      auto* ch = changed.mutable_kpi_changed();
      ch->set_kpi_id(entity_id);
      ch->set_canonical_key(key);
      ch->set_tier(a.tier());
      ch->set_change_type(v1::CHANGE_TYPE_APPROVAL);
      for (const auto& f : ChangedFields(a.payload(), prior)) ch->add_changed_fields(f);
      *ch->mutable_changed_by() = by;
      *ch->mutable_changed_at() = a.decided_at();
      ch->set_approval_id(a.id());
      add(std::move(changed));
    }
    v1::Envelope done = Event(a, first.empty() ? row->created_event_id : first, parent);
    auto* p = done.mutable_approval_approved();
    p->set_approval_id(a.id());
    p->set_entity_type(a.entity_type());
    p->set_entity_id(entity_id);
    p->set_entity_key(key);
    p->set_tier(a.tier());
    p->set_lane(a.lane());
    *p->mutable_approved_by() = by;
    *p->mutable_approved_at() = a.decided_at();
    *p->mutable_payload() = a.payload();
    events.push_back(std::move(done));

    if (auto s = outbox::AppendToOutbox(c, events, catalog_); !s.ok()) return s;
    emitted = events;
    emitted_parent = parent;
    v1::ApproveResponse out;
    *out.mutable_approval() = a;
    for (const auto& e : events) out.add_event_ids(e.id());
    return out;
  });
  if (result.ok()) outbox::ExportEmitSpans(emitted, emitted_parent);
  return result;
}

absl::StatusOr<v1::RejectResponse> Approvals::Reject(const v1::Principal& who, const v1::RejectRequest& req,
                                                     const std::string& trace) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  if (req.reason().empty()) return Invalid("reason", "required");
  std::vector<v1::Envelope> emitted;  // spans go out once the transaction committed
  std::string parent;
  auto result = InTransaction<v1::RejectResponse>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::RejectResponse> {
    auto row = LockPending(c, req.tenant_id(), req.id());
    if (!row.ok()) return row.status();
    if (auto s = MayDecide(authz_, who, row->approval); !s.ok()) return s;
    auto decided = Decide(c, req.id(), "rejected", who, req.reason(), "", "");
    if (!decided.ok()) return decided.status();
    const v1::Approval& a = decided->approval;
    parent = DecisionTrace(trace, *row);
    v1::Envelope e = Event(a, row->created_event_id, parent);
    auto* p = e.mutable_approval_rejected();
    p->set_approval_id(a.id());
    p->set_entity_type(a.entity_type());
    p->set_entity_id(a.entity_id());
    p->set_entity_key(a.entity_key());
    p->set_tier(a.tier());
    *p->mutable_rejected_by() = Human(who);
    *p->mutable_rejected_at() = a.decided_at();
    p->set_reason(req.reason());
    std::vector<v1::Envelope> events{e};
    if (auto s = outbox::AppendToOutbox(c, events, catalog_); !s.ok()) return s;
    emitted = events;
    v1::RejectResponse out;
    *out.mutable_approval() = a;
    out.add_event_ids(events[0].id());
    return out;
  });
  if (result.ok()) outbox::ExportEmitSpans(emitted, parent);
  return result;
}

absl::StatusOr<v1::Approval> Approvals::Cancel(const v1::Principal& who, const v1::CancelRequest& req) {
  if (auto s = CheckTenant(authz_, who, req.tenant_id()); !s.ok()) return s;
  if (auto s = CheckId(req.id()); !s.ok()) return s;
  return InTransaction<v1::Approval>(pool_, [&](PgConnection& c) -> absl::StatusOr<v1::Approval> {
    auto row = LockPending(c, req.tenant_id(), req.id());
    if (!row.ok()) return row.status();
    if (auto s = authz_.MayCancel(who, row->approval.requested_by()); !s.ok()) return s;
    auto decided = Decide(c, req.id(), "cancelled", who, "", "", "");
    if (!decided.ok()) return decided.status();
    return decided->approval;
  });
}

}  // namespace sluice::gateway
