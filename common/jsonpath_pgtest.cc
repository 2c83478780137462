// The in-memory SQL/JSON path evaluator against PostgreSQL's own `@?` (dev/stack.sh up):
// the known cases, then every pair of a few hundred random paths of the forms it
// evaluates and a few hundred random documents must get PostgreSQL's answer.
#include "common/jsonpath.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/env.h"
#include "common/jsonpath_cases.h"
#include "common/pg.h"
#include "common/strings.h"

namespace sluice::common {
namespace {

class JsonPathPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = PgConnection::Connect(DefaultPgDsn());
    ASSERT_TRUE(c.ok()) << "is the local stack up (dev/stack.sh up)? " << c.status();
    conn_ = std::make_unique<PgConnection>(*std::move(c));
  }

  // PostgreSQL's answers for every (doc, path) pair, as a set of (doc index, path index).
  std::set<std::pair<size_t, size_t>> Postgres(const std::vector<std::string>& docs,
                                               const std::vector<std::string>& paths) {
    auto r = conn_->Exec(
        "SELECT (d.i - 1)::text, (p.j - 1)::text"
        " FROM unnest($1::jsonb[]) WITH ORDINALITY AS d(doc, i), unnest($2::jsonpath[]) WITH ORDINALITY AS p(path, j)"
        " WHERE d.doc @? p.path",
        {PgTextArray(docs), PgTextArray(paths)});
    EXPECT_TRUE(r.ok()) << r.status();
    std::set<std::pair<size_t, size_t>> out;
    if (!r.ok()) return out;
    for (int i = 0; i < r->rows(); ++i)
      out.emplace(std::stoul(std::string(r->Get(i, 0))), std::stoul(std::string(r->Get(i, 1))));
    return out;
  }

  std::unique_ptr<PgConnection> conn_;
};

TEST_F(JsonPathPgTest, TheKnownCasesArePostgresAnswers) {
  for (const auto& c : kJsonPathCases) {
    auto r = conn_->Exec("SELECT $1::jsonb @? $2::jsonpath", {c.doc, c.path});
    ASSERT_TRUE(r.ok()) << c.doc << " @? " << c.path << ": " << r.status();
    EXPECT_EQ(r->Get(0, 0) == "t", c.exists) << c.doc << " @? " << c.path;
  }
  // What the evaluator leaves to PostgreSQL is valid there.
  for (const char* text : kJsonPathUnimplemented) {
    auto r = conn_->Exec("SELECT $1::jsonpath", {text});
    EXPECT_TRUE(r.ok()) << text << ": " << r.status();
  }
}

// Random documents and paths over a small alphabet, so that paths often find something.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string Doc() { return Object(0); }

  // A path expression (most) or, now and then, a predicate at the top.
  std::string TopPath() {
    if (Pick(20) == 0) return Cat(Path(false, 0), " ", Cmp(), " ", Literal());
    return Path(false, 0);
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  template <size_t N>
  const char* One(const char* const (&options)[N]) {
    return options[Pick(N)];
  }

  std::string Key() { return One({"a", "b", "c", "tier", "\"x y\"", "\"\\u00e9\""}); }
  std::string Scalar() {
    return One({"0",           "1",          "-1",     "2",     "1.50",
                "1.5",         "-0",         "2e1",    "20",    "12345678901234567890.5",
                "\"\"",        "\"a\"",      "\"ab\"", "\"B\"", "\"tier1\"",
                "\"\\u00e9\"", "\"a\\\"b\"", "\"1\"",  "true",  "false",
                "null"});
  }
  std::string Value(int depth) {
    const size_t k = depth >= 3 ? 0 : Pick(6);
    if (k <= 2) return Scalar();
    if (k == 3) return Object(depth + 1);
    std::string out = "[";
    const size_t n = Pick(4);
    for (size_t i = 0; i < n; ++i) out += Cat(i ? "," : "", Value(depth + 1));
    return out + "]";
  }
  std::string Object(int depth) {
    std::vector<std::string> keys = {"a", "b", "c", "tier", "x y", "é"};
    std::shuffle(keys.begin(), keys.end(), rng_);
    const size_t n = depth == 0 ? 2 + Pick(4) : Pick(4);
    std::string out = "{";
    for (size_t i = 0; i < n; ++i) out += Cat(i ? "," : "", JsonQuote(keys[i]), ":", Value(depth));
    return out + "}";
  }

  std::string Literal() {
    return One(
        {"0",     "1",     "-1",     "2",     "1.5",       "20",          "- 1",        "1e1",   "12345678901234567890",
         "\"\"",  "\"a\"", "\"ab\"", "\"B\"", "\"tier1\"", "\"\\u00e9\"", "\"a\\\"b\"", "\"1\"", "true",
         "false", "null"});
  }
  const char* Cmp() { return One({"==", "!=", "<>", "<", "<=", ">", ">="}); }

  std::string Path(bool in_filter, int depth) {
    std::string out = in_filter && Pick(3) != 0 ? "@" : "$";
    const size_t steps = Pick(depth > 1 ? 2 : 4);
    for (size_t i = 0; i < steps; ++i) {
      switch (Pick(depth > 1 ? 4 : 6)) {
        case 0:
        case 1: out += "." + Key(); break;
        case 2: out += One({".*", "[*]"}); break;
        case 3: out += One({"[0]", "[1]", "[ 2 ]"}); break;
        default: out += Cat(" ? (", Pred(depth + 1), ")"); break;
      }
    }
    return out;
  }
  std::string Operand(int depth) { return Pick(2) == 0 ? Path(true, depth) : Literal(); }
  std::string Pred(int depth) {
    switch (Pick(depth > 2 ? 2 : 7)) {
      case 0: return Cat(Path(true, depth), " ", Cmp(), " ", Operand(depth));
      case 1: return Cat(Path(true, depth), " starts with ", One({"\"a\"", "\"\"", "\"ti\"", "\"\\u00e9\""}));
      case 2: return Cat("(", Pred(depth + 1), ") && (", Pred(depth + 1), ")");
      case 3: return Cat(Pred(depth + 1), " || ", Pred(depth + 1));
      case 4: return Cat("!(", Pred(depth + 1), ")");
      case 5: return Cat("exists(", Path(true, depth + 1), ")");
      default: return Cat("(", Pred(depth + 1), ") is unknown");
    }
  }

  std::mt19937 rng_;
};

TEST_F(JsonPathPgTest, RandomPathsAndDocumentsGetPostgresAnswers) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(Cat("seed ", seed));
  Generator gen(seed);
  std::vector<std::string> docs, paths;
  for (int i = 0; i < 250; ++i) docs.push_back(gen.Doc());
  for (int i = 0; i < 400; ++i) paths.push_back(gen.TopPath());
  std::vector<JsonDoc> parsed;
  for (const auto& d : docs) {
    auto doc = JsonDoc::Parse(d);
    ASSERT_TRUE(doc.ok()) << d << ": " << doc.status();
    parsed.push_back(*std::move(doc));
  }
  std::vector<std::shared_ptr<const JsonPath>> compiled;
  for (const auto& p : paths) {
    auto path = JsonPath::Compile(p);
    ASSERT_TRUE(path.ok()) << p << ": " << path.status();
    compiled.push_back(*std::move(path));
  }
  const auto expected = Postgres(docs, paths);
  size_t found = 0, differ = 0;
  for (size_t d = 0; d < docs.size(); ++d)
    for (size_t p = 0; p < paths.size(); ++p) {
      auto got = compiled[p]->Exists(parsed[d]);
      ASSERT_TRUE(got.ok()) << got.status();
      found += *got ? 1 : 0;
      if (*got != expected.contains({d, p}) && ++differ <= 20)
        ADD_FAILURE() << docs[d] << " @? " << paths[p] << ": PostgreSQL says " << !*got;
    }
  EXPECT_EQ(differ, 0u);
  // The pairs are not all alike: a good share of each answer.
  const size_t pairs = docs.size() * paths.size();
  EXPECT_GT(found, pairs / 10) << found << " of " << pairs;
  EXPECT_LT(found, pairs * 9 / 10) << found << " of " << pairs;
  std::printf("%zu pairs, %zu found, seed %u\n", pairs, found, seed);
}

}  // namespace
}  // namespace sluice::common
