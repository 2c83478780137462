#include "consumers/audit/audit_sink.h"

#include <google/protobuf/util/time_util.h>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/fast_json.h"

namespace sluice::audit {
namespace {

using common::AppendCopyField;
using common::Cat;
using google::protobuf::util::TimeUtil;

constexpr char kColumns[] =
    "id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id, causation_id, ttl_ms, metadata,"
    " topic, \"partition\", \"offset\", version, traceparent";

std::optional<std::string_view> NullIfEmpty(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}

}  // namespace

absl::Status AppendRow(std::string& out, const consumer::Record& r, absl::Time received_at) {
  const v1::Envelope& e = r.envelope;
  const auto* oneof = e.GetDescriptor()->FindOneofByName("payload");
  const auto* field = e.GetReflection()->GetOneofFieldDescriptor(e, oneof);
  if (field == nullptr) return absl::InvalidArgumentError(Cat("event ", e.id(), ": no payload"));
  // The sink's main CPU cost: AppendJson prints exactly what contracts::ToJson would (the
  // column has always held protobuf's JSON mapping), an order of magnitude faster.
  std::string payload;
  if (auto s = contracts::AppendJson(payload, e.GetReflection()->GetMessage(e, field)); !s.ok()) return s;
  std::string metadata = "{";
  for (const auto& [k, v] : e.metadata()) {
    if (metadata.size() > 1) metadata += ',';
    metadata += common::JsonQuote(k) + ":" + common::JsonQuote(v);
  }
  metadata += '}';
  const std::string occurred = e.has_occurred_at() ? TimeUtil::ToString(e.occurred_at())
                                                   : TimeUtil::ToString(TimeUtil::MillisecondsToTimestamp(r.timestamp_ms));
  const std::string received = absl::FormatTime(absl::RFC3339_full, received_at, absl::UTCTimeZone());
  const std::string ttl = e.ttl_ms() > 0 ? Cat(e.ttl_ms()) : std::string();
  const std::string partition = Cat(r.partition), offset = Cat(r.offset);
  const std::optional<std::string_view> fields[] = {
      e.id(),       e.type(),    e.source(),          e.tenant_id(),           occurred,
      received,     payload,     NullIfEmpty(e.correlation_id()), NullIfEmpty(e.causation_id()), NullIfEmpty(ttl),
      metadata,     r.topic,     partition,           offset,                  NullIfEmpty(e.version()),
      NullIfEmpty(e.traceparent())};
  for (size_t i = 0; i < std::size(fields); ++i) {
    if (i) out += '\t';
    AppendCopyField(out, fields[i]);
  }
  out += '\n';
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AuditSink>> AuditSink::Create(AuditConfig config) {
  if (config.pg_dsn.empty()) return absl::InvalidArgumentError("pg_dsn: required");
  std::unique_ptr<AuditSink> sink(new AuditSink(std::move(config)));
  if (auto s = sink->EnsureConnected(); !s.ok()) return s;
  return sink;
}

absl::Status AuditSink::EnsureConnected() {
  if (conn_ && PQstatus(conn_->raw()) == CONNECTION_OK) return absl::OkStatus();
  conn_.reset();
  auto c = common::PgConnection::Connect(config_.pg_dsn);
  if (!c.ok()) return c.status();
  if (auto s = c->SetSearchPath(config_.pg_schema); !s.ok()) return s;
  // Session-local staging table: each batch is copied here, then merged by id.
  if (auto s = c->ExecScript(Cat("CREATE TEMP TABLE event_log_stage AS SELECT ", kColumns,
                                 " FROM event_log WITH NO DATA"));
      !s.ok())
    return s;
  conn_.emplace(*std::move(c));
  return absl::OkStatus();
}

absl::StatusOr<WriteReport> AuditSink::Write(const std::vector<consumer::Record>& batch) {
  WriteReport report{.received = static_cast<int64_t>(batch.size())};
  if (batch.empty()) return report;
  const absl::Time now = absl::Now();
  std::string data;
  data.reserve(batch.size() * 768);
  std::string row;
  for (const auto& r : batch) {
    // Kept out rather than retried: a record that can never be stored must not block its
    // partition. PostgreSQL text and jsonb cannot hold NUL characters.
    row.clear();
    absl::Status s = contracts::IsUuid(r.envelope.id()) ? AppendRow(row, r, now)
                                                        : absl::InvalidArgumentError("id: not a UUID");
    if (s.ok() && (row.find('\0') != std::string::npos || row.find("\\u0000") != std::string::npos))
      s = absl::InvalidArgumentError("a string holds a NUL character, which PostgreSQL cannot store");
    if (s.ok()) data += row;
    if (!s.ok()) {
      ++report.rejected;
      common::ScopedLogContext log_ctx(r.envelope.id(), r.envelope.correlation_id(), r.envelope.traceparent());
      spdlog::error("audit: {}[{}]@{} id {:?} not stored: {}", r.topic, r.partition, r.offset, r.envelope.id(),
                    std::string(s.message()));
    }
  }
  if (data.empty()) return report;
  const absl::Time encoded = absl::Now();
  report.encode = encoded - now;
  if (auto s = EnsureConnected(); !s.ok()) return s;
  auto fail = [&](absl::Status s) {
    (void)conn_->ExecScript("ROLLBACK");
    return s;
  };
  // Usually no id of the batch is stored yet: one COPY straight into event_log. If one is
  // (a redelivery, a replay, an id twice in the batch), the COPY fails as a whole on the
  // primary key and the batch goes the slower way: staging table, then merge by id.
  if (auto s = conn_->ExecScript("BEGIN"); !s.ok()) return fail(s);
  auto direct = conn_->CopyIn(Cat("COPY event_log (", kColumns, ") FROM STDIN"), data);
  if (direct.ok()) {
    if (auto s = conn_->ExecScript("COMMIT"); !s.ok()) return fail(s);
    report.copy = absl::Now() - encoded;
    report.stored = *direct;
    report.duplicates = report.received - report.rejected - report.stored;
    return report;
  }
  if (common::SqlState(direct.status()) != "23505") return fail(direct.status());
  ++report.merged_batches;
  if (auto s = conn_->ExecScript("ROLLBACK; BEGIN; TRUNCATE event_log_stage"); !s.ok()) return fail(s);
  auto copied = conn_->CopyIn(Cat("COPY event_log_stage (", kColumns, ") FROM STDIN"), data);
  if (!copied.ok()) return fail(copied.status());
  const absl::Time copied_at = absl::Now();
  report.copy = copied_at - encoded;
  auto merged = conn_->Exec(Cat("INSERT INTO event_log (", kColumns, ") SELECT ", kColumns,
                                " FROM event_log_stage ON CONFLICT (id) DO NOTHING"));
  if (!merged.ok()) return fail(merged.status());
  if (auto s = conn_->ExecScript("COMMIT"); !s.ok()) return fail(s);
  report.merge = absl::Now() - copied_at;
  report.stored = merged->affected();
  report.duplicates = report.received - report.rejected - report.stored;
  return report;
}

}  // namespace sluice::audit
