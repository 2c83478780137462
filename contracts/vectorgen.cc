// sluice_vectorgen DIR: validates every DIR/*.textproto golden envelope and writes its
// deterministic binary encoding next to it as .binpb. With --check, writes nothing and
// exits 1 when a .binpb is missing or differs.
#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/file.h"
#include "contracts/envelope.h"
#include "contracts/validate.h"
#include "contracts/vectors.h"

int main(int argc, char** argv) {
  bool check = false;
  const char* dir = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check") == 0) {
      check = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: sluice_vectorgen [--check] DIR\n");
      return 0;
    } else {
      dir = argv[i];
    }
  }
  if (dir == nullptr) {
    std::fprintf(stderr, "usage: sluice_vectorgen [--check] DIR\n");
    return 2;
  }
  auto vectors = sluice::contracts::LoadVectors(dir);
  if (!vectors.ok()) {
    std::fprintf(stderr, "%s\n", vectors.status().ToString().c_str());
    return 1;
  }
  int bad = 0;
  for (const auto& v : *vectors) {
    if (auto s = sluice::contracts::Validate(v.envelope); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", v.text_path.c_str(), std::string(s.message()).c_str());
      ++bad;
      continue;
    }
    std::string bytes = sluice::contracts::SerializeDeterministic(v.envelope);
    if (check) {
      auto have = sluice::common::ReadFile(v.binary_path);
      if (!have.ok() || *have != bytes) {
        std::fprintf(stderr, "%s: missing or stale\n", v.binary_path.c_str());
        ++bad;
      }
      continue;
    }
    std::ofstream(v.binary_path, std::ios::binary | std::ios::trunc) << bytes;
    std::printf("wrote %s (%zu bytes)\n", v.binary_path.c_str(), bytes.size());
  }
  return bad == 0 ? 0 : 1;
}
