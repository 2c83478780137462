#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kafka/record.h"
#include "kafka/util.h"

namespace sluice::kafka {

struct ConsumerConfig {
  std::string bootstrap_servers;
  std::string group_id;
  std::string client_id = "sluice";
  std::vector<std::string> topics;
  // Event types (ce_type header) handed to the handler; empty means all. Other
  // records are skipped without being decoded, and committed.
  std::set<std::string> types;
  // Most records per batch, and how long to wait for the first one.
  size_t max_batch = 500;
  absl::Duration batch_wait = absl::Milliseconds(100);
  // Pause before a failed batch is delivered again.
  absl::Duration retry_backoff = absl::Milliseconds(500);
  // Where a group without committed offsets starts: "earliest" or "latest".
  std::string auto_offset_reset = "earliest";
  // Raw librdkafka settings, applied after Sluice's own (enable.auto.commit and
  // enable.auto.offset.store stay false: offsets are committed only after a batch).
  // Sluice sets session.timeout.ms to 10000: the partitions of a member that died without
  // leaving move on after 10 s rather than librdkafka's 45.
  std::map<std::string, std::string> librdkafka;
  // Records that are not a sluice.v1.Envelope go to the handler too (Record::decoded
  // false) instead of being logged and skipped: for consumers that must account for every
  // record (the audit sink dead-letters them).
  bool keep_undecodable = false;
  // Test seam: when set, replaces rd_kafka_seek_partitions for the rewind after a failed
  // batch (which partitions and offsets it gets; non-OK = the rewind failed).
  std::function<absl::Status(const rd_kafka_topic_partition_list_t& rewind)> rewind_for_testing;
};

struct ConsumerStats {
  uint64_t delivered = 0;     // records the handler accepted (their offsets then committed)
  uint64_t skipped_type = 0;  // filtered by ce_type, not decoded
  uint64_t undecodable = 0;   // value is not an Envelope (logged and skipped)
  uint64_t batches = 0;       // successful batches
  uint64_t handler_failures = 0;
  uint64_t commit_failures = 0;  // commits refused or not sent (the offsets are sent again)
};

// A Kafka consumer-group member that delivers batches of decoded envelopes and
// commits a batch's offsets only after its handler succeeded (at-least-once). That commit
// is asynchronous, so the next batch does not wait for the broker; offsets not yet
// committed when partitions are revoked, or at Close, are committed synchronously first.
//
// Thread-safety: Run/PollOnce/Close from one thread; Stop from any thread (it only
// sets a flag). Non-copyable. Lifetime: the destructor calls Close, which commits,
// leaves the group and returns within the broker's session bounds.
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(ConsumerConfig config);
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Polls, handles and commits until Stop(); a failed batch is retried after
  // retry_backoff. Returns OK after a stop, or a fatal error: a fatal Kafka error, the
  // broker refusing the client's credentials (kUnauthenticated, IsAuthenticationError), or a
  // failed batch that could not be rewound (the caller should exit; a restarted member
  // resumes from the last committed offset, before that batch).
  absl::Status Run(const BatchHandler& handler);

  // One cycle: poll up to max_batch records, handle them, commit. Returns how many
  // records the handler accepted, or the handler's error (the batch is rewound and will
  // be redelivered). When the rewind fails the consumer is unusable: this and every later
  // call return the fatal error, and nothing more is handled or committed.
  absl::StatusOr<size_t> PollOnce(const BatchHandler& handler);

  // Asks Run to return after the current batch. Thread-safe.
  void Stop() { stop_.store(true); }
  bool stopping() const { return stop_.load(); }

  // Commits what is pending and leaves the group. Idempotent.
  absl::Status Close();

  ConsumerStats stats() const;

 private:
  using TopicPartition = std::pair<std::string, int32_t>;
  explicit Consumer(ConsumerConfig config)
      : config_(std::move(config)), auth_("consumer", "consumer group " + config_.group_id) {}
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                          void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  // Seeks each partition back to `first`, the batch's first offset there.
  absl::Status Rewind(const std::map<TopicPartition, int64_t>& first);
  // Commits pending_ offsets (all, or only those in `only`); synchronous.
  absl::Status CommitPending(const rd_kafka_topic_partition_list_t* only = nullptr);
  // Sends the pending_ offsets not already on their way (sent_); results arrive on
  // commit_results_, served at the start of each PollOnce by OnCommitted.
  void CommitAsync();
  static void OnCommitted(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
                          void* opaque);

  ConsumerConfig config_;
  // Before rk_: OnError may use it until the handle is gone.
  kafka::AuthFailureLatch auth_;  // the first authentication failure librdkafka reported
  kafka::KafkaHandle rk_;
  std::atomic<bool> stop_{false};
  bool closed_ = false;
  absl::Status fatal_;  // a fatal librdkafka error or a failed rewind ends Run
  // After rk_: a queue handle must go before its client.
  common::Handle<rd_kafka_queue_t, rd_kafka_queue_destroy> commit_results_;
  // Next offset to commit per partition, for records handled but not yet known committed,
  // and the offset last sent asynchronously for each (not yet answered).
  std::map<TopicPartition, int64_t> pending_;
  std::map<TopicPartition, int64_t> sent_;
  mutable std::mutex stats_mu_;
  ConsumerStats stats_;
};

}  // namespace sluice::kafka
