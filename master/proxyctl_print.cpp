#include "master/proxyctl_print.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/channel.h"
#include "common/metrics.h"

namespace master::proxyctl {

namespace {

// One cell of a metric column: sizes for *_bytes metrics, a labelled
// metric as the sum over its label values.
std::string metric_cell(const common::metrics::Metric& m, const Json& value) {
    int64_t n = as_total(value);
    if (m.name.ends_with("_bytes")) return human_bytes(static_cast<double>(n));
    return std::to_string(n);
}

// The columns between STATE and LAST are the metrics the table marks with a
// column (common/metrics.h), so a new one needs no edit here.
void print_workers(const Json& workers) {
    std::printf("%-8s %4s %4s %-9s", "PID", "SLOT", "GEN", "STATE");
    for (const common::metrics::Metric& m : common::metrics::kMetrics) {
        if (m.column.heading != nullptr) std::printf(" %*s", m.column.width, m.column.heading);
    }
    std::printf(" %7s\n", "LAST");
    for (const Json& w : elements(workers)) {
        const Json& last_ms = at(w, "last_report_ms");
        std::string last = last_ms.is_null() ? "-" : std::to_string(as_int(last_ms)) + "ms";
        std::printf("%-8lld %4lld %4lld %-9s", static_cast<long long>(as_int(at(w, "pid"))),
                    static_cast<long long>(as_int(at(w, "slot"))),
                    static_cast<long long>(as_int(at(w, "generation"))),
                    as_string(at(w, "state")).c_str());
        for (const common::metrics::Metric& m : common::metrics::kMetrics) {
            if (m.column.heading == nullptr) continue;
            std::printf(" %*s", m.column.width, metric_cell(m, at(w, m.name)).c_str());
        }
        std::printf(" %7s\n", last.c_str());
    }
}

// One line per user; a limit of 0 reads "-" (none).
void print_users(const Json& users) {
    std::printf("%-24s %8s %10s %8s\n", "USER", "ACTIVE", "TOTAL", "LIMIT");
    for (const Json& u : elements(users)) {
        int64_t limit = as_int(at(u, "max_sessions"));
        std::printf("%-24s %8lld %10lld %8s\n", as_string(at(u, "name")).c_str(),
                    static_cast<long long>(as_int(at(u, "active_sessions"))),
                    static_cast<long long>(as_int(at(u, "total_sessions"))),
                    limit == 0 ? "-" : std::to_string(limit).c_str());
    }
}

// "up", or "down (2 of 4 workers)": health is each worker's own.
std::string route_state(const Json& route) {
    const std::string state = as_string(at(route, "state"));
    const int64_t down = as_int(at(route, "down_workers"));
    const int64_t workers = as_int(at(route, "workers"));
    if (state != "down" || down <= 0) return state;
    const int64_t of = std::max(down, workers);
    return "down (" + std::to_string(down) + " of " + std::to_string(of) +
           (of == 1 ? " worker)" : " workers)");
}

// One line per route, the name column as wide as the longest name.
void print_routes(const Json& routes) {
    int width = 5;
    for (const Json& r : elements(routes)) {
        width = std::max(width, static_cast<int>(std::min(as_string(at(r, "name")).size(),
                                                          common::channel::kMaxRouteName)));
    }
    std::printf("%-*s %8s %10s %8s  %s\n", width, "ROUTE", "ACTIVE", "TOTAL", "FAILURES", "STATE");
    for (const Json& r : elements(routes)) {
        std::printf("%-*s %8lld %10lld %8lld  %s\n", width, as_string(at(r, "name")).c_str(),
                    static_cast<long long>(as_int(at(r, "active"))),
                    static_cast<long long>(as_int(at(r, "total"))),
                    static_cast<long long>(as_int(at(r, "failures"))), route_state(r).c_str());
    }
}

std::string latency(const Json& us) {
    return std::to_string(as_int(us)) + " us";
}

// The node and its store, then one line per worker's connection.
void print_cluster(const Json& answer) {
    std::printf("node: %s\n", as_string(at(answer, "node")).c_str());
    std::printf("redis: %s (%s), on_redis_down = %s\n", as_string(at(answer, "redis")).c_str(),
                as_string(at(answer, "state")).c_str(),
                as_string(at(answer, "on_redis_down")).c_str());
    std::printf("workers connected: %lld of %lld\n",
                static_cast<long long>(as_int(at(answer, "workers_up"))),
                static_cast<long long>(as_int(at(answer, "workers"))));
    std::printf("latency: %s average, %s max (last interval)\n",
                latency(at(answer, "latency_ewma_us")).c_str(),
                latency(at(answer, "latency_max_us")).c_str());
    for (const char* key : {"commands", "errors", "reconnects", "fallbacks", "denials"}) {
        std::printf("%s: %lld\n", key, static_cast<long long>(as_int(at(answer, key))));
    }
    const std::string error = as_string(at(answer, "last_error"));
    std::printf(
        "last error: %s\n",
        error.empty() ? "none" : (error + " at " + as_string(at(answer, "last_error_at"))).c_str());
    std::printf("\n%-8s %4s %4s %-10s %10s %10s %9s %7s  %s\n", "PID", "SLOT", "GEN", "STATE",
                "LATENCY", "MAX", "COMMANDS", "ERRORS", "LAST ERROR");
    for (const Json& w : elements(at(answer, "per_worker"))) {
        std::printf("%-8lld %4lld %4lld %-10s %10s %10s %9lld %7lld  %s\n",
                    static_cast<long long>(as_int(at(w, "pid"))),
                    static_cast<long long>(as_int(at(w, "slot"))),
                    static_cast<long long>(as_int(at(w, "generation"))),
                    as_string(at(w, "state")).c_str(), latency(at(w, "latency_ewma_us")).c_str(),
                    latency(at(w, "latency_max_us")).c_str(),
                    static_cast<long long>(as_int(at(w, "commands"))),
                    static_cast<long long>(as_int(at(w, "errors"))),
                    as_string(at(w, "last_error")).c_str());
    }
}

// key: value lines; nested objects flatten to "a.b: value". The recursion is
// bounded by the depth limit of parse_untrusted().
void print_fields(const Json& object, const std::string& prefix) {
    for (const auto& [key, value] : object.items()) {
        if (prefix.empty() && key == "ok") continue;
        if (value.is_object()) {
            print_fields(value, prefix + key + ".");
        } else if (value.is_array()) {
            std::string items;
            for (const Json& item : value) {
                if (!items.empty()) items += ", ";
                items += item.is_object() ? common::to_line(item) : scalar(item);
            }
            std::printf("%s%s: %s\n", prefix.c_str(), key.c_str(), items.c_str());
        } else {
            std::printf("%s%s: %s\n", prefix.c_str(), key.c_str(), scalar(value).c_str());
        }
    }
}

void print_status(const Json& answer) {
    for (const auto& [key, value] : answer.items()) {
        if (key == "ok" || key == "workers" || key == "listeners" || key == "slots") continue;
        std::printf("%s: %s\n", key.c_str(), scalar(value).c_str());
    }
    for (const Json& l : elements(at(answer, "listeners"))) {
        std::printf("listener %s: %s %s%s\n", as_string(at(l, "name")).c_str(),
                    as_string(at(l, "address")).c_str(), as_string(at(l, "protocol")).c_str(),
                    as_bool(at(l, "tls")) ? " tls" : "");
    }
    for (const Json& s : elements(at(answer, "slots"))) {
        std::printf("slot %lld: %lld failures, backoff %lld ms%s\n",
                    static_cast<long long>(as_int(at(s, "slot"))),
                    static_cast<long long>(as_int(at(s, "failures"))),
                    static_cast<long long>(as_int(at(s, "backoff_ms"))),
                    as_bool(at(s, "degraded")) ? ", degraded" : "");
    }
    std::printf("\n");
    print_workers(at(answer, "workers"));
}

// The exposition text exactly as the master made it: Prometheus' format
// is line-oriented and ends with a newline of its own.
void print_metrics(const Json& answer) {
    const std::string text = as_string(at(answer, "text"));
    std::fwrite(text.data(), 1, text.size(), stdout);
}

}  // namespace

std::string confirmation(const std::vector<std::string>& command, const Json& answer) {
    const std::string& cmd = command.front();
    const std::string arg = command.size() > 1 ? command[1] : "";
    if (cmd == "reload") {
        return "reload: new generation " + std::to_string(as_int(at(answer, "generation"))) +
               " started";
    }
    if (cmd == "scale") {
        return "scale: " + std::to_string(as_int(at(answer, "workers"))) + " workers wanted";
    }
    if (cmd == "drain") return "drain: worker " + arg + " is being replaced and retired";
    if (cmd == "reopen") return "reopen: log files reopened";
    if (cmd == "quit") return "quit: graceful stop started";
    if (cmd == "stop") return "stop: fast stop started";
    // A command this proxyctl does not know, answered with nothing but ok.
    if (answer.is_object() && answer.size() == 1) return cmd + ": ok";
    return "";
}

void print_answer(const std::vector<std::string>& command, const Json& answer) {
    const std::string& cmd = command.front();
    if (cmd == "status") {
        print_status(answer);
    } else if (cmd == "workers") {
        print_workers(at(answer, "workers"));
    } else if (cmd == "users") {
        print_users(at(answer, "users"));
    } else if (cmd == "routes") {
        print_routes(at(answer, "routes"));
    } else if (cmd == "cluster") {
        print_cluster(answer);
    } else if (cmd == "metrics") {
        print_metrics(answer);
    } else if (std::string line = confirmation(command, answer); !line.empty()) {
        std::printf("%s\n", line.c_str());
    } else {
        print_fields(answer, "");
    }
}

}  // namespace master::proxyctl
