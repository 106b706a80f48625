#include "master/prometheus.h"

#include <cinttypes>
#include <cstdio>

namespace master::prometheus {

namespace {

namespace m = common::metrics;

// One family being written: its header once, then its samples.
class Family {
  public:
    Family(std::string& out, std::string name, const char* type, std::string_view help)
        : out_(out), name_(std::move(name)) {
        out_ += "# HELP " + name_ + ' ' + escape_help(help) + '\n';
        out_ += "# TYPE " + name_ + ' ' + type + '\n';
    }

    // `labels` is either empty or `name="value",...` already escaped.
    void sample(std::string_view suffix, const std::string& labels, const std::string& value) {
        out_ += name_;
        out_ += suffix;
        if (!labels.empty()) out_ += '{' + labels + '}';
        out_ += ' ' + value + '\n';
    }
    void sample(const std::string& labels, uint64_t value) {
        sample("", labels, std::to_string(value));
    }

  private:
    // HELP text escapes backslash and line feed (not quotes).
    static std::string escape_help(std::string_view help) {
        std::string out;
        for (char c : help) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '\n')
                out += "\\n";
            else
                out += c;
        }
        return out;
    }

    std::string& out_;
    std::string name_;
};

std::string label(const char* name, std::string_view value) {
    return std::string(name) + "=\"" + escape_label_value(value) + '"';
}

const char* type_name(m::Type type) {
    switch (type) {
        case m::Type::kCounter:
            return "counter";
        case m::Type::kGauge:
            return "gauge";
        case m::Type::kHistogram:
            return "histogram";
    }
    return "untyped";
}

// Microseconds as decimal seconds, exactly: 1500000 -> "1.500000".
std::string seconds(uint64_t us) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%" PRIu64 ".%06" PRIu64, us / 1'000'000, us % 1'000'000);
    return buf;
}

std::string labels_of(const m::Metric& metric, uint32_t index) {
    std::string out = label(metric.label.first.name, metric.first_value(index));
    if (metric.label.two())
        out += ',' + label(metric.label.second.name, metric.second_value(index));
    return out;
}

// The workers' buckets are per bucket; the format's are cumulative.
void render_histogram(Family& family, const m::Metric& metric, const uint64_t* values) {
    uint64_t cumulative = 0;
    for (uint32_t i = 0; i < metric.labelled_values(); ++i) {
        cumulative += values[i];
        family.sample("_bucket", labels_of(metric, i), std::to_string(cumulative));
    }
    family.sample("_sum", "", seconds(values[metric.labelled_values()]));
    family.sample("_count", "", std::to_string(cumulative));
}

void render_worker_metric(std::string& out, const m::Metric& metric, const m::Counters& totals) {
    std::string name = std::string("proxyd_") + metric.family;
    if (metric.type == m::Type::kCounter) name += "_total";
    Family family(out, name, type_name(metric.type), metric.help);
    const uint64_t* values = metric.values(totals);
    if (metric.type == m::Type::kHistogram) {
        render_histogram(family, metric, values);
    } else if (metric.label.none()) {
        family.sample("", values[0]);
    } else {
        for (uint32_t i = 0; i < metric.labelled_values(); ++i) {
            family.sample(labels_of(metric, i), values[i]);
        }
    }
}

void render_master(std::string& out, const Snapshot& s) {
    Family workers(out, "proxyd_workers", "gauge", "Worker processes by state.");
    for (uint32_t i = 0; i < kWorkerStateCount; ++i) {
        workers.sample(label("state", worker_state_name(i)), s.workers_by_state[i]);
    }
    Family restarts(out, "proxyd_worker_restarts_total", "counter",
                    "Workers the master replaced, by reason: crash (an exit or a kill nobody "
                    "asked for), hung (aborted after missing heartbeats), recycled "
                    "(worker_max_rss or worker_max_sessions).");
    for (uint32_t i = 0; i < kRestartReasonCount; ++i) {
        restarts.sample(label("reason", restart_reason_name(i)), s.restarts[i]);
    }
}

// Families without samples are left out: the users and routes of a
// configuration that has none.
void render_users(std::string& out, const Snapshot& s) {
    if (s.user_sessions.empty()) return;
    Family sessions(out, "proxyd_user_sessions_total", "counter",
                    "Sessions admitted per user of the users file.");
    for (const auto& [user, count] : s.user_sessions) sessions.sample(label("user", user), count);
}

void render_routes(std::string& out, const Snapshot& s) {
    if (s.routes.empty()) return;
    struct Column {
        const char* name;
        const char* type;
        const char* help;
        uint64_t (*value)(const RouteSample&);
    };
    static constexpr Column kColumns[] = {
        {"proxyd_route_active_sessions", "gauge", "Sessions going out by the route now.",
         [](const RouteSample& r) { return r.active; }},
        {"proxyd_route_sessions_total", "counter", "Sessions that went out by the route.",
         [](const RouteSample& r) { return r.total; }},
        {"proxyd_route_failures_total", "counter",
         "Connections by the route that failed for a reason of the route's own.",
         [](const RouteSample& r) { return r.failures; }},
        {"proxyd_route_up", "gauge", "1 while no worker holds the route down, else 0.",
         [](const RouteSample& r) -> uint64_t { return r.up ? 1 : 0; }},
    };
    for (const Column& column : kColumns) {
        Family family(out, column.name, column.type, column.help);
        for (const RouteSample& r : s.routes)
            family.sample(label("route", r.name), column.value(r));
    }
}

}  // namespace

const char* restart_reason_name(uint32_t reason) {
    constexpr const char* kNames[] = {"crash", "hung", "recycled"};
    return reason < kRestartReasonCount ? kNames[reason] : "unknown";
}

const char* worker_state_name(uint32_t state) {
    constexpr const char* kNames[] = {"starting", "running", "draining"};
    return state < kWorkerStateCount ? kNames[state] : "unknown";
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string render(const Snapshot& snapshot) {
    std::string out;
    out.reserve(8192);
    render_master(out, snapshot);
    for (const m::Metric& metric : m::kMetrics) {
        if (metric.family != nullptr) render_worker_metric(out, metric, snapshot.totals);
    }
    render_users(out, snapshot);
    render_routes(out, snapshot);
    return out;
}

}  // namespace master::prometheus
