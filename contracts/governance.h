#pragma once

// Governance names and their one database spelling each. Every table that stores an
// entity type, tier, lane or approval status stores the spelling below, and every
// component that reads or writes one goes through these functions.
//
//   entity type   ENTITY_TYPE_METADATA -> "metadata", KPI -> "kpi", GLOSSARY -> "glossary",
//                 BUSINESS_RULE -> "business_rule", TAG -> "tag", LINEAGE -> "lineage"
//   tier          TIER_1 .. TIER_5 -> "tier1" .. "tier5"
//   lane          LANE_KERNEL -> "kernel", GOVERNED -> "governed", DRAFT -> "draft"
//   approval      PENDING -> "pending", APPROVED -> "approved", REJECTED -> "rejected",
//                 CANCELLED -> "cancelled"
//
// Each *Db function returns "" for UNSPECIFIED and for values outside the enum; each
// *FromDb returns UNSPECIFIED for any text that is not exactly one of the spellings.

#include <string>
#include <string_view>

#include "sluice/v1/common.pb.h"

namespace sluice::contracts {

std::string EntityTypeDb(v1::EntityType type);
v1::EntityType EntityTypeFromDb(std::string_view db);

std::string TierDb(v1::Tier tier);
v1::Tier TierFromDb(std::string_view db);

std::string LaneDb(v1::Lane lane);
v1::Lane LaneFromDb(std::string_view db);

std::string ApprovalStatusDb(v1::ApprovalStatus status);
v1::ApprovalStatus ApprovalStatusFromDb(std::string_view db);

// The entity tables behind approvals ("mdm_global_metadata", "mdm_kpi_definition",
// "mdm_glossary_term", "mdm_business_rule"); unique on (tenant_id, canonical_key).
// nullptr for the entity types that are not approved through Sluice (tag, lineage).
const char* EntityTable(v1::EntityType type);
// What approving does to an entity table: $1 tenant, $2 canonical key, $3 payload JSON,
// $4 tier ("tier1"). Returns the entity id and its state before the change (NULL: new).
// nullptr where EntityTable is nullptr. Shared by the approval workflow and the
// database-against-event-log verification, which replays approvals with it.
const char* EntityUpsertSql(v1::EntityType type);

}  // namespace sluice::contracts
