#pragma once

#include <absl/status/status.h>
#include <absl/time/time.h>

#include <string>
#include <string_view>

#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits; lower-case,
// hyphenated. Ids from one thread sort by creation time. Thread-safe.
std::string NewUuidV7(absl::Time now = absl::Now());

// A child span of the W3C traceparent `parent`: the same trace id and flags, a new random
// span id, so an event caused by a traced call or event stays in its trace. "" when
// `parent` is empty or not a valid traceparent (there is no trace to continue).
std::string ChildTraceparent(std::string_view parent);
// The root of a new trace: a random trace id and span id, sampled ("00-<32>-<16>-01").
std::string NewTraceparent();

// True for a hyphenated, lower- or upper-case hex UUID of any version.
bool IsUuid(std::string_view s);

// The one spelling of an event id that dedup, the event log and Validate use: a UUID
// lower-cased; anything that is not a UUID unchanged (Validate rejects it). Compare
// ids from outside (requests, other systems) through this.
std::string CanonicalEventId(std::string_view id);

// Name of the Envelope payload field that is set ("profile_due"), or "" when none.
std::string_view PayloadField(const v1::Envelope& env);

// Binary encoding with deterministic map order (keys sorted), so the same envelope
// always encodes to the same bytes: the Kafka record value and the golden vectors.
std::string SerializeDeterministic(const google::protobuf::Message& msg);

// Fills what a producer may leave out: id (a new UUIDv7), occurred_at (now), and,
// from the payload case and the catalog, type and version (without a payload, version
// from the type). Never overwrites a value
// that is present: a wrong one is left for Validate to report. The one change to a
// present value: an upper-case UUID id is lower-cased (CanonicalEventId), so clients
// that send upper-case still work and dedup sees one spelling.
void FillDefaults(v1::Envelope& env, const Catalog& catalog = Catalog::Default(), absl::Time now = absl::Now());

}  // namespace sluice::contracts
