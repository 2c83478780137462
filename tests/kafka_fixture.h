#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/env.h"
#include "common/strings.h"
#include "contracts/catalog.h"
#include "kafka/topic_admin.h"

namespace sluice::testing {

// Gives each test its own catalog topics ("it-<random>.sluice.*") on the local broker,
// created before the test and deleted after it, so tests share no state.
class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = common::DefaultKafkaBootstrap();
    std::random_device rd;
    prefix_ = common::Cat("it-", std::to_string(rd()), ".");
    catalog_ = std::make_unique<contracts::Catalog>(contracts::Catalog::Default().WithTopicPrefix(prefix_));
    auto report = kafka::EnsureTopics(bootstrap_, *catalog_);
    ASSERT_TRUE(report.ok()) << "is the local stack up (dev/stack.sh up)? " << report.status();
    ASSERT_EQ(report->created.size(), catalog_->topics().size());
  }
  void TearDown() override {
    std::vector<std::string> names;
    for (const auto& t : catalog_->topics()) names.push_back(t.name());
    EXPECT_TRUE(kafka::DeleteTopics(bootstrap_, names).ok());
  }
  std::string Group(std::string_view name) const { return common::Cat(prefix_, name); }

  std::string bootstrap_;
  std::string prefix_;
  std::unique_ptr<contracts::Catalog> catalog_;
};

}  // namespace sluice::testing
