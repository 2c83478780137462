#include "common/file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::common {
namespace {

TEST(ReadFile, ReadsEveryByteAndNamesAMissingPath) {
  const auto path = std::filesystem::temp_directory_path() / ("sluice-file-test-" + std::to_string(::getpid()));
  const std::string bytes("a\0b\nc", 5);
  std::ofstream(path, std::ios::binary) << bytes;
  auto got = ReadFile(path.string());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
  std::filesystem::remove(path);

  auto missing = ReadFile(path.string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(path.string()), std::string::npos);
}

}  // namespace
}  // namespace sluice::common
