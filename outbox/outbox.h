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

}  // namespace sluice::outbox
