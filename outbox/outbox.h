#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <vector>

#include "common/pg.h"
#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::outbox {

// Appends `events` to event_outbox inside the caller's open transaction, so they commit
// or roll back with the state change they describe. Defaults are filled in (the ids are
// written back into `events`) and each is validated first: InvalidArgument naming the
// event and field, nothing written. Takes a per-tenant transaction lock, so one tenant's
// writers commit in outbox id order; the relay publishes in that order.
absl::Status AppendToOutbox(common::PgConnection& conn, std::vector<v1::Envelope>& events,
                            const contracts::Catalog& catalog = contracts::Catalog::Default());

// After the transaction that appended `events` committed: one producer span per event
// ("emit <type>", its own ids from the event's traceparent, below `parent`, the
// traceparent of what caused it) for the process's span sink (common/tracing.h). Events
// without a traceparent, or without a sink, export nothing.
void ExportEmitSpans(const std::vector<v1::Envelope>& events, const std::string& parent);

}  // namespace sluice::outbox
