#include "producers/scheduler/scheduler.h"

#include <google/protobuf/util/time_util.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/governance.h"
#include "outbox/outbox.h"

namespace sluice::scheduler {
namespace {

using common::Cat;
using contracts::TierDb;
using contracts::TierFromDb;

absl::Time FromEpochText(std::string_view s) {
  return absl::FromUnixMicros(static_cast<int64_t>(std::stod(std::string(s)) * 1e6));
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

}  // namespace

absl::StatusOr<OffPeakWindow> ParseWindow(std::string_view text) {
  const std::string t(text);
  const auto slash = t.find('/');
  int hh = -1, mm = -1;
  char tail = 0;
  OffPeakWindow w;
  const std::string clock = t.substr(0, slash == std::string::npos ? t.size() : slash);
  if (slash == std::string::npos || clock.size() != 5 ||
      std::sscanf(clock.c_str(), "%2d:%2d%c", &hh, &mm, &tail) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59)
    return absl::InvalidArgumentError(Cat("'", text, "' is not HH:MM/DURATION (UTC), e.g. 02:00/4h"));
  if (!absl::ParseDuration(t.substr(slash + 1), &w.length) || w.length < absl::Minutes(1) || w.length > absl::Hours(24))
    return absl::InvalidArgumentError(
        Cat("length '", t.substr(slash + 1), "' is not a duration from 1m to 24h, e.g. 4h"));
  w.start = absl::Hours(hh) + absl::Minutes(mm);
  return w;
}

absl::StatusOr<std::pair<std::string, OffPeakWindow>> ParseTenantWindow(std::string_view text) {
  const std::string t(text);
  const auto eq = t.find('=');
  if (eq == std::string::npos || eq == 0)
    return absl::InvalidArgumentError(Cat("'", text, "' is not TENANT=HH:MM/DURATION"));
  auto w = ParseWindow(t.substr(eq + 1));
  if (!w.ok()) return absl::InvalidArgumentError(Cat(t.substr(0, eq), ": ", w.status().message()));
  return std::pair{t.substr(0, eq), *w};
}

absl::Time SlotStart(absl::Time now, const OffPeakWindow& window) {
  return WindowStart(now - window.start, absl::Hours(24)) + window.start;
}

absl::Duration SpreadOffset(const std::string& tenant, const std::string& entity_id, const OffPeakWindow& window,
                            absl::Duration run_period) {
  const std::string name = Cat(tenant, "\n", entity_id);
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), d);
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | d[i];
  const int64_t minutes = std::max<int64_t>(1, absl::ToInt64Minutes(window.length - run_period));
  return absl::Minutes(static_cast<int64_t>(h % static_cast<uint64_t>(minutes)));
}

absl::Time EmitAt(absl::Time now, v1::Priority priority, const std::string& tenant, const std::string& entity_id,
                  const OffPeakWindow& window, absl::Duration run_period) {
  if (priority == v1::PRIORITY_HIGH || priority == v1::PRIORITY_CRITICAL) return now;
  const absl::Time slot = SlotStart(now, window);
  const absl::Time at = slot + SpreadOffset(tenant, entity_id, window, run_period);
  if (now >= at && now < slot + window.length) return now;
  return now < at ? at : at + absl::Hours(24);
}

absl::Time EmissionKey(absl::Time now, absl::Duration cadence, const OffPeakWindow& window) {
  return cadence < absl::Hours(24) ? WindowStart(now, cadence) : SlotStart(now, window);
}

absl::Time WindowStart(absl::Time now, absl::Duration cadence) {
  const int64_t c = absl::ToInt64Seconds(cadence);
  const int64_t s = absl::ToUnixSeconds(now);
  return absl::FromUnixSeconds(c <= 0 ? s : s - ((s % c) + c) % c);
}

std::string DueEventId(const std::string& tenant, const std::string& entity_id, v1::Tier tier,
                       absl::Time window_start) {
  const std::string name = Cat("metadata.profile.due\n", tenant, "\nmetadata\n", entity_id, "\n",
                               static_cast<int>(tier), "\n", absl::ToUnixSeconds(window_start));
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(), d);
  d[6] = static_cast<unsigned char>((d[6] & 0x0F) | 0x80);  // version 8 (custom, name-based)
  d[8] = static_cast<unsigned char>((d[8] & 0x3F) | 0x80);  // RFC 9562 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 0x0F]);
  }
  return out;
}

v1::Priority PriorityFor(v1::Tier tier, absl::Duration age, const SchedulerConfig& config) {
  if (tier != v1::TIER_1) return v1::PRIORITY_NORMAL;
  return age >= config.critical_age ? v1::PRIORITY_CRITICAL : v1::PRIORITY_HIGH;
}

absl::StatusOr<Scheduler> Scheduler::Create(SchedulerConfig config, const contracts::Catalog& catalog) {
  for (auto [name, d] :
       {std::pair{"tier1_cadence", config.tier1_cadence}, std::pair{"tier2_cadence", config.tier2_cadence},
        std::pair{"tier3_cadence", config.tier3_cadence}})
    if (d < absl::Seconds(1)) return absl::InvalidArgumentError(Cat(name, ": must be at least one second"));
  if (config.limit < 1) return absl::InvalidArgumentError("limit: must be positive");
  if (config.run_period < absl::Minutes(1)) return absl::InvalidArgumentError("run_period: must be at least 1m");
  // Longer than the run period, so at least one run falls inside every window.
  auto check = [&](const std::string& field, const OffPeakWindow& w) -> absl::Status {
    if (w.length < absl::Minutes(1) || w.length > absl::Hours(24))
      return absl::InvalidArgumentError(Cat(field, ": length must be from 1m to 24h"));
    if (w.length <= config.run_period)
      return absl::InvalidArgumentError(Cat(field, ": length ", absl::FormatDuration(w.length),
                                            " must be longer than run_period (",
                                            absl::FormatDuration(config.run_period), ")"));
    return absl::OkStatus();
  };
  for (const auto& [tenant, w] : config.tenant_windows) {
    if (tenant.empty()) return absl::InvalidArgumentError("tenant_windows: a window without a tenant");
    if (auto s = check(Cat("tenant_windows[", tenant, "]"), w); !s.ok()) return s;
  }
  if (auto s = check("window", config.window); !s.ok()) return s;
  auto conn = Connect(config);
  if (!conn.ok()) return conn.status();
  return Scheduler(std::move(config), catalog, *std::move(conn));
}

absl::StatusOr<common::PgConnection> Scheduler::Connect(const SchedulerConfig& config) {
  return common::Connect(config.pg_dsn, config.pg_schema);
}

const OffPeakWindow& Scheduler::WindowFor(const std::string& tenant) const {
  auto it = config_.tenant_windows.find(tenant);
  return it == config_.tenant_windows.end() ? config_.window : it->second;
}

absl::StatusOr<std::vector<DueEntity>> Scheduler::FindDue(absl::Time now) {
  // The latest profile of each entity is one lookup in mdm_profile_latest.
  auto r = conn_.Exec(
      "SELECT m.tenant_id, m.id::text, m.canonical_key, m.tier, coalesce(m.standard_pack_id, ''),"
      "  extract(epoch FROM p.profiled_at)::float8, extract(epoch FROM coalesce(p.profiled_at, m.created_at))::float8"
      " FROM mdm_global_metadata m"
      " LEFT JOIN LATERAL (SELECT profiled_at FROM mdm_profile WHERE tenant_id = m.tenant_id AND entity_type = "
      "'metadata'"
      "   AND entity_id = m.id ORDER BY profiled_at DESC LIMIT 1) p ON true"
      " WHERE m.status = 'active' AND m.binding_table IS NOT NULL AND m.tier IN ('tier1', 'tier2', 'tier3')"
      "   AND coalesce(p.profiled_at, '-infinity') < to_timestamp($1::float8) - CASE m.tier"
      "     WHEN 'tier1' THEN $2::float8 WHEN 'tier2' THEN $3::float8 ELSE $4::float8 END * interval '1 second'"
      // tier1 first: its HIGH/CRITICAL events go at once, and must not be crowded out of
      // the limit by entries that wait for the off-peak window.
      " ORDER BY (m.tier = 'tier1') DESC, coalesce(p.profiled_at, m.created_at), m.tenant_id, m.id LIMIT $5::integer",
      {Cat(absl::ToDoubleSeconds(now - absl::UnixEpoch())), Cat(absl::ToDoubleSeconds(config_.tier1_cadence)),
       Cat(absl::ToDoubleSeconds(config_.tier2_cadence)), Cat(absl::ToDoubleSeconds(config_.tier3_cadence)),
       Cat(config_.limit)});
  if (!r.ok()) return r.status();
  std::vector<DueEntity> due;
  for (int i = 0; i < r->rows(); ++i) {
    DueEntity d;
    const std::string tenant(r->Get(i, 0)), id(r->Get(i, 1));
    const v1::Tier tier = TierFromDb(r->Get(i, 3));
    if (tier == v1::TIER_UNSPECIFIED) continue;  // the table's CHECK allows none; never guess one
    if (!r->IsNull(i, 5)) d.last_profiled_at = FromEpochText(r->Get(i, 5));
    d.age = now - FromEpochText(r->Get(i, 6));
    const absl::Duration cadence = tier == v1::TIER_1   ? config_.tier1_cadence
                                   : tier == v1::TIER_2 ? config_.tier2_cadence
                                                        : config_.tier3_cadence;
    const OffPeakWindow& window = WindowFor(tenant);
    d.window_start = EmissionKey(now, cadence, window);
    const v1::Priority priority = PriorityFor(tier, d.age, config_);
    d.emit_at = EmitAt(now, priority, tenant, id, window, config_.run_period);
    v1::Envelope& e = d.event;
    e.set_id(DueEventId(tenant, id, tier, d.window_start));
    e.set_tenant_id(tenant);
    e.set_source(config_.source);
    *e.mutable_occurred_at() = ToProto(absl::Now());  // when emitted; `now` only decides what is due
    e.set_traceparent(contracts::NewTraceparent());   // each scheduled profile is a trace of its own
    auto* p = e.mutable_profile_due();
    p->set_entity_type(v1::ENTITY_TYPE_METADATA);
    p->set_entity_id(id);
    p->set_canonical_key(std::string(r->Get(i, 2)));
    p->set_tier(tier);
    p->set_priority(priority);
    p->set_reason(v1::PROFILE_REASON_SCHEDULE);
    if (d.last_profiled_at) *p->mutable_last_profiled_at() = ToProto(*d.last_profiled_at);
    p->set_standard_pack_id(std::string(r->Get(i, 4)));
    due.push_back(std::move(d));
  }
  return due;
}

absl::StatusOr<RunReport> Scheduler::Run(absl::Time now, bool dry_run) {
  RunReport report;
  if (PQstatus(conn_.raw()) != CONNECTION_OK) {  // e.g. PostgreSQL restarted between runs of --every
    auto c = Connect(config_);
    if (!c.ok()) return c.status();
    conn_ = *std::move(c);
  }
  auto due = FindDue(now);
  if (!due.ok()) return due.status();
  for (auto& d : *due) (d.emit_at > now ? report.waiting : report.due).push_back(std::move(d));
  if (dry_run) return report;
  // One transaction per event: a failure leaves earlier events emitted and later ones due.
  for (auto& d : report.due) {
    auto tx = common::PgTransaction::Begin(conn_);
    if (!tx.ok()) return tx.status();
    const auto& p = d.event.profile_due();
    auto ins = conn_.Exec(
        "INSERT INTO mdm_profile_schedule (event_id, tenant_id, entity_type, entity_id, tier, priority, window_start)"
        " VALUES ($1, $2, 'metadata', $3::uuid, $4, $5, to_timestamp($6::float8)) ON CONFLICT (event_id) DO NOTHING"
        " RETURNING 1",
        {d.event.id(), d.event.tenant_id(), p.entity_id(), TierDb(p.tier()), v1::Priority_Name(p.priority()),
         Cat(absl::ToUnixSeconds(d.window_start))});
    if (!ins.ok()) return ins.status();
    if (ins->rows() == 0) {
      ++report.already_emitted;
      if (auto s = tx->Rollback(); !s.ok()) return s;
      continue;
    }
    std::vector<v1::Envelope> events{d.event};
    if (auto s = outbox::AppendToOutbox(conn_, events, catalog_); !s.ok()) return s;
    if (auto s = tx->Commit(); !s.ok()) return s;
    outbox::ExportEmitSpans(events, "");  // each the root of its trace
    ++report.emitted;
  }
  return report;
}

}  // namespace sluice::scheduler
