#include "consumers/profiler/lease_heartbeat.h"

#include <spdlog/spdlog.h>

#include "consumers/profiler/job_store.h"

namespace sluice::profiler {

LeaseHeartbeat::LeaseHeartbeat(common::PgConnection& conn, const common::PgConnection& scan, Options options)
    : conn_(conn), options_(std::move(options)), cancel_(PQgetCancel(scan.raw())), thread_([this] { Loop(); }) {}

void LeaseHeartbeat::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseHeartbeat::Loop() {
  JobStore jobs(conn_);
  std::unique_lock l(mu_);
  while (!cv_.wait_for(l, absl::ToChronoMilliseconds(options_.interval), [&] { return stop_; })) {
    l.unlock();                                    // the scan's end must not wait for this round trip
    if (PQstatus(conn_.raw()) != CONNECTION_OK) {  // reconnect, with the schema of the job table
      PQreset(conn_.raw());
      (void)conn_.SetSearchPath(options_.schema);
    }
    auto held = jobs.ExtendLease(options_.job_id, options_.lease_token, options_.lease);
    l.lock();
    if (!held.ok()) {
      spdlog::warn("profiler: heartbeat of job {} failed: {}", options_.job_id, std::string(held.status().message()));
      continue;  // the lease may still hold; the outcome is fenced anyway
    }
    if (!*held) {
      lost_.store(true);
      spdlog::error("profiler: job {} lost its lease; cancelling the scan", options_.job_id);
      char err[256];
      if (cancel_) PQcancel(cancel_.get(), err, sizeof(err));
      return;
    }
  }
}

}  // namespace sluice::profiler
