#include "contracts/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/file.h"
#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/test_util.h"
#include "contracts/vectors.h"

namespace sluice::contracts {
namespace {

using common::Cat;
using testing::Golden;

struct Case {
  const char* name;
  const char* golden;
  std::function<void(v1::Envelope&)> mutate;
  const char* path;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ValidateRule : public ::testing::TestWithParam<Case> {};

TEST_P(ValidateRule, NamesTheOffendingField) {
  const Case& c = GetParam();
  v1::Envelope env = Golden(c.golden);
  ASSERT_TRUE(Validate(env).ok()) << "golden " << c.golden << " must be valid";
  c.mutate(env);
  absl::Status s = Validate(env);
  ASSERT_FALSE(s.ok()) << c.name;
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), c.path) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(std::string(c.path) + ": "));
}

const Case kCases[] = {
    {"id_missing", "data.refreshed", [](auto& e) { e.clear_id(); }, "id"},
    {"id_not_uuid", "data.refreshed", [](auto& e) { e.set_id("evt-001"); }, "id"},
    {"type_missing", "data.refreshed", [](auto& e) { e.clear_type(); }, "type"},
    {"type_unknown", "data.refreshed", [](auto& e) { e.set_type("data.exploded"); }, "type"},
    {"version_missing", "data.refreshed", [](auto& e) { e.clear_version(); }, "version"},
    {"version_not_semver", "data.refreshed", [](auto& e) { e.set_version("1.0"); }, "version"},
    {"version_major_mismatch", "data.refreshed", [](auto& e) { e.set_version("2.0.0"); }, "version"},
    {"tenant_missing", "data.refreshed", [](auto& e) { e.clear_tenant_id(); }, "tenant_id"},
    {"tenant_uppercase", "data.refreshed", [](auto& e) { e.set_tenant_id("Tenant-A"); }, "tenant_id"},
    {"tenant_leading_dash", "data.refreshed", [](auto& e) { e.set_tenant_id("-a"); }, "tenant_id"},
    {"tenant_too_long", "data.refreshed", [](auto& e) { e.set_tenant_id(std::string(65, 'a')); }, "tenant_id"},
    {"source_missing", "data.refreshed", [](auto& e) { e.clear_source(); }, "source"},
    {"source_unknown", "data.refreshed", [](auto& e) { e.set_source("etl.unknown"); }, "source"},
    {"occurred_at_missing", "data.refreshed", [](auto& e) { e.clear_occurred_at(); }, "occurred_at"},
    {"occurred_at_future", "data.refreshed",
     [](auto& e) { e.mutable_occurred_at()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1))); },
     "occurred_at"},
    {"occurred_at_ancient", "data.refreshed", [](auto& e) { e.mutable_occurred_at()->set_seconds(86400); },
     "occurred_at"},
    {"ttl_negative", "data.refreshed", [](auto& e) { e.set_ttl_ms(-1); }, "ttl_ms"},
    {"traceparent_malformed", "data.refreshed", [](auto& e) { e.set_traceparent("00-abc-def-01"); }, "traceparent"},
    {"traceparent_zero_trace", "data.refreshed",
     [](auto& e) { e.set_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"); }, "traceparent"},
    {"metadata_too_big", "data.refreshed",
     [](auto& e) {
       for (const char* k : {"a", "b", "c"}) (*e.mutable_metadata())[k] = std::string(700, 'x');  // 2103 bytes
     },
     "metadata"},
    {"metadata_empty_key", "data.refreshed", [](auto& e) { (*e.mutable_metadata())[""] = "v"; }, "metadata"},
    {"payload_missing", "data.refreshed", [](auto& e) { e.clear_payload(); }, "payload"},
    {"payload_case_mismatch", "data.refreshed",
     [](auto& e) { *e.mutable_kpi_approved() = Golden("kpi.approved").kpi_approved(); }, "kpi_approved"},
    {"payload_too_big", "approval.created",
     [](auto& e) {
       (*e.mutable_approval_created()->mutable_payload()->mutable_fields())["blob"].set_string_value(
           std::string(kMaxPayloadBytes, 'x'));
     },
     "approval_created"},
    {"required_string", "data.refreshed", [](auto& e) { e.mutable_data_refreshed()->clear_entity_urn(); },
     "data_refreshed.entity_urn"},
    {"required_enum", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_refresh_type(v1::REFRESH_TYPE_UNSPECIFIED); },
     "data_refreshed.refresh_type"},
    {"required_message", "data.refreshed", [](auto& e) { e.mutable_data_refreshed()->clear_service(); },
     "data_refreshed.service"},
    {"required_nested", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->mutable_triggered_by()->clear_actor_id(); },
     "data_refreshed.triggered_by.actor_id"},
    {"payload_timestamp_future", "data.refreshed",
     [](auto& e) {
       e.mutable_data_refreshed()->mutable_completed_at()->set_seconds(
           absl::ToUnixSeconds(absl::Now() + absl::Hours(24)));
     },
     "data_refreshed.completed_at"},
    {"payload_timestamp_bad_nanos", "metadata.profile.due",
     [](auto& e) { e.mutable_profile_due()->mutable_last_profiled_at()->set_nanos(-1); },
     "profile_due.last_profiled_at"},
    {"negative_duration", "metadata.profile.completed",
     [](auto& e) { e.mutable_profile_completed()->mutable_duration()->set_seconds(-3); }, "profile_completed.duration"},
    {"rejection_needs_reason", "approval.rejected", [](auto& e) { e.mutable_approval_rejected()->clear_reason(); },
     "approval_rejected.reason"},
};

INSTANTIATE_TEST_SUITE_P(Rules, ValidateRule, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Validate, AcceptsEveryGoldenVectorAndLimitsAtTheBoundary) {
  auto vectors = LoadVectors(testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  ASSERT_EQ(vectors->size(), 13u);
  for (const auto& v : *vectors) EXPECT_TRUE(Validate(v.envelope).ok()) << v.type << ": " << Validate(v.envelope);

  v1::Envelope env = Golden("data.refreshed");
  env.clear_metadata();
  (*env.mutable_metadata())["k1"] = std::string(kMaxMetadataBytes / 2 - 2, 'x');  // exactly 2 KiB with the keys
  (*env.mutable_metadata())["k2"] = std::string(kMaxMetadataBytes / 2 - 2, 'x');
  EXPECT_TRUE(Validate(env).ok());
  env.set_tenant_id(std::string(64, 'a'));
  EXPECT_TRUE(Validate(env).ok());
  env.set_tenant_id("0193a5f2-7c00-7000-8000-00000000c0de");  // UUID tenants are fine
  EXPECT_TRUE(Validate(env).ok());
  env.set_version("1.4.2");  // same major, newer minor
  EXPECT_TRUE(Validate(env).ok());
}

// ---------------------------------------------------------------------------------------------
// Bounds: for each, a value just inside passes and one just past fails naming the field.

struct Bound {
  const char* name;
  const char* golden;
  std::function<void(v1::Envelope&)> inside;
  std::function<void(v1::Envelope&)> past;
  std::string path;
};

void PrintTo(const Bound& b, std::ostream* os) { *os << b.name; }

google::protobuf::Struct& StructPayload(v1::Envelope& e) { return *e.mutable_approval_created()->mutable_payload(); }

google::protobuf::Value& StructField(v1::Envelope& e, const std::string& key) {
  return (*StructPayload(e).mutable_fields())[key];
}

// A payload Struct `levels` Structs deep: payload {n: {n: ... {}}}.
void NestStructs(v1::Envelope& e, int levels) {
  google::protobuf::Struct* s = &StructPayload(e);
  for (int i = 1; i < levels; ++i) s = (*s->mutable_fields())["n"].mutable_struct_value();
}

std::string NestedPath(int levels) {
  std::string p = "approval_created.payload";
  for (int i = 1; i < levels; ++i) p += ".fields[\"n\"]";
  return p;
}

void SetMetadataEntries(v1::Envelope& e, int n) {
  e.clear_metadata();
  for (int i = 0; i < n; ++i) (*e.mutable_metadata())["k" + std::to_string(i)] = "v";
}

void SetChangedFields(v1::Envelope& e, int n) {
  auto* p = e.mutable_kpi_changed();
  p->clear_changed_fields();
  for (int i = 0; i < n; ++i) p->add_changed_fields("f");
}

const std::string kUpperId = "0193A5F2-7C00-7000-8000-00000000C0DE";
const std::string kNul(1, '\0');

const Bound kBounds[] = {
    {"id_lower_case", "data.refreshed", [](auto& e) { e.set_id("0193a5f2-7c00-7000-8000-00000000c0de"); },
     [](auto& e) { e.set_id(kUpperId); }, "id"},
    {"correlation_id_length", "data.refreshed", [](auto& e) { e.set_correlation_id(std::string(128, 'c')); },
     [](auto& e) { e.set_correlation_id(std::string(129, 'c')); }, "correlation_id"},
    {"correlation_id_4000", "data.refreshed",
     [](auto& e) { e.set_correlation_id("~!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}"); },
     [](auto& e) { e.set_correlation_id(std::string(4000, 'c')); }, "correlation_id"},
    {"correlation_id_nul", "data.refreshed", [](auto& e) { e.set_correlation_id("run-1"); },
     [](auto& e) { e.set_correlation_id("run" + kNul + "1"); }, "correlation_id"},
    {"correlation_id_space", "data.refreshed", [](auto& e) { e.set_correlation_id("run-1"); },
     [](auto& e) { e.set_correlation_id("run 1"); }, "correlation_id"},
    {"correlation_id_del", "data.refreshed", [](auto& e) { e.set_correlation_id("run~1"); },
     [](auto& e) { e.set_correlation_id(std::string("run\x7f") + "1"); }, "correlation_id"},
    {"correlation_id_non_ascii", "data.refreshed", [](auto& e) { e.set_correlation_id("run-1"); },
     [](auto& e) { e.set_correlation_id("run-\xc3\xa9"); }, "correlation_id"},
    {"causation_id_length", "data.refreshed", [](auto& e) { e.set_causation_id(std::string(128, 'c')); },
     [](auto& e) { e.set_causation_id(std::string(129, 'c')); }, "causation_id"},
    {"causation_id_control", "data.refreshed", [](auto& e) { e.set_causation_id("a-b"); },
     [](auto& e) { e.set_causation_id("a\nb"); }, "causation_id"},
    {"metadata_entries", "data.refreshed", [](auto& e) { SetMetadataEntries(e, 32); },
     [](auto& e) { SetMetadataEntries(e, 33); }, "metadata"},
    {"metadata_key_length", "data.refreshed", [](auto& e) { (*e.mutable_metadata())[std::string(128, 'k')] = "v"; },
     [](auto& e) { (*e.mutable_metadata())[std::string(129, 'k')] = "v"; }, "metadata"},
    {"metadata_key_charset", "data.refreshed",
     [](auto& e) { (*e.mutable_metadata())["sluice.Workflow_run-ID.09"] = "v"; },
     [](auto& e) { (*e.mutable_metadata())["sluice/workflow"] = "v"; }, "metadata"},
    {"metadata_key_nul", "data.refreshed", [](auto& e) { (*e.mutable_metadata())["k"] = "v"; },
     [](auto& e) { (*e.mutable_metadata())["k" + kNul] = "v"; }, "metadata"},
    {"metadata_value_length", "data.refreshed", [](auto& e) { (*e.mutable_metadata())["k"] = std::string(1024, 'v'); },
     [](auto& e) { (*e.mutable_metadata())["k"] = std::string(1025, 'v'); }, "metadata[\"k\"]"},
    {"metadata_value_nul", "data.refreshed", [](auto& e) { (*e.mutable_metadata())["k"] = "caf\xc3\xa9 au lait"; },
     [](auto& e) { (*e.mutable_metadata())["k"] = "a" + kNul; }, "metadata[\"k\"]"},
    {"metadata_value_control", "data.refreshed", [](auto& e) { (*e.mutable_metadata())["k"] = "a b"; },
     [](auto& e) { (*e.mutable_metadata())["k"] = "a\tb"; }, "metadata[\"k\"]"},
    {"metadata_value_utf8", "data.refreshed", [](auto& e) { (*e.mutable_metadata())["k"] = "\xe6\x97\xa5"; },
     [](auto& e) { (*e.mutable_metadata())["k"] = "\xe6\x97"; }, "metadata[\"k\"]"},
    {"payload_string_length", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn(std::string(kMaxPayloadStringBytes, 'u')); },
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn(std::string(kMaxPayloadStringBytes + 1, 'u')); },
     "data_refreshed.entity_urn"},
    {"payload_nested_string_nul", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->mutable_triggered_by()->set_actor_id("etl\\u0000nightly"); },
     [](auto& e) { e.mutable_data_refreshed()->mutable_triggered_by()->set_actor_id("etl" + kNul + "nightly"); },
     "data_refreshed.triggered_by.actor_id"},
    {"payload_optional_string_nul", "metadata.profile.failed",
     [](auto& e) { e.mutable_profile_failed()->set_error_message("line 1\nline 2\ttab"); },
     [](auto& e) { e.mutable_profile_failed()->set_error_message("boom" + kNul); }, "profile_failed.error_message"},
    {"payload_repeated_string_nul", "kpi.changed", [](auto& e) { SetChangedFields(e, 5); },
     [](auto& e) {
       SetChangedFields(e, 5);
       e.mutable_kpi_changed()->set_changed_fields(3, "for" + kNul + "mula");
     },
     "kpi_changed.changed_fields[3]"},
    {"payload_string_utf8_truncated", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("sales.\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"); },
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("sales.\xf0\x9f\x98"); }, "data_refreshed.entity_urn"},
    {"payload_string_utf8_surrogate", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xed\x9f\xbf"); },  // U+D7FF
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xed\xa0\x80"); },  // U+D800
     "data_refreshed.entity_urn"},
    {"payload_string_utf8_overlong", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xc2\x80"); },
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xc0\xaf"); }, "data_refreshed.entity_urn"},
    {"payload_string_utf8_past_max", "data.refreshed",
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xf4\x8f\xbf\xbf"); },  // U+10FFFF
     [](auto& e) { e.mutable_data_refreshed()->set_entity_urn("\xf4\x90\x80\x80"); },  // U+110000
     "data_refreshed.entity_urn"},
    {"duration_range", "metadata.profile.completed",
     [](auto& e) { e.mutable_profile_completed()->mutable_duration()->set_seconds(315'576'000'000); },
     [](auto& e) { e.mutable_profile_completed()->mutable_duration()->set_seconds(315'576'000'001); },
     "profile_completed.duration"},
    {"payload_repeated_count", "kpi.changed", [](auto& e) { SetChangedFields(e, kMaxRepeatedEntries); },
     [](auto& e) { SetChangedFields(e, kMaxRepeatedEntries + 1); }, "kpi_changed.changed_fields"},
    {"struct_value_nul", "approval.created", [](auto& e) { StructField(e, "x").set_string_value("a\\u0000b"); },
     [](auto& e) { StructField(e, "x").set_string_value("a" + kNul + "b"); }, "approval_created.payload.fields[\"x\"]"},
    {"struct_value_length", "approval.created",
     [](auto& e) { StructField(e, "x").set_string_value(std::string(kMaxPayloadStringBytes, 's')); },
     [](auto& e) { StructField(e, "x").set_string_value(std::string(kMaxPayloadStringBytes + 1, 's')); },
     "approval_created.payload.fields[\"x\"]"},
    {"struct_value_utf8", "approval.created", [](auto& e) { StructField(e, "x").set_string_value("\xc3\xa9"); },
     [](auto& e) { StructField(e, "x").set_string_value("\xc3"); }, "approval_created.payload.fields[\"x\"]"},
    {"struct_key_nul", "approval.created", [](auto& e) { StructField(e, "a\\u0000").set_bool_value(true); },
     [](auto& e) { StructField(e, "a" + kNul).set_bool_value(true); }, "approval_created.payload.fields[\"a\\x00\"]"},
    {"struct_key_length", "approval.created",
     [](auto& e) { StructField(e, std::string(kMaxPayloadStringBytes, 'k')).set_null_value({}); },
     [](auto& e) { StructField(e, std::string(kMaxPayloadStringBytes + 1, 'k')).set_null_value({}); },
     "approval_created.payload.fields[\"" + std::string(64, 'k') + "...\"]"},
    {"struct_list_item_nul", "approval.created",
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();
       for (int i = 0; i < 3; ++i) l->add_values()->set_string_value("ok");
     },
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();
       for (int i = 0; i < 3; ++i) l->add_values()->set_string_value("ok");
       l->mutable_values(2)->set_string_value(kNul);
     },
     "approval_created.payload.fields[\"x\"].values[2]"},
    {"struct_in_list_nul", "approval.created",
     [](auto& e) {
       auto* s = StructField(e, "x").mutable_list_value()->add_values()->mutable_struct_value();
       (*s->mutable_fields())["y"].set_string_value("fine");
     },
     [](auto& e) {
       auto* s = StructField(e, "x").mutable_list_value()->add_values()->mutable_struct_value();
       (*s->mutable_fields())["y"].set_string_value("bad" + kNul);
     },
     "approval_created.payload.fields[\"x\"].values[0].fields[\"y\"]"},
    {"struct_entries", "approval.created",
     [](auto& e) {
       StructPayload(e).clear_fields();
       for (int i = 0; i < kMaxRepeatedEntries; ++i) StructField(e, std::to_string(i)).set_number_value(i);
     },
     [](auto& e) {
       StructPayload(e).clear_fields();
       for (int i = 0; i <= kMaxRepeatedEntries; ++i) StructField(e, std::to_string(i)).set_number_value(i);
     },
     "approval_created.payload.fields"},
    {"list_entries", "approval.created",
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();
       for (int i = 0; i < kMaxRepeatedEntries; ++i) l->add_values()->set_bool_value(true);
     },
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();
       for (int i = 0; i <= kMaxRepeatedEntries; ++i) l->add_values()->set_bool_value(true);
     },
     "approval_created.payload.fields[\"x\"].values"},
    {"struct_depth", "approval.created", [](auto& e) { NestStructs(e, kMaxStructDepth); },
     [](auto& e) { NestStructs(e, kMaxStructDepth + 1); }, NestedPath(kMaxStructDepth + 1)},
    {"list_depth", "approval.created",
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();  // level 2
       for (int i = 3; i <= kMaxStructDepth; ++i) l = l->add_values()->mutable_list_value();
     },
     [](auto& e) {
       auto* l = StructField(e, "x").mutable_list_value();
       for (int i = 3; i <= kMaxStructDepth + 1; ++i) l = l->add_values()->mutable_list_value();
     },
     [] {
       std::string p = "approval_created.payload.fields[\"x\"]";
       for (int i = 3; i <= kMaxStructDepth + 1; ++i) p += ".values[0]";
       return p;
     }()},
};

class ValidateBound : public ::testing::TestWithParam<Bound> {};

TEST_P(ValidateBound, InsidePassesAndPastFailsNamingTheField) {
  const Bound& b = GetParam();
  v1::Envelope inside = Golden(b.golden);
  b.inside(inside);
  EXPECT_TRUE(Validate(inside).ok()) << Validate(inside);

  v1::Envelope past = Golden(b.golden);
  b.past(past);
  const absl::Status s = Validate(past);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), b.path) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith(b.path + ": "));
}

INSTANTIATE_TEST_SUITE_P(Bounds, ValidateBound, ::testing::ValuesIn(kBounds),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Validate, SaysWhatIsWrong) {
  v1::Envelope e = Golden("data.refreshed");
  e.set_correlation_id(std::string(4000, 'c'));
  EXPECT_EQ(Validate(e).message(), "correlation_id: 4000 bytes exceeds the 128-byte limit");

  e = Golden("data.refreshed");
  e.set_id(kUpperId);
  EXPECT_EQ(Validate(e).message(), "id: must be a lower-case UUID");

  e = Golden("data.refreshed");
  e.mutable_data_refreshed()->mutable_triggered_by()->set_actor_id("a" + kNul);
  EXPECT_EQ(Validate(e).message(), "data_refreshed.triggered_by.actor_id: contains a NUL character");

  e = Golden("approval.created");
  StructField(e, "x").set_string_value("\xff");
  EXPECT_EQ(Validate(e).message(), "approval_created.payload.fields[\"x\"]: is not valid UTF-8");

  e = Golden("approval.created");
  StructField(e, "a\"b\xc3\xa9").set_string_value(kNul);  // key shown escaped, UTF-8 kept
  EXPECT_EQ(Validate(e).message(), "approval_created.payload.fields[\"a\\\"b\xc3\xa9\"]: contains a NUL character");

  e = Golden("approval.created");
  StructField(e, "\xff").set_bool_value(true);  // key not UTF-8: shown hex-escaped
  EXPECT_EQ(Validate(e).message(), "approval_created.payload.fields[\"\\xff\"]: key is not valid UTF-8");

  e = Golden("kpi.changed");
  SetChangedFields(e, kMaxRepeatedEntries + 1);
  EXPECT_EQ(Validate(e).message(), "kpi_changed.changed_fields: 1001 entries exceeds the limit of 1000");

  e = Golden("data.refreshed");
  SetMetadataEntries(e, 33);
  EXPECT_EQ(Validate(e).message(), "metadata: 33 entries exceeds the limit of 32");
}

// The literal text \u0000 (six ordinary characters) is harmless wherever text goes.
TEST(Validate, AcceptsEscapedNulAsText) {
  const std::string text = "\\u0000";
  ASSERT_EQ(text.size(), 6u);
  v1::Envelope e = Golden("approval.created");
  e.set_correlation_id(text);
  e.set_causation_id(text);
  (*e.mutable_metadata())["k"] = text;
  e.mutable_approval_created()->set_entity_key(text);
  StructField(e, text).set_string_value(text);
  StructField(e, "list").mutable_list_value()->add_values()->set_string_value(text);
  EXPECT_TRUE(Validate(e).ok()) << Validate(e);
}

// A catalog whose data.refreshed type and etl.pipeline source are renamed, to show the
// length bounds hold even for names a catalog knows.
Catalog CatalogWithNames(const std::string& type, const std::string& source) {
  auto text = common::ReadFile(std::string(SLUICE_SOURCE_DIR) + "/contracts/catalog.textproto");
  EXPECT_TRUE(text.ok()) << text.status();
  std::string t = text.value_or("");
  auto replace = [&t](const std::string& from, const std::string& to) {
    for (size_t at = t.find(from); at != std::string::npos; at = t.find(from, at + to.size()))
      t.replace(at, from.size(), to);
  };
  replace("\"data.refreshed\"", "\"" + type + "\"");
  replace("\"etl.pipeline\"", "\"" + source + "\"");
  auto c = Catalog::Parse(t);
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

TEST(Validate, TypeAndSourceAreAtMost64BytesEvenWhenCatalogued) {
  const std::string type64 = "data." + std::string(kMaxTypeBytes - 5, 't');
  const std::string source64 = "etl." + std::string(kMaxSourceBytes - 4, 's');
  ASSERT_EQ(type64.size(), 64u);
  ASSERT_EQ(source64.size(), 64u);

  Catalog inside = CatalogWithNames(type64, source64);
  v1::Envelope e = Golden("data.refreshed");
  e.set_type(type64);
  e.set_source(source64);
  EXPECT_TRUE(Validate(e, inside).ok()) << Validate(e, inside);

  Catalog past = CatalogWithNames(type64 + "t", source64 + "s");
  e.set_type(type64 + "t");
  absl::Status s = Validate(e, past);
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), "type") << s;
  // (source64 is not a source of this catalog: reported too.)
  ASSERT_FALSE(ViolationsOf(s).empty());
  EXPECT_EQ(ViolationsOf(s)[0].description, "type: 65 bytes exceeds the 64-byte limit");

  e.set_type(type64);
  e.set_source(source64 + "s");
  s = Validate(e, CatalogWithNames(type64, source64 + "s"));
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), "source") << s;
  EXPECT_EQ(s.message(), "source: 65 bytes exceeds the 64-byte limit");
}

TEST(Validate, UnknownNamesAreQuotedPrintably) {
  v1::Envelope e = Golden("data.refreshed");
  e.set_source("etl\n" + kNul);
  EXPECT_EQ(Validate(e).message(), "source: unknown source \"etl\\n\\x00\"");
}

TEST(FillDefaults, CanonicalisesAnUpperCaseId) {
  v1::Envelope e = Golden("data.refreshed");
  e.set_id(kUpperId);
  ASSERT_FALSE(Validate(e).ok());
  FillDefaults(e);
  EXPECT_EQ(e.id(), "0193a5f2-7c00-7000-8000-00000000c0de");
  EXPECT_TRUE(Validate(e).ok()) << Validate(e);

  e.set_id("NOT-A-UUID");  // left for Validate to report, as every present value is
  FillDefaults(e);
  EXPECT_EQ(e.id(), "NOT-A-UUID");
  EXPECT_EQ(FieldPathOf(Validate(e)).value_or("<none>"), "id");
}

TEST(CanonicalEventId, LowerCasesUuidsOnly) {
  EXPECT_EQ(CanonicalEventId(kUpperId), "0193a5f2-7c00-7000-8000-00000000c0de");
  EXPECT_EQ(CanonicalEventId("0193a5f2-7c00-7000-8000-00000000c0de"), "0193a5f2-7c00-7000-8000-00000000c0de");
  EXPECT_EQ(CanonicalEventId("Order-42"), "Order-42");
  EXPECT_EQ(CanonicalEventId(""), "");
}

TEST(Validate, ReportsEveryViolationAtOnce) {
  v1::Envelope e = Golden("data.refreshed");
  e.clear_tenant_id();
  e.set_source("nobody");
  e.set_ttl_ms(-1);
  e.mutable_data_refreshed()->clear_entity_urn();
  const absl::Status s = Validate(e);
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), "tenant_id");
  std::vector<std::string> fields;
  for (const auto& v : ViolationsOf(s)) {
    EXPECT_THAT(v.description, ::testing::StartsWith(v.field + ": "));
    fields.push_back(v.field);
  }
  EXPECT_THAT(fields, ::testing::ElementsAre("tenant_id", "source", "ttl_ms", "data_refreshed.entity_urn"));
  EXPECT_EQ(s.message(),
            "tenant_id: required; source: unknown source \"nobody\"; ttl_ms: must not be negative; "
            "data_refreshed.entity_urn: required");
}

TEST(Validate, OneViolationIsReportedAlone) {
  v1::Envelope e = Golden("data.refreshed");
  e.clear_tenant_id();
  const absl::Status s = Validate(e);
  EXPECT_EQ(s.message(), "tenant_id: required");
  ASSERT_EQ(ViolationsOf(s).size(), 1u);
  EXPECT_EQ(ViolationsOf(s)[0].field, "tenant_id");
  EXPECT_EQ(ViolationsOf(s)[0].description, "tenant_id: required");
}

TEST(Validate, ReportsAtMostTheLimitWithinTheByteBudget) {
  v1::Envelope e = Golden("kpi.changed");
  SetChangedFields(e, 50);
  for (int i = 0; i < 50; ++i) e.mutable_kpi_changed()->set_changed_fields(i, "bad" + kNul);
  const absl::Status s = Validate(e);
  const auto violations = ViolationsOf(s);
  // 20 found; as many in the answer as fit the budget, in order from the first.
  ASSERT_GE(violations.size(), 10u);
  ASSERT_LE(violations.size(), kMaxViolations);
  size_t bytes = 0;
  for (size_t i = 0; i < violations.size(); ++i) {
    EXPECT_EQ(violations[i].field, Cat("kpi_changed.changed_fields[", i, "]"));
    bytes += violations[i].field.size() + violations[i].description.size() + 2;
  }
  EXPECT_LE(bytes, kMaxViolationBytes);
  EXPECT_LE(s.message().size(), kMaxViolationBytes / 3 + 32);  // + "; and N more"
  if (violations.size() < kMaxViolations) {
    EXPECT_THAT(std::string(s.message()),
                ::testing::EndsWith(Cat("; and ", kMaxViolations - violations.size(), " more")));
  }
  // A few violations all fit.
  SetChangedFields(e, 5);
  for (int i = 0; i < 3; ++i) e.mutable_kpi_changed()->set_changed_fields(i, "bad" + kNul);
  EXPECT_EQ(ViolationsOf(Validate(e)).size(), 3u);
  EXPECT_THAT(std::string(Validate(e).message()), ::testing::Not(::testing::HasSubstr("more")));
}

TEST(FillDefaults, WithoutAPayloadTheVersionFollowsTheType) {
  v1::Envelope e = Golden("data.refreshed");
  e.clear_data_refreshed();
  e.clear_version();
  FillDefaults(e);
  EXPECT_EQ(e.version(), Catalog::Default().Find("data.refreshed")->version);
  const absl::Status s = Validate(e);
  EXPECT_EQ(s.message(), "payload: required (data_refreshed)");
  EXPECT_EQ(FieldPathOf(s).value_or("<none>"), "payload");

  e.clear_type();  // nothing to go on: both are reported
  e.clear_version();
  FillDefaults(e);
  EXPECT_THAT(ViolationsOf(Validate(e)), ::testing::ElementsAre(::testing::Field(&FieldViolation::field, "type"),
                                                                ::testing::Field(&FieldViolation::field, "version"),
                                                                ::testing::Field(&FieldViolation::field, "payload")));
}

TEST(Validate, OtherStatusesCarryNoFieldPath) { EXPECT_FALSE(FieldPathOf(absl::InternalError("x")).has_value()); }

}  // namespace
}  // namespace sluice::contracts
