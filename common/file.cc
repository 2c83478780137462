#include "common/file.h"

#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace sluice::common {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(Cat(path, ": read failed"));
  return ss.str();
}

}  // namespace sluice::common
