#include "cli/verify.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/catalog.h"
#include "contracts/governance.h"
#include "contracts/json.h"
#include "kafka/reader.h"

namespace sluice::cli {
namespace {

using common::Cat;
using google::protobuf::Struct;
using google::protobuf::util::TimeUtil;

// An approval as the topics tell it.
struct TopicApproval {
  std::string tenant;
  std::string status;  // pending | approved | rejected
  v1::EntityType entity_type = v1::ENTITY_TYPE_UNSPECIFIED;
  std::string entity_key;
  std::string last_event_id;
};

// An entity's last approved payload, from approval.approved.
struct TopicEntity {
  Struct payload;
  v1::Tier tier = v1::TIER_UNSPECIFIED;
  std::string approval_id;
  std::string event_id;
};

using EntityKey = std::tuple<std::string, v1::EntityType, std::string>;  // tenant, type, canonical key

std::string Describe(const EntityKey& k) {
  return Cat(contracts::EntityTypeDb(std::get<1>(k)), " ", std::get<0>(k), "/", std::get<2>(k));
}

std::string ValueText(const google::protobuf::Value* v) {
  if (v == nullptr) return "(absent)";
  auto json = contracts::ToJson(*v);
  return json.ok() ? *json : "?";
}

// The fields that differ between two rows (as JSON objects), "field: A vs B" each.
std::vector<std::string> Diff(const Struct& db, const Struct& expected) {
  static const std::set<std::string> kIgnored = {"id", "version", "created_at", "updated_at"};
  std::set<std::string> keys;
  for (const auto& [k, v] : db.fields()) keys.insert(k);
  for (const auto& [k, v] : expected.fields()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (kIgnored.contains(k)) continue;
    auto a = db.fields().find(k);
    auto b = expected.fields().find(k);
    const google::protobuf::Value* va = a == db.fields().end() ? nullptr : &a->second;
    const google::protobuf::Value* vb = b == expected.fields().end() ? nullptr : &b->second;
    if (va && vb && google::protobuf::util::MessageDifferencer::Equivalent(*va, *vb)) continue;
    out.push_back(Cat(k, ": PostgreSQL has ", ValueText(va), ", the events give ", ValueText(vb)));
  }
  return out;
}

}  // namespace

absl::StatusOr<VerifyReport> Verify(const VerifyOptions& o) {
  const std::set<std::string> tenants(o.tenants.begin(), o.tenants.end());
  auto in_scope = [&](const std::string& t) { return tenants.empty() || tenants.contains(t); };
  VerifyReport report;

  // PostgreSQL first: one snapshot for every query below. Events that happened after it
  // are left out of the comparison.
  auto conn = common::Connect(o.pg_dsn, o.pg_schema);
  if (!conn.ok()) return conn.status();
  // Read-only in effect: every upsert below is undone at its savepoint, and the
  // transaction is rolled back when `snapshot` goes out of scope.
  auto snapshot = common::PgTransaction::Begin(*conn, "BEGIN ISOLATION LEVEL REPEATABLE READ");
  if (!snapshot.ok()) return snapshot.status();
  auto snap = conn->Exec("SELECT (extract(epoch FROM now()) * 1000000)::bigint");
  if (!snap.ok()) return snap.status();
  const int64_t snapshot_micros = std::stoll(std::string(snap->Get(0, 0)));

  // Approvals whose events are still waiting in the outbox: their topic state lags.
  std::set<std::string> in_flight;
  auto pending = conn->Exec("SELECT envelope FROM event_outbox WHERE sent_at IS NULL");
  if (!pending.ok()) return pending.status();
  for (int i = 0; i < pending->rows(); ++i) {
    const std::string text(pending->Get(i, 0));  // bytea in hex text form
    size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text.c_str()), &n);
    if (raw == nullptr) continue;
    v1::Envelope e;
    if (e.ParseFromArray(raw, static_cast<int>(n)) && !e.correlation_id().empty()) in_flight.insert(e.correlation_id());
    PQfreemem(raw);
  }

  // The topics: every approval event up to the end of the approval topic.
  const contracts::Catalog catalog = contracts::Catalog::Default().WithTopicPrefix(o.topic_prefix);
  const contracts::Route* route = catalog.Find("approval.created");
  if (route == nullptr) return absl::InternalError("catalog has no approval.created");
  auto reader = kafka::TopicReader::OpenRange(
      {.bootstrap_servers = o.bootstrap, .client_id = "sluicectl-verify", .librdkafka = o.librdkafka}, {route->topic},
      {});
  if (!reader.ok()) return reader.status();
  std::map<std::string, TopicApproval> approvals;
  std::map<EntityKey, TopicEntity> entities;
  while (!(*reader)->done()) {
    auto batch = (*reader)->Next(1000, absl::Seconds(1));
    if (!batch.ok()) return batch.status();
    for (const auto& r : *batch) {
      const v1::Envelope& e = r.envelope;
      if (!in_scope(e.tenant_id())) continue;
      if (TimeUtil::TimestampToMicroseconds(e.occurred_at()) > snapshot_micros) continue;
      ++report.events;
      if (e.has_approval_created()) {
        const auto& p = e.approval_created();
        TopicApproval& a = approvals[p.approval_id()];
        a.tenant = e.tenant_id();
        if (a.status.empty()) a.status = "pending";
        a.entity_type = p.entity_type();
        a.entity_key = p.entity_key();
        a.last_event_id = e.id();
      } else if (e.has_approval_approved() || e.has_approval_rejected()) {
        const bool approved = e.has_approval_approved();
        const std::string& id = approved ? e.approval_approved().approval_id() : e.approval_rejected().approval_id();
        TopicApproval& a = approvals[id];
        a.tenant = e.tenant_id();
        a.status = approved ? "approved" : "rejected";
        a.entity_type = approved ? e.approval_approved().entity_type() : e.approval_rejected().entity_type();
        a.entity_key = approved ? e.approval_approved().entity_key() : e.approval_rejected().entity_key();
        a.last_event_id = e.id();
        if (approved) {
          const auto& p = e.approval_approved();
          // Partition order is commit order within a tenant: the last one read wins.
          entities[{e.tenant_id(), p.entity_type(), p.entity_key()}] =
              TopicEntity{.payload = p.payload(), .tier = p.tier(), .approval_id = id, .event_id = e.id()};
        }
      }
    }
  }

  // Approvals: final status, entity type and key.
  auto rows = conn->Exec(
      "SELECT id::text, tenant_id, status, entity_type, coalesce(entity_key, '') FROM mdm_approval ORDER BY "
      "requested_at, id");
  if (!rows.ok()) return rows.status();
  std::set<std::string> seen;
  for (int i = 0; i < rows->rows(); ++i) {
    const std::string id(rows->Get(i, 0)), tenant(rows->Get(i, 1)), status(rows->Get(i, 2)), key(rows->Get(i, 4));
    if (!in_scope(tenant)) continue;
    seen.insert(id);
    if (in_flight.contains(id)) {
      ++report.in_flight;
      continue;
    }
    ++report.approvals;
    auto it = approvals.find(id);
    if (it == approvals.end()) {
      report.mismatches.push_back(
          Cat("approval ", id, " (", tenant, "): in PostgreSQL as ", status, ", no event in ", route->topic));
      continue;
    }
    const TopicApproval& a = it->second;
    if (status == "cancelled" && a.status == "pending") {
      ++report.cancelled;  // cancelling publishes nothing; pending is all the topics can say
    } else if (status != a.status) {
      report.mismatches.push_back(Cat("approval ", id, " (", tenant, "): PostgreSQL says ", status, ", the events say ",
                                      a.status, " (last event ", a.last_event_id, ")"));
    }
    if (contracts::EntityTypeFromDb(rows->Get(i, 3)) != a.entity_type || key != a.entity_key)
      report.mismatches.push_back(Cat(
          "approval ", id, " (", tenant, "): PostgreSQL is about ", rows->Get(i, 3), " ", key, ", the events about ",
          contracts::EntityTypeDb(a.entity_type).empty() ? "?" : contracts::EntityTypeDb(a.entity_type), " ",
          a.entity_key));
  }
  for (const auto& [id, a] : approvals)
    if (!seen.contains(id) && !in_flight.contains(id))
      report.mismatches.push_back(
          Cat("approval ", id, " (", a.tenant, "): in the events as ", a.status, ", missing from PostgreSQL"));

  // Entities: apply the last approved payload inside a savepoint and diff the row.
  for (const auto& [key, ent] : entities) {
    if (in_flight.contains(ent.approval_id)) continue;
    const auto& [tenant, type, ckey] = key;
    const char* table = contracts::EntityTable(type);
    const char* upsert = contracts::EntityUpsertSql(type);
    if (table == nullptr || upsert == nullptr) continue;
    ++report.entities;
    const std::string select =
        Cat("SELECT to_jsonb(t)::text FROM ", table, " t WHERE tenant_id = $1 AND canonical_key = $2");
    auto before = conn->Exec(select, {tenant, ckey});
    if (!before.ok()) return before.status();
    auto payload = contracts::ToJson(ent.payload);
    if (!payload.ok()) return payload.status();
    if (auto s = conn->ExecScript("SAVEPOINT verify"); !s.ok()) return s;
    auto applied = conn->Exec(upsert, {tenant, ckey, *payload, contracts::TierDb(ent.tier)});
    absl::StatusOr<common::PgResult> after = applied.ok() ? conn->Exec(select, {tenant, ckey}) : applied.status();
    if (auto s = conn->ExecScript("ROLLBACK TO SAVEPOINT verify"); !s.ok()) return s;
    if (!applied.ok()) {
      report.mismatches.push_back(Cat("entity ", Describe(key), ": its last approved payload (event ", ent.event_id,
                                      ") no longer applies: ", applied.status().message()));
      continue;
    }
    if (!after.ok()) return after.status();
    if (before->rows() == 0) {
      report.mismatches.push_back(
          Cat("entity ", Describe(key), ": approved by event ", ent.event_id, ", missing from PostgreSQL"));
      continue;
    }
    Struct db, expected;
    if (auto s = contracts::FromJson(before->Get(0, 0), db); !s.ok()) return s;
    if (auto s = contracts::FromJson(after->Get(0, 0), expected); !s.ok()) return s;
    for (const auto& d : Diff(db, expected))
      report.mismatches.push_back(
          Cat("entity ", Describe(key), ": ", d, " (approval ", ent.approval_id, ", event ", ent.event_id, ")"));
  }
  // Entities no approval event accounts for.
  for (auto type :
       {v1::ENTITY_TYPE_METADATA, v1::ENTITY_TYPE_KPI, v1::ENTITY_TYPE_GLOSSARY, v1::ENTITY_TYPE_BUSINESS_RULE}) {
    auto r = conn->Exec(Cat("SELECT tenant_id, canonical_key FROM ", contracts::EntityTable(type), " ORDER BY 1, 2"));
    if (!r.ok()) return r.status();
    for (int i = 0; i < r->rows(); ++i) {
      EntityKey key{std::string(r->Get(i, 0)), type, std::string(r->Get(i, 1))};
      if (!in_scope(std::get<0>(key)) || entities.contains(key)) continue;
      report.mismatches.push_back(
          Cat("entity ", Describe(key), ": in PostgreSQL, but no approval.approved event for it"));
    }
  }
  (void)snapshot->Rollback();
  return report;
}

int RunVerify(const VerifyOptions& o) {
  auto report = Verify(o);
  if (!report.ok()) {
    std::fprintf(stderr, "sluicectl audit verify: %s\n", std::string(report.status().message()).c_str());
    return 2;
  }
  for (const auto& m : report->mismatches) std::printf("MISMATCH %s\n", m.c_str());
  std::printf("%zu mismatches: %lld approvals and %lld entities checked against %lld approval events",
              report->mismatches.size(), static_cast<long long>(report->approvals),
              static_cast<long long>(report->entities), static_cast<long long>(report->events));
  if (report->cancelled > 0)
    std::printf("; %lld cancelled (cancellations publish no event)", static_cast<long long>(report->cancelled));
  if (report->in_flight > 0)
    std::printf("; %lld left out with events still in the outbox", static_cast<long long>(report->in_flight));
  std::printf("\n");
  return report->mismatches.empty() ? 0 : 1;
}

}  // namespace sluice::cli
