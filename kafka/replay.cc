#include "kafka/replay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>

#include "common/strings.h"
#include "contracts/json.h"
#include "kafka/topic_admin.h"

namespace sluice::kafka {
namespace {

using common::Cat;
constexpr size_t kBatch = 500;

// Sends `batch` to the target and waits for every acknowledgement; the reports in batch
// order, or the first failure.
absl::StatusOr<std::vector<kafka::DeliveryReport>> Republish(kafka::Producer& producer, const std::string& target,
                                                             const std::vector<const Record*>& batch) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    absl::Status first_error;
  } w;
  std::vector<kafka::DeliveryReport> reports(batch.size());
  w.left = batch.size();
  for (size_t i = 0; i < batch.size(); ++i) {
    const Record& r = *batch[i];
    kafka::EncodedRecord out{
        .topic = target, .key = r.key, .value = r.value, .headers = r.headers, .event_id = r.envelope.id()};
    out.headers.push_back({std::string(kReplayHeader), Cat(r.topic, "/", r.partition, "/", r.offset)});
    producer.SendRecord(std::move(out), [&w, &reports, i](absl::StatusOr<kafka::DeliveryReport> d) {
      std::lock_guard lock(w.mu);
      if (d.ok()) {
        reports[i] = *std::move(d);
      } else if (w.first_error.ok()) {
        w.first_error = d.status();
      }
      if (--w.left == 0) w.cv.notify_all();
    });
  }
  std::unique_lock lock(w.mu);
  w.cv.wait(lock, [&] { return w.left == 0; });
  if (!w.first_error.ok()) return w.first_error;
  return reports;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReplayTopics(const contracts::Catalog& catalog,
                                                      const std::vector<std::string>& topics,
                                                      const std::vector<std::string>& types) {
  if (topics.empty() && types.empty()) return absl::InvalidArgumentError("topics: name a topic or an event type");
  std::vector<std::string> out = topics;
  if (!types.empty()) {
    auto typed = catalog.TopicsFor(std::set<std::string>(types.begin(), types.end()));
    if (!typed.ok()) return typed.status();
    out.insert(out.end(), typed->begin(), typed->end());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<ReplayStats> Replay(const ReaderConfig& config, const ReplaySpec& spec, kafka::Producer* producer,
                                   const ReplayEmit& emit, const std::atomic<bool>* cancel) {
  if (!spec.target_topic.empty()) {
    if (producer == nullptr) return absl::InvalidArgumentError("target_topic: replaying into a topic needs a producer");
    if (std::find(spec.topics.begin(), spec.topics.end(), spec.target_topic) != spec.topics.end())
      return absl::InvalidArgumentError(
          Cat("target_topic: ", spec.target_topic,
              " is read by this replay; re-publishing into it would duplicate its events"));
    auto existing = kafka::ListTopics(config.bootstrap_servers, absl::Seconds(10), config.librdkafka);
    if (!existing.ok()) return existing.status();
    if (!existing->contains(spec.target_topic))
      return absl::NotFoundError(Cat("target_topic: ", spec.target_topic, " does not exist; create it first"));
  }
  auto reader = TopicReader::OpenRange(config, spec.topics, spec.range);
  if (!reader.ok()) return reader.status();
  ReplayStats stats;
  while (!(*reader)->done()) {
    if (cancel && cancel->load()) return absl::CancelledError("replay cancelled");
    auto batch = (*reader)->Next(kBatch, absl::Milliseconds(500));
    if (!batch.ok()) return batch.status();
    std::vector<const Record*> matched;
    for (const auto& r : *batch) {
      if (spec.filter.Matches(r.envelope)) {
        matched.push_back(&r);
      } else {
        ++stats.filtered_out;
      }
    }
    stats.matched += matched.size();
    std::vector<kafka::DeliveryReport> reports;
    if (!spec.target_topic.empty() && !matched.empty()) {
      auto sent = Republish(*producer, spec.target_topic, matched);
      if (!sent.ok()) return sent.status();
      reports = *std::move(sent);
      stats.republished += reports.size();
    }
    for (size_t i = 0; i < matched.size(); ++i) {
      if (auto s = emit(*matched[i], reports.empty() ? nullptr : &reports[i]); !s.ok()) return s;
    }
  }
  stats.reader = (*reader)->stats();
  return stats;
}

absl::StatusOr<std::string> RecordToJsonLine(const Record& r) {
  auto env = contracts::ToJson(r.envelope);
  if (!env.ok()) return env.status();
  std::string headers = "{";
  for (const auto& h : r.headers) {
    if (headers.size() > 1) headers += ',';
    headers += common::JsonQuote(h.key) + ":" + common::JsonQuote(h.value);
  }
  headers += '}';
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(r.timestamp_ms), absl::UTCTimeZone());
  return Cat("{\"topic\":", common::JsonQuote(r.topic), ",\"partition\":", r.partition, ",\"offset\":", r.offset,
             ",\"timestamp\":\"", ts, "\",\"key\":", common::JsonQuote(r.key), ",\"headers\":", headers,
             ",\"envelope\":", *env, "}");
}

}  // namespace sluice::kafka
