#include "outbox/outbox.h"

#include "common/strings.h"
#include "common/tracing.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"

namespace sluice::outbox {
namespace {

std::string HexBytea(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + 2 * bytes.size());
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0x0F]);
  }
  return out;
}

}  // namespace

absl::Status AppendToOutbox(common::PgConnection& conn, std::vector<v1::Envelope>& events,
                            const contracts::Catalog& catalog) {
  for (size_t i = 0; i < events.size(); ++i) {
    contracts::FillDefaults(events[i], catalog);
    if (auto s = contracts::Validate(events[i], catalog); !s.ok())
      return absl::Status(s.code(), common::Cat("outbox event ", i, " (", events[i].type(), "): ", s.message()));
  }
  std::string locked;
  for (const auto& e : events) {
    if (e.tenant_id() == locked) continue;
    auto r = conn.Exec("SELECT pg_advisory_xact_lock(hashtext('sluice.outbox.write:' || $1))", {e.tenant_id()});
    if (!r.ok()) return r.status();
    locked = e.tenant_id();
  }
  for (const auto& e : events) {
    auto r = conn.Exec(
        "INSERT INTO event_outbox (event_id, tenant_id, event_type, envelope, traceparent)"
        " VALUES ($1::uuid, $2, $3, $4::bytea, nullif($5, ''))",
        {e.id(), e.tenant_id(), e.type(), HexBytea(contracts::SerializeDeterministic(e)), e.traceparent()});
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

void ExportEmitSpans(const std::vector<v1::Envelope>& events, const std::string& parent) {
  if (!common::SpansWanted()) return;
  const absl::Time now = absl::Now();
  for (const auto& e : events) {
    auto span = common::SpanOf(e.traceparent(), parent, "emit " + e.type(), common::Span::kProducer, now, now);
    if (!span) continue;
    span->attributes = {{"sluice.event.id", e.id()},
                        {"sluice.event.type", e.type()},
                        {"sluice.tenant_id", e.tenant_id()},
                        {"sluice.correlation_id", e.correlation_id()}};
    common::ExportSpan(*std::move(span));
  }
}

}  // namespace sluice::outbox
