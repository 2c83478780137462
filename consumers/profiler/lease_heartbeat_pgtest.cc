// Against the local PostgreSQL (dev/stack.sh up): LeaseHeartbeat renews a claimed job's
// lease, stops with its owner, and cancels the scan once another worker took the job.
#include "consumers/profiler/lease_heartbeat.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/env.h"
#include "common/pg.h"
#include "common/strings.h"
#include "consumers/profiler/job_store.h"
#include "tests/pg_schema.h"

namespace sluice::profiler {
namespace {

using common::Cat;
using common::PgConnection;

// How a job row's lease looks from outside.
struct LeaseRow {
  std::string worker, lease_token;
  double heartbeat_at = 0, lease_expires_in = 0;  // epoch seconds; seconds from now
};

class LeaseHeartbeatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto admin = testing::MigratedSchema("lease_hb_", schema_);
    ASSERT_TRUE(admin.ok()) << "is the local stack up (dev/stack.sh up)? " << admin.status();
    admin_ = std::make_unique<PgConnection>(*std::move(admin));
    auto beat = common::Connect(common::DefaultPgDsn(), schema_);
    ASSERT_TRUE(beat.ok()) << beat.status();
    beat_ = std::make_unique<PgConnection>(*std::move(beat));
    auto scan = common::Connect(common::DefaultPgDsn(), "");
    ASSERT_TRUE(scan.ok()) << scan.status();
    scan_ = std::make_unique<PgConnection>(*std::move(scan));

    auto entity = admin_->Exec("SELECT gen_random_uuid()::text");
    ASSERT_TRUE(entity.ok()) << entity.status();
    auto queued = JobStore(*admin_).Enqueue({.tenant_id = "acme",
                                             .entity_id = std::string(entity->Get(0, 0)),
                                             .canonical_key = "acme.sales.orders",
                                             .tier = v1::TIER_1,
                                             .reason = v1::PROFILE_REASON_MANUAL,
                                             .priority = "PRIORITY_NORMAL",
                                             .trigger_event_id = "evt-1",
                                             .trigger_type = "metadata.profile.due",
                                             .correlation_id = "evt-1",
                                             .actor_id = "test",
                                             .max_attempts = 3});
    ASSERT_TRUE(queued.ok()) << queued.status();
    ASSERT_TRUE(queued->has_value());
    auto claimed = JobStore(*admin_).Claim(**queued, "worker-a", absl::Seconds(60));
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    ASSERT_TRUE(claimed->has_value());
    job_ = **claimed;
  }
  void TearDown() override {
    if (admin_) {
      EXPECT_TRUE(testing::DropSchema(*admin_, schema_).ok());
    }
  }

  LeaseRow Row() {
    auto r = admin_->Exec(
        "SELECT coalesce(worker_id, ''), coalesce(lease_token::text, ''), extract(epoch FROM heartbeat_at)::float8,"
        " extract(epoch FROM lease_expires_at - now())::float8 FROM mdm_profile_job WHERE id = $1::uuid",
        {job_.id});
    EXPECT_TRUE(r.ok() && r->rows() == 1) << r.status();
    if (!r.ok() || r->rows() != 1) return {};
    return {std::string(r->Get(0, 0)), std::string(r->Get(0, 1)), std::stod(std::string(r->Get(0, 2))),
            std::stod(std::string(r->Get(0, 3)))};
  }

  LeaseHeartbeat::Options Options(absl::Duration interval) const {
    return {.job_id = job_.id,
            .lease_token = job_.lease_token,
            .lease = absl::Minutes(10),
            .interval = interval,
            .schema = schema_};
  }

  std::string schema_;
  std::unique_ptr<PgConnection> admin_, beat_, scan_;
  ClaimedJob job_;
};

TEST_F(LeaseHeartbeatTest, RenewsTheLeaseWhileAliveAndNeverAfterStop) {
  const LeaseRow claimed = Row();
  ASSERT_LT(claimed.lease_expires_in, 61);  // the claim's 60 s
  {
    LeaseHeartbeat heartbeat(*beat_, *scan_, Options(absl::Milliseconds(20)));
    // Renewals move the expiry to the heartbeat's 10 minutes. Polled, not timed: the test
    // only waits for the first renewal to show.
    LeaseRow renewed = Row();
    for (int i = 0; i < 1000 && renewed.heartbeat_at == claimed.heartbeat_at; ++i) {
      absl::SleepFor(absl::Milliseconds(10));
      renewed = Row();
    }
    EXPECT_GT(renewed.heartbeat_at, claimed.heartbeat_at);
    EXPECT_GT(renewed.lease_expires_in, 500);
    EXPECT_EQ(renewed.lease_token, job_.lease_token);
    EXPECT_EQ(renewed.worker, "worker-a");
    EXPECT_FALSE(heartbeat.lost());
  }
  // Destroyed: whatever it wrote last stays; many intervals later nothing has moved.
  const LeaseRow after_stop = Row();
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_EQ(Row().heartbeat_at, after_stop.heartbeat_at);
}

TEST_F(LeaseHeartbeatTest, DestructionDoesNotWaitForTheNextRenewal) {
  const LeaseRow claimed = Row();
  {
    // An hour between renewals: a destructor that slept out the interval would hang this
    // test past its ctest timeout instead of returning at once.
    LeaseHeartbeat heartbeat(*beat_, *scan_, Options(absl::Hours(1)));
  }
  const LeaseRow after = Row();
  EXPECT_EQ(after.heartbeat_at, claimed.heartbeat_at);  // no renewal ran
  EXPECT_EQ(after.lease_token, job_.lease_token);
}

TEST_F(LeaseHeartbeatTest, ALostLeaseCancelsTheRunningScan) {
  LeaseHeartbeat heartbeat(*beat_, *scan_, Options(absl::Milliseconds(20)));
  absl::Status scan_status;
  std::thread scan([&] { scan_status = scan_->Exec("SELECT pg_sleep(30)").status(); });
  // Take the job over only once the scan is running, so the cancel has something to hit.
  const std::string pid = Cat(PQbackendPID(scan_->raw()));
  bool running = false;
  for (int i = 0; i < 1000 && !running; ++i) {
    auto r = admin_->Exec(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int AND state = 'active' AND query LIKE '%pg_sleep%'", {pid});
    ASSERT_TRUE(r.ok()) << r.status();
    running = r->rows() > 0;
    if (!running) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(running);
  ASSERT_FALSE(heartbeat.lost());

  // Worker B takes the job over the way a sweeper does once the lease expired: in one
  // transaction, so no renewal from A slips in between the expiry and the claim.
  {
    auto tx = common::PgTransaction::Begin(*admin_);
    ASSERT_TRUE(tx.ok()) << tx.status();
    auto expired = admin_->Exec(
        "UPDATE mdm_profile_job SET lease_expires_at = now() - interval '1 second' WHERE id = $1::uuid", {job_.id});
    ASSERT_TRUE(expired.ok()) << expired.status();
    auto taken = JobStore(*admin_).Claim(job_.id, "worker-b", absl::Seconds(60));
    ASSERT_TRUE(taken.ok()) << taken.status();
    ASSERT_TRUE(taken->has_value());
    EXPECT_TRUE((*taken)->took_over);
    ASSERT_TRUE(tx->Commit().ok());
  }

  scan.join();
  EXPECT_EQ(common::SqlState(scan_status), "57014") << scan_status;  // query_canceled
  EXPECT_TRUE(heartbeat.lost());
  heartbeat.Stop();
  // A's heartbeat wrote nothing over B's lease.
  const LeaseRow row = Row();
  EXPECT_EQ(row.worker, "worker-b");
  EXPECT_NE(row.lease_token, job_.lease_token);
  EXPECT_LT(row.lease_expires_in, 61);
}

}  // namespace
}  // namespace sluice::profiler
