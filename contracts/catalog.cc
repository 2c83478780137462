#include "contracts/catalog.h"

#include <google/protobuf/text_format.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/strings.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {
namespace internal {
// Defined in the build tree (catalog_embed.cc, generated from catalog.textproto).
const char* EmbeddedCatalogText();
}  // namespace internal

namespace {

absl::Status Bad(std::string_view path, std::string_view what) {
  return absl::InvalidArgumentError(common::Cat("catalog ", path, ": ", what));
}

}  // namespace

bool IsSemver(std::string_view v) {
  int parts = 0;
  size_t digits = 0;
  for (char c : v) {
    if (c == '.') {
      if (digits == 0) return false;
      ++parts;
      digits = 0;
    } else if (c >= '0' && c <= '9' && digits < 9) {
      ++digits;
    } else {
      return false;
    }
  }
  return parts == 2 && digits > 0;
}

absl::StatusOr<Catalog> Catalog::Parse(std::string_view textproto) {
  v1::Catalog proto;
  google::protobuf::TextFormat::Parser parser;
  if (!parser.ParseFromString(std::string(textproto), &proto)) {
    return absl::InvalidArgumentError("catalog: not a valid sluice.v1.Catalog text proto");
  }

  Catalog c;
  std::map<std::string, const v1::TopicSpec*> topics;
  for (int i = 0; i < proto.sources_size(); ++i) {
    const auto& s = proto.sources(i);
    if (s.name().empty()) return Bad(common::Cat("sources[", i, "].name"), "required");
    if (!c.sources_.insert(s.name()).second)
      return Bad(common::Cat("sources[", i, "].name"), common::Cat("duplicate source \"", s.name(), "\""));
    if (s.outbox_only()) c.outbox_sources_.insert(s.name());
  }
  for (int i = 0; i < proto.topics_size(); ++i) {
    const auto& t = proto.topics(i);
    std::string at = common::Cat("topics[", i, "]");
    if (t.name().empty()) return Bad(at + ".name", "required");
    if (t.partitions() <= 0) return Bad(at + ".partitions", "must be positive");
    if (t.replication_factor() <= 0) return Bad(at + ".replication_factor", "must be positive");
    if (t.retention_ms() == 0 || t.retention_ms() < -1) return Bad(at + ".retention_ms", "must be positive or -1");
    if (!topics.emplace(t.name(), &t).second)
      return Bad(at + ".name", common::Cat("duplicate topic \"", t.name(), "\""));
    c.topics_.push_back(t);
  }

  const auto* env = v1::Envelope::descriptor();
  const auto* oneof = env->FindOneofByName("payload");
  std::set<std::string> types;
  std::set<std::string> fields;
  for (int i = 0; i < proto.event_types_size(); ++i) {
    const auto& e = proto.event_types(i);
    std::string at = common::Cat("event_types[", i, "]");
    if (e.type().empty()) return Bad(at + ".type", "required");
    if (!types.insert(e.type()).second) return Bad(at + ".type", common::Cat("duplicate type \"", e.type(), "\""));
    const auto* field = env->FindFieldByName(e.payload_field());
    if (field == nullptr || field->containing_oneof() != oneof)
      return Bad(at + ".payload_field", common::Cat("\"", e.payload_field(), "\" is not an Envelope payload field"));
    if (field->message_type()->full_name() != e.payload_message())
      return Bad(at + ".payload_message",
                 common::Cat("Envelope.", e.payload_field(), " carries ", field->message_type()->full_name(), ", not ",
                             e.payload_message()));
    if (!fields.insert(e.payload_field()).second)
      return Bad(at + ".payload_field", common::Cat("\"", e.payload_field(), "\" used by two types"));
    auto topic = topics.find(e.topic());
    if (topic == topics.end()) return Bad(at + ".topic", common::Cat("unknown topic \"", e.topic(), "\""));
    if (e.key() != "tenant_id") return Bad(at + ".key", "only \"tenant_id\" is supported");
    if (!IsSemver(e.version())) return Bad(at + ".version", "must be MAJOR.MINOR.PATCH");
    for (int p = 0; p < e.producers_size(); ++p)
      if (!c.sources_.contains(e.producers(p)))
        return Bad(common::Cat(at, ".producers[", p, "]"), common::Cat("unknown source \"", e.producers(p), "\""));
    if (e.outbox_only())
      for (int p = 0; p < e.producers_size(); ++p)
        if (!c.outbox_sources_.contains(e.producers(p)))
          return Bad(common::Cat(at, ".producers[", p, "]"),
                     common::Cat("an outbox_only type needs outbox_only producers, not \"", e.producers(p), "\""));

    Route r;
    r.type = e.type();
    r.payload_field = e.payload_field();
    r.payload_message = e.payload_message();
    r.topic = e.topic();
    r.key = e.key();
    r.version = e.version();
    r.partitions = topic->second->partitions();
    r.replication_factor = topic->second->replication_factor();
    r.retention_ms = topic->second->retention_ms();
    r.producers.assign(e.producers().begin(), e.producers().end());
    r.consumers.assign(e.consumers().begin(), e.consumers().end());
    r.outbox_only = e.outbox_only();
    c.routes_.push_back(std::move(r));
  }
  for (int i = 0; i < oneof->field_count(); ++i) {
    if (!fields.contains(oneof->field(i)->name()))
      return Bad("event_types", common::Cat("no type for Envelope payload field \"", oneof->field(i)->name(), "\""));
  }
  c.Index();
  return c;
}

absl::StatusOr<Catalog> Catalog::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(common::Cat("catalog file ", path, " cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str());
}

const Catalog& Catalog::Default() {
  static const Catalog* const kDefault = [] {
    auto c = Parse(internal::EmbeddedCatalogText());
    // The embedded catalog is checked by the unit tests; a broken build is a bug.
    if (!c.ok()) {
      std::fprintf(stderr, "embedded catalog is invalid: %s\n", c.status().ToString().c_str());
      std::abort();
    }
    return new Catalog(*std::move(c));
  }();
  return *kDefault;
}

Catalog Catalog::WithTopicPrefix(std::string_view prefix) const {
  Catalog c = *this;
  for (auto& t : c.topics_) t.set_name(common::Cat(prefix, t.name()));
  for (auto& r : c.routes_) r.topic = common::Cat(prefix, r.topic);
  return c;
}

void Catalog::Index() {
  by_type_.clear();
  by_field_.clear();
  for (size_t i = 0; i < routes_.size(); ++i) {
    by_type_.emplace(routes_[i].type, i);
    by_field_.emplace(routes_[i].payload_field, i);
  }
}

const Route* Catalog::Find(std::string_view type) const {
  auto it = by_type_.find(type);
  return it == by_type_.end() ? nullptr : &routes_[it->second];
}

absl::StatusOr<const Route*> Catalog::Lookup(std::string_view type) const {
  if (const Route* r = Find(type)) return r;
  return absl::NotFoundError(common::Cat("unknown event type \"", type, "\""));
}

absl::StatusOr<std::vector<std::string>> Catalog::TopicsFor(const std::set<std::string>& types) const {
  std::set<std::string> out;
  if (types.empty()) {
    for (const auto& t : topics_) out.insert(t.name());
  }
  for (const auto& type : types) {
    const Route* r = Find(type);
    if (r == nullptr) return absl::InvalidArgumentError(common::Cat("types: unknown event type \"", type, "\""));
    out.insert(r->topic);
  }
  return std::vector<std::string>(out.begin(), out.end());
}

const Route* Catalog::FindByPayloadField(std::string_view field) const {
  auto it = by_field_.find(field);
  return it == by_field_.end() ? nullptr : &routes_[it->second];
}

std::vector<std::string> Catalog::TypesOnTopic(std::string_view topic) const {
  std::vector<std::string> out;
  for (const auto& r : routes_)
    if (r.topic == topic) out.push_back(r.type);
  return out;
}

}  // namespace sluice::contracts
