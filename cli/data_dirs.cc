#include "cli/data_dirs.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

// Both come from cli/CMakeLists.txt: the source tree, and the data directory relative to
// the binary directory of an install (GNUInstallDirs: ../share/sluice by default).
#ifndef SLUICE_SOURCE_DIR
#error "SLUICE_SOURCE_DIR must be defined"
#endif
#ifndef SLUICE_DATA_FROM_BIN
#error "SLUICE_DATA_FROM_BIN must be defined"
#endif

namespace sluice::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The running binary, symlinks resolved (so a symlink in /usr/local/bin still finds the
// prefix it points into). Empty where /proc is not mounted.
std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

}  // namespace

std::string ResolveDataDir(const DataDirLookup& l) {
  if (!l.flag.empty()) return l.flag;
  if (!l.env.empty()) return l.env;
  if (!l.exe.empty()) {
    const auto installed = (std::filesystem::path(l.exe).parent_path() / l.installed).lexically_normal();
    std::error_code ec;
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
  return l.source;
}

std::string MigrationsDir(const std::string& flag) {
  return ResolveDataDir({.flag = flag,
                         .env = Env("SLUICE_MIGRATIONS_DIR"),
                         .exe = SelfExe(),
                         .installed = SLUICE_DATA_FROM_BIN "/migrations",
                         .source = SLUICE_SOURCE_DIR "/sql/migrations"});
}

std::string VectorsDir(const std::string& flag) {
  return ResolveDataDir({.flag = flag,
                         .env = Env("SLUICE_VECTORS_DIR"),
                         .exe = SelfExe(),
                         .installed = SLUICE_DATA_FROM_BIN "/vectors",
                         .source = SLUICE_SOURCE_DIR "/contracts/vectors"});
}

}  // namespace sluice::cli
