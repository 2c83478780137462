#pragma once
// Cases of `doc @? path` with PostgreSQL 15's answers: jsonpath_test.cc expects them of
// the in-memory evaluator, jsonpath_pgtest.cc checks them against PostgreSQL itself.

namespace sluice::common {

struct JsonPathCase {
  const char* doc;
  const char* path;
  bool exists;
};

inline constexpr JsonPathCase kJsonPathCases[] = {
    // Accessors; lax mode ignores what is missing or of another kind.
    {R"({"a":1})", "$", true},
    {R"({"a":1})", "$.a", true},
    {R"({"a":null})", "$.a", true},
    {R"({"a":1})", "$.b", false},
    {R"({"a":1})", "$.a.b", false},
    {R"({"a":[{"b":1},{"c":2}]})", "$.a.b", true},
    {R"({"a":[[{"b":1}]]})", "$.a.b", false},
    {R"({"a":[[{"b":1}]]})", "$.a[*].b", true},
    {R"({"a":{"b":1}})", "$.a[*].b", true},
    {R"({"a":{"b":1}})", "$.a[0].b", true},
    {R"({"a":{"b":1}})", "$.a[1].b", false},
    {R"({"a":[1,2]})", "$.a[1]", true},
    {R"({"a":[1,2]})", "$.a[2]", false},
    {R"({"a":{}})", "$.a.*", false},
    {R"({"a":{"x":1}})", "$.*.x", true},
    {R"({"a":[{"x":1}]})", "$.*.x", true},
    {R"({"a b":1})", R"($."a b")", true},
    {R"({"é":1})", R"($."\u00e9")", true},
    {R"({"q\"k":1})", R"($."q\"k")", true},
    // A predicate at the top is one boolean item: `@?` is true whatever it says.
    {R"({"a":1})", "$.a == 2", true},
    {R"({"a":1})", "exists($.b)", true},
    // Filters and comparisons.
    {R"({"a":1})", "$.a ? (@ == 1)", true},
    {R"({"a":1})", "$.a ? (@ == 1.0)", true},
    {R"({"a":1})", "$.a ? (@ == \"1\")", false},
    {R"({"a":"1"})", "$.a ? (@ != 1)", false},
    {R"({"a":null})", "$.a ? (@ != 1)", true},
    {R"({"a":null})", "$.a ? (@ == null)", true},
    {R"({"a":1})", "$.a ? (@ == null)", false},
    {R"({"a":null})", "$.a ? (@ <= null)", true},
    {R"({"a":null})", "$.a ? (@ < 1)", false},
    {R"({"a":false})", "$.a ? (@ < true)", true},
    {R"({"a":[1,5]})", "$ ? (@.a > 4)", true},
    {R"({"a":[1,5]})", "$ ? (@.a < 0)", false},
    {R"({"a":[1,"x"]})", "$ ? (!(@.a == 1))", false},
    {R"({"a":[2,"x"]})", "$ ? (!(@.a == 1))", false},
    {R"({"a":[2,"x"]})", "$ ? ((@.a == 1) is unknown)", true},
    {R"({"a":[2,3]})", "$ ? ((@.a == 1) is unknown)", false},
    {R"({"a":{"b":1}})", "$ ? (@.a == 1)", false},
    {R"({"a":{"b":1}})", "$ ? ((@.a == 1) is unknown)", true},
    {R"({"a":[[1]]})", "$ ? (@.a == 1)", false},
    {R"({"a":"B"})", "$.a ? (@ < \"a\")", true},
    {R"({"a":"é"})", "$.a ? (@ > \"z\")", true},
    {R"({"a":"abc"})", "$.a ? (@ starts with \"ab\")", true},
    {R"({"a":"abc"})", "$.a ? (@ starts with \"b\")", false},
    {R"({"a":["x","abc"]})", "$ ? (@.a starts with \"ab\")", true},
    {R"({"a":1})", "$ ? ((@.a starts with \"1\") is unknown)", true},
    {R"({"a":1,"b":2})", "$ ? (@.a == 1 && @.b == 2)", true},
    {R"({"a":1,"b":2})", "$ ? (@.a == 1 && @.b == 3)", false},
    {R"({"a":1,"b":2})", "$ ? (@.a == 9 || @.b == 2)", true},
    {R"({"a":"x","b":2})", "$ ? (@.a == 1 || @.b == 2)", true},
    {R"({"a":"x","b":2})", "$ ? ((@.a == 1 && @.b == 2) is unknown)", true},
    {R"({"a":"x","b":2})", "$ ? ((@.a == 1 || @.b == 3) is unknown)", true},
    {R"({"a":"x","b":2})", "$ ? ((@.b == 3 && @.a == 1) is unknown)", false},
    {R"({"a":{"b":[{"c":3},{"c":4}]}})", "$.a.b ? (@.c > 3)", true},
    {R"({"a":{"b":[{"c":3},{"c":4}]}})", "$.a.b ? (@.c > 4)", false},
    {R"({"a":{"b":[{"c":3},{"c":4}]}})", "$.a ? (exists(@.b ? (@.c == 4)))", true},
    {R"({"a":{"b":[{"c":3},{"c":4}]}})", "$.a ? (!exists(@.b ? (@.c == 5)))", true},
    {R"({"a":2,"b":[1,2]})", "$ ? (@.a == $.b[1])", true},
    {R"({"a":2,"b":[1,2]})", "$ ? (@.b == @.a)", true},
    {R"({"tier":"tier1"})", R"($.tier ? (@ == "tier1" || @ == "TIER_1"))", true},
    {R"({"n":"12345678901234567890"})", "$.n ? (@ > 1)", false},
    {R"({"n":12345678901234567890.5})", "$.n ? (@ > 12345678901234567890)", true},
    {R"({"n":1e2})", "$.n ? (@ == 100)", true},
    {R"({"n":-0.5})", "$.n ? (@ < -0.25)", true},
    {R"({"n":-0.5})", "$.n ? (@ < - 1)", false},
    {R"({"a":1})", "lax $.a", true},
    {R"({"a":1})", "  $.a  ", true},
    {R"({"a":{"b":1}})", "$.a .b", true},
    {R"({"a":1})", "$.a ? ((@ == 1))", true},
};

// Valid paths the evaluator leaves to PostgreSQL.
inline constexpr const char* kJsonPathUnimplemented[] = {
    "strict $.a",  "$.a ? (@ like_regex \"^x\")",
    "$.a.size()",  "$.a.type() == \"number\"",
    "$.a + 1",     "$.a[last]",
    "$.a[1 to 2]", "$.a[0, 1]",
    "$.**",        "$.a ? (@ == $x)",
    "($.a).b",     "$.\"a\".double()",
};

}  // namespace sluice::common
