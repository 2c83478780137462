#include "gateway/publisher.h"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

constexpr char kTp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(WorkflowContext, CopiedTrimmedAndNeverOverridesTheEnvelope) {
  v1::Envelope e;
  WorkflowContext ctx{.traceparent = std::string("  ") + kTp + " ", .workflow = {{"run_id", " r-1 "}, {"step", "s2"}}};
  EXPECT_TRUE(ApplyWorkflowContext(ctx, e));
  EXPECT_EQ(e.traceparent(), kTp);
  EXPECT_EQ(e.metadata().at("sluice.workflow.run_id"), "r-1");
  EXPECT_EQ(e.metadata().at("sluice.workflow.step"), "s2");

  v1::Envelope own;
  own.set_traceparent("00-11111111111111111111111111111111-2222222222222222-01");
  (*own.mutable_metadata())["sluice.workflow.run_id"] = "mine";
  EXPECT_TRUE(ApplyWorkflowContext(ctx, own));
  EXPECT_EQ(own.traceparent(), "00-11111111111111111111111111111111-2222222222222222-01");
  EXPECT_EQ(own.metadata().size(), 1u);
  EXPECT_EQ(own.metadata().at("sluice.workflow.run_id"), "mine");
}

TEST(WorkflowContext, DroppedWhenOver2KiBAndInvalidTraceparentIgnored) {
  v1::Envelope e;
  WorkflowContext big{.traceparent = "not-a-traceparent", .workflow = {{"blob", std::string(3000, 'x')}}};
  EXPECT_FALSE(ApplyWorkflowContext(big, e));
  EXPECT_TRUE(e.metadata().empty());
  EXPECT_TRUE(e.traceparent().empty());
}

}  // namespace
}  // namespace sluice::gateway
