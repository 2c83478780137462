#include "consumers/audit/audit_sink.h"

#include <google/protobuf/util/time_util.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <string_view>
#include <thread>

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

AuditSink::AuditSink(AuditConfig config)
    : config_(std::move(config)), conns_(static_cast<size_t>(std::max(1, config_.pg_writers))) {}

absl::StatusOr<std::unique_ptr<AuditSink>> AuditSink::Create(AuditConfig config) {
  if (config.pg_dsn.empty()) return absl::InvalidArgumentError("pg_dsn: required");
  if (config.pg_writers < 1) return absl::InvalidArgumentError("pg_writers: at least 1");
  std::unique_ptr<AuditSink> sink(new AuditSink(std::move(config)));
  for (auto& conn : sink->conns_)
    if (auto s = sink->EnsureConnected(conn); !s.ok()) return s;
  return sink;
}

absl::Status AuditSink::EnsureConnected(std::optional<common::PgConnection>& conn) {
  if (conn && PQstatus(conn->raw()) == CONNECTION_OK) return absl::OkStatus();
  conn.reset();
  auto c = common::PgConnection::Connect(config_.pg_dsn);
  if (!c.ok()) return c.status();
  if (auto s = c->SetSearchPath(config_.pg_schema); !s.ok()) return s;
  // Session-local staging table: each batch is copied here, then merged by id.
  if (auto s = c->ExecScript(Cat("CREATE TEMP TABLE event_log_stage AS SELECT ", kColumns,
                                 " FROM event_log WITH NO DATA"));
      !s.ok())
    return s;
  conn.emplace(*std::move(c));
  return absl::OkStatus();
}

absl::StatusOr<WriteReport> AuditSink::Write(const std::vector<consumer::Record>& batch) {
  WriteReport report{.received = static_cast<int64_t>(batch.size())};
  if (batch.empty()) return report;
  const absl::Time now = absl::Now();
  // Records go to the parts by a hash of their id, not by partition: a batch usually comes
  // almost whole from one partition (the consumer drains one fetched partition at a time),
  // and both copies of an id delivered twice land in the same part.
  std::vector<std::vector<const consumer::Record*>> shares(conns_.size());
  for (const auto& r : batch) shares[std::hash<std::string_view>{}(r.envelope.id()) % shares.size()].push_back(&r);
  // The parts in parallel, the first on this thread, each encoded by the thread storing it.
  // Each commits on its own; the batch is stored when all have.
  std::vector<absl::StatusOr<WriteReport>> done(shares.size(), WriteReport{});
  std::vector<std::thread> threads;
  for (size_t w = 1; w < shares.size(); ++w)
    if (!shares[w].empty()) threads.emplace_back([&, w] { done[w] = WritePart(conns_[w], shares[w], now); });
  if (!shares[0].empty()) done[0] = WritePart(conns_[0], shares[0], now);
  for (auto& t : threads) t.join();
  for (const auto& part : done) {
    if (!part.ok()) return part.status();
    report.stored += part->stored;
    report.rejected += part->rejected;
    report.merged_batches = std::max(report.merged_batches, part->merged_batches);  // 1 if any part merged
    report.encode = std::max(report.encode, part->encode);
    report.copy = std::max(report.copy, part->copy);
    report.merge = std::max(report.merge, part->merge);
  }
  report.duplicates = report.received - report.rejected - report.stored;
  return report;
}

absl::StatusOr<WriteReport> AuditSink::WritePart(std::optional<common::PgConnection>& conn,
                                                 const std::vector<const consumer::Record*>& records,
                                                 absl::Time received_at) {
  WriteReport report;
  const absl::Time start = absl::Now();
  std::string data, row;
  data.reserve(records.size() * 768);
  for (const consumer::Record* r : records) {
    // Kept out rather than retried: a record that can never be stored must not block its
    // partition. PostgreSQL text and jsonb cannot hold NUL characters.
    row.clear();
    absl::Status s = contracts::IsUuid(r->envelope.id()) ? AppendRow(row, *r, received_at)
                                                         : absl::InvalidArgumentError("id: not a UUID");
    if (s.ok() && (row.find('\0') != std::string::npos || row.find("\\u0000") != std::string::npos))
      s = absl::InvalidArgumentError("a string holds a NUL character, which PostgreSQL cannot store");
    if (s.ok()) data += row;
    if (!s.ok()) {
      ++report.rejected;
      common::ScopedLogContext log_ctx(r->envelope.id(), r->envelope.correlation_id(), r->envelope.traceparent());
      spdlog::error("audit: {}[{}]@{} id {:?} not stored: {}", r->topic, r->partition, r->offset, r->envelope.id(),
                    std::string(s.message()));
    }
  }
  if (data.empty()) return report;
  const absl::Time encoded = absl::Now();
  report.encode = encoded - start;
  if (auto s = EnsureConnected(conn); !s.ok()) return s;
  auto fail = [&](absl::Status s) {
    (void)conn->ExecScript("ROLLBACK");
    return s;
  };
  // Usually no id of the part is stored yet: one COPY straight into event_log. If one is
  // (a redelivery, a replay, an id twice in the batch), the COPY fails as a whole on the
  // primary key and the part goes the slower way: staging table, then merge by id.
  if (auto s = conn->ExecScript("BEGIN"); !s.ok()) return fail(s);
  auto direct = conn->CopyIn(Cat("COPY event_log (", kColumns, ") FROM STDIN"), data);
  if (direct.ok()) {
    if (auto s = conn->ExecScript("COMMIT"); !s.ok()) return fail(s);
    report.copy = absl::Now() - encoded;
    report.stored = *direct;
    return report;
  }
  if (common::SqlState(direct.status()) != "23505") return fail(direct.status());
  ++report.merged_batches;
  if (auto s = conn->ExecScript("ROLLBACK; BEGIN; TRUNCATE event_log_stage"); !s.ok()) return fail(s);
  auto copied = conn->CopyIn(Cat("COPY event_log_stage (", kColumns, ") FROM STDIN"), data);
  if (!copied.ok()) return fail(copied.status());
  const absl::Time copied_at = absl::Now();
  report.copy = copied_at - encoded;
  auto merged = conn->Exec(Cat("INSERT INTO event_log (", kColumns, ") SELECT ", kColumns,
                               " FROM event_log_stage ON CONFLICT (id) DO NOTHING"));
  if (!merged.ok()) return fail(merged.status());
  if (auto s = conn->ExecScript("COMMIT"); !s.ok()) return fail(s);
  report.merge = absl::Now() - copied_at;
  report.stored = merged->affected();
  return report;
}

}  // namespace sluice::audit
