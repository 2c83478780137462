// The in-memory SQL/JSON path evaluator on cases whose answers PostgreSQL gives
// (jsonpath_pgtest.cc checks the same cases, and thousands of random ones, against it).
#include "common/jsonpath.h"

#include <gtest/gtest.h>

#include "common/jsonpath_cases.h"

namespace sluice::common {
namespace {

TEST(JsonPath, AnswersAsPostgresDoesOnTheKnownCases) {
  for (const auto& c : kJsonPathCases) {
    auto doc = JsonDoc::Parse(c.doc);
    ASSERT_TRUE(doc.ok()) << c.doc << ": " << doc.status();
    auto path = JsonPath::Compile(c.path);
    ASSERT_TRUE(path.ok()) << c.path << ": " << path.status();
    auto got = (*path)->Exists(*doc);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.exists) << c.doc << " @? " << c.path;
  }
}

TEST(JsonPath, LeavesOtherFormsToPostgres) {
  for (const auto* text : kJsonPathUnimplemented) {
    auto path = JsonPath::Compile(text);
    ASSERT_FALSE(path.ok()) << text;
    EXPECT_EQ(path.status().code(), absl::StatusCode::kUnimplemented) << text << ": " << path.status();
  }
}

TEST(JsonPath, RefusesDocumentsJsonbReadsDifferently) {
  for (const char* text :
       {R"({"a":1,"a":2})", R"({"a":"\u0000"})", R"({"a":"\ud800"})", R"({"a":"\udc00x"})", "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", R"({"a":1e1000})", R"({"a":01})", R"({"a":1.})",
        R"({"a":[1,]})", R"({"a":1} x)", R"({"a":"x)", "{\"a\":\"\t\"}", R"({"a":tru})", ""}) {
    EXPECT_FALSE(JsonDoc::Parse(text).ok()) << text;
  }
  std::string deep(65, '[');
  deep += std::string(65, ']');
  EXPECT_FALSE(JsonDoc::Parse(deep).ok());
  std::string fine(64, '[');
  fine += std::string(64, ']');
  EXPECT_TRUE(JsonDoc::Parse(fine).ok());
}

TEST(JsonPath, ComparesNumbersAsExactDecimals) {
  EXPECT_EQ(CompareJsonNumbers("1", "1.0"), 0);
  EXPECT_EQ(CompareJsonNumbers("100", "1e2"), 0);
  EXPECT_EQ(CompareJsonNumbers("-0", "0.000"), 0);
  EXPECT_EQ(CompareJsonNumbers("0.1", "1E-1"), 0);
  EXPECT_LT(CompareJsonNumbers("9007199254740993", "9007199254740994"), 0);  // past a double's precision
  EXPECT_LT(CompareJsonNumbers("-2", "-1.5"), 0);
  EXPECT_GT(CompareJsonNumbers("0.30000000000000001", "0.3"), 0);
  EXPECT_LT(CompareJsonNumbers("-1e3", "1e-3"), 0);
  EXPECT_GT(CompareJsonNumbers("12.5", "12.25"), 0);
  EXPECT_LT(CompareJsonNumbers("0", "0.0001"), 0);
}

TEST(JsonPath, StopsAPathThatCostsTooMuch) {
  std::string big = "{\"a\":[";
  for (int i = 0; i < 300; ++i) big += i ? ",{\"b\":[1,2,3,4,5]}" : "{\"b\":[1,2,3,4,5]}";
  big += "]}";
  auto doc = JsonDoc::Parse(big);
  ASSERT_TRUE(doc.ok());
  // Every element against every element, inside a filter on every element, finding nothing.
  auto path = JsonPath::Compile("$.a ? (exists($.a ? (@.b == $.a[*].c)))");
  ASSERT_TRUE(path.ok()) << path.status();
  auto got = (*path)->Exists(*doc, 100'000);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
  // The first item found answers, as in PostgreSQL, however costly the rest would be.
  auto first = JsonPath::Compile("$.a[*] ? ($.a[*].b == 9 || @.b == 1)");
  ASSERT_TRUE(first.ok()) << first.status();
  auto found_first = (*first)->Exists(*doc, 100'000);
  ASSERT_TRUE(found_first.ok()) << found_first.status();
  EXPECT_TRUE(*found_first);
  auto cheap = JsonPath::Compile("$.a ? (@.b == 3)");
  ASSERT_TRUE(cheap.ok());
  auto found = (*cheap)->Exists(*doc, 100'000);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(*found);
}

TEST(JsonPath, CountsEveryMemberAndElementItVisits) {
  // Looking a name up among 5,000 members, or walking to element 4,999, costs 5,000 steps:
  // none of them goes unbudgeted.
  std::string wide = "{", list = "[";
  for (int i = 0; i < 5000; ++i) {
    wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
    list += i ? ",0" : "0";
  }
  wide += "}";
  list += "]";
  auto object = JsonDoc::Parse(wide);
  auto array = JsonDoc::Parse(list);
  ASSERT_TRUE(object.ok() && array.ok());
  for (auto [doc, text] : {std::pair{&*object, "$.nothing"}, std::pair{&*array, "$[4999]"},
                           std::pair{&*object, "$ ? ($.* == 1)"}, std::pair{&*array, "$ ? (@ == 1)"}}) {
    auto path = JsonPath::Compile(text);
    ASSERT_TRUE(path.ok()) << text;
    auto got = (*path)->Exists(*doc, 1000);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted) << text;
    auto enough = (*path)->Exists(*doc, 100'000);
    ASSERT_TRUE(enough.ok()) << text << ": " << enough.status();
  }
}

TEST(JsonPath, LeavesLongNumbersAndPathsToPostgres) {
  EXPECT_FALSE(JsonDoc::Parse("{\"a\":0." + std::string(16400, '0') + "1}").ok());
  EXPECT_FALSE(JsonDoc::Parse("{\"a\":" + std::string(101, '1') + "}").ok());
  EXPECT_TRUE(JsonDoc::Parse("{\"a\":" + std::string(100, '1') + "}").ok());
  EXPECT_EQ(JsonPath::Compile("$.a ? (@ == " + std::string(101, '1') + ")").status().code(),
            absl::StatusCode::kUnimplemented);
  std::string long_path = "$";
  while (long_path.size() <= 8192) long_path += "[0]";
  EXPECT_EQ(JsonPath::Compile(long_path).status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace sluice::common
