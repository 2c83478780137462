#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/pg.h"
#include "sluice/v1/common.pb.h"

namespace sluice::profiler {

// One entry of mdm_global_metadata.column_rules:
//   {"column": "email", "unique": true, "regex": "^[^@]+@[^@]+$", "min": 0, "max": 100,
//    "allowed_values": ["EUR", "USD"], "max_length": 3}
// Every key but "column" is optional. Values are bound as query parameters, never
// spliced into SQL.
struct ColumnRule {
  std::string column;
  bool unique = false;
  std::optional<std::string> regex;
  std::optional<std::string> min;  // compared in the column's own type
  std::optional<std::string> max;
  std::optional<std::vector<std::string>> allowed_values;  // compared as text
  std::optional<int64_t> max_length;                       // characters of the text form
  bool HasValidityRule() const { return regex || min || max || allowed_values || max_length; }
};

// Parses column_rules (a JSON array). InvalidArgument naming the entry and key.
absl::StatusOr<std::vector<ColumnRule>> ParseColumnRules(std::string_view json);

// A column as the database catalog describes it.
struct ColumnInfo {
  std::string name;
  std::string type;           // format_type(), e.g. "numeric(12,2)"
  char category = 'U';        // pg_type.typcategory: 'N' numeric, 'D' date/time, 'S' string ...
  bool unique_index = false;  // a plain single-column unique index or constraint covers it
  bool HasMinMax() const { return category == 'N' || category == 'D'; }
};

// Weights of the quality score (a weighted mean); need not sum to 1.
struct ScoreWeights {
  double completeness = 0.4;
  double uniqueness = 0.3;
  double validity = 0.3;
};

// The profile statements of a table, run in one REPEATABLE READ snapshot: one scan for
// every count, rule and min/max (`sql`, `params`, each metric a column of its one result
// row), and one statement per column whose uniqueness needs counting distinct values
// (`distinct_sql`, no parameters; a GROUP BY that PostgreSQL can hash in parallel, where
// count(DISTINCT) in the main scan would sort every value in one process and keep the
// whole scan from going parallel).
struct ProfilePlan {
  std::string sql;
  std::vector<std::optional<std::string>> params;
  std::vector<std::string> distinct_sql;
  struct Column {
    ColumnInfo info;
    const ColumnRule* rule = nullptr;                       // points into the rules passed to BuildProfilePlan
    int non_null = -1;                                      // result column of count(c)
    int distinct = -1;                                      // index into distinct_sql, when unique and no unique index
    int regex = -1, range = -1, allowed = -1, length = -1;  // violations per rule
    int invalid = -1;                                       // values violating any rule
    int min = -1, max = -1;
  };
  std::vector<Column> columns;
};

// An allowed-values list shorter than this is padded to it in the statement's parameter,
// so that PostgreSQL hashes the list instead of comparing every value with each element.
inline constexpr size_t kHashedAnyMin = 9;

// Builds the statement. `quoted_table` and `quote` must be libpq-escaped identifiers of
// names read from the catalog. A rule naming a column the table lacks, or a range rule on
// a column that is neither numeric nor date/time, is InvalidArgument.
absl::StatusOr<ProfilePlan> BuildProfilePlan(const std::string& quoted_table, const std::vector<ColumnInfo>& columns,
                                             const std::vector<ColumnRule>& rules,
                                             const std::function<std::string(std::string_view)>& quote);

struct ColumnProfile {
  std::string column;
  std::string type;
  int64_t null_count = 0;
  bool unique_checked = false;
  std::string uniqueness_method;  // "unique_index" | "distinct_count"
  int64_t duplicates = 0;         // non-null values minus distinct ones
  bool validity_checked = false;
  int64_t invalid = 0;
  int64_t regex_violations = 0, range_violations = 0, allowed_violations = 0, length_violations = 0;
  std::optional<std::string> min, max;
};

struct ProfileResult {
  int64_t row_count = 0;
  std::vector<ColumnProfile> columns;
  double completeness = 100, uniqueness = 100, validity = 100, quality_score = 100;
  v1::QualityGrade grade = v1::QUALITY_GRADE_A;
  std::string method;
  absl::Duration duration;
  // {"columns": [...], "weights": {...}} for mdm_profile.details.
  std::string DetailsJson(const ScoreWeights& w) const;
};

// Reads the metrics from the statement's one result row and computes the scores:
//   completeness = non-null cells / (rows x columns)             (all columns)
//   uniqueness   = distinct / non-null values                     (columns marked unique)
//   validity     = non-null values passing every rule / non-null  (columns with rules)
// each in percent (100 when nothing is measured), score = weighted mean.
ProfileResult ScoreProfile(const ProfilePlan& plan, const common::PgResult& row,
                           const std::vector<int64_t>& distinct_counts, const ScoreWeights& w);
// The same from already computed column profiles (row_count and columns set).
void ComputeScores(ProfileResult& r, const ScoreWeights& w);

// A at 90 or more, B at 80, C at 70, D at 60, otherwise F.
v1::QualityGrade GradeFor(double score);
const char* GradeLetter(v1::QualityGrade g);

// Why a profile run failed, as carried by metadata.profile.failed.
struct ProfileError {
  std::string code;  // TABLE_NOT_FOUND, COLUMN_NOT_FOUND, INVALID_RULE, STATEMENT_TIMEOUT, ...
  std::string message;
  bool retryable = false;
};

struct ProfileOptions {
  absl::Duration statement_timeout = absl::Minutes(10);
  ScoreWeights weights;
};

// Profiles schema.table on `conn` in one REPEATABLE READ READ ONLY transaction with a
// statement_timeout: the names are first looked up in the catalog (nothing else runs when
// they are not found), then one scan computes every metric. On failure the transaction is
// rolled back and the error says what went wrong and whether retrying may help.
absl::StatusOr<ProfileResult> ProfileTable(common::PgConnection& conn, const std::string& schema,
                                           const std::string& table, std::string_view column_rules_json,
                                           const ProfileOptions& options, ProfileError* error);

}  // namespace sluice::profiler
