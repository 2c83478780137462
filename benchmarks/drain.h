#pragma once
// Drain: how the consumer benchmarks read what they published, through the same
// sluice::kafka::Consumer the services use.
#include <absl/status/statusor.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/strings.h"
#include "kafka/consumer.h"

namespace sluice::bench {

// Reads `want` records from `topics` with a fresh `group`, handing each batch to `handle`
// (a failed batch is an error); returns records per second from the first batch to the
// last. Gives up after 10 minutes.
inline absl::StatusOr<double> Drain(const std::string& bootstrap, const std::vector<std::string>& topics,
                                    const std::string& group, int64_t want, size_t max_batch,
                                    const std::function<absl::Status(const std::vector<kafka::Record>&)>& handle) {
  auto c = kafka::Consumer::Create(
      {.bootstrap_servers = bootstrap, .group_id = group, .topics = topics, .max_batch = max_batch});
  if (!c.ok()) return c.status();
  int64_t got = 0;
  std::optional<absl::Time> start;
  const absl::Time end = absl::Now() + absl::Minutes(10);
  while (got < want && absl::Now() < end) {
    auto n = (*c)->PollOnce([&](const std::vector<kafka::Record>& batch) {
      if (!start) start = absl::Now();
      return handle(batch);
    });
    if (!n.ok()) return n.status();
    got += static_cast<int64_t>(*n);
  }
  if (got < want) return absl::DeadlineExceededError(common::Cat("read ", got, " of ", want));
  return static_cast<double>(got) / absl::ToDoubleSeconds(absl::Now() - *start);
}

}  // namespace sluice::bench
