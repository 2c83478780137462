#include "consumers/audit/audit_sink.h"

#include <absl/time/civil_time.h>
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
#include "contracts/validate.h"

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

// The event_log partition of a record: the UTC month of its occurred_at (as AppendRow
// writes it), as year * 12 + month - 1.
int64_t MonthOf(const kafka::Record& r) {
  const absl::Time t = r.envelope.has_occurred_at() ? absl::FromUnixSeconds(r.envelope.occurred_at().seconds())
                                                    : absl::FromUnixMillis(r.timestamp_ms);
  const absl::CivilMonth m(absl::ToCivilSecond(t, absl::UTCTimeZone()));
  return static_cast<int64_t>(m.year()) * 12 + (m.month() - 1);
}

// The first instant of a month of MonthOf, in RFC 3339.
std::string MonthStart(int64_t month) {
  const absl::CivilMonth m(month / 12, static_cast<int>(month % 12) + 1);
  return absl::FormatCivilTime(absl::CivilSecond(m)) + "Z";
}

}  // namespace

absl::Status AppendRow(std::string& out, const kafka::Record& r, absl::Time received_at) {
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
  const std::string occurred = e.has_occurred_at()
                                   ? contracts::FormatTimestamp(e.occurred_at())
                                   : contracts::FormatTimestamp(TimeUtil::MillisecondsToTimestamp(r.timestamp_ms));
  const std::string received = absl::FormatTime(absl::RFC3339_full, received_at, absl::UTCTimeZone());
  const std::string ttl = e.ttl_ms() > 0 ? Cat(e.ttl_ms()) : std::string();
  const std::string partition = Cat(r.partition), offset = Cat(r.offset);
  const std::optional<std::string_view> fields[] = {e.id(),
                                                    e.type(),
                                                    e.source(),
                                                    e.tenant_id(),
                                                    occurred,
                                                    received,
                                                    payload,
                                                    NullIfEmpty(e.correlation_id()),
                                                    NullIfEmpty(e.causation_id()),
                                                    NullIfEmpty(ttl),
                                                    metadata,
                                                    r.topic,
                                                    partition,
                                                    offset,
                                                    NullIfEmpty(e.version()),
                                                    NullIfEmpty(e.traceparent())};
  for (size_t i = 0; i < std::size(fields); ++i) {
    if (i) out += '\t';
    AppendCopyField(out, fields[i]);
  }
  out += '\n';
  return absl::OkStatus();
}

AuditSink::AuditSink(AuditConfig config)
    : config_(std::move(config)),
      catalog_(config_.catalog != nullptr ? *config_.catalog : contracts::Catalog::Default()),
      conns_(static_cast<size_t>(std::max(1, config_.pg_writers))) {}

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
  auto c = common::Connect(config_.pg_dsn, config_.pg_schema);
  if (!c.ok()) return c.status();
  // Session-local staging table: each batch is copied here, then merged by id.
  if (auto s =
          c->ExecScript(Cat("CREATE TEMP TABLE event_log_stage AS SELECT ", kColumns, " FROM event_log WITH NO DATA"));
      !s.ok())
    return s;
  conn.emplace(*std::move(c));
  return absl::OkStatus();
}

absl::StatusOr<WriteReport> AuditSink::Write(const std::vector<kafka::Record>& batch) {
  WriteReport report{.received = static_cast<int64_t>(batch.size())};
  if (batch.empty()) return report;
  const absl::Time now = absl::Now();
  // Records go to the parts by a hash of their id, not by partition: a batch usually comes
  // almost whole from one partition (the consumer drains one fetched partition at a time),
  // and both copies of an id delivered twice land in the same part.
  std::vector<std::vector<const kafka::Record*>> shares(conns_.size());
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
    if (!part.ok()) {
      // Whatever failed, the retry makes sure of its months again: cheap, and it mends a
      // partition dropped (by retention or by hand) since this sink last made it.
      std::lock_guard lock(months_mu_);
      months_.clear();
      return part.status();
    }
    report.stored += part->stored;
    report.dead_lettered += part->dead_lettered;
    for (size_t k = 0; k < kDeadLetterCategories; ++k) report.dead_lettered_by[k] += part->dead_lettered_by[k];
    report.merged_batches = std::max(report.merged_batches, part->merged_batches);  // 1 if any part merged
    report.encode = std::max(report.encode, part->encode);
    report.copy = std::max(report.copy, part->copy);
    report.merge = std::max(report.merge, part->merge);
  }
  report.duplicates = report.received - report.dead_lettered - report.stored;
  return report;
}

// One part of a batch on its way into one transaction: the rows encoded back to back in
// `data`, and the records that go to event_dead_letter instead.
struct AuditSink::Part {
  struct Row {
    const kafka::Record* record;
    size_t begin, end;  // its bytes in `data`
    int64_t month;      // its event_log partition (MonthOf)
  };
  struct DeadLetter {
    const kafka::Record* record;
    DeadLetterCategory category;
    std::string sqlstate;
    std::string reason;
  };
  std::string data;
  std::vector<Row> rows;
  std::vector<DeadLetter> dead;
  WriteReport report;
};

absl::StatusOr<WriteReport> AuditSink::WritePart(std::optional<common::PgConnection>& conn,
                                                 const std::vector<const kafka::Record*>& records,
                                                 absl::Time received_at) {
  Part part;
  const absl::Time start = absl::Now();
  part.data.reserve(records.size() * 768);
  part.rows.reserve(records.size());
  for (const kafka::Record* r : records) {
    // The bounds (sizes, characters, known type and source) are what keep a row storable
    // and indexable; an event outside them is kept aside with the reason, never retried.
    if (!r->decoded) {
      part.dead.push_back({r, DeadLetterCategory::kInvalid, "",
                           common::Cat("value: not a sluice.v1.Envelope (", r->value.size(), " bytes)")});
      continue;
    }
    if (absl::Status s = contracts::Validate(r->envelope, catalog_, received_at); !s.ok()) {
      part.dead.push_back({r, DeadLetterCategory::kInvalid, "", std::string(s.message())});
      continue;
    }
    const size_t at = part.data.size();
    absl::Status s = AppendRow(part.data, *r, received_at);
    // PostgreSQL text cannot hold a NUL byte; Validate refuses them, this is the last guard.
    if (s.ok() && part.data.find('\0', at) != std::string::npos)
      s = absl::InvalidArgumentError("a string holds a NUL character, which PostgreSQL text cannot store");
    if (!s.ok()) {
      part.data.resize(at);
      part.dead.push_back({r, DeadLetterCategory::kUnencodable, "", std::string(s.message())});
      continue;
    }
    part.rows.push_back({r, at, part.data.size(), MonthOf(*r)});
  }
  const absl::Time encoded = absl::Now();
  part.report.encode = encoded - start;
  if (auto s = EnsureConnected(conn); !s.ok()) return s;
  if (auto s = EnsurePartitions(*conn, part); !s.ok()) return s;
  auto tx = common::PgTransaction::Begin(*conn);  // rolled back on any early return
  if (!tx.ok()) return tx.status();
  if (auto s = StoreRows(*conn, part, 0, part.rows.size()); !s.ok()) return s;
  const absl::Time stored_at = absl::Now();
  for (const auto& d : part.dead) {
    auto added = InsertDeadLetter(*conn, *d.record, d.category, d.sqlstate, d.reason);
    if (!added.ok()) return added.status();
    if (!*added) continue;  // a redelivery: dead-lettered before
    ++part.report.dead_lettered;
    ++part.report.dead_lettered_by[static_cast<size_t>(d.category)];
    const v1::Envelope& e = d.record->envelope;
    spdlog::warn("audit: {}[{}]@{} event {} of tenant {} dead-lettered ({}): {}", d.record->topic, d.record->partition,
                 d.record->offset, StorableText(e.id(), 64), StorableText(e.tenant_id(), 64), CategoryLabel(d.category),
                 StorableText(d.reason));
  }
  if (auto s = tx->Commit(); !s.ok()) return s;
  part.report.merge += absl::Now() - stored_at;
  return part.report;
}

absl::Status AuditSink::EnsurePartitions(common::PgConnection& conn, const Part& part) {
  std::vector<int64_t> missing;
  {
    std::lock_guard lock(months_mu_);
    for (const auto& row : part.rows)
      if (!months_.contains(row.month) && std::find(missing.begin(), missing.end(), row.month) == missing.end())
        missing.push_back(row.month);
  }
  if (missing.empty()) return absl::OkStatus();
  std::string months = "{";
  for (int64_t m : missing) {
    if (months.size() > 1) months += ',';
    months += MonthStart(m);
  }
  months += '}';
  // Autocommit, before the part's transaction: attaching a partition takes a lock on
  // event_log that waits for open transactions, and this connection must hold none then.
  auto r = conn.Exec("SELECT event_log_ensure_partition(m) FROM unnest($1::timestamptz[]) m", {months});
  if (!r.ok()) return r.status();
  std::lock_guard lock(months_mu_);
  months_.insert(missing.begin(), missing.end());
  return absl::OkStatus();
}

absl::Status AuditSink::StoreRows(common::PgConnection& conn, Part& part, size_t begin, size_t end) {
  if (begin >= end) return absl::OkStatus();
  const size_t from = part.rows[begin].begin;
  const std::string_view rows(part.data.data() + from, part.rows[end - 1].end - from);
  // Each attempt under a savepoint, so a refused one leaves the rest of the transaction
  // (rows stored before, in other halves) intact.
  if (auto s = conn.ExecScript("SAVEPOINT audit_rows"); !s.ok()) return s;
  auto undo = [&] { return conn.ExecScript("ROLLBACK TO SAVEPOINT audit_rows; RELEASE SAVEPOINT audit_rows"); };
  auto done = [&](int64_t stored) {
    part.report.stored += stored;
    return conn.ExecScript("RELEASE SAVEPOINT audit_rows");
  };
  // Usually no event of the rows is stored yet: one COPY straight into event_log. If one
  // is (a redelivery, a replay, an event twice in the batch), the COPY fails as a whole on
  // the primary key and the rows go the slower way: staging table, then merge.
  const absl::Time t0 = absl::Now();
  auto direct = conn.CopyIn(Cat("COPY event_log (", kColumns, ") FROM STDIN"), rows);
  part.report.copy += absl::Now() - t0;
  if (direct.ok()) return done(*direct);
  absl::Status failed = direct.status();
  if (common::SqlState(failed) == "23505") {
    part.report.merged_batches = 1;
    if (auto s = undo(); !s.ok()) return s;
    if (auto s = conn.ExecScript("SAVEPOINT audit_rows; TRUNCATE event_log_stage"); !s.ok()) return s;
    const absl::Time t1 = absl::Now();
    auto copied = conn.CopyIn(Cat("COPY event_log_stage (", kColumns, ") FROM STDIN"), rows);
    const absl::Time t2 = absl::Now();
    part.report.copy += t2 - t1;
    if (copied.ok()) {
      auto merged = conn.Exec(Cat("INSERT INTO event_log (", kColumns, ") SELECT ", kColumns,
                                  " FROM event_log_stage ON CONFLICT (tenant_id, id, occurred_at) DO NOTHING"));
      part.report.merge += absl::Now() - t2;
      if (merged.ok()) return done(merged->affected());
      failed = merged.status();
    } else {
      failed = copied.status();
    }
  }
  // A connection or server problem: the batch fails and comes again. A data error would
  // come again every time: find the rows it is about instead.
  const std::string sqlstate = common::SqlState(failed);
  if (!IsDataError(sqlstate)) return failed;
  if (auto s = undo(); !s.ok()) return s;
  if (end - begin == 1) {
    // 23514 is also what a row gets when event_log has no partition for its month: one
    // dropped by retention after this sink made it. That is no fault of the row; the batch
    // fails and its retry makes the partition again.
    if (sqlstate == "23514") {
      auto p = conn.Exec("SELECT event_log_partition($1::timestamptz) IS NULL", {MonthStart(part.rows[begin].month)});
      if (!p.ok()) return p.status();
      if (p->Get(0, 0) == "t")
        return absl::UnavailableError(Cat("event_log has no partition for ", MonthStart(part.rows[begin].month),
                                          " (dropped while the batch was stored); retrying"));
    }
    part.dead.push_back({part.rows[begin].record, DeadLetterCategory::kUnstorable, sqlstate,
                         PgErrorReason(sqlstate, std::string(failed.message()))});
    return absl::OkStatus();
  }
  const size_t mid = begin + (end - begin) / 2;
  if (auto s = StoreRows(conn, part, begin, mid); !s.ok()) return s;
  return StoreRows(conn, part, mid, end);
}

}  // namespace sluice::audit
