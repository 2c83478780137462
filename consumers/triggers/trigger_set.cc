#include "consumers/triggers/trigger_set.h"

#include <absl/strings/str_split.h>

#include "common/strings.h"
#include "contracts/spellings.h"

namespace sluice::triggers {

using common::Cat;

absl::Status TriggerSet::Refresh(common::PgConnection& conn) {
  auto f = conn.Exec(
      "SELECT count(*)::text || '/' || coalesce(max(updated_at)::text, '') || '/' || coalesce(sum(version), 0)::text"
      " FROM event_trigger");
  if (!f.ok()) return f.status();
  const std::string fingerprint(f->Get(0, 0));
  if (fingerprint == fingerprint_) return absl::OkStatus();
  auto r = conn.Exec(
      "SELECT tenant_id, id::text, array_to_string(types, ','), array_to_string(sources, ','), json_path"
      " FROM event_trigger WHERE NOT paused ORDER BY tenant_id, id");
  if (!r.ok()) return r.status();
  std::vector<TriggerSpec> loaded;
  loaded.reserve(static_cast<size_t>(r->rows()));
  for (int i = 0; i < r->rows(); ++i) {
    TriggerSpec t;
    t.tenant_id = std::string(r->Get(i, 0));
    t.id = std::string(r->Get(i, 1));
    // (Catalog names have no comma.)
    for (const auto& type : absl::StrSplit(std::string(r->Get(i, 2)), ',', absl::SkipEmpty()))
      t.types.insert(std::string(type));
    for (const auto& source : absl::StrSplit(std::string(r->Get(i, 3)), ',', absl::SkipEmpty()))
      t.sources.insert(std::string(source));
    if (!r->Get(i, 4).empty()) t.json_path = contracts::WidenEnumComparisons(r->Get(i, 4));
    loaded.push_back(std::move(t));
  }
  triggers_ = std::move(loaded);
  fingerprint_ = fingerprint;
  Index();
  return absl::OkStatus();
}

void TriggerSet::SetForTesting(std::vector<TriggerSpec> triggers) {
  triggers_ = std::move(triggers);
  Index();
}

void TriggerSet::Index() {
  by_tenant_.clear();
  for (size_t i = 0; i < triggers_.size(); ++i) by_tenant_[triggers_[i].tenant_id].push_back(i);
}

void TriggerSet::MatchTypeAndSource(const v1::Envelope& e, size_t index, std::vector<Match>& out) const {
  auto it = by_tenant_.find(e.tenant_id());
  if (it == by_tenant_.end()) return;
  for (size_t t : it->second) {
    const TriggerSpec& spec = triggers_[t];
    if (!spec.types.empty() && !spec.types.contains(e.type())) continue;
    if (!spec.sources.empty() && !spec.sources.contains(e.source())) continue;
    out.push_back({index, t});
  }
}

absl::StatusOr<std::vector<Match>> TriggerSet::EvaluatePaths(common::PgConnection& conn,
                                                             const std::vector<Match>& candidates,
                                                             const std::vector<std::string>& payloads) const {
  std::vector<Match> out;
  std::vector<size_t> ask;  // candidates with a JSONPath
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (triggers_[candidates[i].trigger].json_path.empty())
      out.push_back(candidates[i]);
    else
      ask.push_back(i);
  }
  if (ask.empty()) return out;
  std::vector<std::string> docs, paths;
  docs.reserve(ask.size());
  paths.reserve(ask.size());
  for (size_t i : ask) {
    docs.push_back(payloads[candidates[i].event]);
    paths.push_back(triggers_[candidates[i].trigger].json_path);
  }
  // `@?` is false (not an error) where a path cannot be applied, as in ListEvents.
  auto r = conn.Exec(
      "SELECT (u.i - 1)::int FROM unnest($1::jsonb[], $2::jsonpath[]) WITH ORDINALITY AS u(doc, path, i)"
      " WHERE u.doc @? u.path",
      {common::PgTextArray(docs), common::PgTextArray(paths)});
  if (!r.ok()) return r.status();
  for (int row = 0; row < r->rows(); ++row) {
    size_t k = 0;
    for (char ch : r->Get(row, 0)) k = k * 10 + static_cast<size_t>(ch - '0');
    if (k < ask.size()) out.push_back(candidates[ask[k]]);
  }
  return out;
}

}  // namespace sluice::triggers
