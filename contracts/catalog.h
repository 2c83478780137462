#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/catalog.pb.h"

namespace sluice::contracts {

// Everything a producer or consumer needs to route one event type.
struct Route {
  std::string type;             // "metadata.profile.due"
  std::string payload_field;    // Envelope oneof field, "profile_due"
  std::string payload_message;  // "sluice.v1.ProfileDue"
  std::string topic;            // "sluice.profile"
  std::string key;              // "tenant_id"
  std::string version;          // "1.0.0"
  int32_t partitions = 0;
  int32_t replication_factor = 0;
  int64_t retention_ms = 0;
  std::vector<std::string> producers;
  std::vector<std::string> consumers;
  // Written only through a service's outbox: no gateway caller may publish it.
  bool outbox_only = false;
};

// The event catalog (contracts/catalog.textproto), checked on load: every Envelope
// payload has exactly one type, every type names a known topic and a payload that
// matches, keys are tenant_id, versions are semver, producers are known sources.
//
// Immutable after construction; safe to share across threads.
class Catalog {
 public:
  // Parses and checks a sluice.v1.Catalog in text format. Errors name the entry,
  // e.g. `event_types[3].topic: unknown topic "sluice.nope"`.
  static absl::StatusOr<Catalog> Parse(std::string_view textproto);
  static absl::StatusOr<Catalog> FromFile(const std::string& path);
  // The catalog compiled into the binary from contracts/catalog.textproto.
  static const Catalog& Default();

  // A copy whose topic names all start with `prefix` (isolated topics for tests,
  // or an environment prefix such as "staging.").
  Catalog WithTopicPrefix(std::string_view prefix) const;

  // Route of an event type; nullptr when unknown.
  const Route* Find(std::string_view type) const;
  // The topics that carry `types`, sorted and without repeats; every topic when `types`
  // is empty. InvalidArgument naming the first unknown type.
  absl::StatusOr<std::vector<std::string>> TopicsFor(const std::set<std::string>& types) const;
  // Route of an event type; NotFound naming the type when unknown.
  absl::StatusOr<const Route*> Lookup(std::string_view type) const;
  // Route of the type carried by an Envelope payload field ("profile_due").
  const Route* FindByPayloadField(std::string_view field) const;

  bool IsKnownSource(std::string_view source) const { return sources_.contains(std::string(source)); }
  // A service identity that writes only through the outbox (no gateway caller may claim it).
  bool IsOutboxOnlySource(std::string_view source) const { return outbox_sources_.contains(std::string(source)); }
  const std::vector<v1::TopicSpec>& topics() const { return topics_; }
  const std::vector<Route>& routes() const { return routes_; }
  // Types routed to `topic`.
  std::vector<std::string> TypesOnTopic(std::string_view topic) const;
  const std::set<std::string>& sources() const { return sources_; }

 private:
  Catalog() = default;
  void Index();

  std::vector<v1::TopicSpec> topics_;
  std::vector<Route> routes_;
  std::set<std::string> sources_;
  std::set<std::string> outbox_sources_;
  std::map<std::string, size_t, std::less<>> by_type_;
  std::map<std::string, size_t, std::less<>> by_field_;
};

// True for "MAJOR.MINOR.PATCH" with decimal numbers.
bool IsSemver(std::string_view v);

}  // namespace sluice::contracts
