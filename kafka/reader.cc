#include "kafka/reader.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/strings.h"
#include "contracts/envelope.h"

namespace sluice::kafka {
namespace {

using common::Cat;
using MessageHandle = common::Handle<rd_kafka_message_t, rd_kafka_message_destroy>;
constexpr int kTimeoutMs = 10000;

contracts::Headers ReadHeaders(const rd_kafka_message_t* msg) {
  contracts::Headers out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name;
  const void* value;
  size_t size;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    out.push_back({name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
  return out;
}

// Partition counts of `topics`; NotFound naming the first that does not exist.
absl::StatusOr<std::map<std::string, int>> PartitionCounts(rd_kafka_t* rk, const std::vector<std::string>& topics) {
  const rd_kafka_metadata_t* md = nullptr;
  if (auto err = rd_kafka_metadata(rk, 1, nullptr, &md, kTimeoutMs); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::KafkaStatus(err, "cluster metadata");
  std::map<std::string, int> all;
  for (int i = 0; i < md->topic_cnt; ++i)
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) all[md->topics[i].topic] = md->topics[i].partition_cnt;
  rd_kafka_metadata_destroy(md);
  std::map<std::string, int> out;
  for (const auto& t : topics) {
    auto it = all.find(t);
    if (it == all.end()) return absl::NotFoundError(Cat("topic ", t, " does not exist"));
    out[t] = it->second;
  }
  return out;
}

// The earliest offset of each partition whose record timestamp is at or after `t`; the
// high watermark where every record is older.
absl::Status OffsetsForTime(rd_kafka_t* rk, std::vector<TopicReader::PartitionSpan>& spans, absl::Time t,
                            const std::map<std::pair<std::string, int32_t>, int64_t>& high,
                            std::map<std::pair<std::string, int32_t>, int64_t>& out) {
  kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(static_cast<int>(spans.size())));
  for (const auto& s : spans)
    rd_kafka_topic_partition_list_add(list.get(), s.topic.c_str(), s.partition)->offset = absl::ToUnixMillis(t);
  if (auto err = rd_kafka_offsets_for_times(rk, list.get(), kTimeoutMs); err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return kafka::KafkaStatus(err, "offsets for times");
  for (int i = 0; i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) return kafka::KafkaStatus(p.err, Cat("offsets for times ", p.topic));
    std::pair<std::string, int32_t> key{p.topic, p.partition};
    out[key] = p.offset < 0 ? high.at(key) : p.offset;
  }
  return absl::OkStatus();
}

}  // namespace

bool DecodeRecord(const rd_kafka_message_t* m, Record& r) {
  if (!r.envelope.ParseFromArray(m->payload, static_cast<int>(m->len))) return false;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.headers = ReadHeaders(m);
  r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
  return true;
}

bool RecordFilter::Matches(const v1::Envelope& e) const {
  if (!tenants.empty() && !tenants.contains(e.tenant_id())) return false;
  if (!types.empty() && !types.contains(e.type())) return false;
  if (!sources.empty() && !sources.contains(e.source())) return false;
  if (!correlation_id.empty() && e.correlation_id() != correlation_id) return false;
  return true;
}

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::OpenRange(const ReaderConfig& config,
                                                                    const std::vector<std::string>& topics,
                                                                    const ReadRange& range) {
  if (range.from_offset && *range.from_offset < 0) return absl::InvalidArgumentError("from_offset: must be >= 0");
  if (range.from_offset && range.to_offset && *range.to_offset < *range.from_offset)
    return absl::InvalidArgumentError("to_offset: before from_offset");
  if (range.from_time && range.to_time && *range.to_time < *range.from_time)
    return absl::InvalidArgumentError("to_time: before from_time");
  return Open(config, topics, &range);
}

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::OpenLive(const ReaderConfig& config,
                                                                   const std::vector<std::string>& topics) {
  return Open(config, topics, nullptr);
}

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::Open(const ReaderConfig& config,
                                                               const std::vector<std::string>& topics,
                                                               const ReadRange* range) {
  if (config.bootstrap_servers.empty()) return absl::InvalidArgumentError("reader: bootstrap_servers is required");
  if (topics.empty()) return absl::InvalidArgumentError("reader: at least one topic is required");
  // A group id is required by librdkafka's consumer, but nothing joins or commits: the
  // partitions are assigned by hand.
  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", config.bootstrap_servers},
      {"group.id", Cat(config.client_id, "-", contracts::NewUuidV7())},
      {"client.id", config.client_id},
      {"enable.partition.eof", range ? "true" : "false"},
  };
  for (const auto& [k, v] : config.librdkafka) settings[k] = v;
  settings["enable.auto.commit"] = "false";
  settings["enable.auto.offset.store"] = "false";
  auto conf = kafka::MakeConf(settings);
  if (!conf.ok()) return conf.status();
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof(err));
  if (rk == nullptr) return absl::InvalidArgumentError(Cat("reader: ", err));
  conf->release();
  std::unique_ptr<TopicReader> r(new TopicReader());
  r->rk_.reset(rk);
  r->live_ = range == nullptr;
  rd_kafka_poll_set_consumer(rk);

  auto counts = PartitionCounts(rk, topics);
  if (!counts.ok()) return counts.status();
  std::map<std::pair<std::string, int32_t>, int64_t> low, high;
  for (const auto& [topic, n] : *counts) {
    if (range && range->partition && (*range->partition < 0 || *range->partition >= n))
      return absl::InvalidArgumentError(Cat("partition: topic ", topic, " has partitions 0..", n - 1));
    for (int32_t p = 0; p < n; ++p) {
      if (range && range->partition && p != *range->partition) continue;
      int64_t lo = 0, hi = 0;
      if (auto s = kafka::QueryWatermarks(rk, topic, p, lo, hi); !s.ok()) return s;
      low[{topic, p}] = lo;
      high[{topic, p}] = hi;
      r->spans_.push_back({.topic = topic, .partition = p, .start = hi, .end = -1});
    }
  }
  if (range) {
    std::map<std::pair<std::string, int32_t>, int64_t> time_start, time_end;
    if (range->from_time) {
      if (auto s = OffsetsForTime(rk, r->spans_, *range->from_time, high, time_start); !s.ok()) return s;
    }
    // Records stamped after to_time start at the first offset stamped to_time + 1 ms.
    if (range->to_time) {
      if (auto s = OffsetsForTime(rk, r->spans_, *range->to_time + absl::Milliseconds(1), high, time_end); !s.ok())
        return s;
    }
    r->from_time_ = range->from_time;
    r->to_time_ = range->to_time;
    for (auto& s : r->spans_) {
      std::pair<std::string, int32_t> key{s.topic, s.partition};
      s.start = std::max(low[key], range->from_offset.value_or(0));
      if (range->from_time) s.start = std::max(s.start, time_start[key]);
      s.end = high[key];
      if (range->to_offset) s.end = std::min(s.end, *range->to_offset + 1);
      if (range->to_time) s.end = std::min(s.end, time_end[key]);
      s.end = std::max(s.end, s.start);
      if (s.start < s.end) r->remaining_[key] = s.end;
    }
  }
  kafka::PartitionListHandle assign(rd_kafka_topic_partition_list_new(static_cast<int>(r->spans_.size())));
  for (const auto& s : r->spans_) {
    if (range && s.start >= s.end) continue;
    rd_kafka_topic_partition_list_add(assign.get(), s.topic.c_str(), s.partition)->offset = s.start;
  }
  if (assign->cnt > 0) {
    if (auto e = rd_kafka_assign(rk, assign.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR)
      return kafka::KafkaStatus(e, "assign");
  }
  return r;
}

void TopicReader::Finish(const std::string& topic, int32_t partition) {
  if (remaining_.erase({topic, partition}) == 0) return;
  // Stop fetching what lies past the end of the range.
  kafka::PartitionListHandle list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  rd_kafka_pause_partitions(rk_.get(), list.get());
}

absl::StatusOr<std::vector<Record>> TopicReader::Next(size_t max, absl::Duration wait) {
  std::vector<Record> out;
  if (done()) return out;
  const absl::Time deadline = absl::Now() + wait;
  while (out.size() < max && !done()) {
    int wait_ms =
        out.empty() ? static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()))) : 0;
    MessageHandle m(rd_kafka_consumer_poll(rk_.get(), wait_ms));
    if (m == nullptr) {
      if (!out.empty() || absl::Now() >= deadline) break;
      continue;
    }
    const std::string topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // m->offset is the next offset to come: the partition's end as of now.
      auto it = remaining_.find({topic, m->partition});
      if (it != remaining_.end() && m->offset >= it->second) Finish(topic, m->partition);
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      absl::Status s =
          kafka::KafkaStatus(m->err, Cat("read ", topic, "[", m->partition, "]: ", rd_kafka_message_errstr(m.get())));
      if (m->err == RD_KAFKA_RESP_ERR__FATAL || m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) return s;
      spdlog::warn("reader: {}", s.message());
      continue;
    }
    if (!live_) {
      auto it = remaining_.find({topic, m->partition});
      if (it == remaining_.end()) continue;  // a finished partition's prefetched records
      const int64_t end = it->second;
      if (m->offset >= end) {
        Finish(topic, m->partition);
        continue;
      }
      if (m->offset + 1 >= end) Finish(topic, m->partition);
    }
    Record r;
    if (!DecodeRecord(m.get(), r)) {
      ++stats_.undecodable;
      spdlog::error("reader: {}[{}]@{} is not a sluice.v1.Envelope; skipped", topic, m->partition, m->offset);
      continue;
    }
    const absl::Time ts = absl::FromUnixMillis(r.timestamp_ms);
    if ((from_time_ && ts < *from_time_) || (to_time_ && ts > *to_time_)) {
      ++stats_.outside_window;
      continue;
    }
    ++stats_.read;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sluice::kafka
