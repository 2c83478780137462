#include "gateway/event_log.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "common/pg.h"
#include "common/strings.h"
#include "contracts/derived.h"
#include "contracts/envelope.h"
#include "contracts/json.h"
#include "contracts/validate.h"
#include "gateway/list_request.h"

namespace sluice::gateway {
namespace {

using common::Cat;
using google::protobuf::util::TimeUtil;

absl::Status Invalid(std::string_view field, std::string_view what) { return contracts::InvalidField(field, what); }

// A column value known to be an integer.
template <class T>
T Int(std::string_view v) {
  T out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

constexpr char kEventCols[] =
    "id::text, type, source, tenant_id, (extract(epoch FROM occurred_at) * 1000000)::bigint,"
    " (extract(epoch FROM received_at) * 1000000)::bigint, payload::text, coalesce(correlation_id, ''),"
    " coalesce(causation_id, ''), coalesce(ttl_ms, 0), metadata::text, topic, \"partition\", \"offset\","
    " coalesce(version, ''), coalesce(traceparent, '')";

absl::StatusOr<v1::StoredEvent> ToStoredEvent(const common::PgResult& r, int i, const contracts::Catalog& catalog) {
  v1::StoredEvent out;
  v1::Envelope& e = *out.mutable_envelope();
  e.set_id(std::string(r.Get(i, 0)));
  e.set_type(std::string(r.Get(i, 1)));
  e.set_source(std::string(r.Get(i, 2)));
  e.set_tenant_id(std::string(r.Get(i, 3)));
  *e.mutable_occurred_at() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(r.Get(i, 4)));
  *out.mutable_received_at() = TimeUtil::MicrosecondsToTimestamp(Int<int64_t>(r.Get(i, 5)));
  e.set_correlation_id(std::string(r.Get(i, 7)));
  e.set_causation_id(std::string(r.Get(i, 8)));
  e.set_ttl_ms(Int<int64_t>(r.Get(i, 9)));
  google::protobuf::Struct metadata;
  if (auto s = contracts::FromJson(r.Get(i, 10), metadata); !s.ok())
    return absl::DataLossError(Cat("event ", e.id(), ": stored metadata is not a JSON object: ", s.message()));
  for (const auto& [k, v] : metadata.fields()) (*e.mutable_metadata())[k] = v.string_value();
  out.set_topic(std::string(r.Get(i, 11)));
  out.set_partition(Int<int32_t>(r.Get(i, 12)));
  out.set_offset(Int<int64_t>(r.Get(i, 13)));
  e.set_version(std::string(r.Get(i, 14)));
  e.set_traceparent(std::string(r.Get(i, 15)));
  // The payload goes back into its oneof field by the type's route; a type this build's
  // catalog does not know keeps an empty payload.
  if (const contracts::Route* route = catalog.Find(e.type())) {
    const auto* field = e.GetDescriptor()->FindFieldByName(route->payload_field);
    if (field != nullptr) {
      google::protobuf::Message* payload = e.GetReflection()->MutableMessage(&e, field);
      if (auto s = contracts::FromJson(r.Get(i, 6), *payload); !s.ok())
        return absl::DataLossError(
            Cat("event ", e.id(), ": stored payload does not parse as ", route->payload_message, ": ", s.message()));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::ListEventsResponse> EventLog::List(const v1::Principal& who, const v1::ListEventsRequest& req) {
  const v1::EventFilter& f = req.filter();
  auto q = CheckListRequest(catalog_, authz_, who, req);
  if (!q.ok()) return q.status();
  const int limit = q->limit;
  const std::string sql = ListStatement(*q, kEventCols);

  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  absl::StatusOr<v1::ListEventsResponse> result = [&]() -> absl::StatusOr<v1::ListEventsResponse> {
    if (!f.json_path().empty()) {
      // Checked on its own so a bad path is the caller's error, not a failed query.
      if (auto p = (*conn)->Exec("SELECT $1::jsonpath", {f.json_path()}); !p.ok()) {
        if (p.status().code() == absl::StatusCode::kUnavailable) return p.status();
        // PostgreSQL's own text is not passed on (it can quote other data); the operator's
        // log has it.
        spdlog::info("gateway: ListEvents json_path refused: {}", p.status().message());
        return Invalid("filter.json_path", "not a valid SQL/JSON path expression");
      }
    }
    // A JSONPath on one tenant: first the bounded walk in index order, which answers when
    // it finds a full page (a path many events match); otherwise the statement that finds
    // every match through the GIN index.
    absl::StatusOr<common::PgResult> r = absl::UnavailableError("not run");
    if (const std::string walk = ListWalkStatement(*q, kEventCols); !walk.empty()) {
      r = (*conn)->Exec(walk, q->params);
      if (!r.ok()) return r.status();
    }
    if (!r.ok() || r->rows() <= limit) r = (*conn)->Exec(sql, q->params);
    if (!r.ok()) return r.status();
    v1::ListEventsResponse out;
    const int n = std::min(r->rows(), limit);
    for (int i = 0; i < n; ++i) {
      auto e = ToStoredEvent(*r, i, catalog_);
      if (!e.ok()) return e.status();
      contracts::Derive(*e);
      *out.add_events() = *std::move(e);
    }
    if (r->rows() > limit) {
      out.set_has_more(true);
      out.set_next_cursor(EncodeCursor(Int<int64_t>(r->Get(n - 1, 4)), std::string(r->Get(n - 1, 0)), f));
    }
    return out;
  }();
  pool_.Release(*std::move(conn), result.status());
  return result;
}

absl::StatusOr<v1::GetEventResponse> EventLog::Get(const v1::Principal& who, const v1::GetEventRequest& req) {
  if (req.id().empty()) return Invalid("id", "required");
  if (!contracts::IsUuid(req.id())) return Invalid("id", "must be a UUID");
  google::protobuf::RepeatedPtrField<std::string> requested;
  if (!req.tenant_id().empty()) *requested.Add() = req.tenant_id();
  auto tenants = authz_.ReadableTenants(who, requested, "tenant_id");
  if (!tenants.ok()) return tenants.status();
  // Found through the primary key (tenant_id, id, occurred_at), one tenant at a time: a
  // token of every tenant names the one to look in.
  if (tenants->empty()) return Invalid("tenant_id", "required for a token of every tenant (*)");
  std::vector<std::string> list(tenants->begin(), tenants->end());
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->Exec(
      Cat("SELECT ", kEventCols,
          " FROM event_log WHERE tenant_id = ANY($1::text[]) AND id = $2::uuid ORDER BY tenant_id LIMIT 1"),
      {common::PgTextArray(list), contracts::CanonicalEventId(req.id())});
  pool_.Release(*std::move(conn), r.status());
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return absl::NotFoundError(Cat("no event ", req.id(), " in the tenants searched"));
  auto e = ToStoredEvent(*r, 0, catalog_);
  if (!e.ok()) return e.status();
  contracts::Derive(*e);
  v1::GetEventResponse out;
  *out.mutable_event() = *std::move(e);
  if (out.event().envelope().correlation_id().empty()) return out;
  // The chain through List: the same tenant isolation, order and limits.
  v1::ListEventsRequest chain;
  chain.mutable_filter()->add_tenant_ids(out.event().envelope().tenant_id());
  chain.mutable_filter()->set_correlation_id(out.event().envelope().correlation_id());
  chain.set_limit(kMaxChain);
  auto page = List(who, chain);
  if (!page.ok()) return page.status();
  for (auto& event : *page->mutable_events()) *out.add_chain() = std::move(event);
  out.set_chain_truncated(page->has_more());
  return out;
}

}  // namespace sluice::gateway
