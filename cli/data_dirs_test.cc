#include "cli/data_dirs.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

// A fake install prefix: <tmp>/bin/sluicectl, with or without share/sluice/migrations.
class DataDirsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = fs::temp_directory_path() / ("sluice-data-dirs-" + std::to_string(::getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(prefix_ / "bin");
    std::ofstream(prefix_ / "bin" / "sluicectl") << "";
  }
  void TearDown() override { fs::remove_all(prefix_); }

  DataDirLookup Lookup() const {
    return {.exe = (prefix_ / "bin" / "sluicectl").string(),
            .installed = "../share/sluice/migrations",
            .source = "/src/sluice/sql/migrations"};
  }
  std::string Installed() const { return (prefix_ / "share" / "sluice" / "migrations").string(); }
  void Install() const { fs::create_directories(Installed()); }

  fs::path prefix_;
};

TEST_F(DataDirsTest, FlagWinsOverEverything) {
  Install();
  DataDirLookup l = Lookup();
  l.flag = "/from/flag";
  l.env = "/from/env";
  EXPECT_EQ(ResolveDataDir(l), "/from/flag");
}

TEST_F(DataDirsTest, EnvironmentWinsOverTheInstalledDirectory) {
  Install();
  DataDirLookup l = Lookup();
  l.env = "/from/env";
  EXPECT_EQ(ResolveDataDir(l), "/from/env");
}

TEST_F(DataDirsTest, InstalledDirectoryNextToTheBinaryWinsOverTheSourceTree) {
  Install();
  // Normalised: no "bin/.." in what migrate prints.
  EXPECT_EQ(ResolveDataDir(Lookup()), Installed());
}

TEST_F(DataDirsTest, SourceTreeWhenNothingIsInstalled) {
  EXPECT_EQ(ResolveDataDir(Lookup()), "/src/sluice/sql/migrations");
  DataDirLookup unknown_exe = Lookup();
  unknown_exe.exe.clear();
  Install();
  EXPECT_EQ(ResolveDataDir(unknown_exe), "/src/sluice/sql/migrations");
}

TEST_F(DataDirsTest, AFileWhereTheDirectoryShouldBeIsNotTaken) {
  fs::create_directories(prefix_ / "share" / "sluice");
  std::ofstream(Installed()) << "";
  EXPECT_EQ(ResolveDataDir(Lookup()), "/src/sluice/sql/migrations");
}

// The real lookups: this test binary lives in the build tree, with no share/ beside it.
TEST(DataDirsRealTest, EnvironmentThenSourceTree) {
  ::unsetenv("SLUICE_MIGRATIONS_DIR");
  ::unsetenv("SLUICE_VECTORS_DIR");
  EXPECT_EQ(MigrationsDir(""), std::string(SLUICE_SOURCE_DIR) + "/sql/migrations");
  EXPECT_EQ(VectorsDir(""), std::string(SLUICE_SOURCE_DIR) + "/contracts/vectors");
  EXPECT_EQ(VectorsDir("/v"), "/v");
  ::setenv("SLUICE_MIGRATIONS_DIR", "/m", 1);
  ::setenv("SLUICE_VECTORS_DIR", "/v2", 1);
  EXPECT_EQ(MigrationsDir(""), "/m");
  EXPECT_EQ(VectorsDir(""), "/v2");
  EXPECT_EQ(MigrationsDir("/flag"), "/flag");
  ::unsetenv("SLUICE_MIGRATIONS_DIR");
  ::unsetenv("SLUICE_VECTORS_DIR");
}

}  // namespace
}  // namespace sluice::cli
