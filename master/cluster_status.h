// The `cluster` control command's answer: this node's name, its cluster
// store (Redis) and how each worker's connection to it fares. Built from
// the workers' ClusterStatus records (common/channel.h) and the redis
// counters of their reports.
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/json_util.h"
#include "common/metrics.h"

namespace master {

struct ClusterWorker {
    pid_t pid = 0;
    int slot = 0;
    uint32_t generation = 0;
    std::optional<common::channel::ClusterStatus> status;  // none reported yet
    const common::metrics::Counters* counters = nullptr;   // its last report's
};

// "off" | "connecting" | "connected" | "down": a worker down makes the node
// down; all connected make it connected.
const char* cluster_state_name(uint32_t state);

// {node, redis, on_redis_down, state, workers, workers_up, commands, errors,
// reconnects, fallbacks, denials, latency_ewma_us, latency_max_us,
// last_error, last_error_at, per_worker: [...]}. `totals` are the counters
// summed over live and exited workers.
common::Json cluster_json(const common::ClusterConfig& cluster,
                          const std::vector<ClusterWorker>& workers,
                          const common::metrics::Counters& totals);

}  // namespace master
