// The Prometheus endpoint end to end (issue 16): real HTTP, CONNECT and
// SOCKS traffic through build/proxyd, then /metrics read over HTTP and
// checked against the requests made and by promtool; nothing but
// GET/HEAD /metrics is served (never a proxy); the master answers while
// every worker is stopped; the `metrics` control command carries the same
// families; a worker killed from outside counts as a crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConfigBuilder;
using harness::CurlResult;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Json;
using harness::ProxydInstance;
using harness::RawClient;
using harness::wait_for;

// A proxyd with an HTTP and a SOCKS listener and the metrics endpoint on an
// ephemeral port.
ConfigBuilder metrics_config() {
    ConfigBuilder config;
    config.add_listener("main");
    config.add_listener("socks", "127.0.0.1:0", "socks5");
    config.set("metrics", "listen", "127.0.0.1:0");
    return config;
}

// The endpoint's port, as `status` reports the bound address.
uint16_t metrics_port(ProxydInstance& proxy) {
    const std::string address = proxy.status()["metrics"].str();
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return 0;
    return static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1));
}

// One request on a fresh connection; nullopt when no response came.
std::optional<HttpResponse> ask(uint16_t port, const std::string& request, bool head = false) {
    RawClient client;
    if (!client.connect(port)) return std::nullopt;
    if (!client.send(request)) return std::nullopt;
    auto started = harness::Clock::now();
    auto response = client.read_response(10s, head);
    if (harness::ms_since(started) > 2000) ADD_FAILURE() << "slow answer to " << request;
    return response;
}

std::string scrape(uint16_t port) {
    auto response = ask(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    return response && response->status == 200 ? response->body : std::string();
}

// sample ("name{labels}") -> value, from the text format.
std::map<std::string, double> samples_of(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const size_t space = line.rfind(' ');
        out[line.substr(0, space)] = std::atof(line.c_str() + space + 1);
    }
    return out;
}

double sample(const std::string& text, const std::string& name) {
    auto samples = samples_of(text);
    auto it = samples.find(name);
    return it == samples.end() ? -1 : it->second;
}

std::set<std::string> families_of(const std::string& text) {
    std::set<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# TYPE ", 0) == 0) out.insert(line);
    }
    return out;
}

std::string requests(const char* protocol, const char* status_class) {
    return std::string("proxyd_requests_total{protocol=\"") + protocol + "\",class=\"" +
           status_class + "\"}";
}

// Waits until the scraped text satisfies `done` (the workers report every
// heartbeat_interval); the last text scraped.
std::string scrape_until(uint16_t port, const std::function<bool(const std::string&)>& done) {
    std::string text;
    wait_for(
        [&] {
            text = scrape(port);
            return done(text);
        },
        15s, 100ms);
    return text;
}

bool have_promtool() {
    return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

TEST(Metrics, CountsRealTrafficAndPassesPromtool) {
    HttpOrigin origin;
    ProxydInstance proxy(metrics_config());
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0) << proxy.status()["metrics"].str();
    const uint16_t http = proxy.listener_port("main");
    const uint16_t socks = proxy.listener_port("socks");

    for (int i = 0; i < 3; ++i) {
        CurlResult ok = harness::curl_via(http, {origin.url("/bytes/1000")});
        ASSERT_EQ(ok.exit_code, 0) << ok.err;
    }
    EXPECT_EQ(harness::curl_via(http, {origin.url("/status/404")}).exit_code, 0);
    EXPECT_EQ(harness::curl_via(http, {origin.url("/status/503")}).exit_code, 0);
    // A CONNECT tunnel (-p) and a SOCKS5 connect, each carrying one request.
    CurlResult tunnel = harness::curl_via(http, {"-p", origin.url("/bytes/10")});
    ASSERT_EQ(tunnel.exit_code, 0) << tunnel.err;
    CurlResult via_socks = harness::run_curl(
        {"--socks5", "127.0.0.1:" + std::to_string(socks), origin.url("/bytes/10")});
    ASSERT_EQ(via_socks.exit_code, 0) << via_socks.err;

    const std::string text = scrape_until(port, [](const std::string& t) {
        return sample(t, "proxyd_request_duration_seconds_count") == 7;
    });
    EXPECT_EQ(sample(text, requests("http", "2xx")), 3) << text;
    EXPECT_EQ(sample(text, requests("http", "4xx")), 1);
    EXPECT_EQ(sample(text, requests("http", "5xx")), 1);
    EXPECT_EQ(sample(text, requests("connect", "2xx")), 1);
    EXPECT_EQ(sample(text, requests("socks", "2xx")), 1);
    EXPECT_EQ(sample(text, requests("http", "other")), 0);
    EXPECT_EQ(sample(text, "proxyd_request_duration_seconds_bucket{le=\"+Inf\"}"), 7);
    EXPECT_EQ(sample(text, "proxyd_sessions_total"), 7);
    EXPECT_EQ(sample(text, "proxyd_tunnels_total"), 2);
    EXPECT_EQ(sample(text, "proxyd_workers{state=\"running\"}"), 2);
    EXPECT_EQ(sample(text, "proxyd_worker_restarts_total{reason=\"crash\"}"), 0);
    // The bodies alone: 3 x 1000 from the origin, and at least as much to
    // the clients (heads on top); requests went up.
    EXPECT_GE(sample(text, "proxyd_bytes_total{direction=\"from_upstream\"}"), 3020);
    EXPECT_GE(sample(text, "proxyd_bytes_total{direction=\"to_client\"}"), 3020);
    EXPECT_GT(sample(text, "proxyd_bytes_total{direction=\"from_client\"}"), 0);
    EXPECT_GT(sample(text, "proxyd_bytes_total{direction=\"to_upstream\"}"), 0);

    if (!have_promtool()) {
        GTEST_SKIP() << "promtool is not installed (Debian package prometheus): "
                        "the exposition was not linted";
    }
    const std::string file = proxy.path("metrics.txt");
    ASSERT_TRUE(harness::write_file(file, text));
    CurlResult lint =
        harness::run_program({"sh", "-c", "promtool check metrics < " + file + " 2>&1"});
    EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
    EXPECT_EQ(lint.out, "") << "promtool: " << lint.out;
}

TEST(Metrics, ServesOnlyGetAndHeadOfMetrics) {
    HttpOrigin origin;
    ProxydInstance proxy(metrics_config());
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);

    auto get = ask(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 200);
    EXPECT_EQ(get->header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(get->body.find("# TYPE proxyd_requests_total counter\n"), std::string::npos);

    // HEAD: the length of the GET, no body: the next answer on the same
    // connection starts right after the head.
    RawClient client;
    ASSERT_TRUE(client.connect(port));
    ASSERT_TRUE(client.send("HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    auto head = client.read_response(10s, true);
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, 200);
    EXPECT_EQ(head->body, "");
    EXPECT_TRUE(head->header("Content-Length"));
    ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    auto after = client.read_response(10s);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->status, 200);
    EXPECT_EQ(after->body.rfind("# HELP proxyd_", 0), 0u);

    auto other = ask(port, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    auto post = ask(port, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405);
    EXPECT_EQ(post->header("Allow").value_or(""), "GET, HEAD");

    // Never a proxy: absolute-form and CONNECT requests reach no origin.
    auto absolute = ask(port, "GET " + origin.url("/metrics") +
                                  " HTTP/1.1\r\nHost: " + origin.host_port() + "\r\n\r\n");
    ASSERT_TRUE(absolute);
    EXPECT_EQ(absolute->status, 404);
    auto connect = ask(port, "CONNECT " + origin.host_port() +
                                 " HTTP/1.1\r\nHost: " + origin.host_port() + "\r\n\r\n");
    ASSERT_TRUE(connect);
    EXPECT_EQ(connect->status, 404);
    EXPECT_EQ(origin.connections_accepted(), 0);
}

// The endpoint is the master's: stopped workers do not stop it.
TEST(Metrics, AnswersWhileEveryWorkerIsStopped) {
    ProxydInstance proxy(metrics_config());
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    const std::vector<pid_t> workers = proxy.worker_pids();
    ASSERT_EQ(workers.size(), 2u);
    for (pid_t pid : workers) ASSERT_EQ(kill(pid, SIGSTOP), 0);
    auto started = harness::Clock::now();
    auto response = ask(port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const long long took = harness::ms_since(started);
    for (pid_t pid : workers) kill(pid, SIGCONT);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->body.find("proxyd_workers{state=\"running\"} 2\n"), std::string::npos)
        << response->body;
    EXPECT_LT(took, 3000);
}

TEST(Metrics, ControlCommandCarriesTheSameFamilies) {
    ProxydInstance proxy(metrics_config());
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    Json answer = proxy.control_json("metrics");
    ASSERT_TRUE(answer["ok"].boolean());
    const std::string text = answer["text"].str();
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(families_of(text), families_of(scrape(port)));
    EXPECT_NE(text.find("# TYPE proxyd_worker_restarts_total counter\n"), std::string::npos);
}

TEST(Metrics, StatusSaysOffByDefault) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    EXPECT_EQ(proxy.status()["metrics"].str(), "off");
    // The command works without the endpoint.
    EXPECT_TRUE(proxy.control_json("metrics")["ok"].boolean());
}

TEST(Metrics, AWorkerKilledFromOutsideIsACrashRestart) {
    ProxydInstance proxy(metrics_config());
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kExited});
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    const std::vector<pid_t> workers = proxy.worker_pids();
    ASSERT_FALSE(workers.empty());
    ASSERT_EQ(kill(workers[0], SIGKILL), 0);
    const std::string crash = "proxyd_worker_restarts_total{reason=\"crash\"}";
    const std::string text =
        scrape_until(port, [&](const std::string& t) { return sample(t, crash) == 1; });
    EXPECT_EQ(sample(text, crash), 1) << text;
    EXPECT_EQ(sample(text, "proxyd_worker_restarts_total{reason=\"hung\"}"), 0);
    EXPECT_EQ(sample(text, "proxyd_worker_restarts_total{reason=\"recycled\"}"), 0);
}

// A worker that stops reporting is aborted and replaced: a "hung" restart,
// not a crash, though it dies by a signal.
TEST(Metrics, AHungWorkerIsAHungRestart) {
    ConfigBuilder config = metrics_config();
    config.set("master", "workers", "1");
    config.set("master", "heartbeat_interval", "100ms");
    config.set("master", "heartbeat_timeout", "1s");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kAborted});
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    const std::vector<pid_t> workers = proxy.worker_pids();
    ASSERT_EQ(workers.size(), 1u);
    ASSERT_EQ(kill(workers[0], SIGSTOP), 0);
    const std::string hung = "proxyd_worker_restarts_total{reason=\"hung\"}";
    const std::string text =
        scrape_until(port, [&](const std::string& t) { return sample(t, hung) == 1; });
    EXPECT_EQ(sample(text, hung), 1) << text;
    EXPECT_EQ(sample(text, "proxyd_worker_restarts_total{reason=\"crash\"}"), 0);
}

// worker_max_sessions reached: the worker is recycled.
TEST(Metrics, ARecycledWorkerIsARecycledRestart) {
    HttpOrigin origin;
    ConfigBuilder config = metrics_config();
    config.set("master", "workers", "1");
    config.set("master", "worker_max_sessions", "1");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kReplaced});
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    ASSERT_EQ(harness::curl_via(proxy.listener_port("main"), {origin.url("/")}).exit_code, 0);
    const std::string recycled = "proxyd_worker_restarts_total{reason=\"recycled\"}";
    const std::string text =
        scrape_until(port, [&](const std::string& t) { return sample(t, recycled) >= 1; });
    EXPECT_GE(sample(text, recycled), 1) << text;
    EXPECT_EQ(sample(text, "proxyd_worker_restarts_total{reason=\"crash\"}"), 0);
}

// The new master of a hot upgrade adopts the socket: same address, no gap
// for a scraper, and the answers are its own.
TEST(Metrics, AHotUpgradeKeepsTheEndpoint) {
    ProxydInstance proxy(metrics_config());
    ASSERT_TRUE(proxy.start());
    const uint16_t port = metrics_port(proxy);
    ASSERT_NE(port, 0);
    const pid_t old_master = proxy.master_pid();
    ASSERT_TRUE(proxy.signal(SIGUSR2));
    EXPECT_EQ(proxy.wait_exit_code(15s), 0);
    Json status = proxy.status();
    EXPECT_NE(status["master_pid"].as_int(), old_master);
    EXPECT_EQ(metrics_port(proxy), port);
    const std::string text = scrape(port);
    EXPECT_EQ(sample(text, "proxyd_workers{state=\"running\"}"), 2) << text;
}

TEST(Metrics, ABadListenValueNamesFileAndLine) {
    ProxydInstance proxy(ConfigBuilder().set("metrics", "listen", "localhost:9145"));
    ASSERT_TRUE(proxy.write_config());
    CurlResult test =
        harness::run_program({harness::proxyd_bin(), "-t", "-c", proxy.config_path()});
    EXPECT_NE(test.exit_code, 0);
    const size_t at = test.err.find(proxy.config_path() + ":");
    ASSERT_NE(at, std::string::npos) << test.err;
    EXPECT_TRUE(
        std::isdigit(static_cast<unsigned char>(test.err[at + proxy.config_path().size() + 1])))
        << test.err;
    EXPECT_NE(test.err.find("\"listen\" in [metrics]"), std::string::npos) << test.err;
    EXPECT_NE(test.err.find("not off or a numeric address"), std::string::npos) << test.err;
}

}  // namespace
