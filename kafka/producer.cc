#include "kafka/producer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "common/strings.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"

namespace sluice::kafka {

// Owned by librdkafka between produce and the delivery report.
struct Producer::Pending {
  std::string event_id;
  DeliveryCallback done;
  int resends = 0;  // times sent again after an acknowledgement without an offset
};

namespace {

// How often a record acknowledged without an offset is sent again before its callback
// gets an error instead.
constexpr int kMaxResends = 3;

std::string Millis(absl::Duration d) { return std::to_string(absl::ToInt64Milliseconds(d)); }

}  // namespace

Producer::Producer(ProducerConfig config, const contracts::Catalog& catalog)
    : config_(std::move(config)), catalog_(catalog), auth_("producer", common::Cat("producer ", config_.client_id)) {}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(ProducerConfig config, const contracts::Catalog& catalog) {
  if (config.bootstrap_servers.empty()) return absl::InvalidArgumentError("producer: bootstrap_servers is required");
  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"client.id", config.client_id},
      {"linger.ms", Millis(config.linger)},
      {"delivery.timeout.ms", Millis(config.delivery_timeout)},
      {"compression.type", "lz4"},
  };
  for (const auto& [k, v] : config.librdkafka) settings[k] = v;
  // The guarantees Sluice documents; not overridable.
  settings["enable.idempotence"] = "true";
  settings["acks"] = "all";
  settings["partitioner"] = "murmur2_random";

  auto conf = kafka::MakeConf(settings);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Producer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), &Producer::OnError);

  std::unique_ptr<Producer> p(new Producer(std::move(config), catalog));
  rd_kafka_conf_set_opaque(conf->get(), p.get());
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(common::Cat("producer: ", err));
  conf->release();  // rd_kafka_new took ownership
  p->rk_.reset(rk);
  p->poller_ = std::thread([raw = p.get()] { raw->PollLoop(); });
  if (kafka::UsesAuthentication(settings)) {
    if (auto s = kafka::AwaitAuthentication(
            p->rk_.get(), [raw = p.get()] { return raw->auth_.status(); }, p->config_.auth_timeout);
        !s.ok())
      return s;
  }
  {
    std::lock_guard lock(p->auth_mu_);
    p->created_ = true;
  }
  p->ReportAuthFailure();  // one that came after the wait above
  return p;
}

void Producer::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  if (self->auth_.OnError(rk, err, reason)) self->ReportAuthFailure();
}

void Producer::ReportAuthFailure() {
  absl::Status failure;
  {
    std::lock_guard lock(auth_mu_);
    if (!created_ || auth_reported_ || !config_.on_auth_failure) return;
    failure = auth_.status();
    if (failure.ok()) return;
    auth_reported_ = true;
  }
  config_.on_auth_failure(failure);
}

Producer::~Producer() {
  if (rk_ != nullptr) {
    if (auto s = Flush(config_.close_timeout); !s.ok()) {
      spdlog::warn("producer: {}; failing the rest", s.message());
      {
        // No record is sent again from here on (Resend checks under the same lock), so
        // nothing escapes the purge.
        std::lock_guard lock(resend_mu_);
        closing_ = true;
        rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      }
      // Purged records get their delivery reports (kUnavailable) from the poller.
      for (int i = 0; i < 100 && in_flight_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  stop_ = true;
  if (poller_.joinable()) poller_.join();
  if (rk_ != nullptr) rd_kafka_poll(rk_.get(), 0);  // reports that raced with the stop
}

void Producer::PollLoop() {
  while (!stop_.load()) rd_kafka_poll(rk_.get(), 100);
}

bool Producer::Unconfirmed(rd_kafka_resp_err_t err, int64_t offset) {
  return err == RD_KAFKA_RESP_ERR_NO_ERROR && offset < 0;
}

void Producer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  std::unique_ptr<Pending> pending(static_cast<Pending*>(msg->_private));
  if (pending == nullptr) return;
  if (Unconfirmed(msg->err, msg->offset)) {
    rd_kafka_headers_t* headers = nullptr;
    rd_kafka_headers_t* copy = nullptr;
    if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) copy = rd_kafka_headers_copy(headers);
    rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    const int64_t timestamp = rd_kafka_message_timestamp(msg, &type);
    self->Resend(std::move(pending), {.topic = rd_kafka_topic_name(msg->rkt),
                                      .partition = msg->partition,
                                      .key = std::string_view(static_cast<const char*>(msg->key), msg->key_len),
                                      .value = std::string_view(static_cast<const char*>(msg->payload), msg->len),
                                      .timestamp = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? 0 : timestamp,
                                      .headers = copy});
    return;
  }
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    pending->done(kafka::KafkaStatus(msg->err, common::Cat("delivery of event ", pending->event_id)));
  } else {
    pending->done(DeliveryReport{pending->event_id, rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset});
  }
  self->in_flight_.fetch_sub(1);
}

void Producer::Resend(std::unique_ptr<Pending> pending, const UnconfirmedRecord& record) {
  absl::Status failed;
  std::unique_lock lock(resend_mu_);
  if (closing_) {
    failed = absl::UnavailableError(common::Cat("delivery of event ", pending->event_id, " to ", record.topic,
                                                ": acknowledged without an offset while the producer closes;"
                                                " not confirmed"));
  } else if (pending->resends >= kMaxResends) {
    failed = absl::UnavailableError(common::Cat("delivery of event ", pending->event_id, " to ", record.topic,
                                                ": acknowledged ", pending->resends + 1,
                                                " times without an offset; not confirmed"));
  } else {
    ++pending->resends;
    spdlog::warn(
        "producer: event {} to {}[{}] was acknowledged without an offset (the broker may not hold it: a failed "
        "request acknowledged by a later one); sending it again ({} of {}), consumers drop the duplicate by id",
        pending->event_id, record.topic, record.partition, pending->resends, kMaxResends);
    const std::string topic(record.topic);
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(record.partition),
                          RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(record.timestamp),
                          RD_KAFKA_V_HEADERS(record.headers), RD_KAFKA_V_OPAQUE(pending.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      pending.release();  // librdkafka owns it again; in_flight_ still counts it
      return;
    }
    failed = kafka::KafkaStatus(err, common::Cat("resend of event ", pending->event_id, " to ", record.topic));
  }
  lock.unlock();
  if (record.headers != nullptr) rd_kafka_headers_destroy(record.headers);  // not taken
  pending->done(failed);
  in_flight_.fetch_sub(1);
}

void Producer::ResendForTest(EncodedRecord record, DeliveryCallback done, int resends) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& h : record.headers)
    rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  in_flight_.fetch_add(1);
  Resend(std::unique_ptr<Pending>(new Pending{record.event_id, std::move(done), resends}),
         {.topic = record.topic, .key = record.key, .value = record.value, .headers = headers});
}

absl::StatusOr<EncodedRecord> Producer::Encode(v1::Envelope& envelope) const {
  contracts::FillDefaults(envelope, catalog_);
  if (auto s = contracts::Validate(envelope, catalog_); !s.ok()) return s;
  const contracts::Route* route = catalog_.Find(envelope.type());  // Validate checked it exists
  EncodedRecord r;
  r.topic = route->topic;
  r.key = envelope.tenant_id();
  r.headers = contracts::ToKafkaHeaders(envelope);
  r.value = contracts::SerializeDeterministic(envelope);
  r.event_id = envelope.id();
  return r;
}

void Producer::Send(v1::Envelope envelope, DeliveryCallback done) {
  auto record = Encode(envelope);
  if (!record.ok()) return done(record.status());
  SendRecord(*std::move(record), std::move(done));
}

void Producer::SendRecord(EncodedRecord record, DeliveryCallback done) {
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& h : record.headers)
    rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  auto* pending = new Pending{record.event_id, std::move(done)};
  in_flight_.fetch_add(1);

  const absl::Time deadline = absl::Now() + config_.delivery_timeout;
  rd_kafka_resp_err_t err;
  for (;;) {
    err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()), RD_KAFKA_V_KEY(record.key.data(), record.key.size()),
        RD_KAFKA_V_VALUE(record.value.data(), record.value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(pending), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || absl::Now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the poller drains reports meanwhile
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // not taken on failure
    std::unique_ptr<Pending> p(pending);
    in_flight_.fetch_sub(1);
    p->done(kafka::KafkaStatus(err, common::Cat("produce event ", record.event_id, " to ", record.topic)));
  }
}

absl::StatusOr<DeliveryReport> Producer::SendSync(v1::Envelope envelope) {
  std::promise<absl::StatusOr<DeliveryReport>> promise;
  auto future = promise.get_future();
  Send(std::move(envelope), [&promise](absl::StatusOr<DeliveryReport> r) { promise.set_value(std::move(r)); });
  return future.get();
}

absl::Status Producer::Flush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // rd_kafka_flush would also serve delivery reports on this thread; waiting on the
  // counter keeps every callback on the poller thread.
  while (in_flight_.load() > 0) {
    if (absl::Now() >= deadline)
      return absl::DeadlineExceededError(
          common::Cat("flush: ", in_flight_.load(), " records still in flight after ", absl::FormatDuration(timeout)));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

}  // namespace sluice::kafka
