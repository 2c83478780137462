#include "common/log.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::common {
namespace {

std::string Format(spdlog::formatter& f, std::string_view text, spdlog::level::level_enum level = spdlog::level::info) {
  // 2026-11-22T08:00:00.123456Z
  const auto t = std::chrono::system_clock::time_point(std::chrono::microseconds(1795334400123456LL));
  spdlog::details::log_msg msg(t, spdlog::source_loc{}, "svc", level, spdlog::string_view_t(text.data(), text.size()));
  spdlog::memory_buf_t buf;
  f.format(msg, buf);
  return std::string(buf.data(), buf.size());
}

TEST(JsonLogTest, OneEscapedObjectPerLineWithTheEventContext) {
  auto f = MakeJsonFormatter("sluice-relay");
  EXPECT_EQ(
      Format(*f, "plain"),
      "{\"ts\":\"2026-11-22T08:00:00.123Z\",\"level\":\"info\",\"service\":\"sluice-relay\",\"msg\":\"plain\"}\n");
  EXPECT_EQ(Format(*f, "a \"quoted\"\nline\\", spdlog::level::err),
            "{\"ts\":\"2026-11-22T08:00:00.123Z\",\"level\":\"error\",\"service\":\"sluice-relay\","
            "\"msg\":\"a \\\"quoted\\\"\\nline\\\\\"}\n");
  {
    ScopedLogContext outer("e1", "c1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    EXPECT_EQ(Format(*f, "x"),
              "{\"ts\":\"2026-11-22T08:00:00.123Z\",\"level\":\"info\",\"service\":\"sluice-relay\",\"msg\":\"x\","
              "\"event_id\":\"e1\",\"correlation_id\":\"c1\","
              "\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"}\n");
    {
      ScopedLogContext inner("e2", "");
      EXPECT_EQ(Format(*f, "y"),
                "{\"ts\":\"2026-11-22T08:00:00.123Z\",\"level\":\"info\",\"service\":\"sluice-relay\",\"msg\":\"y\","
                "\"event_id\":\"e2\"}\n");
    }
    ASSERT_NE(ScopedLogContext::Current(), nullptr);
    EXPECT_EQ(ScopedLogContext::Current()->event_id, "e1");
  }
  EXPECT_EQ(ScopedLogContext::Current(), nullptr);
  // Contexts are per thread.
  ScopedLogContext here("e3", "c3");
  std::thread([] { EXPECT_EQ(ScopedLogContext::Current(), nullptr); }).join();
}

}  // namespace
}  // namespace sluice::common
