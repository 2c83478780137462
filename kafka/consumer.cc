#include "kafka/consumer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "common/strings.h"
#include "kafka/reader.h"

namespace sluice::kafka {
namespace {

using MessageHandle = common::Handle<rd_kafka_message_t, rd_kafka_message_destroy>;

// The ce_type header, read without decoding the value.
std::string_view TypeHeader(const rd_kafka_message_t* msg) {
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(hdrs, "ce_type", &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR || value == nullptr)
    return {};
  return {static_cast<const char*>(value), size};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(ConsumerConfig config) {
  if (config.bootstrap_servers.empty()) return absl::InvalidArgumentError("consumer: bootstrap_servers is required");
  if (config.group_id.empty()) return absl::InvalidArgumentError("consumer: group_id is required");
  if (config.topics.empty()) return absl::InvalidArgumentError("consumer: at least one topic is required");
  if (config.max_batch == 0) return absl::InvalidArgumentError("consumer: max_batch must be positive");
  if (config.auto_offset_reset != "earliest" && config.auto_offset_reset != "latest")
    return absl::InvalidArgumentError("consumer: auto_offset_reset must be earliest or latest");

  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"group.id", config.group_id},
      {"client.id", config.client_id},
      {"auto.offset.reset", config.auto_offset_reset},
      {"enable.partition.eof", "false"},
      // A member that dies without leaving (SIGKILL, a lost node) holds its partitions
      // until this runs out; librdkafka's 45 s default would stall them that long.
      {"session.timeout.ms", "10000"},
  };
  for (const auto& [k, v] : config.librdkafka) settings[k] = v;
  settings["enable.auto.commit"] = "false";
  settings["enable.auto.offset.store"] = "false";

  auto conf = kafka::MakeConf(settings);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<Consumer> c(new Consumer(std::move(config)));
  rd_kafka_conf_set_opaque(conf->get(), c.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &Consumer::OnRebalance);
  rd_kafka_conf_set_error_cb(conf->get(), &Consumer::OnError);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(common::Cat("consumer: ", err));
  conf->release();
  c->rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  c->commit_results_.reset(rd_kafka_queue_new(rk));

  kafka::PartitionListHandle topics(rd_kafka_topic_partition_list_new(static_cast<int>(c->config_.topics.size())));
  for (const auto& t : c->config_.topics)
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  if (auto e = rd_kafka_subscribe(rk, topics.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::KafkaStatus(e, "subscribe");
  return c;
}

void Consumer::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  static_cast<Consumer*>(opaque)->auth_.OnError(rk, err, reason);
}

Consumer::~Consumer() {
  if (auto s = Close(); !s.ok()) spdlog::warn("consumer {}: close: {}", config_.group_id, s.message());
}

void Consumer::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                           void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("consumer {}: assigned {} partitions", self->config_.group_id, parts->cnt);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, parts);
    }
    return;
  }
  // Revoked (or lost): commit what was handled before the partitions move on.
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && !rd_kafka_assignment_lost(rk)) {
    if (auto s = self->CommitPending(parts); !s.ok())
      spdlog::warn("consumer {}: commit on revoke: {}", self->config_.group_id, s.message());
  }
  for (int i = 0; i < parts->cnt; ++i) {
    self->pending_.erase({parts->elems[i].topic, parts->elems[i].partition});
    self->sent_.erase({parts->elems[i].topic, parts->elems[i].partition});
  }
  spdlog::info("consumer {}: revoked {} partitions", self->config_.group_id, parts->cnt);
  if (cooperative) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts)) rd_kafka_error_destroy(e);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

absl::Status Consumer::CommitPending(const rd_kafka_topic_partition_list_t* only) {
  kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(pending_.size())));
  for (const auto& [tp, next] : pending_) {
    if (only != nullptr && rd_kafka_topic_partition_list_find(only, tp.first.c_str(), tp.second) == nullptr) continue;
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = next;
  }
  if (list->cnt == 0) return absl::OkStatus();
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), 0 /* synchronous */);
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) err = RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err = list->elems[i].err;
      break;
    }
    pending_.erase({list->elems[i].topic, list->elems[i].partition});
    sent_.erase({list->elems[i].topic, list->elems[i].partition});
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::lock_guard lock(stats_mu_);
    ++stats_.commit_failures;
  }
  return kafka::KafkaStatus(err, "commit offsets");
}

void Consumer::CommitAsync() {
  kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(pending_.size())));
  for (const auto& [tp, next] : pending_) {
    auto sent = sent_.find(tp);
    if (sent != sent_.end() && sent->second == next) continue;  // already on its way
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = next;
    sent_[tp] = next;
  }
  if (list->cnt == 0) return;
  rd_kafka_resp_err_t err =
      rd_kafka_commit_queue(rk_.get(), list.get(), commit_results_.get(), &Consumer::OnCommitted, this);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Not sent: the next batch (or the revoke, or Close) sends these offsets again.
    for (int i = 0; i < list->cnt; ++i) sent_.erase({list->elems[i].topic, list->elems[i].partition});
    std::lock_guard lock(stats_mu_);
    ++stats_.commit_failures;
    spdlog::warn("consumer {}: {}", config_.group_id, kafka::KafkaStatus(err, "commit offsets").message());
  }
}

void Consumer::OnCommitted(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                           void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) err = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool failed = err != RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; offsets != nullptr && i < offsets->cnt; ++i) {
    const auto& el = offsets->elems[i];
    const TopicPartition tp{el.topic, el.partition};
    auto pending = self->pending_.find(tp);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && el.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Done, unless a later batch has moved the partition on since.
      if (pending != self->pending_.end() && pending->second == el.offset) {
        self->pending_.erase(pending);
        self->sent_.erase(tp);
      }
      continue;
    }
    failed = true;
    // Sent again with the next batch, or by the revoke or Close.
    auto sent = self->sent_.find(tp);
    if (sent != self->sent_.end() && sent->second == el.offset) self->sent_.erase(sent);
  }
  if (failed) {
    std::lock_guard lock(self->stats_mu_);
    ++self->stats_.commit_failures;
    spdlog::warn("consumer {}: {}", self->config_.group_id, kafka::KafkaStatus(err, "commit offsets").message());
  }
}

absl::StatusOr<size_t> Consumer::PollOnce(const BatchHandler& handler) {
  if (closed_) return absl::FailedPreconditionError("consumer is closed");
  if (!fatal_.ok()) return fatal_;
  rd_kafka_queue_poll_callback(commit_results_.get(), 0);  // results of earlier commits
  std::vector<MessageHandle> messages;
  messages.reserve(std::min<size_t>(config_.max_batch, 1024));
  // Wait up to batch_wait for the first record, then take what is already fetched.
  int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(config_.batch_wait));
  while (messages.size() < config_.max_batch) {
    MessageHandle m(rd_kafka_consumer_poll(rk_.get(), messages.empty() ? wait_ms : 0));
    if (m == nullptr) break;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
      absl::Status s = kafka::KafkaStatus(m->err, common::Cat("consume: ", rd_kafka_message_errstr(m.get())));
      if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        fatal_ = s;
        return s;
      }
      spdlog::warn("consumer {}: {}", config_.group_id, s.message());
      continue;
    }
    messages.push_back(std::move(m));
  }
  // Reported through OnError, from the polls above. librdkafka would reconnect with the
  // same credentials forever: end Run instead.
  if (auto refused = auth_.status(); !refused.ok()) {
    fatal_ = refused;
    return fatal_;
  }

  std::vector<Record> batch;
  batch.reserve(messages.size());
  std::map<TopicPartition, int64_t> first;  // first offset per partition, for redelivery
  std::map<TopicPartition, int64_t> next;
  uint64_t skipped = 0, undecodable = 0;
  for (const auto& m : messages) {
    TopicPartition tp{rd_kafka_topic_name(m->rkt), m->partition};
    first.try_emplace(tp, m->offset);
    next[tp] = m->offset + 1;
    if (!config_.types.empty() && !config_.types.contains(std::string(TypeHeader(m.get())))) {
      ++skipped;
      continue;
    }
    Record r;
    if (!DecodeRecord(m.get(), r)) {
      ++undecodable;
      if (config_.keep_undecodable) {
        r = Record{};
        r.decoded = false;
        r.topic = tp.first;
        r.partition = tp.second;
        r.offset = m->offset;
        if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
        r.timestamp_ms = rd_kafka_message_timestamp(m.get(), nullptr);
        batch.push_back(std::move(r));
        continue;
      }
      spdlog::error("consumer {}: {}[{}]@{} is not a sluice.v1.Envelope; skipped", config_.group_id, tp.first,
                    tp.second, m->offset);
      continue;
    }
    batch.push_back(std::move(r));
  }
  messages.clear();

  if (!batch.empty()) {
    if (absl::Status s = handler(batch); !s.ok()) {
      {
        std::lock_guard lock(stats_mu_);
        ++stats_.handler_failures;
      }
      // Rewind so the same records come again; nothing of this batch is committed.
      if (absl::Status r = Rewind(first); !r.ok()) {
        // The next poll would continue after the failed batch and a later commit would
        // skip it for good. Stop instead: a restarted member resumes from the last
        // committed offset, which is before this batch.
        fatal_ = absl::Status(r.code(), common::Cat("batch failed (", s.message(), ") and could not be rewound (",
                                                    r.message(), "); stopping before anything past it is committed"));
        spdlog::critical("consumer {}: {}", config_.group_id, fatal_.message());
        return fatal_;
      }
      return s;
    }
  }
  for (const auto& [tp, off] : next) pending_[tp] = off;
  {
    std::lock_guard lock(stats_mu_);
    stats_.delivered += batch.size();
    stats_.skipped_type += skipped;
    stats_.undecodable += undecodable;
    if (!batch.empty()) ++stats_.batches;
  }
  // Asynchronously: the next poll does not wait a broker round trip for it. Results are
  // served from the next PollOnce; a failed commit is sent again with the next batch, and
  // a revoke or Close commits what is still pending synchronously. A partition that moved
  // to another member before its commit is redelivered there (at-least-once).
  CommitAsync();
  return batch.size();
}

absl::Status Consumer::Rewind(const std::map<TopicPartition, int64_t>& first) {
  kafka::PartitionListHandle rewind(rd_kafka_topic_partition_list_new(static_cast<int>(first.size())));
  for (const auto& [tp, off] : first)
    rd_kafka_topic_partition_list_add(rewind.get(), tp.first.c_str(), tp.second)->offset = off;
  if (config_.rewind_for_testing) return config_.rewind_for_testing(*rewind);
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_.get(), rewind.get(), 5000)) {
    absl::Status s = kafka::KafkaStatus(rd_kafka_error_code(e), common::Cat("seek: ", rd_kafka_error_string(e)));
    rd_kafka_error_destroy(e);
    return s;
  }
  // A partition can fail on its own (e.g. no longer assigned): only the list says so.
  for (int i = 0; i < rewind->cnt; ++i)
    if (rewind->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return kafka::KafkaStatus(rewind->elems[i].err,
                                common::Cat("seek ", rewind->elems[i].topic, "[", rewind->elems[i].partition, "]"));
  return absl::OkStatus();
}

absl::Status Consumer::Run(const BatchHandler& handler) {
  while (!stop_.load()) {
    auto n = PollOnce(handler);
    if (n.ok()) continue;
    if (!fatal_.ok()) return fatal_;
    if (stop_.load()) break;
    spdlog::warn("consumer {}: batch failed, redelivering in {}: {}", config_.group_id,
                 absl::FormatDuration(config_.retry_backoff), n.status().message());
    absl::SleepFor(config_.retry_backoff);
  }
  return absl::OkStatus();
}

absl::Status Consumer::Close() {
  if (closed_ || rk_ == nullptr) return absl::OkStatus();
  closed_ = true;
  absl::Status s = CommitPending();
  // Leaves the group; the revoke callback runs from here and commits anything left.
  if (auto e = rd_kafka_consumer_close(rk_.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR && s.ok())
    s = kafka::KafkaStatus(e, "close");
  return s;
}

ConsumerStats Consumer::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

}  // namespace sluice::kafka
