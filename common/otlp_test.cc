// The OTLP exporter without a collector: the JSON it sends, and what it counts when the
// collector is unreachable or the queue is full. story_e2e sends spans to a real receiver.
#include "common/otlp.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

namespace sluice::common {
namespace {

double Count(prometheus::Registry& r, const std::string& outcome) {
  for (const auto& f : r.Collect())
    if (f.name == "sluice_otlp_spans_total")
      for (const auto& m : f.metric)
        if (m.label.size() == 1 && m.label[0].value == outcome) return m.counter.value;
  return -1;
}

Span Sample(int i) {
  auto s = SpanOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01", "emit \"x\"", Span::kProducer,
                  absl::FromUnixNanos(1'700'000'000'000'000'123), absl::FromUnixNanos(1'700'000'000'000'000'456));
  s->attributes = {{"sluice.event.type", "metadata.approved"}, {"n", std::to_string(i)}};
  return *s;
}

TEST(SpanOfTest, TakesIdsFromTraceparentsOfOneTrace) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto root = SpanOf(tp, "", "r", Span::kInternal, absl::UnixEpoch(), absl::UnixEpoch());
  ASSERT_TRUE(root);
  EXPECT_EQ(root->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(root->span_id, "00f067aa0ba902b7");
  EXPECT_EQ(root->parent_span_id, "");
  EXPECT_FALSE(SpanOf("", "", "r", Span::kInternal, absl::UnixEpoch(), absl::UnixEpoch()));
  // A parent of another trace is not a parent.
  EXPECT_FALSE(SpanOf(tp, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "r", Span::kInternal,
                      absl::UnixEpoch(), absl::UnixEpoch()));
}

TEST(OtlpTest, JsonIsAnExportTraceServiceRequest) {
  const std::string json = OtlpJson({Sample(1), Sample(2)}, "sluice-gateway");
  google::protobuf::Struct body;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &body).ok()) << json;
  const auto& rs = body.fields().at("resourceSpans").list_value().values(0).struct_value();
  const auto& attr = rs.fields().at("resource").struct_value().fields().at("attributes").list_value().values(0);
  EXPECT_EQ(attr.struct_value().fields().at("key").string_value(), "service.name");
  EXPECT_EQ(attr.struct_value().fields().at("value").struct_value().fields().at("stringValue").string_value(),
            "sluice-gateway");
  const auto& spans =
      rs.fields().at("scopeSpans").list_value().values(0).struct_value().fields().at("spans").list_value();
  ASSERT_EQ(spans.values_size(), 2);
  const auto& s = spans.values(0).struct_value().fields();
  EXPECT_EQ(s.at("traceId").string_value(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.at("spanId").string_value(), "00f067aa0ba902b7");
  EXPECT_EQ(s.at("parentSpanId").string_value(), "b7ad6b7169203331");
  EXPECT_EQ(s.at("name").string_value(), "emit \"x\"");
  EXPECT_EQ(s.at("kind").number_value(), 4);
  EXPECT_EQ(s.at("startTimeUnixNano").string_value(), "1700000000000000123");  // uint64 as a string
  EXPECT_EQ(s.at("endTimeUnixNano").string_value(), "1700000000000000456");
  EXPECT_EQ(s.at("attributes").list_value().values_size(), 2);
}

TEST(OtlpTest, RefusesEndpointsThatAreNotHttpUrls) {
  prometheus::Registry r;
  for (const char* bad : {"", "otel:4318", "ftp://otel:4318", "http://a b"}) {
    auto e = OtlpExporter::Start({.endpoint = bad, .service_name = "s"}, r);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(std::string(e.status().message()).find("otlp-endpoint"), std::string::npos);
  }
}

TEST(OtlpTest, AnUnreachableCollectorCountsFailuresAndAFullQueueDrops) {
  prometheus::Registry r;
  // Port 9 on loopback: nothing listens, the POST fails at once.
  auto e = OtlpExporter::Start({.endpoint = "http://127.0.0.1:9",
                                .service_name = "s",
                                .max_queue = 10,
                                .max_batch = 4,
                                .interval = absl::Hours(1),
                                .timeout = absl::Seconds(2)},
                               r);
  ASSERT_TRUE(e.ok()) << e.status();
  for (int i = 0; i < 3; ++i) (*e)->Export(Sample(i));
  (*e)->Flush();
  EXPECT_EQ(Count(r, "failed"), 3);
  EXPECT_EQ(Count(r, "sent"), 0);
  // With the loop held back by a long interval and batches above the queue, 10 wait
  // and the rest are dropped.
  auto held = OtlpExporter::Start({.endpoint = "http://127.0.0.1:9",
                                   .service_name = "s",
                                   .max_queue = 10,
                                   .max_batch = 100,
                                   .interval = absl::Hours(1)},
                                  r);
  ASSERT_TRUE(held.ok());
  for (int i = 0; i < 25; ++i) (*held)->Export(Sample(i));
  EXPECT_EQ(Count(r, "dropped"), 15);
  (*held)->Flush();
  EXPECT_EQ(Count(r, "failed"), 13);
}

}  // namespace
}  // namespace sluice::common
