#include "contracts/derived.h"

#include <google/protobuf/descriptor.h>

#include <utility>

namespace sluice::contracts {
namespace {

constexpr char kProfileFailed[] = "metadata.profile.failed";
constexpr char kProfileCompleted[] = "metadata.profile.completed";
constexpr char kQualityDegraded[] = "data.quality.degraded";

}  // namespace

// Kept next to SeverityOf: the two must say the same (events_kafkatest filters stored
// events of every severity by it and compares with SeverityOf).
const char kSeveritySql[] =
    "CASE WHEN type = 'metadata.profile.failed' THEN 3"
    " WHEN type = 'data.quality.degraded' OR (type = 'metadata.profile.completed'"
    " AND payload->>'qualityGrade' = 'QUALITY_GRADE_F') THEN 2 ELSE 1 END";

v1::EventSeverity SeverityOf(const v1::Envelope& e) {
  if (e.type() == kProfileFailed) return v1::EVENT_SEVERITY_ERROR;
  if (e.type() == kQualityDegraded) return v1::EVENT_SEVERITY_WARNING;
  if (e.type() == kProfileCompleted && e.has_profile_completed() &&
      e.profile_completed().quality_grade() == v1::QUALITY_GRADE_F)
    return v1::EVENT_SEVERITY_WARNING;
  return v1::EVENT_SEVERITY_INFO;
}

std::vector<std::string> TypesWithSeverity(v1::EventSeverity severity) {
  switch (severity) {
    case v1::EVENT_SEVERITY_ERROR: return {kProfileFailed};
    case v1::EVENT_SEVERITY_WARNING: return {kQualityDegraded, kProfileCompleted};
    default: return {};
  }
}

std::vector<v1::EventLink> LinksOf(const v1::Envelope& e) {
  static constexpr std::pair<const char*, const char*> kFields[] = {{"entity_id", "entity"},
                                                                    {"canonical_key", "canonical_key"},
                                                                    {"approval_id", "approval"},
                                                                    {"profile_id", "profile"},
                                                                    {"job_id", "job"}};
  std::vector<v1::EventLink> out;
  const auto* payload_oneof = v1::Envelope::descriptor()->FindOneofByName("payload");
  const auto* field = e.GetReflection()->GetOneofFieldDescriptor(e, payload_oneof);
  if (field != nullptr) {
    const google::protobuf::Message& payload = e.GetReflection()->GetMessage(e, field);
    const google::protobuf::Descriptor* d = payload.GetDescriptor();
    for (const auto& [name, kind] : kFields) {
      const google::protobuf::FieldDescriptor* f = d->FindFieldByName(name);
      if (f == nullptr || f->is_repeated() || f->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
      std::string value = payload.GetReflection()->GetString(payload, f);
      if (value.empty()) continue;
      v1::EventLink link;
      link.set_kind(kind);
      link.set_id(std::move(value));
      out.push_back(std::move(link));
    }
  }
  if (!e.correlation_id().empty()) {
    v1::EventLink link;
    link.set_kind("correlation");
    link.set_id(e.correlation_id());
    out.push_back(std::move(link));
  }
  return out;
}

void Derive(v1::StoredEvent& stored) {
  stored.set_severity(SeverityOf(stored.envelope()));
  stored.clear_links();
  for (auto& link : LinksOf(stored.envelope())) *stored.add_links() = std::move(link);
}

}  // namespace sluice::contracts
