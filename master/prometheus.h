// The Prometheus text exposition format, version 0.0.4, of what the master
// knows: the workers' counters folded over workers (common/metrics.h, every
// metric with a family), the workers by state, the workers restarted by
// reason, and the per-user and per-route counters the control socket shows
// (bounded by the users file and the configured routes).
//
// Names are "proxyd_" + the family, counters end in "_total"; HELP and TYPE
// come from the metric table. A pure function of a Snapshot, so the tests
// check the text without a running master; `promtool check metrics` accepts
// it without lint warnings.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"

namespace master::prometheus {

// Why the supervisor replaced a worker.
enum RestartReason : uint32_t {
    kRestartCrash = 0,  // it exited or was killed when nobody asked it to
    kRestartHung,       // it stopped reporting and was aborted
    kRestartRecycled,   // it passed worker_max_rss or worker_max_sessions
    kRestartReasonCount
};
const char* restart_reason_name(uint32_t reason);

// The worker states of the supervisor (WorkerStatus), as label values.
inline constexpr uint32_t kWorkerStateCount = 3;
const char* worker_state_name(uint32_t state);  // "starting", "running", "draining"

struct RouteSample {
    std::string name;
    uint64_t active = 0;
    uint64_t total = 0;
    uint64_t failures = 0;
    bool up = true;
};

struct Snapshot {
    // Counters and histograms over every worker, exited ones included;
    // gauges summed over the live workers.
    common::metrics::Counters totals{};
    std::array<uint64_t, kWorkerStateCount> workers_by_state{};
    std::array<uint64_t, kRestartReasonCount> restarts{};
    // Sessions admitted per user of the users file, by name.
    std::vector<std::pair<std::string, uint64_t>> user_sessions;
    std::vector<RouteSample> routes;
};

// The whole exposition, every line ending in "\n".
std::string render(const Snapshot& snapshot);

// A label value as the format quotes it: backslash, double quote and line
// feed escaped.
std::string escape_label_value(std::string_view value);

// The Content-Type of the text format.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace master::prometheus
