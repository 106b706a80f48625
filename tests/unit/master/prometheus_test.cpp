// The Prometheus text format of the master's snapshot: families from the
// metric table, labels escaped, histogram buckets cumulative, and the
// endpoint's routing of requests (only GET/HEAD /metrics is ours).
#include "master/prometheus.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "master/metrics_endpoint.h"

namespace master::prometheus {
namespace {

namespace m = common::metrics;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// sample line ("name{labels}") -> value
std::map<std::string, std::string> samples_of(const std::string& text) {
    std::map<std::string, std::string> out;
    for (const std::string& line : lines_of(text)) {
        if (line.empty() || line[0] == '#') continue;
        const size_t space = line.rfind(' ');
        out[line.substr(0, space)] = line.substr(space + 1);
    }
    return out;
}

Snapshot sample_snapshot() {
    Snapshot s;
    s.totals.active_sessions = 3;
    s.totals.total_sessions = 40;
    s.totals.exchanges[m::kProtocolHttp * m::kStatusClassCount + m::kStatus2xx] = 7;
    s.totals.exchanges[m::kProtocolSocks * m::kStatusClassCount + m::kStatus5xx] = 2;
    s.totals.exchange_bytes[m::kToClient] = 1234;
    s.totals.errors[common::channel::kErrDenied] = 5;
    s.totals.upstream_connect_errors[m::kConnectRefused] = 1;
    s.workers_by_state = {1, 2, 0};
    s.restarts[kRestartCrash] = 4;
    return s;
}

TEST(Prometheus, EveryLineIsAHeaderOrASample) {
    const std::string text = render(sample_snapshot());
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    const std::regex help("# HELP proxyd_[a-z_]+ [^\n]+");
    const std::regex type("# TYPE proxyd_[a-z_]+ (counter|gauge|histogram)");
    const std::regex sample(
        "proxyd_[a-z_]+(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? [0-9.]+");
    for (const std::string& line : lines_of(text)) {
        EXPECT_TRUE(std::regex_match(line, help) || std::regex_match(line, type) ||
                    std::regex_match(line, sample))
            << line;
    }
}

// Each family once, HELP then TYPE right before its samples; counters end
// in _total.
TEST(Prometheus, FamiliesAreDeclaredOnceWithTheirType) {
    const std::vector<std::string> lines = lines_of(render(sample_snapshot()));
    std::map<std::string, std::string> types;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind("# TYPE ", 0) != 0) continue;
        std::istringstream in(lines[i].substr(7));
        std::string name, type;
        in >> name >> type;
        EXPECT_TRUE(types.emplace(name, type).second) << "twice: " << name;
        ASSERT_GT(i, 0u);
        EXPECT_EQ(lines[i - 1].rfind("# HELP " + name + " ", 0), 0u) << name;
        if (type == "counter") {
            EXPECT_TRUE(name.ends_with("_total")) << name;
        }
    }
    for (const char* family : {"proxyd_workers", "proxyd_active_sessions", "proxyd_sessions_total",
                               "proxyd_requests_total", "proxyd_bytes_total",
                               "proxyd_worker_restarts_total", "proxyd_request_duration_seconds",
                               "proxyd_upstream_connect_errors_total", "proxyd_errors_total"}) {
        EXPECT_TRUE(types.count(family)) << family;
    }
    EXPECT_EQ(types["proxyd_request_duration_seconds"], "histogram");
    EXPECT_EQ(types["proxyd_active_sessions"], "gauge");
    // Superseded or per-worker metrics are not exported.
    EXPECT_FALSE(types.count("proxyd_rss_bytes"));
    EXPECT_FALSE(types.count("proxyd_bytes_in_total"));
}

TEST(Prometheus, ValuesComeFromTheSnapshot) {
    const auto samples = samples_of(render(sample_snapshot()));
    EXPECT_EQ(samples.at("proxyd_active_sessions"), "3");
    EXPECT_EQ(samples.at("proxyd_sessions_total"), "40");
    EXPECT_EQ(samples.at("proxyd_requests_total{protocol=\"http\",class=\"2xx\"}"), "7");
    EXPECT_EQ(samples.at("proxyd_requests_total{protocol=\"socks\",class=\"5xx\"}"), "2");
    EXPECT_EQ(samples.at("proxyd_requests_total{protocol=\"connect\",class=\"other\"}"), "0");
    EXPECT_EQ(samples.at("proxyd_bytes_total{direction=\"to_client\"}"), "1234");
    EXPECT_EQ(samples.at("proxyd_errors_total{class=\"denied\"}"), "5");
    EXPECT_EQ(samples.at("proxyd_upstream_connect_errors_total{class=\"refused\"}"), "1");
    EXPECT_EQ(samples.at("proxyd_workers{state=\"starting\"}"), "1");
    EXPECT_EQ(samples.at("proxyd_workers{state=\"running\"}"), "2");
    EXPECT_EQ(samples.at("proxyd_workers{state=\"draining\"}"), "0");
    EXPECT_EQ(samples.at("proxyd_worker_restarts_total{reason=\"crash\"}"), "4");
    EXPECT_EQ(samples.at("proxyd_worker_restarts_total{reason=\"hung\"}"), "0");
    EXPECT_EQ(samples.at("proxyd_worker_restarts_total{reason=\"recycled\"}"), "0");
}

// Workers count per bucket; the format wants each bucket to hold every
// observation at or below its bound, +Inf all of them, and _count too.
TEST(Prometheus, HistogramBucketsAreCumulative) {
    Snapshot s;
    s.totals.request_duration[0] = 2;                                  // <= 5 ms
    s.totals.request_duration[3] = 1;                                  // <= 50 ms
    s.totals.request_duration[m::kDurationBucketCount - 1] = 1;        // > 300 s
    s.totals.request_duration[m::kDurationBucketCount] = 400'001'500;  // sum in us
    const auto samples = samples_of(render(s));
    const std::string name = "proxyd_request_duration_seconds";
    EXPECT_EQ(samples.at(name + "_bucket{le=\"0.005\"}"), "2");
    EXPECT_EQ(samples.at(name + "_bucket{le=\"0.025\"}"), "2");
    EXPECT_EQ(samples.at(name + "_bucket{le=\"0.05\"}"), "3");
    EXPECT_EQ(samples.at(name + "_bucket{le=\"300\"}"), "3");
    EXPECT_EQ(samples.at(name + "_bucket{le=\"+Inf\"}"), "4");
    EXPECT_EQ(samples.at(name + "_count"), "4");
    EXPECT_EQ(samples.at(name + "_sum"), "400.001500");
    // Buckets in ascending order, +Inf last.
    const std::string text = render(s);
    EXPECT_LT(text.find("le=\"0.005\""), text.find("le=\"0.01\""));
    EXPECT_LT(text.find("le=\"300\""), text.find("le=\"+Inf\""));
    EXPECT_LT(text.find("le=\"+Inf\""), text.find(name + "_sum"));
}

TEST(Prometheus, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value("plain"), "plain");
    EXPECT_EQ(escape_label_value("a\"b"), "a\\\"b");
    EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
    EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
    EXPECT_EQ(escape_label_value("é"), "é");  // UTF-8 passes as is
    Snapshot s;
    s.user_sessions = {{"al\"ice", 3}, {"b\\ob\n", 1}};
    s.routes = {RouteSample{"par\"ent@192.0.2.7", 1, 9, 2, false}};
    const auto samples = samples_of(render(s));
    EXPECT_EQ(samples.at("proxyd_user_sessions_total{user=\"al\\\"ice\"}"), "3");
    EXPECT_EQ(samples.at("proxyd_user_sessions_total{user=\"b\\\\ob\\n\"}"), "1");
    EXPECT_EQ(samples.at("proxyd_route_sessions_total{route=\"par\\\"ent@192.0.2.7\"}"), "9");
    EXPECT_EQ(samples.at("proxyd_route_failures_total{route=\"par\\\"ent@192.0.2.7\"}"), "2");
    EXPECT_EQ(samples.at("proxyd_route_active_sessions{route=\"par\\\"ent@192.0.2.7\"}"), "1");
    EXPECT_EQ(samples.at("proxyd_route_up{route=\"par\\\"ent@192.0.2.7\"}"), "0");
}

TEST(Prometheus, FamiliesWithoutSamplesAreLeftOut) {
    const std::string text = render(Snapshot{});
    EXPECT_EQ(text.find("proxyd_user_sessions_total"), std::string::npos);
    EXPECT_EQ(text.find("proxyd_route_"), std::string::npos);
    // Zeros are samples: a fresh proxyd shows every family of the table.
    EXPECT_NE(text.find("proxyd_requests_total{protocol=\"http\",class=\"2xx\"} 0\n"),
              std::string::npos);
}

TEST(PrometheusEndpoint, OnlyGetAndHeadOfMetricsAreServed) {
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "/metrics"), 200);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_HEAD, "/metrics"), 200);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "/metrics?name[]=x"), 200);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_POST, "/metrics"), 405);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_DELETE, "/metrics"), 405);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "/"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "/metrics/"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "/metricsx"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "http://127.0.0.1:9145/metrics"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, "//evil.example/metrics"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_CONNECT, "example.com:443"), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, ""), 404);
    EXPECT_EQ(metrics_status(EVHTTP_REQ_GET, nullptr), 404);
}

}  // namespace
}  // namespace master::prometheus
