#pragma once

#include <absl/time/time.h>
#include <libpq-fe.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/handle.h"
#include "common/pg.h"

namespace sluice::profiler {

// Keeps a claimed job's lease (JobStore::ExtendLease) while a scan runs, and cancels the
// scan once the lease is lost: after a stall longer than the lease another worker may
// have taken the job over, and its outcome would be fenced out anyway, so the scan only
// wastes the source database's time.
//
// Lifetime: the constructor starts the renewing thread (first renewal after one
// interval); Stop() or the destructor wakes it, waits for a renewal in flight (one round
// trip, not an interval) and joins it. `conn` belongs to the thread while this object lives; it
// is reset (and its search_path set to `schema` again) when it broke. `scan` must
// outlive this object; only its cancel key is used, from the thread.
// Thread-safety: lost() may be called from any thread.
class LeaseHeartbeat {
 public:
  struct Options {
    std::string job_id;
    std::string lease_token;  // the claim's; a renewal with another one fails
    absl::Duration lease;     // each renewal moves the expiry to now + lease
    absl::Duration interval;  // between renewals; shorter than the lease
    std::string schema;       // the job table's, restored after a reconnect
  };

  LeaseHeartbeat(common::PgConnection& conn, const common::PgConnection& scan, Options options);
  ~LeaseHeartbeat() { Stop(); }
  LeaseHeartbeat(const LeaseHeartbeat&) = delete;
  LeaseHeartbeat& operator=(const LeaseHeartbeat&) = delete;

  // Stops renewing: no renewal starts after it returns. Idempotent; call it from the
  // thread that owns this object.
  void Stop();
  // True once a renewal found the lease gone (and the scan was cancelled). Final after
  // Stop().
  bool lost() const { return lost_.load(); }

 private:
  void Loop();

  common::PgConnection& conn_;
  const Options options_;
  // From PQgetCancel, which may fail (nullptr: nothing to cancel with).
  common::Handle<PGcancel, PQfreeCancel> cancel_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::atomic<bool> lost_{false};
  std::thread thread_;  // last: starts after everything it uses
};

}  // namespace sluice::profiler
