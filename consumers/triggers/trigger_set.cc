#include "consumers/triggers/trigger_set.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "common/strings.h"
#include "contracts/notification.h"
#include "contracts/publish_template.h"
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
      "SELECT tenant_id, id::text, array_to_string(types, ','), array_to_string(sources, ','), json_path, kind,"
      " quality_threshold FROM event_trigger WHERE NOT paused ORDER BY tenant_id, id");
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
    if (const auto kind = r->Get(i, 5); kind == "publish") {
      t.kind = TriggerKind::kPublish;
    } else if (kind != "webhook") {
      t.kind = kind == "notify_slack" ? TriggerKind::kNotifySlack : TriggerKind::kNotifyWebhook;
      t.types = std::set<std::string>(contracts::NotificationTypes().begin(), contracts::NotificationTypes().end());
      t.sources.clear();
      t.json_path.clear();
      int threshold = contracts::kDefaultQualityThreshold;
      if (absl::SimpleAtoi(std::string(r->Get(i, 6)), &threshold)) t.quality_threshold = threshold;
    }
    loaded.push_back(std::move(t));
  }
  // Paths compiled in memory are ones PostgreSQL reads as well (the gateway checked each
  // when it was stored; this covers rows written around it): if any is refused, all are
  // left to PostgreSQL, which then finds no match for the refused one.
  std::vector<std::string> compiled_paths;
  for (auto& t : loaded) {
    if (t.json_path.empty()) continue;
    auto c = common::JsonPath::Compile(t.json_path);
    if (!c.ok()) continue;
    t.compiled_path = *std::move(c);
    compiled_paths.push_back(t.json_path);
  }
  if (!compiled_paths.empty()) {
    auto check = conn.Exec("SELECT cardinality($1::jsonpath[])", {common::PgTextArray(compiled_paths)});
    if (!check.ok()) {
      if (check.status().code() == absl::StatusCode::kUnavailable) return check.status();
      spdlog::warn("triggers: a stored JSONPath is refused by PostgreSQL (SQLSTATE {}); every path is evaluated there",
                   common::SqlState(check.status()));
      for (auto& t : loaded) t.compiled_path.reset();
    }
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
  for (size_t i = 0; i < triggers_.size(); ++i) {
    TenantIndex& tenant = by_tenant_[triggers_[i].tenant_id];
    if (triggers_[i].types.empty()) {
      tenant.any_type.push_back(i);
    } else {
      for (const auto& type : triggers_[i].types) tenant.by_type[type].push_back(i);
    }
  }
}

void TriggerSet::MatchTypeAndSource(const v1::Envelope& e, size_t index, std::vector<Match>& out) const {
  auto it = by_tenant_.find(e.tenant_id());
  if (it == by_tenant_.end()) return;
  const size_t before = out.size();
  auto consider = [&](size_t t) {
    const TriggerSpec& spec = triggers_[t];
    if (!spec.sources.empty() && !spec.sources.contains(e.source())) return;
    // A derived event never makes another one: no trigger loops.
    if (spec.kind == TriggerKind::kPublish && e.source() == contracts::kTriggerSource) return;
    out.push_back({index, t});
  };
  if (auto typed = it->second.by_type.find(e.type()); typed != it->second.by_type.end())
    for (size_t t : typed->second) consider(t);
  for (size_t t : it->second.any_type) consider(t);
  // In the order of the triggers, whichever list they came from.
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(before), out.end(),
            [](const Match& a, const Match& b) { return a.trigger < b.trigger; });
}

absl::StatusOr<std::vector<Match>> TriggerSet::EvaluatePaths(common::PgConnection& conn,
                                                             const std::vector<Match>& candidates,
                                                             const std::vector<std::string>& payloads,
                                                             PathStats* stats) const {
  std::vector<Match> out;
  std::vector<size_t> ask;  // candidates whose JSONPath PostgreSQL evaluates
  // The parsed payload of one event at a time (an event's candidates are adjacent), parsed
  // when a compiled path first needs it: memory stays near one payload's, whatever the batch.
  size_t doc_event = SIZE_MAX;
  std::optional<common::JsonDoc> doc;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Match& m = candidates[i];
    const TriggerSpec& spec = triggers_[m.trigger];
    if (spec.json_path.empty()) {
      out.push_back(m);
      continue;
    }
    if (spec.compiled_path && doc_event != m.event) {
      doc_event = m.event;
      doc.reset();
      if (auto parsed = common::JsonDoc::Parse(payloads[m.event]); parsed.ok()) doc.emplace(*std::move(parsed));
    }
    if (!spec.compiled_path || !doc) {
      ask.push_back(i);
      continue;
    }
    auto found = spec.compiled_path->Exists(*doc);
    if (!found.ok()) {
      // Past the step budget: PostgreSQL answers this pair as it would have.
      spdlog::info("triggers: trigger {} of tenant {}: its JSONPath took {} on an event; PostgreSQL evaluates it",
                   spec.id, spec.tenant_id, std::string(found.status().message()));
      ask.push_back(i);
      continue;
    }
    if (stats) ++stats->in_memory;
    if (*found) out.push_back(m);
  }
  if (stats) stats->in_postgres += ask.size();
  if (ask.empty()) return out;
  // One statement per ~8 MiB of payloads; `@?` is false (not an error) where a path cannot
  // be applied, as in ListEvents. A statement that fails for its content (a path that
  // errors at run time, a payload PostgreSQL refuses) is evaluated again pair by pair, and
  // a pair that fails counts as no match: one tenant's path never stalls the others.
  size_t begin = 0;
  while (begin < ask.size()) {
    size_t end = begin, bytes = 0;
    while (end < ask.size() && (end == begin || bytes < kStatementBytes)) {
      bytes += payloads[candidates[ask[end]].event].size();
      ++end;
    }
    std::vector<std::string> docs, paths;
    for (size_t i = begin; i < end; ++i) {
      docs.push_back(payloads[candidates[ask[i]].event]);
      paths.push_back(triggers_[candidates[ask[i]].trigger].json_path);
    }
    auto r = conn.Exec(
        "SELECT (u.i - 1)::int FROM unnest($1::jsonb[], $2::jsonpath[]) WITH ORDINALITY AS u(doc, path, i)"
        " WHERE u.doc @? u.path",
        {common::PgTextArray(docs), common::PgTextArray(paths)});
    if (r.ok()) {
      for (int row = 0; row < r->rows(); ++row) {
        size_t k = 0;
        for (char ch : r->Get(row, 0)) k = k * 10 + static_cast<size_t>(ch - '0');
        if (begin + k < end) out.push_back(candidates[ask[begin + k]]);
      }
    } else if (r.status().code() == absl::StatusCode::kUnavailable) {
      return r.status();
    } else {
      for (size_t i = begin; i < end; ++i) {
        const Match& m = candidates[ask[i]];
        auto one = conn.Exec("SELECT $1::jsonb @? $2::jsonpath", {docs[i - begin], paths[i - begin]});
        if (one.ok()) {
          if (one->Get(0, 0) == "t") out.push_back(m);
        } else if (one.status().code() == absl::StatusCode::kUnavailable) {
          return one.status();
        } else {
          spdlog::info("triggers: trigger {} of tenant {}: its JSONPath failed on an event (SQLSTATE {}); no match",
                       triggers_[m.trigger].id, triggers_[m.trigger].tenant_id, common::SqlState(one.status()));
        }
      }
    }
    begin = end;
  }
  return out;
}

}  // namespace sluice::triggers
