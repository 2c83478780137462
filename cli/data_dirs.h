#pragma once
// Where sluicectl finds the data it ships with (SQL migrations, golden vectors), so the
// same binary works from a build tree and from a `cmake --install` prefix.

#include <string>

namespace sluice::cli {

// The candidates for one data directory, most specific first.
struct DataDirLookup {
  std::string flag;       // the command-line flag's value; empty = not given
  std::string env;        // the environment variable's value; empty = unset
  std::string exe;        // path of the running executable; empty = unknown
  std::string installed;  // where the install puts it, relative to the executable's directory
  std::string source;     // the source tree's copy (compiled in; only there in a build tree)
};

// flag, else env, else <directory of exe>/<installed> (normalised) if that is a
// directory, else source. Only the installed candidate is checked: an explicit flag or
// variable naming a missing directory should fail loudly, not fall through.
std::string ResolveDataDir(const DataDirLookup& lookup);

// The lookup for `sluicectl migrate --dir`: SLUICE_MIGRATIONS_DIR, share/sluice/migrations
// of the install prefix, then the source tree's sql/migrations.
std::string MigrationsDir(const std::string& flag);

// The lookup for `sluicectl demo --vectors`: SLUICE_VECTORS_DIR, share/sluice/vectors of
// the install prefix, then the source tree's contracts/vectors.
std::string VectorsDir(const std::string& flag);

}  // namespace sluice::cli
