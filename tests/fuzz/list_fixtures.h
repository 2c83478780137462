#pragma once

// The fixed inputs fuzz_cursor and fuzz_list_request check against, shared with
// fuzz_list_seeds so the seeds it writes are valid for them (a cursor only decodes
// under the filter it was issued for).

#include "sluice/v1/config.pb.h"
#include "sluice/v1/event_query.pb.h"

namespace sluice::fuzz {

// The filter every fuzz_cursor input is decoded under.
inline v1::EventFilter CursorFilter() {
  v1::EventFilter f;
  f.add_types("metadata.changed");
  f.add_tenant_ids("tenant-acme");
  f.set_correlation_id("corr-1");
  return f;
}

// A filter that differs from CursorFilter() only in one type: its cursors must not
// decode under CursorFilter() and the other way round.
inline v1::EventFilter OtherFilter() {
  v1::EventFilter f = CursorFilter();
  f.set_types(0, "metadata.approved");
  return f;
}

// The caller of every fuzz_list_request input: one tenant, no roles.
inline v1::Principal ListPrincipal() {
  v1::Principal p;
  p.set_name("analyst");
  p.add_tenants("tenant-acme");
  return p;
}

}  // namespace sluice::fuzz
