#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "common/pg.h"

namespace sluice::common {
namespace {

TEST(PgTextArray, QuotesAndEscapesEveryElement) {
  EXPECT_EQ(PgTextArray(std::vector<std::string>{}), "{}");
  EXPECT_EQ(PgTextArray(std::vector<std::string>{"a", "b\"c", "d\\e"}), "{\"a\",\"b\\\"c\",\"d\\\\e\"}");
  // Commas, braces and spaces stay inside their quoted element.
  EXPECT_EQ(PgTextArray(std::set<std::string>{"x,y", "{z}", " "}), "{\" \",\"x,y\",\"{z}\"}");
}

}  // namespace
}  // namespace sluice::common
