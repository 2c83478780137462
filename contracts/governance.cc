#include "contracts/governance.h"

#include <array>

namespace sluice::contracts {
namespace {

constexpr std::array<std::pair<v1::EntityType, std::string_view>, 6> kEntityTypes{{
    {v1::ENTITY_TYPE_METADATA, "metadata"},
    {v1::ENTITY_TYPE_KPI, "kpi"},
    {v1::ENTITY_TYPE_GLOSSARY, "glossary"},
    {v1::ENTITY_TYPE_BUSINESS_RULE, "business_rule"},
    {v1::ENTITY_TYPE_TAG, "tag"},
    {v1::ENTITY_TYPE_LINEAGE, "lineage"},
}};
constexpr std::array<std::pair<v1::Lane, std::string_view>, 3> kLanes{{
    {v1::LANE_KERNEL, "kernel"},
    {v1::LANE_GOVERNED, "governed"},
    {v1::LANE_DRAFT, "draft"},
}};
constexpr std::array<std::pair<v1::ApprovalStatus, std::string_view>, 4> kStatuses{{
    {v1::APPROVAL_STATUS_PENDING, "pending"},
    {v1::APPROVAL_STATUS_APPROVED, "approved"},
    {v1::APPROVAL_STATUS_REJECTED, "rejected"},
    {v1::APPROVAL_STATUS_CANCELLED, "cancelled"},
}};

template <class E, size_t N>
std::string ToDb(const std::array<std::pair<E, std::string_view>, N>& names, E value) {
  for (const auto& [e, name] : names)
    if (e == value) return std::string(name);
  return "";
}
template <class E, size_t N>
E FromDb(const std::array<std::pair<E, std::string_view>, N>& names, std::string_view db) {
  for (const auto& [e, name] : names)
    if (name == db) return e;
  return E{};  // each enum's UNSPECIFIED is 0
}

}  // namespace

std::string EntityTypeDb(v1::EntityType type) { return ToDb(kEntityTypes, type); }
v1::EntityType EntityTypeFromDb(std::string_view db) { return FromDb(kEntityTypes, db); }

std::string TierDb(v1::Tier tier) {
  if (tier < v1::TIER_1 || tier > v1::TIER_5) return "";
  return "tier" + std::to_string(static_cast<int>(tier));
}
v1::Tier TierFromDb(std::string_view db) {
  if (db.size() == 5 && db.starts_with("tier") && db[4] >= '1' && db[4] <= '5')
    return static_cast<v1::Tier>(db[4] - '0');
  return v1::TIER_UNSPECIFIED;
}

std::string LaneDb(v1::Lane lane) { return ToDb(kLanes, lane); }
v1::Lane LaneFromDb(std::string_view db) { return FromDb(kLanes, db); }

std::string ApprovalStatusDb(v1::ApprovalStatus status) { return ToDb(kStatuses, status); }
v1::ApprovalStatus ApprovalStatusFromDb(std::string_view db) { return FromDb(kStatuses, db); }

const char* EntityTable(v1::EntityType type) {
  switch (type) {
    case v1::ENTITY_TYPE_METADATA: return "mdm_global_metadata";
    case v1::ENTITY_TYPE_KPI: return "mdm_kpi_definition";
    case v1::ENTITY_TYPE_GLOSSARY: return "mdm_glossary_term";
    case v1::ENTITY_TYPE_BUSINESS_RULE: return "mdm_business_rule";
    default: return nullptr;
  }
}

// Upsert statements per entity type: $1 tenant, $2 canonical key, $3 payload, $4 tier.
// Each returns the entity id and its state before the change (NULL when new).
const char* EntityUpsertSql(v1::EntityType type) {
  switch (type) {
    case v1::ENTITY_TYPE_METADATA:
      return "WITH prior AS (SELECT to_jsonb(m) AS j FROM mdm_global_metadata m WHERE tenant_id = $1 AND canonical_key "
             "= $2),"
             " up AS (INSERT INTO mdm_global_metadata (tenant_id, canonical_key, label, description, domain, module,"
             "   entity_urn, tier, standard_pack_id, data_type, format, owner_id, steward_id, status, binding_schema,"
             "   binding_table, column_rules)"
             " SELECT $1, $2, p->>'label', p->>'description', p->>'domain', p->>'module', p->>'entityUrn',"
             "   $4, p->>'standardPackId', p->>'dataType', p->>'format', p->>'ownerId',"
             "   p->>'stewardId', coalesce(p->>'status', 'active'), p->'binding'->>'schema', p->'binding'->>'table',"
             "   coalesce(p->'columnRules', '[]'::jsonb) FROM (SELECT $3::jsonb AS p) x"
             " ON CONFLICT (tenant_id, canonical_key) DO UPDATE SET label = EXCLUDED.label, description = "
             "EXCLUDED.description,"
             "   domain = EXCLUDED.domain, module = EXCLUDED.module, entity_urn = EXCLUDED.entity_urn, tier = "
             "EXCLUDED.tier,"
             "   standard_pack_id = EXCLUDED.standard_pack_id, data_type = EXCLUDED.data_type, format = "
             "EXCLUDED.format,"
             "   owner_id = EXCLUDED.owner_id, steward_id = EXCLUDED.steward_id, status = EXCLUDED.status,"
             "   binding_schema = EXCLUDED.binding_schema, binding_table = EXCLUDED.binding_table,"
             "   column_rules = EXCLUDED.column_rules, version = mdm_global_metadata.version + 1, updated_at = now()"
             " RETURNING id)"
             " SELECT (SELECT id::text FROM up), (SELECT j::text FROM prior)";
    case v1::ENTITY_TYPE_KPI:
      return "WITH prior AS (SELECT to_jsonb(k) AS j FROM mdm_kpi_definition k WHERE tenant_id = $1 AND canonical_key "
             "= $2),"
             " up AS (INSERT INTO mdm_kpi_definition (tenant_id, canonical_key, name, description, formula, unit, tier,"
             "   owner_id, status)"
             " SELECT $1, $2, p->>'name', p->>'description', p->>'formula', p->>'unit', $4,"
             "   p->>'ownerId', coalesce(p->>'status', 'active') FROM (SELECT $3::jsonb AS p) x"
             " ON CONFLICT (tenant_id, canonical_key) DO UPDATE SET name = EXCLUDED.name, description = "
             "EXCLUDED.description,"
             "   formula = EXCLUDED.formula, unit = EXCLUDED.unit, tier = EXCLUDED.tier, owner_id = EXCLUDED.owner_id,"
             "   status = EXCLUDED.status, version = mdm_kpi_definition.version + 1, updated_at = now()"
             " RETURNING id)"
             " SELECT (SELECT id::text FROM up), (SELECT j::text FROM prior)";
    case v1::ENTITY_TYPE_GLOSSARY:
      return "WITH prior AS (SELECT to_jsonb(g) AS j FROM mdm_glossary_term g WHERE tenant_id = $1 AND canonical_key = "
             "$2),"
             " up AS (INSERT INTO mdm_glossary_term (tenant_id, canonical_key, term, definition, synonyms, status)"
             " SELECT $1, $2, p->>'term', p->>'definition',"
             "   ARRAY(SELECT jsonb_array_elements_text(coalesce(p->'synonyms', '[]'::jsonb))),"
             "   coalesce(p->>'status', 'active') FROM (SELECT $3::jsonb AS p, $4::text AS tier) x"
             " ON CONFLICT (tenant_id, canonical_key) DO UPDATE SET term = EXCLUDED.term, definition = "
             "EXCLUDED.definition,"
             "   synonyms = EXCLUDED.synonyms, status = EXCLUDED.status, version = mdm_glossary_term.version + 1,"
             "   updated_at = now()"
             " RETURNING id)"
             " SELECT (SELECT id::text FROM up), (SELECT j::text FROM prior)";
    case v1::ENTITY_TYPE_BUSINESS_RULE:
      return "WITH prior AS (SELECT to_jsonb(b) AS j FROM mdm_business_rule b WHERE tenant_id = $1 AND canonical_key = "
             "$2),"
             " up AS (INSERT INTO mdm_business_rule (tenant_id, canonical_key, name, description, expression, severity,"
             "   status)"
             " SELECT $1, $2, p->>'name', p->>'description', p->>'expression', coalesce(p->>'severity', 'error'),"
             "   coalesce(p->>'status', 'active') FROM (SELECT $3::jsonb AS p, $4::text AS tier) x"
             " ON CONFLICT (tenant_id, canonical_key) DO UPDATE SET name = EXCLUDED.name, description = "
             "EXCLUDED.description,"
             "   expression = EXCLUDED.expression, severity = EXCLUDED.severity, status = EXCLUDED.status,"
             "   version = mdm_business_rule.version + 1, updated_at = now()"
             " RETURNING id)"
             " SELECT (SELECT id::text FROM up), (SELECT j::text FROM prior)";
    default: return nullptr;
  }
}

}  // namespace sluice::contracts
