// profile_bench: the cost of profiling a table against one read of its data.
// Builds a 10-column table (default 5 million rows), then times, alternately and in the
// same run: the baseline, a sequential scan that reads every column once; `SELECT
// count(*)` (reads no column; a reference line); and sluice-profiler's profile
// (ProfileTable) with three rule sets:
//   none     - row count, null counts of all 10 columns, min/max of numeric and time ones
//   typical  - plus a regex, an allowed-values list, a range and a length rule, and
//              uniqueness of the primary key (proved by its index, no extra work)
//   distinct - typical plus uniqueness of a column without a unique index (its own
//              GROUP BY statement in the same snapshot)
// Prints the median of each, its ratio to the baseline median and the targets. Then, as
// diagnostics timed in the same rounds, what `none` is made of (its 11 counts alone, its
// 10 min/max alone, and their estimated sum) and what `typical` is made of: the profile
// without its regex rule, that rule alone in PostgreSQL, and the regex column streamed out
// of PostgreSQL (`COPY ... TO STDOUT`, read and discarded: what any evaluation outside the
// server would pay before matching a single value).
// Needs the local PostgreSQL; creates the schema bench_profile and drops it unless --keep.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>

#include "common/env.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/profiler/profile.h"

namespace {

using namespace sluice;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "profile_bench: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn = common::DefaultPgDsn();
  int64_t rows = 5'000'000;
  int runs = 5;
  bool keep = false;
  CLI::App app{"profile_bench: profiling a table vs a scan that reads every column once, same run"};
  app.add_option("--dsn", dsn, "PostgreSQL")->capture_default_str();
  app.add_option("--rows", rows, "Rows of the table")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--runs", runs, "Timed runs of each (after one warm-up)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--keep", keep, "Keep (and reuse) the table bench_profile.orders");
  CLI11_PARSE(app, argc, argv);
  common::InitLogging("profile_bench", "warn");

  auto conn = common::PgConnection::Connect(dsn);
  if (!conn.ok()) return Fail("connect", conn.status());
  auto existing = conn->Exec("SELECT count(*) FROM bench_profile.orders");
  if (!existing.ok() || std::stoll(std::string(existing->Get(0, 0))) != rows) {
    if (!existing.ok()) (void)conn->ExecScript("ROLLBACK");
    std::printf("building bench_profile.orders: %lld rows x 10 columns ...\n", static_cast<long long>(rows));
    std::fflush(stdout);
    auto s = conn->ExecScript(common::Cat(
        "DROP SCHEMA IF EXISTS bench_profile CASCADE; CREATE SCHEMA bench_profile;"
        "CREATE TABLE bench_profile.orders (id bigint PRIMARY KEY, customer text, email text, currency text,"
        " amount numeric(12,2), qty integer, price double precision, ordered_at timestamptz, status text, note text);"
        "INSERT INTO bench_profile.orders SELECT g, 'cust-' || (g % 100000), 'user' || g || '@example.com',"
        " (ARRAY['EUR','USD','GBP','CHF'])[1 + g % 4], (g % 100000) / 100.0, g % 50, (g % 977) * 1.5,"
        " timestamptz '2025-01-01' + g * interval '1 second', CASE WHEN g % 10 = 0 THEN NULL ELSE 'open' END,"
        " CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' END FROM generate_series(1, ",
        rows, ") g;"));
    if (!s.ok()) return Fail("build table", s);
    if (auto v = conn->Exec("VACUUM ANALYZE bench_profile.orders"); !v.ok()) return Fail("vacuum", v.status());
  }
  auto size = conn->Exec("SELECT pg_size_pretty(pg_relation_size('bench_profile.orders'))");
  std::printf("table: %lld rows, 10 columns, %s; PostgreSQL %s\n", static_cast<long long>(rows),
              size.ok() ? std::string(size->Get(0, 0)).c_str() : "?",
              std::string(conn->Exec("SHOW server_version")->Get(0, 0)).c_str());

  const std::string regex_rule = R"({"column":"email","regex":"^[^@ ]+@[^@ ]+\\.[a-z]{2,}$"},)";
  const std::string other_rules =
      R"({"column":"currency","allowed_values":["EUR","USD","GBP"]},{"column":"amount","min":0,"max":900},)"
      R"({"column":"status","max_length":8}])";
  const std::string typical = R"([{"column":"id","unique":true},)" + regex_rule + other_rules;
  const std::string typical_without_regex = R"([{"column":"id","unique":true},)" + other_rules;
  const std::string distinct = typical.substr(0, typical.size() - 1) + R"(,{"column":"customer","unique":true}])";
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"none", "[]"}, {"typical", typical}, {"distinct", distinct}};

  // The baseline: a sequential scan, the way the profile reads the table.
  auto baseline = [&](const char* sql) -> absl::StatusOr<double> {
    if (auto s = conn->ExecScript("BEGIN; SET LOCAL enable_indexonlyscan = off; SET LOCAL enable_indexscan = off;"
                                  " SET LOCAL enable_bitmapscan = off");
        !s.ok())
      return s;
    absl::Time t = absl::Now();
    auto r = conn->Exec(sql);
    double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
    (void)conn->ExecScript("COMMIT");
    if (!r.ok()) return r.status();
    return ms;
  };
  profiler::ProfileOptions options;
  auto profile = [&](const std::string& rules, profiler::ProfileResult* out) -> absl::StatusOr<double> {
    profiler::ProfileError error;
    absl::Time t = absl::Now();
    auto r = profiler::ProfileTable(*conn, "bench_profile", "orders", rules, options, &error);
    double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
    if (!r.ok()) return absl::InternalError(error.code + ": " + error.message);
    if (out) *out = *r;
    return ms;
  };

  // Warm-up: the table into the page cache, plans and JIT paths exercised once.
  // count(*) never reads a column; the second reference reads (deforms) all ten, once.
  const char* kCount = "SELECT count(*) FROM bench_profile.orders";
  const char* kReadAll =
      "SELECT count(*) FROM bench_profile.orders WHERE num_nulls(id, customer, email, currency, amount, qty, price,"
      " ordered_at, status, note) >= 0";
  if (auto b = baseline(kCount); !b.ok()) return Fail("baseline", b.status());
  for (const auto& [name, rules] : variants)
    if (auto p = profile(rules, nullptr); !p.ok()) return Fail(name, p.status());

  // Diagnostics of `typical`: its regex rule alone, as the profile evaluates it, and the
  // regex column streamed out to the client with nothing done to it.
  const char* kRegexAlone =
      R"(SELECT count(*) FILTER (WHERE email IS NOT NULL AND NOT (email::text ~ '^[^@ ]+@[^@ ]+\.[a-z]{2,}$')))"
      " FROM bench_profile.orders";
  // Diagnostics of `none`: its two kinds of aggregate, each alone over the same scan.
  const char* kNullCounts =
      "SELECT count(*), count(id), count(customer), count(email), count(currency), count(amount), count(qty),"
      " count(price), count(ordered_at), count(status), count(note) FROM bench_profile.orders";
  const char* kMinMax =
      "SELECT min(id), max(id), min(amount), max(amount), min(qty), max(qty), min(price), max(price),"
      " min(ordered_at), max(ordered_at) FROM bench_profile.orders";
  auto copy_out = [&]() -> absl::StatusOr<double> {
    PGconn* pg = conn->raw();
    absl::Time t = absl::Now();
    common::PgResultHandle start(
        PQexec(pg, "COPY (SELECT email FROM bench_profile.orders WHERE email IS NOT NULL) TO STDOUT"));
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_OUT) return common::PgStatus(start.get(), pg, "copy out");
    int64_t copied = 0;
    char* line = nullptr;
    int n;
    while ((n = PQgetCopyData(pg, &line, 0)) > 0) {
      ++copied;
      PQfreemem(line);
    }
    common::PgResultHandle end(PQgetResult(pg));
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
    absl::Status status;
    if (n != -1 || !end || PQresultStatus(end.get()) != PGRES_COMMAND_OK) {
      status = common::PgStatus(end.get(), pg, "copy out");
    } else if (copied == 0) {
      status = absl::InternalError("copy out: no rows");
    }
    // Read the connection to its end either way, so the next statement starts clean.
    while (common::PgResultHandle more{PQgetResult(pg)}) {
    }
    if (!status.ok()) return status;
    return ms;
  };
  if (auto c = copy_out(); !c.ok()) return Fail("copy out", c.status());

  std::vector<double> base, read_all, null_counts, min_max, without_regex, regex_alone, streamed;
  std::map<std::string, std::vector<double>> times;
  std::map<std::string, profiler::ProfileResult> results;
  // One timing into its series, or the reason it failed.
  auto timed = [](absl::StatusOr<double> ms, std::vector<double>& into) -> absl::Status {
    if (!ms.ok()) return ms.status();
    into.push_back(*ms);
    return absl::OkStatus();
  };
  for (int i = 0; i < runs; ++i) {
    if (auto s = timed(baseline(kCount), base); !s.ok()) return Fail("baseline", s);
    if (auto s = timed(baseline(kReadAll), read_all); !s.ok()) return Fail("read-all scan", s);
    for (const auto& [name, rules] : variants)
      if (auto s = timed(profile(rules, &results[name]), times[name]); !s.ok()) return Fail(name, s);
    if (auto s = timed(baseline(kNullCounts), null_counts); !s.ok()) return Fail("null counts alone", s);
    if (auto s = timed(baseline(kMinMax), min_max); !s.ok()) return Fail("min/max alone", s);
    if (auto s = timed(profile(typical_without_regex, nullptr), without_regex); !s.ok())
      return Fail("typical without its regex", s);
    if (auto s = timed(baseline(kRegexAlone), regex_alone); !s.ok()) return Fail("regex alone", s);
    if (auto s = timed(copy_out(), streamed); !s.ok()) return Fail("copy out", s);
  }
  // The baseline is the scan that reads every column once: a profile must look at every
  // value, which count(*) never does (it stays as a reference line).
  const double b = Median(read_all);
  std::printf("\n%-34s %10s %8s   (median of %d runs)\n", "", "ms", "ratio", runs);
  std::printf("%-34s %10.1f %8s\n", "baseline: scan reading all 10 cols", b, "1.00");
  std::printf("%-34s %10.1f %8.2f   (reference: reads no column)\n", "SELECT count(*) seq scan", Median(base),
              Median(base) / b);
  const std::map<std::string, double> targets = {{"none", 1.5}, {"typical", 4.0}, {"distinct", 6.0}};
  std::string verdicts;
  for (const auto& [name, rules] : variants) {
    const double m = Median(times[name]);
    const auto& r = results[name];
    const double target = targets.at(name);
    std::printf("%-34s %10.1f %8.2f   target <= %.1f: %s; score %.2f grade %s, %s\n",
                ("profile, rules: " + name).c_str(), m, m / b, target, m / b <= target ? "met" : "NOT met",
                r.quality_score, profiler::GradeLetter(r.grade), r.method.c_str());
    verdicts += common::Cat(verdicts.empty() ? "" : ", ", name, m / b <= target ? " met" : " NOT met");
  }
  std::printf("\ntargets (ratio to the all-column scan): none <= 1.5, typical <= 4, distinct <= 6: %s\n",
              verdicts.c_str());
  // What `none` is made of: each kind of aggregate includes the scan, so a statement doing
  // both costs about the sum of their ratios less one scan.
  const double nulls_r = Median(null_counts) / b, minmax_r = Median(min_max) / b;
  std::printf("\ndiagnostics of none (same runs)\n");
  std::printf("%-34s %10.1f %8.2f\n", "the 11 counts alone", Median(null_counts), nulls_r);
  std::printf("%-34s %10.1f %8.2f\n", "the 10 min/max alone", Median(min_max), minmax_r);
  std::printf("both in one scan, estimated: %.2f (target 1.5)\n", nulls_r + minmax_r - 1.0);
  // What `typical` is made of: how much of its target is left for the regex rule, against
  // what that rule adds in PostgreSQL (its statement alone less the scan, which the profile
  // shares) and what any evaluation outside it adds at least (the column streamed out: a
  // pass of its own, before any matching).
  const double rest = Median(without_regex) / b;
  const double in_pg = Median(regex_alone) / b, outside = Median(streamed) / b;
  std::printf("\ndiagnostics of typical (same runs)\n");
  std::printf("%-34s %10.1f %8.2f\n", "typical without its regex rule", Median(without_regex), rest);
  std::printf("%-34s %10.1f %8.2f   (includes its scan)\n", "the regex rule alone, in PostgreSQL", Median(regex_alone),
              in_pg);
  std::printf("%-34s %10.1f %8.2f   (COPY TO STDOUT, nothing matched)\n", "the regex column streamed out",
              Median(streamed), outside);
  std::printf(
      "left for the regex under typical's target (4 - %.2f): %.2f; what it adds: in PostgreSQL about %.2f (alone, "
      "less one scan), outside it at least %.2f (streaming its column, before matching)\n",
      rest, 4.0 - rest, in_pg - 1.0, outside);
  if (!keep) (void)conn->ExecScript("DROP SCHEMA bench_profile CASCADE");
  return 0;
}
