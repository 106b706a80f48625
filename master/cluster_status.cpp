#include "master/cluster_status.h"

#include <time.h>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

namespace master {

namespace ch = common::channel;
using common::Json;

namespace {

// ISO 8601 UTC with milliseconds, as the logs' readers expect.
std::string utc_time(int64_t unix_ms) {
    time_t seconds = static_cast<time_t>(unix_ms / 1000);
    struct tm tm {};
    gmtime_r(&seconds, &tm);
    char text[96];
    snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             static_cast<int>(unix_ms % 1000));
    return text;
}

Json worker_json(const ClusterWorker& w) {
    Json item;
    item["pid"] = w.pid;
    item["slot"] = w.slot;
    item["generation"] = w.generation;
    const ch::ClusterStatus* s = w.status ? &*w.status : nullptr;
    item["state"] = cluster_state_name(s != nullptr ? s->state : 0);
    item["latency_ewma_us"] = s != nullptr ? s->latency_ewma_us : 0;
    item["latency_max_us"] = s != nullptr ? s->latency_max_us : 0;
    item["last_error"] = s != nullptr ? std::string(s->error, s->error_length) : "";
    item["last_error_at"] = s != nullptr && s->error_at_ms > 0 ? utc_time(s->error_at_ms) : "";
    if (w.counters != nullptr) {
        item["commands"] = w.counters->redis_commands;
        item["errors"] = w.counters->redis_errors;
        item["reconnects"] = w.counters->redis_reconnects;
        item["fallbacks"] = w.counters->cluster_fallbacks;
        item["denials"] = w.counters->cluster_denials;
    }
    return item;
}

}  // namespace

const char* cluster_state_name(uint32_t state) {
    switch (static_cast<ch::ClusterState>(state)) {
        case ch::ClusterState::kOff:
            return "off";
        case ch::ClusterState::kConnecting:
            return "connecting";
        case ch::ClusterState::kUp:
            return "connected";
        case ch::ClusterState::kDown:
            return "down";
    }
    return "unknown";
}

Json cluster_json(const common::ClusterConfig& cluster, const std::vector<ClusterWorker>& workers,
                  const common::metrics::Counters& totals) {
    Json out;
    out["node"] = cluster.node;
    out["redis"] = cluster.redis ? cluster.redis->to_string() : "off";
    out["on_redis_down"] = cluster.on_redis_down == common::OnRedisDown::kDeny ? "deny" : "local";
    size_t reporting = 0, up = 0, down = 0;
    uint64_t ewma_sum = 0, latency_max = 0;
    const ch::ClusterStatus* latest_error = nullptr;
    Json per_worker = Json::array();
    for (const ClusterWorker& w : workers) {
        per_worker.push_back(worker_json(w));
        if (!w.status) continue;
        const ch::ClusterStatus& s = *w.status;
        ++reporting;
        if (s.state == static_cast<uint32_t>(ch::ClusterState::kUp)) ++up;
        if (s.state == static_cast<uint32_t>(ch::ClusterState::kDown)) ++down;
        ewma_sum += s.latency_ewma_us;
        latency_max = std::max(latency_max, s.latency_max_us);
        if (s.error_at_ms > 0 &&
            (latest_error == nullptr || s.error_at_ms > latest_error->error_at_ms))
            latest_error = &s;
    }
    const char* state = !cluster.redis                     ? "off"
                        : down > 0                         ? "down"
                        : reporting > 0 && up == reporting ? "connected"
                                                           : "connecting";
    out["state"] = state;
    out["workers"] = reporting;
    out["workers_up"] = up;
    out["commands"] = totals.redis_commands;
    out["errors"] = totals.redis_errors;
    out["reconnects"] = totals.redis_reconnects;
    out["fallbacks"] = totals.cluster_fallbacks;
    out["denials"] = totals.cluster_denials;
    out["latency_ewma_us"] = reporting > 0 ? ewma_sum / reporting : 0;
    out["latency_max_us"] = latency_max;
    out["last_error"] =
        latest_error != nullptr ? std::string(latest_error->error, latest_error->error_length) : "";
    out["last_error_at"] = latest_error != nullptr ? utc_time(latest_error->error_at_ms) : "";
    out["per_worker"] = std::move(per_worker);
    return out;
}

}  // namespace master
