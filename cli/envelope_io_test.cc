#include "cli/envelope_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::cli {
namespace {

TEST(ParseEnvelopes, ReadsJsonJsonLinesAndTextFormat) {
  auto one = ParseEnvelopes("{\n  \"tenantId\": \"t1\",\n  \"type\": \"kpi.changed\"\n}\n");
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].tenant_id(), "t1");

  auto lines = ParseEnvelopes("{\"tenantId\":\"a\"}\n\n{\"tenantId\":\"b\"}\n");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 2u);
  EXPECT_EQ((*lines)[1].tenant_id(), "b");

  auto text = ParseEnvelopes("tenant_id: \"c\"\ndata_refreshed { entity_urn: \"x\" }\n");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ((*text)[0].data_refreshed().entity_urn(), "x");

  EXPECT_TRUE(ParseEnvelopes("  \n").value().empty());
}

TEST(ParseEnvelopes, NamesTheBadLine) {
  auto bad = ParseEnvelopes("{\"tenantId\":\"a\"}\n{\"tenantId\":\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::StartsWith("line 2: "));
  EXPECT_FALSE(ParseEnvelopes("tenant_id: unquoted").ok());
}

}  // namespace
}  // namespace sluice::cli
