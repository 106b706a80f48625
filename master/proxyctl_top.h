// `proxyctl top`: a live view of the workers, refreshed like top(1).
//
// Each refresh asks the master for `workers` and turns the answer into a
// Snapshot. Rates (requests/s, bytes/s) come from two samples of the same
// worker, divided by the time between the two *reports* those samples carry,
// not by the wall clock between the two questions: a worker's counters move
// only when it reports (every heartbeat_interval), so dividing by the
// refresh delay would read 0 or twice the rate whenever the refresh and the
// heartbeat drift apart. The report's time is the sample's time minus its
// `last_report_ms`.
//
// Rendering is a pure function of two snapshots (render()), so the tests
// check the view without a terminal or a master.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "master/proxyctl_answer.h"

namespace master::proxyctl {

struct WorkerSample {
    int64_t pid = 0;
    int64_t slot = 0;
    int64_t generation = 0;
    std::string state;
    int64_t sessions = 0;
    int64_t requests = 0;
    int64_t bytes_in = 0;
    int64_t bytes_out = 0;
    int64_t rss_bytes = 0;
    // When the counters were reported, in ms of the snapshot clock; nullopt
    // before the worker's first report.
    std::optional<double> reported_ms;
    std::optional<int64_t> report_age_ms;
};

struct Snapshot {
    double taken_ms = 0;                // steady clock, ms: when the answer arrived
    std::time_t wall = 0;               // for the header's clock only
    std::vector<WorkerSample> workers;  // in the answer's order
};

// Two reports of one worker less than this apart are the same report (the
// master's ms rounding), and give no rate.
inline constexpr double kSameReportMs = 20;

// The `workers` answer as a snapshot taken at `taken_ms` / `wall`.
Snapshot snapshot_from_answer(const Json& answer, double taken_ms, std::time_t wall);

// The samples rates are measured from: for each worker of `current`, the
// latest sample of an earlier report. `baseline` is the previous result (an
// empty snapshot at first), `previous` the snapshot before `current`.
// Returns the new baseline: a worker whose report did not change between
// `previous` and `current` keeps its older sample, so a refresh faster than
// the heartbeat still shows a rate; workers gone from `current` are dropped.
Snapshot advance_baseline(const Snapshot& baseline, const Snapshot& previous,
                          const Snapshot& current);

// The view: a summary line, a blank line, the column headings, one line per
// worker. Rates are "-" for a worker without an earlier report in `before`.
std::vector<std::string> render(const Snapshot& before, const Snapshot& now);

// Runs the view on `socket` until q, Ctrl-C, or `iterations` refreshes
// (0: no limit), every `delay_s` seconds. On a terminal it redraws in place
// and restores the terminal on exit; otherwise it prints each view after
// the last, separated by a blank line. Returns the exit status: 0, or 1 when
// the master cannot be asked (the reason on stderr).
int run_top(const std::string& socket, double delay_s, long iterations);

}  // namespace master::proxyctl
