#pragma once

#include <cstddef>
#include <string_view>

namespace sluice::gateway {

// One file of the Explorer (gateway/explorer/), built into the binary at build time.
struct ExplorerAsset {
  std::string_view name;  // "index.html"
  const char* data;
  size_t size;
  const char* content_type;
};

// The Explorer's file named `name`; nullptr when there is none.
const ExplorerAsset* FindExplorerAsset(std::string_view name);

}  // namespace sluice::gateway
