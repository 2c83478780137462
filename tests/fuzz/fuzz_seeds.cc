// fuzz_seeds VECTORS_DIR OUT_DIR: writes each golden vector as OUT_DIR/<type>.json
// (contracts::ToJson, compact) and OUT_DIR/<type>.pretty.json, the seeds of fuzz_json.
#include <cstdio>
#include <fstream>
#include <string>

#include "contracts/json.h"
#include "contracts/vectors.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds VECTORS_DIR OUT_DIR\n");
    return 2;
  }
  auto vectors = sluice::contracts::LoadVectors(argv[1]);
  if (!vectors.ok()) {
    std::fprintf(stderr, "%s\n", vectors.status().ToString().c_str());
    return 1;
  }
  for (const auto& v : *vectors) {
    for (bool pretty : {false, true}) {
      auto json = sluice::contracts::ToJson(v.envelope, pretty);
      if (!json.ok()) {
        std::fprintf(stderr, "%s: %s\n", v.type.c_str(), json.status().ToString().c_str());
        return 1;
      }
      std::ofstream(std::string(argv[2]) + "/" + v.type + (pretty ? ".pretty.json" : ".json"), std::ios::trunc)
          << *json;
    }
  }
  return 0;
}
