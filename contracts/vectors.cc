#include "contracts/vectors.h"

#include <google/protobuf/text_format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/file.h"
#include "common/strings.h"

namespace sluice::contracts {

absl::StatusOr<std::vector<Vector>> LoadVectors(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".textproto") files.push_back(entry.path());
  if (ec) return absl::NotFoundError(common::Cat(dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<Vector> out;
  for (const auto& f : files) {
    Vector v;
    v.type = f.stem().string();
    v.text_path = f.string();
    v.binary_path = fs::path(f).replace_extension(".binpb").string();
    auto text = common::ReadFile(v.text_path);
    if (!text.ok()) return text.status();
    if (!google::protobuf::TextFormat::ParseFromString(*text, &v.envelope))
      return absl::InvalidArgumentError(common::Cat(v.text_path, ": not a sluice.v1.Envelope text proto"));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace sluice::contracts
