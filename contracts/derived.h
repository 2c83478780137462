#pragma once

#include <string>
#include <vector>

#include "sluice/v1/envelope.pb.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::contracts {

// What the read APIs add to an event on the way out, derived from the envelope alone.

// ERROR for metadata.profile.failed; WARNING for data.quality.degraded and for
// metadata.profile.completed with grade F; INFO for every other event.
v1::EventSeverity SeverityOf(const v1::Envelope& e);

// SeverityOf as a SQL expression over event_log's `type` and `payload` (protobuf JSON)
// columns, giving the severity's number: the same rule, for filtering in the database.
extern const char kSeveritySql[];

// The types whose events can have `severity`; empty for INFO (every type can).
std::vector<std::string> TypesWithSeverity(v1::EventSeverity severity);

// What the event refers to, in EventLink's order: entity (entity_id), canonical_key,
// approval (approval_id), profile (profile_id), job (job_id), correlation (the
// envelope's correlation_id); each only when present and non-empty.
std::vector<v1::EventLink> LinksOf(const v1::Envelope& e);

// Sets `severity` and `links` of `stored` from its envelope.
void Derive(v1::StoredEvent& stored);

}  // namespace sluice::contracts
