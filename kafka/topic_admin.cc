#include "kafka/topic_admin.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "common/strings.h"
#include "kafka/util.h"

namespace sluice::kafka {
namespace {

using QueueHandle = common::Handle<rd_kafka_queue_t, rd_kafka_queue_destroy>;
using EventHandle = common::Handle<rd_kafka_event_t, rd_kafka_event_destroy>;
using NewTopicHandle = common::Handle<rd_kafka_NewTopic_t, rd_kafka_NewTopic_destroy>;
using DeleteTopicHandle = common::Handle<rd_kafka_DeleteTopic_t, rd_kafka_DeleteTopic_destroy>;
using OptionsHandle = common::Handle<rd_kafka_AdminOptions_t, rd_kafka_AdminOptions_destroy>;

// An admin client and the authentication failure its error callback saw. Members in this
// order: librdkafka may call the callback until the handle is destroyed, which is first.
struct AdminClient {
  std::unique_ptr<kafka::AuthFailureLatch> auth;
  kafka::KafkaHandle rk;

  rd_kafka_t* get() const { return rk.get(); }
  // The refusal the error callback saw, if any. Error events wait on the main queue until
  // polled, and nothing else polls an admin client's (its results come on queues of their own).
  absl::Status Refused() const {
    rd_kafka_poll(rk.get(), 0);
    return auth->status();
  }
  // `s`, or the refused credentials that are the likely reason for it: librdkafka reports
  // those only to the error callback, while the request itself just times out.
  absl::Status Explain(absl::Status s) const {
    if (auto refused = Refused(); !refused.ok()) return refused;
    return s;
  }
};

// With authentication configured, waits up to `timeout` for a broker to accept the
// credentials (kUnauthenticated when refused), like the producer's Create.
absl::StatusOr<AdminClient> OpenAdmin(const std::string& bootstrap,
                                      const std::map<std::string, std::string>& librdkafka, absl::Duration timeout) {
  std::map<std::string, std::string> settings = {{"bootstrap.servers", bootstrap}, {"client.id", "sluice-admin"}};
  for (const auto& [k, v] : librdkafka) settings[k] = v;
  auto conf = kafka::MakeConf(settings);
  if (!conf.ok()) return conf.status();
  AdminClient admin{.auth = std::make_unique<kafka::AuthFailureLatch>("admin", "admin client")};
  rd_kafka_conf_set_opaque(conf->get(), admin.auth.get());
  rd_kafka_conf_set_error_cb(conf->get(), [](rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    static_cast<kafka::AuthFailureLatch*>(opaque)->OnError(rk, err, reason);
  });
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(common::Cat("admin client: ", err));
  conf->release();
  admin.rk.reset(rk);
  if (kafka::UsesAuthentication(settings)) {
    if (auto s = kafka::AwaitAuthentication(
            rk, [&admin] { return admin.Refused(); }, timeout);
        !s.ok())
      return s;
  }
  return admin;
}

struct ClusterInfo {
  int brokers = 0;
  std::map<std::string, int> topics;  // name -> partitions
  std::set<std::string> not_ready;    // exist, but leaders not yet elected
};

absl::StatusOr<ClusterInfo> Describe(rd_kafka_t* rk, absl::Duration timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::KafkaStatus(err, "cluster metadata");
  ClusterInfo info;
  info.brokers = md->broker_cnt;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) continue;
    info.topics[t.topic] = t.partition_cnt;
    bool ready = t.err == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int p = 0; ready && p < t.partition_cnt; ++p) ready = t.partitions[p].leader >= 0;
    if (!ready) info.not_ready.insert(t.topic);
  }
  rd_kafka_metadata_destroy(md);
  return info;
}

// Waits for one admin result event on `queue`.
absl::StatusOr<EventHandle> AwaitResult(rd_kafka_queue_t* queue, absl::Duration timeout, std::string_view what) {
  EventHandle ev(rd_kafka_queue_poll(queue, static_cast<int>(absl::ToInt64Milliseconds(timeout))));
  if (ev == nullptr)
    return absl::DeadlineExceededError(common::Cat(what, ": no answer within ", absl::FormatDuration(timeout)));
  if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::KafkaStatus(rd_kafka_event_error(ev.get()),
                              common::Cat(what, ": ", rd_kafka_event_error_string(ev.get())));
  return ev;
}

}  // namespace

absl::StatusOr<std::map<std::string, int>> ListTopics(const std::string& bootstrap, absl::Duration timeout,
                                                      const std::map<std::string, std::string>& librdkafka) {
  auto rk = OpenAdmin(bootstrap, librdkafka, timeout);
  if (!rk.ok()) return rk.status();
  auto info = Describe(rk->get(), timeout);
  if (!info.ok()) return rk->Explain(info.status());
  return info->topics;
}

absl::StatusOr<TopicReport> EnsureTopics(const std::string& bootstrap, const contracts::Catalog& catalog,
                                         const EnsureTopicsOptions& options) {
  return EnsureTopics(bootstrap, catalog.topics(), options);
}

absl::StatusOr<TopicReport> EnsureTopics(const std::string& bootstrap, const std::vector<v1::TopicSpec>& topics,
                                         const EnsureTopicsOptions& options) {
  auto rk = OpenAdmin(bootstrap, options.librdkafka, options.timeout);
  if (!rk.ok()) return rk.status();
  auto info = Describe(rk->get(), options.timeout);
  if (!info.ok()) return rk->Explain(info.status());

  TopicReport report;
  std::vector<NewTopicHandle> owned;
  std::vector<rd_kafka_NewTopic_t*> missing;
  char err[512];
  for (const auto& t : topics) {
    auto it = info->topics.find(t.name());
    if (it != info->topics.end()) {
      report.existing.push_back(t.name());
      if (!info->not_ready.contains(t.name()) && it->second != t.partitions()) {
        spdlog::warn("topic {} has {} partitions, the catalog says {}; left as is", t.name(), it->second,
                     t.partitions());
        report.mismatched.push_back(t.name());
      }
      continue;
    }
    // A spec without a replication factor asks for 3, capped at the broker count.
    const int want_rf = t.replication_factor() > 0 ? t.replication_factor() : 3;
    int rf = options.replication_factor > 0 ? options.replication_factor : std::min(want_rf, info->brokers);
    NewTopicHandle nt(rd_kafka_NewTopic_new(t.name().c_str(), t.partitions(), rf, err, sizeof(err)));
    if (nt == nullptr) return absl::InvalidArgumentError(common::Cat("topic ", t.name(), ": ", err));
    std::string retention = std::to_string(t.retention_ms());
    if (t.retention_ms() != 0 &&
        rd_kafka_NewTopic_set_config(nt.get(), "retention.ms", retention.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return absl::InvalidArgumentError(common::Cat("topic ", t.name(), ": bad retention.ms ", retention));
    missing.push_back(nt.get());
    owned.push_back(std::move(nt));
  }
  if (missing.empty()) return report;

  QueueHandle queue(rd_kafka_queue_new(rk->get()));
  OptionsHandle opts(rd_kafka_AdminOptions_new(rk->get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(opts.get(), static_cast<int>(absl::ToInt64Milliseconds(options.timeout)),
                                              err, sizeof(err));
  rd_kafka_CreateTopics(rk->get(), missing.data(), missing.size(), opts.get(), queue.get());
  auto ev = AwaitResult(queue.get(), options.timeout + absl::Seconds(5), "create topics");
  if (!ev.ok()) return rk->Explain(ev.status());
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i) {
    std::string name = rd_kafka_topic_result_name(results[i]);
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      report.existing.push_back(name);  // another process created it meanwhile
    } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      return kafka::KafkaStatus(e, common::Cat("create topic ", name, msg ? common::Cat(": ", msg) : ""));
    } else {
      report.created.push_back(name);
    }
  }
  // Return once every created topic has its partitions and leaders serving them, so the
  // caller can produce to it straight away.
  const absl::Time deadline = absl::Now() + options.timeout;
  for (;;) {
    auto now = Describe(rk->get(), options.timeout);
    if (!now.ok()) return rk->Explain(now.status());
    bool ready = true;
    for (const auto& name : report.created) {
      auto it = now->topics.find(name);
      ready = ready && it != now->topics.end() && it->second > 0 && !now->not_ready.contains(name);
    }
    if (ready) {
      // Metadata names a leader before that broker serves the partition, and a produce
      // request refused there ("not leader") while a later one succeeds can lose records
      // in librdkafka (see Producer). Ready means the leader answers for every partition.
      for (const auto& name : report.created) {
        for (int p = 0; p < now->topics.at(name); ++p) {
          int64_t low = 0, high = 0;
          if (auto s = kafka::QueryWatermarks(rk->get(), name, p, low, high,
                                              std::max(absl::ZeroDuration(), deadline - absl::Now()));
              !s.ok())
            return rk->Explain(absl::Status(s.code(), common::Cat("create topics: created, but the leader of ", name,
                                                                  "[", p, "] does not serve it: ", s.message())));
        }
      }
      break;
    }
    if (absl::Now() >= deadline)
      return absl::DeadlineExceededError("create topics: created, but leaders were not elected in time");
    absl::SleepFor(absl::Milliseconds(100));
  }
  return report;
}

absl::Status DeleteTopics(const std::string& bootstrap, const std::vector<std::string>& topics, absl::Duration timeout,
                          const std::map<std::string, std::string>& librdkafka) {
  if (topics.empty()) return absl::OkStatus();
  auto rk = OpenAdmin(bootstrap, librdkafka, timeout);
  if (!rk.ok()) return rk.status();
  std::vector<DeleteTopicHandle> owned;
  std::vector<rd_kafka_DeleteTopic_t*> raw;
  for (const auto& t : topics) {
    owned.emplace_back(rd_kafka_DeleteTopic_new(t.c_str()));
    raw.push_back(owned.back().get());
  }
  QueueHandle queue(rd_kafka_queue_new(rk->get()));
  rd_kafka_DeleteTopics(rk->get(), raw.data(), raw.size(), nullptr, queue.get());
  auto ev = AwaitResult(queue.get(), timeout, "delete topics");
  if (!ev.ok()) return rk->Explain(ev.status());
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev->get()), &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
      return kafka::KafkaStatus(e, common::Cat("delete topic ", rd_kafka_topic_result_name(results[i])));
  }
  return absl::OkStatus();
}

}  // namespace sluice::kafka
