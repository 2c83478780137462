// Unit tests of the audit row encoding. Against PostgreSQL and Kafka: tests/audit_kafkatest.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "consumers/audit/audit_sink.h"
#include "contracts/test_util.h"

namespace sluice::audit {
namespace {

std::vector<std::string> Fields(const std::string& row) {
  EXPECT_FALSE(row.empty());
  EXPECT_EQ(row.back(), '\n');
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i + 1 < row.size(); ++i)
    if (row[i] == '\t') {
      out.push_back(row.substr(start, i - start));
      start = i + 1;
    }
  out.push_back(row.substr(start, row.size() - 1 - start));
  return out;
}

TEST(AuditRowTest, SixteenEscapedFieldsWithJsonPayloadAndNulls) {
  kafka::Record r;
  r.envelope = contracts::testing::Golden("metadata.profile.completed");
  r.envelope.clear_causation_id();
  r.envelope.set_ttl_ms(0);
  r.envelope.clear_traceparent();
  (*r.envelope.mutable_metadata())["note"] = "tab\there \"quoted\"";
  r.topic = "sluice.profile";
  r.partition = 7;
  r.offset = 42;
  std::string row;
  ASSERT_TRUE(AppendRow(row, r, absl::FromUnixSeconds(1'800'000'000)).ok());
  auto f = Fields(row);
  ASSERT_EQ(f.size(), 16u) << row;
  EXPECT_EQ(f[0], r.envelope.id());
  EXPECT_EQ(f[1], "metadata.profile.completed");
  EXPECT_EQ(f[3], r.envelope.tenant_id());
  EXPECT_THAT(f[4], testing::EndsWith("Z"));
  EXPECT_EQ(f[5], "2027-01-15T08:00:00+00:00");
  EXPECT_THAT(f[6], testing::HasSubstr("\"qualityGrade\":\"QUALITY_GRADE_"));  // protobuf JSON names
  EXPECT_THAT(f[6], testing::StartsWith("{"));
  EXPECT_EQ(f[8], "\\N");  // no causation id
  EXPECT_EQ(f[9], "\\N");  // no ttl
  // JSON escapes the tab and quotes with backslashes; COPY then doubles each backslash.
  EXPECT_EQ(f[10], R"({"note":"tab\\there \\"quoted\\""})");
  EXPECT_EQ(f[11], "sluice.profile");
  EXPECT_EQ(f[12], "7");
  EXPECT_EQ(f[13], "42");
  EXPECT_EQ(f[14], r.envelope.version());
  EXPECT_FALSE(f[14].empty());
  EXPECT_EQ(f[15], "\\N");  // no traceparent
}

TEST(AuditRowTest, EnvelopeWithoutPayloadIsRefused) {
  kafka::Record r;
  r.envelope.set_id("0190a0c2-0000-7000-8000-000000000001");
  std::string row;
  EXPECT_FALSE(AppendRow(row, r, absl::Now()).ok());
}

TEST(DeadLetterTest, OnlyErrorsAboutTheRowsAreDataErrors) {
  for (const char* s : {"22P05", "22021", "23514", "23502", "23505", "54000"}) EXPECT_TRUE(IsDataError(s)) << s;
  // Connection, shutdown, serialization, missing table, out of disk: retried, never dead-lettered.
  for (const char* s : {"", "08006", "57P01", "40001", "42P01", "53100", "XX000", "2"})
    EXPECT_FALSE(IsDataError(s)) << s;
}

TEST(DeadLetterTest, StorableTextKeepsPrintableAsciiAndEscapesTheRest) {
  EXPECT_EQ(StorableText("0190a0c2-0000-7000-8000-000000000001"), "0190a0c2-0000-7000-8000-000000000001");
  EXPECT_EQ(StorableText(std::string("a\0z\n", 4)), "a\\x00z\\n");
  EXPECT_EQ(StorableText("caf\xc3\xa9"), "caf\\xc3\\xa9");
  const std::string cut = StorableText(std::string(4000, 'c'));
  EXPECT_EQ(cut.size(), 256u);
  EXPECT_EQ(cut.substr(250), "ccc...");
  // A long run of escapes is cut between escapes, never inside one.
  const std::string nuls = StorableText(std::string(300, '\0'), 20);
  EXPECT_LE(nuls.size(), 20u);
  EXPECT_EQ(nuls, "\\x00\\x00\\x00\\x00...");
}

TEST(DeadLetterTest, PgErrorReasonIsTheFirstLineWithoutTheRow) {
  EXPECT_EQ(PgErrorReason("54000",
                          "copy: ERROR:  index row size 4032 exceeds btree version 4 maximum 2704 for index "
                          "\"event_log_correlation\"\nDETAIL:  Index row references tuple (0,3)\n"
                          "CONTEXT:  COPY event_log, line 1: \"secret row\" (SQLSTATE 54000)"),
            "sqlstate 54000: index row size 4032 exceeds btree version 4 maximum 2704 for index "
            "\"event_log_correlation\"");
  EXPECT_EQ(PgErrorReason("23514", "query: ERROR:  new row violates check constraint \"c\" (SQLSTATE 23514)"),
            "sqlstate 23514: new row violates check constraint \"c\"");
  EXPECT_LE(PgErrorReason("22P05", std::string(1000, 'x')).size(), 256u);
}

TEST(DeadLetterTest, CategoryLabelsAreAClosedSet) {
  std::vector<std::string> labels;
  for (auto c : kAllDeadLetterCategories) labels.emplace_back(CategoryLabel(c));
  EXPECT_THAT(labels, testing::ElementsAre("invalid", "unencodable", "unstorable"));
}

}  // namespace
}  // namespace sluice::audit
