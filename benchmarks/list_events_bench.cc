// list_events_bench: ListEvents latency on a realistic event_log of millions of rows.
// Fills event_log in a scratch schema (all migrations: the same monthly partitions, key and
// indexes as production) server-side, then runs ListEvents through the gateway's own code
// (gateway::EventLog over a PgPool on that schema: CheckListRequest builds the WHERE, List
// runs it and decodes the rows) for the documented filters, first page and the next page
// via its cursor, with random parameters drawn from the data. Prints p50/p99 per query
// against the target of DESIGN §6 (every p99 <= 50 ms) and, for a miss, EXPLAIN (ANALYZE,
// BUFFERS) of its slowest instance on stderr. Drops the schema at the end, also on failure
// and on SIGINT/SIGTERM, unless --keep.
//
// A binary of its own rather than a mode of audit_bench: it needs no Kafka and links the
// gateway, not the sink; its fill takes minutes, and it can be rerun against a kept schema
// (--keep, then --reuse) while audit_bench runs stay short.
#include <CLI/CLI.hpp>
#include <absl/strings/str_format.h>
#include <google/protobuf/util/time_util.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/pg_pool.h"
#include "common/strings.h"
#include "contracts/authz.h"
#include "contracts/catalog.h"
#include "contracts/fast_json.h"
#include "contracts/vectors.h"
#include "gateway/event_log.h"
#include "gateway/list_request.h"

namespace {

using namespace sluice;
using common::Cat;

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "list_events_bench: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}

double Seconds(absl::Time since) { return absl::ToDoubleSeconds(absl::Now() - since); }

// Drops the scratch schema when main returns, whatever the path (unless kept).
struct SchemaGuard {
  std::string dsn, schema;
  bool keep = false;
  ~SchemaGuard() {
    if (keep) {
      std::printf("kept schema %s (rerun with --reuse %s)\n", schema.c_str(), schema.c_str());
      return;
    }
    auto c = common::PgConnection::Connect(dsn);
    if (c.ok()) (void)c->ExecScript("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
  }
};

// On SIGINT/SIGTERM: end the backend running the fill (it may hold the schema for
// minutes), drop the schema and exit. Runs on its own thread (sigwait), so it may use libpq.
void DropOnSignal(std::string dsn, std::string schema, int backend_pid, const bool* keep) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "list_events_bench: signal %d, dropping %s\n", sig, schema.c_str());
  if (!*keep) {
    auto c = common::PgConnection::Connect(dsn);
    if (c.ok()) {
      (void)c->Exec("SELECT pg_terminate_backend($1::int)", {std::to_string(backend_pid)});
      (void)c->ExecScript("SET lock_timeout = '60s'; DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    }
  }
  std::_Exit(128 + sig);
}

// The fill, server-side in one INSERT ... SELECT over generate_series. `mix` holds one row per
// catalog event type: its golden payload (protobuf JSON, as the sink stores it), topic,
// producers and ttl. Per row g:
//   chain k = g / 4: four consecutive events share a correlation id (15% of chains none)
//     and a tenant;
//   tenant: 'tenant-' || floor(tenants * u^3), u uniform per chain: skewed, the largest
//     tenant holds about 1/cbrt(tenants) of the rows (15% for 300), most tenants few;
//   type: floor(13 * u^2) over the catalog's order (earlier types more frequent); source:
//     one of the type's producers;
//   occurred_at: evenly over `days` days up to now, plus up to a second of jitter, so the
//     rows fall in several monthly partitions;
//   payload: the type's golden payload with canonicalKey / entityId (if it has them) set to
//     one of 2,000 entities per tenant (skewed), and rowsAffected / rowCount varied.
std::string FillSql(int64_t rows, int tenants, int days) {
  return Cat(R"(
INSERT INTO event_log (id, type, source, tenant_id, occurred_at, received_at, payload, correlation_id, causation_id,
                       ttl_ms, metadata, topic, "partition", "offset", version, traceparent)
SELECT gen_random_uuid(), m.type, m.producers[(1 + r.h2 % cardinality(m.producers))::int], r.tenant, r.occurred_at,
       r.occurred_at + random() * interval '50 ms',
       m.payload || jsonb_strip_nulls(jsonb_build_object(
         'canonicalKey', CASE WHEN m.payload ? 'canonicalKey' THEN 'key_' || r.entity END,
         'entityId', CASE WHEN m.payload ? 'entityId' THEN md5(r.tenant || '/' || r.entity)::uuid::text END,
         'rowsAffected', CASE WHEN m.payload ? 'rowsAffected' THEN (r.h2 % 1000000)::text END,
         'rowCount', CASE WHEN m.payload ? 'rowCount' THEN (r.h2 % 5000000)::text END)),
       CASE WHEN r.h1 % 100 >= 15 THEN md5('chain/' || r.k)::uuid::text END,
       NULL, m.ttl_ms, '{}'::jsonb, m.topic, (r.h1 % 12)::int, r.g, m.version,
       '00-' || md5('trace/' || r.k) || '-' || substr(md5('span/' || r.g), 1, 16) || '-01'
FROM (
  SELECT g, k, h1, h2,
         'tenant-' || floor()",
             tenants, R"( * power(h1::float8 / 2147483648.0, 3))::int AS tenant,
         1 + floor(13 * power(random(), 2))::int AS type_no,
         floor(2000 * power(random(), 2))::int AS entity,
         now() - interval ')",
             days, R"( days' + (g::float8 / )", rows, R"() * interval ')", days,
             R"( days' + random() * interval '1 s' AS occurred_at
  FROM (SELECT g, g / 4 AS k, (hashint8(g / 4)::bigint & 2147483647) AS h1,
               (hashint8(g)::bigint & 2147483647) AS h2
        FROM generate_series(1, )",
             rows, R"() g) s
) r JOIN bench_mix m ON m.no = r.type_no)");
}

struct Sample {
  std::string tenant, type, source, correlation_id, canonical_key;
  int64_t occurred_micros = 0;
};

struct Latencies {
  std::vector<double> first, next;  // ms
  double worst = -1;
  v1::ListEventsRequest worst_request;  // the slowest call (first page or the next)
  int errors = 0;
  std::string first_error;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn = common::DefaultPgDsn(), reuse;
  int64_t rows = 5'000'000;
  int tenants = 300, days = 182, iterations = 300;
  double max_seconds = 60, target_ms = 50;
  bool keep = false;
  CLI::App app{"list_events_bench: ListEvents p50/p99 on a filled event_log, through the gateway's query code"};
  app.add_option("--dsn", dsn, "PostgreSQL")->capture_default_str();
  app.add_option("--rows", rows, "Rows in event_log")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--tenants", tenants, "Tenants (skewed)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--days", days, "occurred_at spans this many days up to now")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  app.add_option("--iterations", iterations, "Calls per query (random parameters), each first page + next page")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-seconds", max_seconds, "Stop a query's iterations after this long")->capture_default_str();
  app.add_option("--target-ms", target_ms, "p99 target")->capture_default_str();
  app.add_flag("--keep", keep, "Keep the filled schema (its name is printed)");
  app.add_option("--reuse", reuse, "Use a schema kept by an earlier --keep run instead of filling one");
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("list_events_bench", "warn");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also when redirected

  // SIGINT/SIGTERM go to the dropping thread only (blocked here before any thread starts).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok()) return Fail("connect", conn.status());
  const std::string schema = reuse.empty() ? "bench_list_" + std::to_string(std::random_device{}()) : reuse;
  SchemaGuard guard{dsn, schema, keep || !reuse.empty()};
  std::thread(DropOnSignal, dsn, schema, PQbackendPID(conn->raw()), &guard.keep).detach();
  auto version = conn->Exec("SHOW server_version");
  std::printf("PostgreSQL %s, schema %s\n", version.ok() ? std::string(version->Get(0, 0)).c_str() : "?",
              schema.c_str());

  const contracts::Catalog& catalog = contracts::Catalog::Default();
  if (reuse.empty()) {
    if (auto m = common::Migrate(*conn, std::string(SLUICE_SOURCE_DIR) + "/sql/migrations", schema); !m.ok())
      return Fail("migrate", m.status());
    if (auto s = conn->SetSearchPath(schema); !s.ok()) return Fail("search_path", s);
    // One row per catalog type: its golden payload, topic, producers and ttl.
    auto goldens = contracts::LoadVectors(std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
    if (!goldens.ok()) return Fail("goldens", goldens.status());
    if (auto s = conn->ExecScript(
            "CREATE TEMP TABLE bench_mix (no int, type text, producers text[], topic text, payload jsonb,"
            " ttl_ms bigint, version text)");
        !s.ok())
      return Fail("bench_mix", s);
    int no = 0;
    for (const contracts::Route& route : catalog.routes()) {
      auto golden = std::find_if(goldens->begin(), goldens->end(), [&](const auto& v) { return v.type == route.type; });
      if (golden == goldens->end()) return Fail("goldens", absl::NotFoundError("no golden vector for " + route.type));
      const v1::Envelope& e = golden->envelope;
      const auto* field = e.GetDescriptor()->FindFieldByName(route.payload_field);
      std::string payload;
      if (auto s = contracts::AppendJson(payload, e.GetReflection()->GetMessage(e, field)); !s.ok())
        return Fail("payload of " + route.type, s);
      std::set<std::string> producers(route.producers.begin(), route.producers.end());
      auto r = conn->Exec(
          "INSERT INTO bench_mix VALUES ($1, $2, $3, $4, $5, $6, $7)",
          {std::to_string(++no), route.type, common::PgTextArray(producers), route.topic, payload,
           e.ttl_ms() > 0 ? std::optional<std::string>(std::to_string(e.ttl_ms())) : std::nullopt, route.version});
      if (!r.ok()) return Fail("bench_mix", r.status());
    }
    if (no != 13) std::printf("note: the catalog has %d event types\n", no);

    // Load without the indexes, then build them (what 0010 does with existing rows): one
    // sorted build per partition instead of five index insertions per row. The definitions
    // are taken from the migrated table and put back unchanged.
    std::printf("filling event_log: %lld rows, %d tenants, %d days ...\n", static_cast<long long>(rows), tenants, days);
    std::fflush(stdout);
    auto defs = conn->Exec(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'event_log'::regclass AND NOT indisprimary");
    auto pkey = conn->Exec(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'event_log'::regclass AND contype = 'p'");
    if (!defs.ok() || !pkey.ok() || pkey->rows() != 1)
      return Fail("index definitions", defs.ok() ? pkey.status() : defs.status());
    std::string drop = Cat("ALTER TABLE event_log DROP CONSTRAINT ", pkey->Get(0, 0), ";");
    std::string build = Cat("ALTER TABLE event_log ADD CONSTRAINT ", pkey->Get(0, 0), " ", pkey->Get(0, 1), ";");
    // pg_get_indexdef spells a partitioned table's index "ON ONLY event_log", which would
    // make an invalid index on the parent alone; without ONLY it is built on every partition.
    for (int i = 0; i < defs->rows(); ++i) {
      std::string def(defs->Get(i, 0));
      if (auto at = def.find(" ON ONLY "); at != std::string::npos) def.replace(at, 9, " ON ");
      build += Cat(def, ";");
    }
    auto names = conn->Exec(
        "SELECT string_agg(format('%I', c.relname), ', ') FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = 'event_log'::regclass AND NOT i.indisprimary");
    if (!names.ok()) return Fail("index names", names.status());
    if (defs->rows() > 0) drop += Cat("DROP INDEX ", names->Get(0, 0), ";");

    absl::Time t = absl::Now();
    auto parts = conn->Exec(Cat("SELECT count(event_log_ensure_partition(m)) FROM generate_series(now() - interval '",
                                days, " days', now() + interval '1 month', interval '1 month') m"));
    if (!parts.ok()) return Fail("partitions", parts.status());
    if (auto s = conn->ExecScript(drop); !s.ok()) return Fail("drop indexes", s);
    if (auto s = conn->ExecScript("SELECT setseed(0.42)"); !s.ok()) return Fail("setseed", s);
    if (auto s = conn->ExecScript(FillSql(rows, tenants, days)); !s.ok()) return Fail("fill", s);
    const double fill_s = Seconds(t);
    t = absl::Now();
    if (auto s = conn->ExecScript("SET maintenance_work_mem = '512MB'; " + build); !s.ok())
      return Fail("build indexes", s);
    const double index_s = Seconds(t);
    // Every index of the migrated table is back, valid, on the parent and every partition.
    auto check = conn->Exec(
        "SELECT count(*) FILTER (WHERE NOT i.indisvalid), count(*), (SELECT count(*) FROM pg_partition_tree("
        "'event_log')) FROM pg_partition_tree('event_log') p JOIN pg_index i ON i.indrelid = p.relid");
    if (!check.ok()) return Fail("index check", check.status());
    const int64_t relations = std::stoll(std::string(check->Get(0, 2)));
    if (check->Get(0, 0) != "0" || std::stoll(std::string(check->Get(0, 1))) != relations * (defs->rows() + 1))
      return Fail("index check", absl::InternalError(Cat(check->Get(0, 0), " invalid, ", check->Get(0, 1),
                                                         " indexes over ", relations, " tables")));
    t = absl::Now();
    // What autovacuum would have done to an older table: visibility map, hint bits, statistics.
    if (auto s = conn->ExecScript("VACUUM (ANALYZE) event_log"); !s.ok()) return Fail("vacuum analyze", s);
    std::printf(
        "fill: INSERT ... SELECT %.1f s (%.0f rows/s), primary key + %d indexes %.1f s,"
        " VACUUM ANALYZE %.1f s\n",
        fill_s, static_cast<double>(rows) / fill_s, defs->rows(), index_s, Seconds(t));
  } else if (auto s = conn->SetSearchPath(schema); !s.ok()) {
    return Fail("search_path", s);
  }
  auto shape = conn->Exec(
      "SELECT (SELECT count(*) FROM event_log), (SELECT count(*) FROM pg_inherits WHERE inhparent = "
      "'event_log'::regclass), pg_size_pretty((SELECT sum(pg_total_relation_size(relid)) FROM "
      "pg_partition_tree('event_log'))), (SELECT count(DISTINCT tenant_id) FROM event_log)");
  auto top = conn->Exec("SELECT tenant_id, count(*) FROM event_log GROUP BY 1 ORDER BY 2 DESC LIMIT 1");
  if (!shape.ok() || !top.ok()) return Fail("table shape", shape.ok() ? top.status() : shape.status());
  std::printf("event_log: %s rows in %s partitions, %s with indexes, %s tenants (largest %s: %s rows)\n",
              std::string(shape->Get(0, 0)).c_str(), std::string(shape->Get(0, 1)).c_str(),
              std::string(shape->Get(0, 2)).c_str(), std::string(shape->Get(0, 3)).c_str(),
              std::string(top->Get(0, 0)).c_str(), std::string(top->Get(0, 1)).c_str());

  // Parameters drawn from the rows themselves: busy tenants are asked about as often as
  // they have events (the skew shows in the tail), combinations that exist.
  auto sample = conn->Exec(
      "SELECT tenant_id, type, source, coalesce(correlation_id, ''), coalesce(payload->>'canonicalKey', ''),"
      " (extract(epoch FROM occurred_at) * 1000000)::bigint FROM event_log TABLESAMPLE SYSTEM (0.1) REPEATABLE (7)");
  if (!sample.ok() || sample->rows() == 0) return Fail("sample", sample.status());
  std::vector<Sample> samples;
  for (int i = 0; i < sample->rows(); ++i)
    samples.push_back({std::string(sample->Get(i, 0)), std::string(sample->Get(i, 1)), std::string(sample->Get(i, 2)),
                       std::string(sample->Get(i, 3)), std::string(sample->Get(i, 4)),
                       std::stoll(std::string(sample->Get(i, 5)))});

  // The gateway's pool, with a longer statement timeout than its 5 s default so a slow
  // query is measured rather than cancelled (calls over 5 s are counted).
  common::PgPool pool(dsn, schema, {.max_connections = 2, .statement_timeout = absl::Seconds(60)});
  contracts::Authorizer authz(catalog);
  gateway::EventLog log(pool, catalog, authz);

  using Build = std::function<bool(const Sample&, std::mt19937_64&, v1::EventFilter&)>;
  const std::vector<std::pair<std::string, Build>> queries = {
      {"tenant + type",
       [](const Sample& s, std::mt19937_64&, v1::EventFilter& f) {
         f.add_types(s.type);
         return true;
       }},
      {"tenant + source",
       [](const Sample& s, std::mt19937_64&, v1::EventFilter& f) {
         f.add_sources(s.source);
         return true;
       }},
      {"tenant + correlation id",
       [](const Sample& s, std::mt19937_64&, v1::EventFilter& f) {
         if (s.correlation_id.empty()) return false;
         f.set_correlation_id(s.correlation_id);
         return true;
       }},
      {"tenant + time window (1 h - 7 d)",
       [](const Sample& s, std::mt19937_64& rng, v1::EventFilter& f) {
         const int64_t width = std::uniform_int_distribution<int64_t>(3600, 7 * 86400)(rng) * 1'000'000;
         using google::protobuf::util::TimeUtil;
         *f.mutable_from_time() = TimeUtil::MicrosecondsToTimestamp(s.occurred_micros - width / 2);
         *f.mutable_to_time() = TimeUtil::MicrosecondsToTimestamp(s.occurred_micros + width / 2);
         return true;
       }},
      {"tenant + JSONPath canonicalKey ==",
       [](const Sample& s, std::mt19937_64&, v1::EventFilter& f) {
         if (s.canonical_key.empty()) return false;
         f.set_json_path(Cat("$.canonicalKey ? (@ == \"", s.canonical_key, "\")"));
         return true;
       }},
  };

  std::mt19937_64 rng(42);
  int64_t over_timeout = 0;
  std::map<std::string, Latencies> results;
  for (const auto& [name, build] : queries) {
    Latencies& lat = results[name];
    const absl::Time until = absl::Now() + absl::Seconds(max_seconds);
    for (int i = 0; i < iterations && absl::Now() < until;) {
      const Sample& s = samples[std::uniform_int_distribution<size_t>(0, samples.size() - 1)(rng)];
      v1::ListEventsRequest req;
      req.set_limit(100);
      req.mutable_filter()->add_tenant_ids(s.tenant);
      if (!build(s, rng, *req.mutable_filter())) continue;
      ++i;
      v1::Principal who;
      who.set_name("bench");
      who.add_tenants(s.tenant);
      for (int page = 0; page < 2; ++page) {
        const absl::Time t = absl::Now();
        auto resp = log.List(who, req);
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
        if (!resp.ok()) {
          if (lat.errors++ == 0) lat.first_error = std::string(resp.status().message());
          break;
        }
        (page == 0 ? lat.first : lat.next).push_back(ms);
        if (ms > 5000) ++over_timeout;
        if (ms > lat.worst) {
          lat.worst = ms;
          lat.worst_request = req;
        }
        if (!resp->has_more()) break;
        req.set_cursor(resp->next_cursor());
      }
    }
  }

  const auto load = [] {
    double l[3] = {0, 0, 0};
    return getloadavg(l, 3) == 3 ? Cat(absl::StrFormat("%.2f %.2f %.2f", l[0], l[1], l[2])) : std::string("?");
  };
  std::printf("\nListEvents, limit 100, through gateway::EventLog (load average %s)\n", load().c_str());
  std::printf("%-36s %6s %9s %9s %6s %9s %9s %9s\n", "query", "calls", "p50 ms", "p99 ms", "next", "p50 ms", "p99 ms",
              "target");
  bool all_met = true;
  std::vector<std::string> missed;
  for (const auto& [name, build] : queries) {
    const Latencies& lat = results[name];
    const double p99 = std::max(Percentile(lat.first, 0.99), Percentile(lat.next, 0.99));
    const bool met = lat.errors == 0 && !lat.first.empty() && p99 <= target_ms;
    all_met = all_met && met;
    if (!met) missed.push_back(name);
    std::printf("%-36s %6zu %9.2f %9.2f %6zu %9.2f %9.2f %9s", name.c_str(), lat.first.size(),
                Percentile(lat.first, 0.5), Percentile(lat.first, 0.99), lat.next.size(), Percentile(lat.next, 0.5),
                Percentile(lat.next, 0.99), met ? "met" : "NOT met");
    if (lat.errors > 0) std::printf("   (%d errors, first: %s)", lat.errors, lat.first_error.c_str());
    std::printf("\n");
  }
  std::printf(
      "target: every p99 <= %.0f ms: %s%s\n", target_ms, all_met ? "met" : "NOT met",
      over_timeout > 0 ? Cat(" (", over_timeout, " calls over the gateway's 5 s statement timeout)").c_str() : "");

  // For each miss, the plan of its slowest call: the same statement and parameters the gateway
  // built (CheckListRequest), SELECT * instead of the gateway's column expressions.
  for (const auto& name : missed) {
    const Latencies& lat = results[name];
    if (lat.worst < 0) continue;
    v1::Principal who;
    who.set_name("bench");
    who.add_tenants(lat.worst_request.filter().tenant_ids(0));
    auto q = gateway::CheckListRequest(catalog, authz, who, lat.worst_request);
    if (!q.ok()) continue;
    auto plan = conn->Exec(Cat("EXPLAIN (ANALYZE, BUFFERS) ", gateway::ListStatement(*q, "*")), q->params);
    std::fprintf(stderr, "\n== %s: slowest call %.1f ms, filter %s%s\n", name.c_str(), lat.worst,
                 lat.worst_request.filter().ShortDebugString().c_str(),
                 lat.worst_request.cursor().empty() ? "" : " (next page)");
    if (!plan.ok()) {
      std::fprintf(stderr, "EXPLAIN failed: %s\n", std::string(plan.status().message()).c_str());
      continue;
    }
    for (int i = 0; i < plan->rows(); ++i) std::fprintf(stderr, "%s\n", std::string(plan->Get(i, 0)).c_str());
  }
  return 0;
}
