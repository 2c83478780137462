#pragma once

// Where the CPU went while a benchmark phase ran: this process (getrusage) and the whole
// machine, the broker and PostgreSQL included (/proc/stat). Benchmarks print it next to
// latencies, since on a small machine a tail is often just work waiting for a core.

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

namespace sluice::bench {

class CpuMeter {
 public:
  struct Mark {
    double wall = 0, process = 0, machine_busy = 0, machine_total = 0;
  };
  // Average use between two marks, in cores.
  struct Use {
    double seconds = 0, process = 0, machine = 0, machine_share = 0;
  };

  static Mark Now() {
    Mark m;
    m.wall = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    m.process = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    m.machine_busy = (user + nice + system + irq + softirq + steal) / tick;
    m.machine_total = m.machine_busy + (idle + iowait) / tick;
    return m;
  }
  static Use Between(const Mark& a, const Mark& b) {
    Use u;
    u.seconds = b.wall - a.wall;
    if (u.seconds <= 0) return u;
    u.process = (b.process - a.process) / u.seconds;
    u.machine = (b.machine_busy - a.machine_busy) / u.seconds;
    const double total = b.machine_total - a.machine_total;
    u.machine_share = total > 0 ? (b.machine_busy - a.machine_busy) / total : 0;
    return u;
  }

  // Accumulates phases.
  void Add(const Mark& a, const Mark& b) {
    wall_ += b.wall - a.wall;
    process_ += b.process - a.process;
    busy_ += b.machine_busy - a.machine_busy;
    total_ += b.machine_total - a.machine_total;
  }
  void Print(const char* path) const {
    if (wall_ <= 0) return;
    std::printf("  %-8s %6.1f s: this process %.2f cores, machine %.2f cores busy (%.0f%%)\n", path, wall_,
                process_ / wall_, busy_ / wall_, total_ > 0 ? 100.0 * busy_ / total_ : 0.0);
  }

 private:
  double wall_ = 0, process_ = 0, busy_ = 0, total_ = 0;
};

}  // namespace sluice::bench
