#pragma once

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <map>
#include <string>
#include <vector>

#include "contracts/catalog.h"

namespace sluice::kafka {

struct TopicReport {
  std::vector<std::string> created;
  std::vector<std::string> existing;
  // Existing topics whose partition count differs from the catalog's (not altered:
  // adding partitions would move tenants to other partitions).
  std::vector<std::string> mismatched;
};

struct EnsureTopicsOptions {
  // 0: the catalog's replication factor, lowered to the number of brokers when the
  // cluster is smaller (a one-broker development stack).
  int replication_factor = 0;
  absl::Duration timeout = absl::Seconds(30);
  // librdkafka settings of the admin client (security: common/kafka_config.h). With
  // authentication configured, credentials the broker refuses end the call with
  // kUnauthenticated ("kafka authentication failed") instead of a timeout.
  std::map<std::string, std::string> librdkafka;
};

// Creates every catalog topic that is missing, with its partitions and retention.ms.
// Idempotent; safe to run from several processes at once. Returns once the leader of
// every partition it created serves that partition.
absl::StatusOr<TopicReport> EnsureTopics(const std::string& bootstrap_servers, const contracts::Catalog& catalog,
                                         const EnsureTopicsOptions& options = {});

// The same for topics outside the catalog (replay targets, tests).
absl::StatusOr<TopicReport> EnsureTopics(const std::string& bootstrap_servers, const std::vector<v1::TopicSpec>& topics,
                                         const EnsureTopicsOptions& options = {});

// Deletes the named topics (missing ones are ignored). For tests and local resets.
// `librdkafka`: as EnsureTopicsOptions::librdkafka.
absl::Status DeleteTopics(const std::string& bootstrap_servers, const std::vector<std::string>& topics,
                          absl::Duration timeout = absl::Seconds(30),
                          const std::map<std::string, std::string>& librdkafka = {});

// Names of the topics in the cluster (those the client may describe, under ACLs), and
// the partition count of each. `librdkafka`: as EnsureTopicsOptions::librdkafka.
absl::StatusOr<std::map<std::string, int>> ListTopics(const std::string& bootstrap_servers,
                                                      absl::Duration timeout = absl::Seconds(10),
                                                      const std::map<std::string, std::string>& librdkafka = {});

}  // namespace sluice::kafka
