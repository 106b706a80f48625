// Worker memory for the memory-bound tests (issue 13), from /proc only.
//
// A bound on the workers' resident set means nothing when a worker died or
// was replaced during the measurement: a dead pid reads 0 and lowers the
// sum ("RSS 8.5 -> 4.6 MiB" in a run where workers had died). So every
// figure here is taken per pid from /proc/PID/statm, a pid that reads 0 is a
// test failure, and a test re-reads the worker list at the end. The
// rss_bytes of the workers' heartbeat reports are never used: a stalled
// worker freezes them.
//
//   harness::WorkerMemory memory(proxy);       // the workers listed by status
//   const uint64_t before = memory.resident();
//   ... load ...
//   const uint64_t held = memory.settled_resident(10s);
//   memory.expect_same_workers();              // none died, none replaced
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "tests/integration/harness.h"

namespace harness {

class WorkerMemory {
  public:
    // Records the workers `status` lists now, sorted (ADD_FAILURE when none).
    explicit WorkerMemory(ProxydInstance& proxy);

    const std::vector<pid_t>& pids() const { return pids_; }

    // The sum of the recorded workers' resident sets now. A worker that
    // reads 0 (gone, or a zombie) is an ADD_FAILURE naming it; it adds 0.
    uint64_t resident() const;

    // resident(), sampled every `poll` until three samples in a row differ
    // by at most `tolerance` bytes each (the workers stopped allocating), or
    // until `timeout`; the last sample either way. Polling replaces a fixed sleep
    // before a measurement: a loaded machine only makes it take longer.
    uint64_t settled_resident(Millis timeout, uint64_t tolerance = 256 * 1024,
                              Millis poll = 250ms) const;

    // EXPECTs `status` still lists exactly the recorded workers; false (with
    // the status answer in the failure) when one died or was replaced.
    bool expect_same_workers() const;

  private:
    ProxydInstance& proxy_;
    std::vector<pid_t> pids_;
};

// The workers `status` lists, sorted (the order of `status` is not promised).
std::vector<pid_t> sorted_worker_pids(ProxydInstance& proxy);

}  // namespace harness
