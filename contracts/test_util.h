#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "contracts/vectors.h"

namespace sluice::contracts::testing {

inline std::string VectorsDir() { return std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors"; }

// Every golden envelope, sorted by type; fails the test when they cannot be loaded.
inline std::vector<v1::Envelope> Goldens() {
  auto vectors = LoadVectors(VectorsDir());
  EXPECT_TRUE(vectors.ok()) << vectors.status();
  std::vector<v1::Envelope> out;
  if (vectors.ok())
    for (auto& v : *vectors) out.push_back(v.envelope);
  return out;
}

// The golden envelope of `type`; fails the test when it cannot be loaded.
inline v1::Envelope Golden(const std::string& type) {
  auto vectors = LoadVectors(VectorsDir());
  EXPECT_TRUE(vectors.ok()) << vectors.status();
  if (vectors.ok())
    for (auto& v : *vectors)
      if (v.type == type) return v.envelope;
  ADD_FAILURE() << "no golden vector for " << type;
  return {};
}

}  // namespace sluice::contracts::testing
