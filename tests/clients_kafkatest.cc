// The Python, Go, Java and Node publishers (clients/, built by clients/build.sh) against
// a live gateway: every golden vector each client sends is in Kafka with the same bytes
// as its .binpb, and each client's batching publisher (PublishBatch) gives every event
// its own result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <regex>
#include <set>

#include "common/file.h"
#include "contracts/test_util.h"
#include "tests/gateway_fixture.h"

namespace sluice {
namespace {

struct Ack {
  std::string lang, topic, error, field, event_id;
  int index = -1;  // --batch: the event's position
  int32_t partition = -1;
  int64_t offset = -1;
};

// Parses publish_all.sh's JSON lines (one per client, or with --batch one per event).
std::vector<Ack> ParseAcks(const std::string& out) {
  std::vector<Ack> acks;
  static const std::regex lang(R"re("lang":\s*"(\w+)")re"), topic(R"re("topic":\s*"([^"]+)")re"),
      partition(R"re("partition":\s*(\d+))re"), offset(R"re("offset":\s*(\d+))re"), error(R"re("error":\s*(\{.*\}))re"),
      field(R"re("field":\s*"([^"]*)")re"), event_id(R"re("eventId":\s*"([^"]*)")re"), index(R"re("index":\s*(\d+))re");
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(start, end - start);
    start = end + 1;
    std::smatch m;
    if (!std::regex_search(line, m, lang)) continue;
    Ack a;
    a.lang = m[1];
    if (std::regex_search(line, m, error)) a.error = m[1];
    if (std::regex_search(line, m, topic)) a.topic = m[1];
    if (std::regex_search(line, m, partition)) a.partition = std::stoi(m[1]);
    if (std::regex_search(line, m, offset)) a.offset = std::stoll(m[1]);
    if (std::regex_search(line, m, field)) a.field = m[1];
    if (std::regex_search(line, m, event_id)) a.event_id = m[1];
    if (std::regex_search(line, m, index)) a.index = std::stoi(m[1]);
    acks.push_back(a);
  }
  return acks;
}

std::string Shell(const std::string& cmd, int* exit_code) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = p ? pclose(p) : -1;
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class Clients : public testing::GatewayTest {
 protected:
  Clients() {
    // Every client sends the golden bytes (same event id); without a dedup window each
    // publication is stored, so every language's bytes can be checked in Kafka.
    config_overrides_ = [](gateway::GatewayConfig& c) { c.dedup_window = absl::ZeroDuration(); };
  }
};

TEST_F(Clients, EveryLanguagePublishesEveryVectorByteForByte) {
  const std::string root = SLUICE_SOURCE_DIR;
  const std::string target = common::Cat("127.0.0.1:", gateway_->port());
  std::map<std::string, std::string> golden;  // topic/partition/offset -> expected bytes
  std::map<std::string, int> per_lang;
  auto vectors = contracts::LoadVectors(contracts::testing::VectorsDir());
  ASSERT_TRUE(vectors.ok());
  int refused = 0;
  for (const auto& v : *vectors) {
    auto bytes = common::ReadFile(v.binary_path);
    ASSERT_TRUE(bytes.ok());
    // Decisions and the approval workflow's own events are written only through its outbox:
    // every client gets PERMISSION_DENIED for them, and nothing reaches Kafka.
    const v1::Envelope golden_event = contracts::testing::Golden(v.type);
    if (catalog_->Find(v.type)->outbox_only || catalog_->IsOutboxOnlySource(golden_event.source())) {
      int rc = 0;
      std::string out = Shell(
          common::Cat("bash ", root, "/clients/publish_all.sh ", target, " ", testing::kTokenA, " ", v.binary_path),
          &rc);
      EXPECT_EQ(rc, 1) << v.type << ":\n" << out;
      auto acks = ParseAcks(out);
      ASSERT_EQ(acks.size(), 4u) << out;
      for (const auto& a : acks)
        EXPECT_THAT(a.error, ::testing::ContainsRegex("\"code\": *7")) << a.lang << ": " << out;
      ++refused;
      continue;
    }
    // Unary for every vector; the stream RPC for two of them.
    for (const char* mode : {"", " --stream"}) {
      if (*mode != '\0' && v.type != "data.refreshed" && v.type != "metadata.deprecated") continue;
      int rc = 0;
      std::string out = Shell(common::Cat("bash ", root, "/clients/publish_all.sh ", target, " ", testing::kTokenA, " ",
                                          v.binary_path, mode),
                              &rc);
      ASSERT_EQ(rc, 0) << v.type << mode << ":\n" << out << "\n(has clients/build.sh run?)";
      auto acks = ParseAcks(out);
      ASSERT_EQ(acks.size(), 4u) << out;
      for (const auto& a : acks) {
        ASSERT_TRUE(a.error.empty()) << a.lang << ": " << a.error;
        EXPECT_EQ(a.topic, catalog_->Find(v.type)->topic) << a.lang;
        golden[common::Cat(a.topic, "/", a.partition, "/", a.offset)] = *bytes;
        ++per_lang[a.lang];
      }
    }
  }
  EXPECT_EQ(refused, 7);  // 5 outbox-only types, and metadata.changed and kpi.changed as the workflow
  EXPECT_THAT(per_lang, ::testing::ElementsAre(::testing::Pair("go", 8), ::testing::Pair("java", 8),
                                               ::testing::Pair("node", 8), ::testing::Pair("python", 8)));
  ASSERT_EQ(golden.size(), 32u) << "each publication must be its own record";

  // Read every topic back and compare the stored bytes with the golden vector.
  size_t checked = 0;
  for (const auto& t : catalog_->topics()) {
    size_t want = 0;
    for (const auto& [k, _] : golden)
      if (k.rfind(t.name() + "/", 0) == 0) ++want;
    for (const auto& r : ReadTopic(t.name(), want)) {
      auto it = golden.find(common::Cat(r.topic, "/", r.partition, "/", r.offset));
      ASSERT_NE(it, golden.end()) << "unexpected record " << r.topic << "/" << r.partition << "@" << r.offset;
      EXPECT_EQ(r.value, it->second) << r.envelope.type() << " at " << it->first;
      ++checked;
    }
  }
  EXPECT_EQ(checked, golden.size());
}

// Each client publishes kEvents copies of data.refreshed (fresh ids) through its batching
// publisher, kBatchSize per PublishBatch call at most; event kInvalid has an id that is no
// UUID. That one gets its own INVALID_ARGUMENT naming the field, every other one an ack at
// its own offset, and Kafka holds exactly the acknowledged events there.
TEST_F(Clients, EveryLanguagesBatchingPublisherGivesEachEventItsOwnResult) {
  constexpr int kEvents = 30, kBatchSize = 8, kInvalid = 5;
  const std::string vector = common::Cat(contracts::testing::VectorsDir(), "/data.refreshed.binpb");
  int rc = 0;
  std::string out =
      Shell(common::Cat("bash ", SLUICE_SOURCE_DIR, "/clients/publish_all.sh 127.0.0.1:", gateway_->port(), " ",
                        testing::kTokenA, " ", vector, " --batch ", kEvents, " --batch-size ", kBatchSize,
                        " --invalid ", kInvalid),
            &rc);
  EXPECT_EQ(rc, 1) << out << "\n(has clients/build.sh run?)";  // the invalid event fails each client
  auto acks = ParseAcks(out);
  ASSERT_EQ(acks.size(), 4u * kEvents) << out;

  const std::string topic = catalog_->Find("data.refreshed")->topic;
  std::map<std::string, std::string> stored;  // topic/partition/offset -> event id, for every ack
  std::map<std::string, int> per_lang;
  for (size_t i = 0; i < acks.size(); ++i) {
    const Ack& a = acks[i];
    ASSERT_EQ(a.index, static_cast<int>(i % kEvents)) << "lines out of order: " << out;
    if (a.index == kInvalid) {
      EXPECT_THAT(a.error, ::testing::ContainsRegex("\"code\": *3")) << a.lang;
      EXPECT_EQ(a.field, "id") << a.lang << ": " << a.error;
      continue;
    }
    ASSERT_TRUE(a.error.empty()) << a.lang << " event " << a.index << ": " << a.error;
    EXPECT_EQ(a.topic, topic) << a.lang;
    const auto [it, fresh] = stored.emplace(common::Cat(a.topic, "/", a.partition, "/", a.offset), a.event_id);
    EXPECT_TRUE(fresh) << a.lang << " event " << a.index << " acknowledged at the offset of " << it->second;
    ++per_lang[a.lang];
  }
  std::set<std::string> ids;
  for (const auto& [_, id] : stored) ids.insert(id);
  EXPECT_EQ(ids.size(), stored.size()) << "every event has its own id";
  EXPECT_THAT(per_lang,
              ::testing::ElementsAre(::testing::Pair("go", kEvents - 1), ::testing::Pair("java", kEvents - 1),
                                     ::testing::Pair("node", kEvents - 1), ::testing::Pair("python", kEvents - 1)));

  size_t checked = 0;
  for (const auto& r : ReadTopic(topic, stored.size())) {
    auto it = stored.find(common::Cat(r.topic, "/", r.partition, "/", r.offset));
    ASSERT_NE(it, stored.end()) << "unexpected record " << r.topic << "/" << r.partition << "@" << r.offset;
    EXPECT_EQ(r.envelope.id(), it->second);
    EXPECT_EQ(r.envelope.type(), "data.refreshed");
    ++checked;
  }
  EXPECT_EQ(checked, stored.size());
}

// A PublishBatch call refused whole (here UNAUTHENTICATED) fails every event of it.
TEST_F(Clients, EveryLanguagesBatchingPublisherFailsEachEventOfARefusedCall) {
  int rc = 0;
  std::string out =
      Shell(common::Cat("bash ", SLUICE_SOURCE_DIR, "/clients/publish_all.sh 127.0.0.1:", gateway_->port(),
                        " wrong-token ", contracts::testing::VectorsDir(), "/data.refreshed.binpb --batch 3"),
            &rc);
  EXPECT_EQ(rc, 1);
  auto acks = ParseAcks(out);
  ASSERT_EQ(acks.size(), 4u * 3) << out;
  for (const auto& a : acks) EXPECT_THAT(a.error, ::testing::ContainsRegex("\"code\": *16")) << a.lang << ": " << out;
}

TEST_F(Clients, EveryLanguageReportsAnAuthenticationError) {
  int rc = 0;
  std::string out =
      Shell(common::Cat("bash ", SLUICE_SOURCE_DIR, "/clients/publish_all.sh 127.0.0.1:", gateway_->port(),
                        " wrong-token ", contracts::testing::VectorsDir(), "/kpi.changed.binpb"),
            &rc);
  EXPECT_EQ(rc, 1);
  auto acks = ParseAcks(out);
  ASSERT_EQ(acks.size(), 4u) << out;
  for (const auto& a : acks) EXPECT_THAT(a.error, ::testing::ContainsRegex("\"code\": *16")) << a.lang << ": " << out;
}

}  // namespace
}  // namespace sluice
