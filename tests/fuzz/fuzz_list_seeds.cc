// fuzz_list_seeds CURSOR_DIR REQUEST_DIR: writes the seeds of fuzz_cursor (cursors from
// gateway::EncodeCursor for its fixed filter, as sent and as the text inside the base64)
// and of fuzz_list_request (binary ListEventsRequests that pass CheckListRequest for its
// principal, some with a cursor, plus a few it refuses).
#include <absl/strings/escaping.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/list_request.h"
#include "tests/fuzz/list_fixtures.h"

using namespace sluice;  // NOLINT: a tool's main, not a header

namespace {

constexpr char kId[] = "0193a5f2-7c1e-7d3a-9b4f-2e8c1a6d5b90";

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_list_seeds CURSOR_DIR REQUEST_DIR\n");
    return 2;
  }
  const std::string cursors = argv[1], requests = argv[2];

  const v1::EventFilter f = fuzz::CursorFilter();
  int n = 0;
  for (int64_t micros : {int64_t{0}, int64_t{1764586800123456}, int64_t{253402300799999999}, int64_t{-1}}) {
    const std::string c = gateway::EncodeCursor(micros, kId, f);
    std::string raw;
    absl::WebSafeBase64Unescape(c, &raw);
    Write(cursors + "/cursor-" + std::to_string(n) + ".txt", c);
    Write(cursors + "/cursor-raw-" + std::to_string(n) + ".txt", raw);
    ++n;
  }

  std::vector<v1::ListEventsRequest> reqs;
  reqs.emplace_back();  // everything of the caller's tenant, default limit
  {
    v1::ListEventsRequest r;
    v1::EventFilter& g = *r.mutable_filter();
    g.add_types("metadata.changed");
    g.add_types("metadata.approved");
    g.add_sources("metadata-studio.api");
    g.add_tenant_ids("tenant-acme");
    g.set_correlation_id("corr-1");
    g.mutable_from_time()->set_seconds(1764586800);
    g.mutable_to_time()->set_seconds(1764590400);
    g.mutable_to_time()->set_nanos(500'000'000);
    g.set_json_path("$.entityKey ? (@ == \"sales_orders\")");
    r.set_limit(50);
    reqs.push_back(r);
    r.set_cursor(gateway::EncodeCursor(1764586800000001, kId, g));  // a second page
    reqs.push_back(r);
  }
  {
    // A JSONPath on the caller's tenant and one type: walked first (ListWalkStatement).
    v1::ListEventsRequest r;
    v1::EventFilter& g = *r.mutable_filter();
    g.add_types("metadata.changed");
    g.set_json_path("$.entityKey ? (@ == \"sales_orders\")");
    reqs.push_back(r);
    r.set_cursor(gateway::EncodeCursor(1764586800000001, kId, g));  // a second page
    reqs.push_back(r);
  }
  {
    // Severities: alone (narrowing the types), with INFO, and with types.
    v1::ListEventsRequest r;
    r.mutable_filter()->add_severities(v1::EVENT_SEVERITY_ERROR);
    r.mutable_filter()->add_severities(v1::EVENT_SEVERITY_WARNING);
    reqs.push_back(r);
    r.mutable_filter()->add_severities(v1::EVENT_SEVERITY_INFO);
    reqs.push_back(r);
    r.mutable_filter()->add_types("metadata.profile.completed");
    reqs.push_back(r);
  }
  {
    v1::ListEventsRequest r;
    *r.mutable_filter() = f;
    r.set_limit(200);
    r.set_cursor(gateway::EncodeCursor(1, kId, f));
    reqs.push_back(r);
    r.mutable_filter()->add_tenant_ids("tenant-other");  // refused: not the caller's
    reqs.push_back(r);
  }
  {
    v1::ListEventsRequest r;
    r.set_limit(201);  // refused
    reqs.push_back(r);
  }
  n = 0;
  for (const auto& r : reqs) {
    std::string bytes;
    if (!r.SerializeToString(&bytes)) return 1;
    Write(requests + "/request-" + std::to_string(n++) + ".binpb", bytes);
  }
  return 0;
}
