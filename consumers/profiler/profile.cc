#include "consumers/profiler/profile.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <map>
#include <set>

#include "common/pg.h"
#include "common/strings.h"

namespace sluice::profiler {
namespace {

using common::Cat;
using google::protobuf::Value;

absl::Status BadRule(size_t i, std::string_view key, std::string_view why) {
  return absl::InvalidArgumentError(Cat("column_rules[", i, "].", key, ": ", why));
}

// A JSON number or string as the text PostgreSQL will parse in the column's type.
absl::StatusOr<std::string> Scalar(const Value& v) {
  if (v.kind_case() == Value::kStringValue) return v.string_value();
  if (v.kind_case() == Value::kNumberValue) {
    double d = v.number_value();
    if (std::trunc(d) == d && std::abs(d) < 9e15) return Cat(static_cast<int64_t>(d));
    return fmt::format("{}", d);  // shortest text that reads back as the same double: 0.1, not 0.1000...01
  }
  return absl::InvalidArgumentError("must be a number or a string");
}

int64_t Int(const common::PgResult& r, int col) {
  return r.IsNull(0, col) ? 0 : std::stoll(std::string(r.Get(0, col)));
}

double Percent(int64_t good, int64_t total) {
  return total == 0 ? 100.0 : 100.0 * static_cast<double>(good) / static_cast<double>(total);
}

}  // namespace

absl::StatusOr<std::vector<ColumnRule>> ParseColumnRules(std::string_view json) {
  google::protobuf::ListValue list;
  if (json.empty()) return std::vector<ColumnRule>{};
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &list);
  if (!parsed.ok())
    return absl::InvalidArgumentError(Cat("column_rules: not a JSON array: ", std::string(parsed.message())));
  std::vector<ColumnRule> rules;
  std::set<std::string> seen;
  for (int i = 0; i < list.values_size(); ++i) {
    const Value& v = list.values(i);
    if (v.kind_case() != Value::kStructValue) return BadRule(i, "", "must be an object");
    ColumnRule r;
    for (const auto& [key, val] : v.struct_value().fields()) {
      if (key == "column") {
        if (val.kind_case() != Value::kStringValue || val.string_value().empty())
          return BadRule(i, key, "must be a non-empty string");
        r.column = val.string_value();
      } else if (key == "unique") {
        if (val.kind_case() != Value::kBoolValue) return BadRule(i, key, "must be true or false");
        r.unique = val.bool_value();
      } else if (key == "not_null") {
        // Accepted for documentation; nulls are measured by completeness for every column.
        if (val.kind_case() != Value::kBoolValue) return BadRule(i, key, "must be true or false");
      } else if (key == "regex") {
        if (val.kind_case() != Value::kStringValue) return BadRule(i, key, "must be a string");
        r.regex = val.string_value();
      } else if (key == "min" || key == "max") {
        auto s = Scalar(val);
        if (!s.ok()) return BadRule(i, key, std::string(s.status().message()));
        (key == "min" ? r.min : r.max) = *s;
      } else if (key == "allowed_values") {
        if (val.kind_case() != Value::kListValue) return BadRule(i, key, "must be an array");
        std::vector<std::string> values;
        for (const auto& e : val.list_value().values()) {
          auto s = Scalar(e);
          if (!s.ok()) return BadRule(i, key, std::string(s.status().message()));
          values.push_back(*s);
        }
        r.allowed_values = std::move(values);
      } else if (key == "max_length") {
        if (val.kind_case() != Value::kNumberValue || val.number_value() < 0 ||
            std::trunc(val.number_value()) != val.number_value())
          return BadRule(i, key, "must be a non-negative integer");
        r.max_length = static_cast<int64_t>(val.number_value());
      } else {
        return BadRule(i, key,
                       "unknown key (known: column, unique, not_null, regex, min, max, allowed_values, max_length)");
      }
    }
    if (r.column.empty()) return BadRule(i, "column", "required");
    if (!seen.insert(r.column).second) return BadRule(i, "column", Cat("\"", r.column, "\" has rules twice"));
    rules.push_back(std::move(r));
  }
  return rules;
}

absl::StatusOr<ProfilePlan> BuildProfilePlan(const std::string& quoted_table, const std::vector<ColumnInfo>& columns,
                                             const std::vector<ColumnRule>& rules,
                                             const std::function<std::string(std::string_view)>& quote) {
  std::map<std::string, const ColumnRule*> by_column;
  for (const auto& r : rules) by_column[r.column] = &r;
  for (const auto& r : rules) {
    bool found = false;
    for (const auto& c : columns) found = found || c.name == r.column;
    if (!found) return absl::NotFoundError(Cat("column_rules: column \"", r.column, "\" is not in the table"));
  }

  ProfilePlan plan;
  std::vector<std::string> aggs = {"count(*)"};
  auto add = [&](std::string expr) {
    aggs.push_back(std::move(expr));
    return static_cast<int>(aggs.size()) - 1;
  };
  auto param = [&](std::string value) {
    plan.params.push_back(std::move(value));
    return Cat("$", plan.params.size());
  };
  for (const auto& info : columns) {
    ProfilePlan::Column pc;
    pc.info = info;
    const std::string q = quote(info.name);
    pc.non_null = add(Cat("count(", q, ")"));
    if (auto it = by_column.find(info.name); it != by_column.end()) {
      const ColumnRule& r = *it->second;
      pc.rule = &r;
      if (r.unique && !info.unique_index) {
        pc.distinct = static_cast<int>(plan.distinct_sql.size());
        plan.distinct_sql.push_back(Cat("SELECT count(*) FROM (SELECT ", q, " FROM ", quoted_table, " WHERE ", q,
                                        " IS NOT NULL GROUP BY ", q, ") AS d"));
      }
      std::vector<std::string> violations;
      if (r.regex) violations.push_back(Cat("NOT (", q, "::text ~ ", param(*r.regex), ")"));
      if (r.min || r.max) {
        if (!info.HasMinMax())
          return absl::InvalidArgumentError(Cat("column_rules: column \"", info.name, "\" is ", info.type,
                                                "; min/max need a numeric or date/time column"));
        std::vector<std::string> parts;
        if (r.min) parts.push_back(Cat(q, " < ", param(*r.min)));
        if (r.max) parts.push_back(Cat(q, " > ", param(*r.max)));
        violations.push_back(parts.size() == 1 ? parts[0] : Cat("(", parts[0], " OR ", parts[1], ")"));
      }
      if (r.allowed_values) {
        // PostgreSQL (14 and later) looks `= ANY` up in a hash table built once when the
        // array is a constant of at least kHashedAnyMin elements when the plan is made, and
        // otherwise compares each row with every element in turn. A short list is padded
        // with copies of its last value to that length (the same set): for three currencies
        // on 5 million rows, the rule's own cost fell from 250-280 ms to 95-115 ms (psql,
        // benchmarks/README.md). The bound array is a constant at planning because the
        // statement is run unprepared with its values (PQexecParams: an unnamed statement,
        // planned for these parameters); a prepared, generically planned statement would
        // lose the hashing, not the result.
        std::vector<std::string> values = *r.allowed_values;
        if (!values.empty() && values.size() < kHashedAnyMin) values.resize(kHashedAnyMin, values.back());
        violations.push_back(Cat("NOT (", q, "::text = ANY (", param(common::PgTextArray(values)), "::text[]))"));
      }
      if (r.max_length) violations.push_back(Cat("length(", q, "::text) > ", param(Cat(*r.max_length)), "::integer"));
      size_t v = 0;
      auto counted = [&](bool present) {
        if (!present) return -1;
        return add(Cat("count(*) FILTER (WHERE ", q, " IS NOT NULL AND ", violations[v++], ")"));
      };
      pc.regex = counted(r.regex.has_value());
      pc.range = counted(r.min || r.max);
      pc.allowed = counted(r.allowed_values.has_value());
      pc.length = counted(r.max_length.has_value());
      if (violations.size() == 1) {
        pc.invalid = std::max({pc.regex, pc.range, pc.allowed, pc.length});
      } else if (violations.size() > 1) {
        std::string any;
        for (size_t i = 0; i < violations.size(); ++i) any += Cat(i ? " OR " : "", violations[i]);
        pc.invalid = add(Cat("count(*) FILTER (WHERE ", q, " IS NOT NULL AND (", any, "))"));
      }
    }
    if (info.HasMinMax()) {
      pc.min = add(Cat("min(", q, ")::text"));
      pc.max = add(Cat("max(", q, ")::text"));
    }
    plan.columns.push_back(std::move(pc));
  }
  std::string sql = "SELECT ";
  for (size_t i = 0; i < aggs.size(); ++i) sql += Cat(i ? ", " : "", aggs[i]);
  plan.sql = Cat(sql, " FROM ", quoted_table);
  return plan;
}

void ComputeScores(ProfileResult& r, const ScoreWeights& w) {
  int64_t cells = 0, non_null = 0, unique_total = 0, unique_distinct = 0, checked = 0, valid = 0;
  for (const auto& c : r.columns) {
    const int64_t nn = r.row_count - c.null_count;
    cells += r.row_count;
    non_null += nn;
    if (c.unique_checked) {
      unique_total += nn;
      unique_distinct += nn - c.duplicates;
    }
    if (c.validity_checked) {
      checked += nn;
      valid += nn - c.invalid;
    }
  }
  r.completeness = Percent(non_null, cells);
  r.uniqueness = Percent(unique_distinct, unique_total);
  r.validity = Percent(valid, checked);
  const double total = w.completeness + w.uniqueness + w.validity;
  r.quality_score =
      total <= 0 ? 0
                 : (w.completeness * r.completeness + w.uniqueness * r.uniqueness + w.validity * r.validity) / total;
  r.grade = GradeFor(r.quality_score);
}

ProfileResult ScoreProfile(const ProfilePlan& plan, const common::PgResult& row,
                           const std::vector<int64_t>& distinct_counts, const ScoreWeights& w) {
  ProfileResult r;
  r.row_count = Int(row, 0);
  bool any_distinct = false;
  for (const auto& pc : plan.columns) {
    ColumnProfile c;
    c.column = pc.info.name;
    c.type = pc.info.type;
    c.null_count = r.row_count - Int(row, pc.non_null);
    if (pc.rule && pc.rule->unique) {
      c.unique_checked = true;
      if (pc.distinct >= 0) {
        any_distinct = true;
        c.uniqueness_method = "distinct_count";
        c.duplicates = (r.row_count - c.null_count) - distinct_counts.at(static_cast<size_t>(pc.distinct));
      } else {
        c.uniqueness_method = "unique_index";  // the database already forbids duplicates
      }
    }
    if (pc.invalid >= 0) {
      c.validity_checked = true;
      c.invalid = Int(row, pc.invalid);
      if (pc.regex >= 0) c.regex_violations = Int(row, pc.regex);
      if (pc.range >= 0) c.range_violations = Int(row, pc.range);
      if (pc.allowed >= 0) c.allowed_violations = Int(row, pc.allowed);
      if (pc.length >= 0) c.length_violations = Int(row, pc.length);
    }
    if (pc.min >= 0 && !row.IsNull(0, pc.min)) c.min = std::string(row.Get(0, pc.min));
    if (pc.max >= 0 && !row.IsNull(0, pc.max)) c.max = std::string(row.Get(0, pc.max));
    r.columns.push_back(std::move(c));
  }
  r.method = any_distinct ? "single_scan_v1+distinct" : "single_scan_v1";
  ComputeScores(r, w);
  return r;
}

std::string ProfileResult::DetailsJson(const ScoreWeights& w) const {
  std::string out = "{\"columns\":[";
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& c = columns[i];
    out += Cat(i ? "," : "", "{\"column\":", common::JsonQuote(c.column), ",\"type\":", common::JsonQuote(c.type),
               ",\"null_count\":", c.null_count,
               ",\"completeness\":", fmt::format("{:.4f}", Percent(row_count - c.null_count, row_count)));
    if (c.unique_checked)
      out += Cat(",\"uniqueness_method\":", common::JsonQuote(c.uniqueness_method), ",\"duplicates\":", c.duplicates);
    if (c.validity_checked)
      out += Cat(",\"invalid\":", c.invalid, ",\"violations\":{\"regex\":", c.regex_violations,
                 ",\"range\":", c.range_violations, ",\"allowed_values\":", c.allowed_violations,
                 ",\"max_length\":", c.length_violations, "}");
    if (c.min) out += Cat(",\"min\":", common::JsonQuote(*c.min));
    if (c.max) out += Cat(",\"max\":", common::JsonQuote(*c.max));
    out += "}";
  }
  out += fmt::format("],\"weights\":{{\"completeness\":{},\"uniqueness\":{},\"validity\":{}}}}}", w.completeness,
                     w.uniqueness, w.validity);
  return out;
}

v1::QualityGrade GradeFor(double score) {
  if (score >= 90) return v1::QUALITY_GRADE_A;
  if (score >= 80) return v1::QUALITY_GRADE_B;
  if (score >= 70) return v1::QUALITY_GRADE_C;
  if (score >= 60) return v1::QUALITY_GRADE_D;
  return v1::QUALITY_GRADE_F;
}

const char* GradeLetter(v1::QualityGrade g) {
  switch (g) {
    case v1::QUALITY_GRADE_A: return "A";
    case v1::QUALITY_GRADE_B: return "B";
    case v1::QUALITY_GRADE_C: return "C";
    case v1::QUALITY_GRADE_D: return "D";
    default: return "F";
  }
}

absl::StatusOr<ProfileResult> ProfileTable(common::PgConnection& conn, const std::string& schema,
                                           const std::string& table, std::string_view column_rules_json,
                                           const ProfileOptions& options, ProfileError* error) {
  const absl::Time start = absl::Now();
  auto fail = [&](std::string code, absl::Status s, bool retryable) -> absl::Status {
    // The transaction, once begun, rolls back as `tx` goes out of scope.
    if (error) *error = {std::move(code), std::string(s.message()), retryable};
    return s;
  };
  // Errors of the statement itself: what the SQLSTATE says about retrying.
  auto fail_pg = [&](const absl::Status& s) {
    const std::string state = common::SqlState(s);
    if (state == "57014") return fail("STATEMENT_TIMEOUT", s, true);
    if (state == "42501") return fail("PERMISSION_DENIED", s, false);
    if (state == "2201B" || state.starts_with("22")) return fail("INVALID_RULE", s, false);
    if (state == "42P01" || state == "42703") return fail("TABLE_NOT_FOUND", s, false);
    if (absl::IsUnavailable(s)) return fail("DATABASE_UNAVAILABLE", s, true);
    return fail("PROFILE_ERROR", s, false);
  };

  auto rules = ParseColumnRules(column_rules_json);
  if (!rules.ok()) return fail("INVALID_RULE", rules.status(), false);

  auto tx = common::PgTransaction::Begin(
      conn, Cat("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = ",
                std::max<int64_t>(1, absl::ToInt64Milliseconds(options.statement_timeout))));
  if (!tx.ok()) return fail_pg(tx.status());
  // Names come from the binding; only what the catalog confirms is ever quoted into SQL.
  auto cols = conn.Exec(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory,"
      "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS "
      "NULL"
      "          AND i.indexprs IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum)"
      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
      " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
      " JOIN pg_type t ON t.oid = a.atttypid"
      " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'm', 'v', 'f')"
      " ORDER BY a.attnum",
      {schema, table});
  if (!cols.ok()) return fail_pg(cols.status());
  if (cols->rows() == 0)
    return fail("TABLE_NOT_FOUND", absl::NotFoundError(Cat("table ", schema, ".", table, " does not exist")), false);
  std::vector<ColumnInfo> infos;
  for (int i = 0; i < cols->rows(); ++i)
    infos.push_back({std::string(cols->Get(i, 0)), std::string(cols->Get(i, 1)),
                     cols->Get(i, 2).empty() ? 'U' : cols->Get(i, 2)[0], cols->Get(i, 3) == "t"});
  auto qs = conn.QuoteIdentifier(schema);
  auto qt = conn.QuoteIdentifier(table);
  if (!qs.ok() || !qt.ok()) return fail("INVALID_BINDING", qs.ok() ? qt.status() : qs.status(), false);
  std::string quote_error;
  auto plan = BuildProfilePlan(Cat(*qs, ".", *qt), infos, *rules, [&](std::string_view name) {
    auto q = conn.QuoteIdentifier(name);
    if (!q.ok()) quote_error = std::string(q.status().message());
    return q.ok() ? *q : std::string();
  });
  if (!plan.ok())
    return fail(absl::IsNotFound(plan.status()) ? "COLUMN_NOT_FOUND" : "INVALID_RULE", plan.status(), false);
  if (!quote_error.empty()) return fail("INVALID_BINDING", absl::InvalidArgumentError(quote_error), false);

  auto row = conn.Exec(plan->sql, plan->params);
  if (!row.ok()) return fail_pg(row.status());
  std::vector<int64_t> distinct_counts;
  for (const auto& sql : plan->distinct_sql) {
    auto d = conn.Exec(sql);
    if (!d.ok()) return fail_pg(d.status());
    distinct_counts.push_back(Int(*d, 0));
  }
  if (auto s = tx->Commit(); !s.ok()) return fail_pg(s);
  ProfileResult result = ScoreProfile(*plan, *row, distinct_counts, options.weights);
  result.duration = absl::Now() - start;
  return result;
}

}  // namespace sluice::profiler
