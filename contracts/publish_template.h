#pragma once
// The derived event of a publishing trigger (TriggerService's PublishAction): a payload
// template checked when the trigger is stored, and filled from a matching event when
// sluice-triggers publishes. Pure functions: the gateway and sluice-triggers share them.
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <string>
#include <string_view>
#include <vector>

#include "contracts/catalog.h"
#include "sluice/v1/envelope.pb.h"

namespace sluice::contracts {

// The source every derived event carries (an outbox_only identity: no caller may publish
// as it through a gateway).
inline constexpr char kTriggerSource[] = "sluice.triggers";
// The most bytes a payload template may have.
inline constexpr size_t kMaxPublishTemplateBytes = 4096;

// The catalog types kTriggerSource may emit (those listing it among their producers).
std::vector<std::string> PublishableTypes(const Catalog& catalog);

// Why `type` and `tmpl` cannot be a publishing trigger's action, as field violations
// named "<prefix>type" and "<prefix>payload_template" (InvalidArgument); OK when they
// can. The template must be one JSON object of at most kMaxPublishTemplateBytes whose
// every placeholder is well-formed, whose every field name and literal value the type's
// payload accepts, and which gives every required field of the payload (a value or a
// placeholder).
absl::Status CheckPublishAction(const Catalog& catalog, std::string_view type, std::string_view tmpl,
                                std::string_view prefix = "publish.");

// The derived event of trigger `trigger_id` for `source`: type `type`, payload `tmpl` with
// its placeholders filled from `source`'s payload (PayloadJsonWithDefaults: a field at its
// default value is found too), source kTriggerSource, the source's tenant, correlation id (its id when it has none)
// and traceparent, causation_id = the source's id, occurred_at `now`. Its id is a UUIDv7
// made from the source's time and a digest of the two ids, the same on every call. The
// result passed contracts::Validate; InvalidArgument says why not (a placeholder that
// finds nothing, a value the type refuses).
absl::StatusOr<v1::Envelope> DeriveEvent(const Catalog& catalog, std::string_view trigger_id, std::string_view type,
                                         std::string_view tmpl, const v1::Envelope& source,
                                         absl::Time now = absl::Now());

// The payload of `e` in protobuf JSON, fields at their default value included (what
// "{{payload.<name>}}" placeholders read).
absl::StatusOr<std::string> PayloadJsonWithDefaults(const v1::Envelope& e);

// The derived event's id (exposed for tests).
std::string DerivedEventId(std::string_view trigger_id, const v1::Envelope& source);

}  // namespace sluice::contracts
