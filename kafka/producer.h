#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "contracts/catalog.h"
#include "contracts/cloudevents.h"
#include "kafka/util.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::kafka {

struct ProducerConfig {
  std::string bootstrap_servers;
  std::string client_id = "sluice";
  // How long librdkafka retries a record before failing it (delivery.timeout.ms).
  absl::Duration delivery_timeout = absl::Seconds(30);
  // How long records wait to fill a batch (linger.ms).
  absl::Duration linger = absl::Milliseconds(5);
  // How long the destructor waits for in-flight records before failing them.
  absl::Duration close_timeout = absl::Seconds(10);
  // Raw librdkafka settings, applied after Sluice's own (which they may override,
  // except enable.idempotence, acks and partitioner, which Sluice relies on).
  std::map<std::string, std::string> librdkafka;
  // With authentication configured (librdkafka's security.protocol other than plaintext),
  // how long Create waits for a broker to accept the client: credentials or a certificate
  // refused in that time fail Create with kUnauthenticated (IsAuthenticationError). A
  // broker that does not answer at all is not an error (librdkafka keeps trying).
  absl::Duration auth_timeout = absl::Seconds(15);
  // Called once, from a thread polling the producer, when the broker refuses the client's
  // credentials after Create returned. librdkafka would retry forever while every record
  // times out, so the owner should stop. Unset: the failure is only logged.
  std::function<void(const absl::Status&)> on_auth_failure;
};

// Where a record landed.
struct DeliveryReport {
  std::string event_id;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Called exactly once per Send, on the producer's delivery thread (keep it short;
// never call Flush from it). A failure is a Status, never a silent drop.
using DeliveryCallback = std::function<void(absl::StatusOr<DeliveryReport>)>;

// An already encoded record (for relays and replays that must keep exact bytes).
struct EncodedRecord {
  std::string topic;
  std::string key;
  std::string value;
  contracts::Headers headers;
  std::string event_id;  // echoed in the DeliveryReport
};

// Idempotent Kafka producer for Sluice envelopes: enable.idempotence=true, acks=all,
// partitioner murmur2_random (the Java client's), key = tenant_id, value = the binary
// Envelope, CloudEvents headers.
//
// A record is reported delivered only with the partition and offset the broker gave it.
// librdkafka also reports success without an offset: for a retry the broker calls a
// duplicate (the first record of that request), and for a failed request (e.g. "not
// leader" while a partition moves or was just created) followed by a later request that
// succeeded, whose records it then takes as written although the broker may never have
// stored them. Such a record is sent again (up to 3 times, each with delivery_timeout of
// its own, then the callback gets kUnavailable; at once when the local queue is full):
// at-least-once, so it may land twice, or after records sent later for the same key;
// consumers drop duplicates by event id.
//
// Thread-safe: Send may be called from any thread. Non-copyable, non-movable.
// Lifetime: the destructor flushes for at most close_timeout, then purges what is
// left, failing those records' callbacks with kUnavailable, and returns.
class Producer {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> Create(
      ProducerConfig config, const contracts::Catalog& catalog = contracts::Catalog::Default());
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Fills defaults (id, occurred_at, type, version), validates, routes by the catalog
  // and enqueues. Invalid envelopes fail the callback with InvalidArgument naming the
  // field, before anything is sent.
  void Send(v1::Envelope envelope, DeliveryCallback done);

  // What Send does before sending: fill defaults, validate, route, encode. For callers
  // that check more (e.g. authorization) between encoding and SendRecord.
  absl::StatusOr<EncodedRecord> Encode(v1::Envelope& envelope) const;

  // Send and wait for the broker's acknowledgement.
  absl::StatusOr<DeliveryReport> SendSync(v1::Envelope envelope);

  // Enqueues an encoded record as is. When the local queue is full it waits, up to
  // delivery_timeout, for room (back-pressure on the caller).
  void SendRecord(EncodedRecord record, DeliveryCallback done);

  // Waits until every record sent so far is acknowledged or failed; DeadlineExceeded
  // with the number left when `timeout` passes first.
  absl::Status Flush(absl::Duration timeout);

  // Records sent and not yet acknowledged or failed.
  int64_t InFlight() const { return in_flight_.load(); }

  const contracts::Catalog& catalog() const { return catalog_; }

 private:
  friend class ProducerTestPeer;
  struct Pending;
  // A record librdkafka reported as delivered without an offset (headers owned).
  struct UnconfirmedRecord {
    std::string_view topic;
    int32_t partition = RD_KAFKA_PARTITION_UA;
    std::string_view key;
    std::string_view value;
    int64_t timestamp = 0;  // ms since the epoch; 0: now
    rd_kafka_headers_t* headers = nullptr;
  };

  Producer(ProducerConfig config, const contracts::Catalog& catalog);
  // A successful delivery report that carries no offset.
  static bool Unconfirmed(rd_kafka_resp_err_t err, int64_t offset);
  // Sends `record` again with the same callback, or fails the callback once it was sent
  // again kMaxResends times or librdkafka refuses it. Called on the delivery thread.
  void Resend(std::unique_ptr<Pending> pending, const UnconfirmedRecord& record);
  // Takes `record` down the path of one acknowledged without an offset `resends` times.
  void ResendForTest(EncodedRecord record, DeliveryCallback done, int resends);
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void ReportAuthFailure();  // to on_auth_failure, once, after Create
  void PollLoop();

  ProducerConfig config_;
  contracts::Catalog catalog_;
  // Before rk_: OnError may use them until the handle is gone.
  kafka::AuthFailureLatch auth_;  // the first authentication failure librdkafka reported
  mutable std::mutex auth_mu_;    // guards the two below
  bool created_ = false;          // Create returned this producer
  bool auth_reported_ = false;
  kafka::KafkaHandle rk_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> stop_{false};
  std::mutex resend_mu_;  // orders Resend against the destructor's purge
  bool closing_ = false;  // guarded by resend_mu_: the destructor purges, nothing is sent again
  std::thread poller_;
};

}  // namespace sluice::kafka
