// Why a worker sent no report. A missed heartbeat has three causes that
// look alike from the channel but not from the scheduler's view of the
// worker: /proc/PID/schedstat (time on a CPU, time spent waiting on a run
// queue) and the state in /proc/PID/stat (R: running or waiting to run).
// The master reads them at every report and, once a report is overdue, at
// every check:
//
//   cause     over the silence                    what it means       action
//   --------  ----------------------------------  ------------------  ------------------
//   spinning  CPU time beyond what a working       a loop that never   SIGABRT, SIGKILL
//             worker needs to reach its next       returns to the
//             heartbeat                            event loop
//   starved   not spinning, and waiting to run     it works, but the   warn, count, wait
//             at least a quarter of the silence    CPUs are taken      (up to a bound)
//   blocked   neither                              asleep in a call    SIGABRT, SIGKILL
//                                                  that never returns,
//                                                  or stopped (T)
//   unknown   no readings (no schedstat in this    -                   SIGABRT, SIGKILL
//             kernel, process gone, pid reused)
//
// The line between spinning and starved rests on the worker's loop: a loop
// turn is bounded in time (worker/worker.cpp), so once its heartbeat timer is
// due a worker reports within a turn or two of CPU time. One that got more
// CPU than a heartbeat interval and a half since its last report, and still
// said nothing, had every chance to report.
//
// The kernel adds a wait to schedstat's run-queue time only when the wait
// ends, that is when the task gets a CPU: a worker waiting for one right now
// shows none of it. So the master also counts the time between two readings
// that both found the worker runnable, less the CPU time it got meanwhile,
// and takes the larger of the two measures.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"

namespace master {

// One reading of a process's scheduler counters and state.
struct SchedSample {
    uint64_t cpu_ns = 0;   // time spent on a CPU
    uint64_t wait_ns = 0;  // time spent waiting on a run queue, finished waits only
    char state = '?';      // of /proc/PID/stat: R running or runnable, S, D, T...
};

// Parses the text of /proc/PID/schedstat ("CPU_NS WAIT_NS TIMESLICES") into
// cpu_ns and wait_ns; nullopt when it is not that.
std::optional<SchedSample> parse_schedstat(std::string_view text);

// The state letter in the text of /proc/PID/stat ("PID (COMM) STATE ...");
// '?' when it is not that.
char parse_stat_state(std::string_view text);

// Reads /proc/PID/schedstat and /proc/PID/stat; nullopt when the process is
// gone or the kernel keeps no such counters (CONFIG_SCHED_INFO off).
std::optional<SchedSample> read_sched_sample(pid_t pid);

// What the master has read of one worker since its last report.
struct SchedTrack {
    std::optional<SchedSample> first;  // at the last report (or the start)
    std::optional<SchedSample> last;   // the latest reading
    // Time between readings that both found it runnable, less its CPU time:
    // waits still going on, which schedstat does not show yet.
    common::Duration queued{0};
    bool broken = false;  // a reading was missing or went backwards
};

// A new track from the reading taken at a report.
SchedTrack start_track(const std::optional<SchedSample>& sample);
// Adds a reading taken `elapsed` after the previous one.
void add_reading(SchedTrack& track, const std::optional<SchedSample>& sample,
                 common::Duration elapsed);

enum class Silence { kStarved, kSpinning, kBlocked, kUnknown };
const char* silence_name(Silence silence);

// Classifies a worker that sent no report for `silent`, from what `track`
// read since its last report. `heartbeat_interval` is how often a working
// worker reports.
Silence classify_silence(const SchedTrack& track, common::Duration silent,
                         common::Duration heartbeat_interval);

// "ran 12 ms, waited 1800 ms to run, state R" for the log; "no scheduler
// counters" when the track has no readings.
std::string describe_track(const SchedTrack& track);

// A starved worker is left alone only this many heartbeat_timeouts: then it
// is aborted like a hung one, starved or not.
constexpr int kStarvedTimeoutFactor = 4;

}  // namespace master
