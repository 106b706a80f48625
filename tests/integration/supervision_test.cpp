// The master ending its workers, end to end (issue 13): worker_max_rss
// recycling, graceful_timeout expiry after a reload, max_draining_generations,
// the SIGABRT -> SIGKILL escalation of a hung worker, and accept balancing.
//
// Every test reads pids from `workers` and checks them against /proc, and
// reads time from the error log's own timestamps: a deadline the master keeps
// (graceful_timeout, the abort grace) is asserted as the distance between two
// of its log lines, which a loaded machine cannot shorten. Upper bounds are
// generous. The harness config has heartbeat_interval = 200ms,
// heartbeat_timeout = 5s and graceful_timeout = 5s unless a test says
// otherwise.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConfigBuilder;
using harness::echo_handler;
using harness::Json;
using harness::Millis;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::wait_for;
using Event = harness::ProxydInstance::WorkerEvent;

std::optional<ProxydInstance::Worker> row_of(ProxydInstance& proxy, pid_t pid) {
    for (const ProxydInstance::Worker& row : proxy.workers()) {
        if (row.pid == pid) return row;
    }
    return std::nullopt;
}

// The one worker listed, when exactly one is and it runs.
std::optional<ProxydInstance::Worker> only_running(ProxydInstance& proxy) {
    std::vector<ProxydInstance::Worker> rows = proxy.workers();
    if (rows.size() != 1 || rows[0].state != "running") return std::nullopt;
    return rows[0];
}

// The milliseconds of the "YYYY-MM-DD HH:MM:SS.mmm" that starts a log line
// (as if it were UTC: only differences are used); nullopt when absent.
std::optional<int64_t> log_time_ms(const std::string& line) {
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

// The time of the first error log line holding `needle`.
std::optional<int64_t> first_log_time(const ProxydInstance& proxy, const std::string& needle) {
    std::vector<std::string> lines = proxy.log_lines_with(needle);
    if (lines.empty()) return std::nullopt;
    return log_time_ms(lines.front());
}

// Milliseconds from the first line holding `from` to the first holding `to`;
// -1 when either is missing.
int64_t log_gap_ms(const ProxydInstance& proxy, const std::string& from, const std::string& to) {
    std::optional<int64_t> a = first_log_time(proxy, from);
    std::optional<int64_t> b = first_log_time(proxy, to);
    return a && b ? *b - *a : -1;
}

// Offset of `needle` in the error log; npos when absent.
size_t log_offset(const ProxydInstance& proxy, const std::string& needle) {
    return proxy.error_log().find(needle);
}

std::string worker_tag(pid_t pid) {
    return "(pid " + std::to_string(pid);
}

// An HTTP CONNECT tunnel through the proxy to 127.0.0.1:`target`; null
// (with a failure) when the proxy did not answer 200.
std::unique_ptr<RawClient> open_tunnel(uint16_t proxy_port, uint16_t target) {
    auto client = std::make_unique<RawClient>();
    const std::string authority = "127.0.0.1:" + std::to_string(target);
    if (!client->connect(proxy_port) ||
        !client->send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n")) {
        ADD_FAILURE() << "cannot send CONNECT to the proxy";
        return nullptr;
    }
    std::optional<harness::HttpResponse> head = client->read_response(10s, /*head=*/true);
    if (!head || head->status != 200) {
        ADD_FAILURE() << "CONNECT answered " << (head ? head->status : 0);
        return nullptr;
    }
    return client;
}

// Sends `message` through an echoing tunnel; true when exactly it came back.
bool echoes(RawClient& tunnel, const std::string& message) {
    if (!tunnel.send(message)) return false;
    std::string back;
    auto deadline = harness::Clock::now() + 10s;
    while (back.size() < message.size() && harness::Clock::now() < deadline) {
        std::string part = tunnel.recv_some(1s);
        if (part.empty() && tunnel.eof()) return false;
        back += part;
    }
    return back == message;
}

// An origin that answers any request with a chunked body of `size` bytes of
// pattern_bytes(size) in 64 KiB chunks. Chunked bodies always pass through
// the worker's own buffers (never splice), so a client that does not read
// makes the worker hold up to buffer_size bytes: that is how a test grows a
// worker's resident memory on purpose.
RawTcpServer::Handler chunked_body_handler(size_t size) {
    return [size](int fd, const std::atomic<bool>& stopping) {
        std::string head;
        char buf[4096];
        while (head.find("\r\n\r\n") == std::string::npos && !stopping) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return;
            head.append(buf, static_cast<size_t>(n));
        }
        const std::string body = harness::pattern_bytes(size);
        std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (size_t off = 0; off < body.size(); off += 65536) {
            size_t n = std::min<size_t>(65536, body.size() - off);
            char line[32];
            std::snprintf(line, sizeof line, "%zx\r\n", n);
            out += line;
            out.append(body, off, n);
            out += "\r\n";
        }
        out += "0\r\n\r\n";
        // send_all gives up on the first error: poll so that a stop ends it.
        size_t sent = 0;
        while (sent < out.size() && !stopping) {
            pollfd p{fd, POLLOUT, 0};
            if (poll(&p, 1, 50) <= 0) continue;
            ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return;
            sent += static_cast<size_t>(n);
        }
    };
}

// Reads one chunked response of many megabytes from `client`: raw reads
// until the last chunk arrived, then one parse (RawClient::read_response
// parses its whole buffer after every read, too slow at this size).
std::optional<harness::HttpResponse> read_big_chunked_response(RawClient& client, Millis timeout) {
    std::string data;
    std::vector<char> buf(1 << 20);
    auto deadline = harness::Clock::now() + timeout;
    while (harness::Clock::now() < deadline) {
        pollfd p{client.fd(), POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(client.fd(), buf.data(), buf.size(), 0);
        if (n <= 0) return std::nullopt;
        data.append(buf.data(), static_cast<size_t>(n));
        if (data.size() < 5 || data.compare(data.size() - 5, 5, "0\r\n\r\n") != 0) continue;
        size_t consumed = 0;
        bool need_more = false;
        auto response = harness::parse_response(data, false, consumed, need_more);
        if (response || !need_more) return response;
    }
    return std::nullopt;
}

// The resident memory of an idle worker of `config` with one worker, after
// one request: measured on an instance of its own, since worker_max_rss must
// be in the config the tested instance starts with.
uint64_t idle_worker_rss(ConfigBuilder config) {
    config.set("master", "workers", "1");
    ProxydInstance probe(config);
    if (!probe.start()) return 0;
    harness::HttpOrigin origin;
    harness::CurlResult r = harness::curl_via(probe.listener_port(), {origin.url("/bytes/1000")});
    if (r.out != harness::pattern_bytes(1000)) return 0;
    std::optional<ProxydInstance::Worker> row = only_running(probe);
    return row ? harness::resident_bytes(row->pid) : 0;
}

// ---------------------------------------------------------------------------

// A worker over worker_max_rss is replaced, replacement first; the old one
// finishes the response in progress byte for byte, accepts nothing new, and
// is killed at graceful_timeout for the tunnel it still holds.
TEST(Supervision, WorkerOverMaxRssIsReplacedDrainedAndKilledAtGracefulTimeout) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS means nothing under ASan";
    constexpr size_t kBodySize = 48u << 20;
    // Long enough for the held response to pass on a loaded machine.
    constexpr int64_t kGraceMs = 7000;
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("master", "graceful_timeout", std::to_string(kGraceMs) + "ms");
    config.set("limits", "buffer_size", "24M");
    const uint64_t idle = idle_worker_rss(config);
    ASSERT_GT(idle, 0u);
    // 12 MiB above idle: unreachable by an idle worker, reached well before
    // the 24 MiB the held response fills.
    const uint64_t limit = idle + (12u << 20);
    config.set("master", "worker_max_rss", std::to_string(limit / 1024) + "k");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({Event::kReplaced, Event::kDrainKilled});
    ASSERT_TRUE(proxy.start());
    std::optional<ProxydInstance::Worker> first = only_running(proxy);
    ASSERT_TRUE(first);
    const pid_t old_pid = first->pid;

    RawTcpServer echo(echo_handler());
    std::unique_ptr<RawClient> held = open_tunnel(proxy.listener_port(), echo.port());
    ASSERT_TRUE(held && echoes(*held, "before"));
    // A response the client does not read yet: the worker buffers it.
    RawTcpServer big(chunked_body_handler(kBodySize));
    RawClient reader;
    ASSERT_TRUE(reader.connect(proxy.listener_port()));
    const std::string authority = "127.0.0.1:" + std::to_string(big.port());
    ASSERT_TRUE(reader.send("GET http://" + authority + "/big HTTP/1.1\r\nHost: " + authority +
                            "\r\n\r\n"));

    const std::string recycling = "recycling worker 0 " + worker_tag(old_pid) + "): rss ";
    ASSERT_TRUE(proxy.wait_for_log(recycling, 20s)) << proxy.error_log();
    pid_t new_pid = 0;
    ASSERT_TRUE(wait_for(
        [&] {
            std::vector<ProxydInstance::Worker> rows = proxy.workers();
            bool old_draining = false;
            for (const ProxydInstance::Worker& r : rows) {
                if (r.pid != old_pid && r.state == "running") new_pid = r.pid;
                if (r.pid == old_pid) old_draining = r.state == "draining";
            }
            return rows.size() == 2 && old_draining && new_pid != 0;
        },
        10s))
        << proxy.control("workers").value_or("no answer");
    // /proc agrees with the reports: the old worker still holds the response
    // it could not hand over, the new one is small.
    EXPECT_GT(harness::resident_bytes(old_pid), limit);
    const uint64_t new_rss = harness::resident_bytes(new_pid);
    EXPECT_GT(new_rss, 0u);
    EXPECT_LT(new_rss, limit);
    // Replacement first: started after the recycle decision, ready before
    // the old worker was told to drain.
    const size_t started = log_offset(proxy, "started worker 0 " + worker_tag(new_pid) + ")");
    const size_t ready =
        log_offset(proxy, "worker 0 " + worker_tag(new_pid) + ") of generation 1 is ready");
    const size_t draining = log_offset(proxy, "draining worker 0 " + worker_tag(old_pid) +
                                                  ", generation 1): its replacement is ready");
    ASSERT_NE(draining, std::string::npos) << proxy.error_log();
    EXPECT_LT(log_offset(proxy, recycling), started);
    EXPECT_LT(started, ready);
    EXPECT_LT(ready, draining);

    // The draining worker finishes the response in progress, byte for byte.
    const auto read_start = harness::Clock::now();
    std::optional<harness::HttpResponse> response = read_big_chunked_response(reader, 30s);
    const long long read_ms = harness::ms_since(read_start);
    ASSERT_TRUE(response) << "no complete response";
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body.size(), kBodySize);
    EXPECT_TRUE(response->body == harness::pattern_bytes(kBodySize));

    // New connections go to the replacement only.
    harness::HttpOrigin origin;
    harness::CurlResult r = harness::curl_via(proxy.listener_port(), {origin.url("/bytes/5000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, harness::pattern_bytes(5000));
    EXPECT_TRUE(wait_for(
        [&] {
            auto row = row_of(proxy, new_pid);
            return row && row->total_sessions == 1;
        },
        5s))
        << proxy.control("workers").value_or("no answer");
    std::optional<ProxydInstance::Worker> old_row = row_of(proxy, old_pid);
    ASSERT_TRUE(old_row) << "killed before graceful_timeout:\n" << proxy.error_log();
    EXPECT_EQ(old_row->total_sessions, 2);
    EXPECT_TRUE(echoes(*held, "still draining"));

    // The tunnel keeps it past graceful_timeout: SIGKILL, and the tunnel ends.
    const std::string kill_line = "worker 0 " + worker_tag(old_pid) +
                                  ") did not finish draining within " + std::to_string(kGraceMs) +
                                  " ms, sending SIGKILL";
    ASSERT_TRUE(proxy.wait_for_log(kill_line, 20s)) << proxy.error_log();
    EXPECT_TRUE(held->wait_closed(5s));
    EXPECT_TRUE(wait_for([&] { return !harness::process_alive(old_pid); }, 5s));
    EXPECT_TRUE(proxy.wait_for_log("worker 0 " + worker_tag(old_pid) + ") killed by signal 9"));
    const int64_t gap = log_gap_ms(proxy, "draining worker 0 " + worker_tag(old_pid), kill_line);
    EXPECT_GE(gap, kGraceMs);
    EXPECT_LE(gap, kGraceMs + 10000);
    std::optional<ProxydInstance::Worker> last = only_running(proxy);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->pid, new_pid);
    std::printf(
        "[ info     ] idle rss %llu KiB, limit %llu KiB; response read in %lld ms; drain to "
        "SIGKILL %lld ms\n",
        static_cast<unsigned long long>(idle / 1024), static_cast<unsigned long long>(limit / 1024),
        read_ms, static_cast<long long>(gap));
}

// After a reload the old generation drains; a tunnel that stays open keeps
// it until graceful_timeout, when it is killed and the tunnel ends. Until
// then the tunnel works and new connections go to the new generation.
TEST(Supervision, ReloadKillsTheOldGenerationAtGracefulTimeout) {
    constexpr int64_t kGraceMs = 4000;
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("master", "graceful_timeout", std::to_string(kGraceMs) + "ms");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({Event::kDrainKilled});
    ASSERT_TRUE(proxy.start());
    std::optional<ProxydInstance::Worker> first = only_running(proxy);
    ASSERT_TRUE(first);
    const pid_t old_pid = first->pid;
    RawTcpServer echo(echo_handler());
    std::unique_ptr<RawClient> held = open_tunnel(proxy.listener_port(), echo.port());
    ASSERT_TRUE(held && echoes(*held, "generation 1"));

    ASSERT_TRUE(proxy.signal(SIGHUP));
    pid_t new_pid = 0;
    ASSERT_TRUE(wait_for(
        [&] {
            for (const ProxydInstance::Worker& r : proxy.workers()) {
                if (r.generation == 2 && r.state == "running") new_pid = r.pid;
            }
            auto old_row = row_of(proxy, old_pid);
            return new_pid != 0 && old_row && old_row->state == "draining";
        },
        10s))
        << proxy.control("workers").value_or("no answer");
    const std::string drain_line =
        "draining worker 0 " + worker_tag(old_pid) + ", generation 1): a newer generation is ready";
    EXPECT_TRUE(proxy.wait_for_log(drain_line)) << proxy.error_log();

    harness::HttpOrigin origin;
    harness::CurlResult r = harness::curl_via(proxy.listener_port(), {origin.url("/bytes/3000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, harness::pattern_bytes(3000));
    EXPECT_TRUE(wait_for(
        [&] {
            auto row = row_of(proxy, new_pid);
            return row && row->total_sessions == 1;
        },
        5s));
    EXPECT_TRUE(echoes(*held, "still draining"));
    EXPECT_TRUE(harness::process_alive(old_pid));

    const std::string kill_line = "worker 0 " + worker_tag(old_pid) +
                                  ") did not finish draining within " + std::to_string(kGraceMs) +
                                  " ms, sending SIGKILL";
    ASSERT_TRUE(proxy.wait_for_log(kill_line, 15s)) << proxy.error_log();
    EXPECT_TRUE(held->wait_closed(5s));
    EXPECT_TRUE(wait_for([&] { return !harness::process_alive(old_pid); }, 5s));
    const int64_t gap = log_gap_ms(proxy, drain_line, kill_line);
    EXPECT_GE(gap, kGraceMs);
    EXPECT_LE(gap, kGraceMs + 10000);
    std::optional<ProxydInstance::Worker> last = only_running(proxy);
    ASSERT_TRUE(last);
    EXPECT_EQ(last->pid, new_pid);
}

// One tunnel per generation keeps each draining (graceful_timeout is long);
// the reload that makes a third old generation kills the oldest one only.
TEST(Supervision, ReloadBeyondMaxDrainingGenerationsKillsTheOldest) {
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("master", "graceful_timeout", "60s");
    config.set("master", "max_draining_generations", "2");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({Event::kDrainKilled});
    ASSERT_TRUE(proxy.start());
    RawTcpServer echo(echo_handler());

    std::vector<pid_t> pids;  // pids[i]: the worker of generation i + 1
    std::vector<std::unique_ptr<RawClient>> tunnels;
    for (int generation = 1; generation <= 3; ++generation) {
        std::optional<ProxydInstance::Worker> current;
        ASSERT_TRUE(wait_for(
            [&] {
                for (const ProxydInstance::Worker& r : proxy.workers()) {
                    if (r.generation == generation && r.state == "running") current = r;
                }
                return current.has_value();
            },
            10s))
            << proxy.control("workers").value_or("no answer");
        // The older generations drain: the tunnel lands on this one.
        tunnels.push_back(open_tunnel(proxy.listener_port(), echo.port()));
        ASSERT_TRUE(tunnels.back() && echoes(*tunnels.back(), "hello"));
        EXPECT_TRUE(wait_for(
            [&] {
                auto row = row_of(proxy, current->pid);
                return row && row->active_sessions == 1;
            },
            5s))
            << proxy.control("workers").value_or("no answer");
        pids.push_back(current->pid);
        ASSERT_TRUE(proxy.signal(SIGHUP));
        ASSERT_TRUE(proxy.wait_for_log("configuration reloaded: generation " +
                                       std::to_string(generation + 1)));
    }
    // Generation 4 started: 1, 2 and 3 would drain, one more than allowed.
    const std::string kill_line = "too many generations draining: killing worker 0 " +
                                  worker_tag(pids[0]) + ") of generation 1";
    ASSERT_TRUE(proxy.wait_for_log(kill_line)) << proxy.error_log();
    EXPECT_TRUE(tunnels[0]->wait_closed(5s));
    EXPECT_TRUE(wait_for([&] { return !harness::process_alive(pids[0]); }, 5s));
    EXPECT_EQ(proxy.log_lines_with("too many generations draining").size(), 1u)
        << proxy.error_log();
    for (size_t i = 1; i < 3; ++i) {
        EXPECT_TRUE(harness::process_alive(pids[i])) << "generation " << i + 1;
        // Generation 3 drains only once generation 4's worker has reported,
        // which can come after the kill on a loaded machine.
        std::optional<ProxydInstance::Worker> row;
        EXPECT_TRUE(wait_for(
            [&] {
                row = row_of(proxy, pids[i]);
                return row && row->state == "draining";
            },
            10s))
            << "generation " << i + 1 << ": " << proxy.control("workers").value_or("no answer");
        ASSERT_TRUE(row) << "generation " << i + 1;
        EXPECT_EQ(row->generation, static_cast<int>(i + 1));
        EXPECT_TRUE(echoes(*tunnels[i], "still here")) << "generation " << i + 1;
    }
}

// A stopped worker sends no report and cannot act on SIGABRT: after
// heartbeat_timeout it is aborted, a second later (the abort grace) killed,
// and a new worker serves in its slot.
TEST(Supervision, StoppedWorkerGetsSigabrtThenSigkillAndIsReplaced) {
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("master", "heartbeat_interval", "100ms");
    config.set("master", "heartbeat_timeout", "1s");
    ProxydInstance proxy(config);
    proxy.expect_worker_events({Event::kAborted});
    ASSERT_TRUE(proxy.start());
    std::optional<ProxydInstance::Worker> first = only_running(proxy);
    ASSERT_TRUE(first);
    const pid_t old_pid = first->pid;
    ASSERT_EQ(kill(old_pid, SIGSTOP), 0);

    const std::string tag = "worker 0 " + worker_tag(old_pid) + ")";
    ASSERT_TRUE(proxy.wait_for_log(tag + " sent no report for ", 15s)) << proxy.error_log();
    const std::string abort_line = proxy.log_lines_with(tag + " sent no report for ").front();
    EXPECT_NE(abort_line.find("(blocked: "), std::string::npos) << abort_line;
    EXPECT_NE(abort_line.find("to run, state T), sending SIGABRT"), std::string::npos)
        << abort_line;
    long long silent_ms = 0;
    const size_t at = abort_line.find("sent no report for ");
    std::sscanf(abort_line.c_str() + at, "sent no report for %lld ms", &silent_ms);
    EXPECT_GE(silent_ms, 1000) << abort_line;

    const std::string kill_line = tag + " still alive after SIGABRT, sending SIGKILL";
    ASSERT_TRUE(proxy.wait_for_log(kill_line, 10s)) << proxy.error_log();
    ASSERT_TRUE(proxy.wait_for_log(tag + " killed by signal 9", 10s)) << proxy.error_log();
    EXPECT_FALSE(harness::process_alive(old_pid));
    // SIGABRT stayed pending while it was stopped: the SIGKILL ended it.
    EXPECT_TRUE(proxy.log_lines_with(tag + " killed by signal 6").empty()) << proxy.error_log();
    const int64_t grace = log_gap_ms(proxy, tag + " sent no report for ", kill_line);
    EXPECT_GE(grace, 1000);
    EXPECT_LE(grace, 1000 + 10000);

    std::optional<ProxydInstance::Worker> replacement;
    ASSERT_TRUE(wait_for(
        [&] {
            replacement = only_running(proxy);
            return replacement && replacement->pid != old_pid;
        },
        10s))
        << proxy.control("workers").value_or("no answer");
    EXPECT_TRUE(harness::process_alive(replacement->pid));
    harness::HttpOrigin origin;
    harness::CurlResult r = harness::curl_via(proxy.listener_port(), {origin.url("/bytes/4000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, harness::pattern_bytes(4000));
}

// Opens `count` tunnels from `threads` client threads at once, each thread
// waiting `pace` after each tunnel; the tunnels stay open in `out`. Returns
// how many failed to open or echo.
int open_tunnels_concurrently(uint16_t proxy_port, uint16_t echo_port, int threads, int count,
                              Millis pace, std::vector<std::unique_ptr<RawClient>>& out) {
    std::atomic<int> failures{0};
    std::mutex mutex;
    std::vector<std::thread> clients;
    for (int t = 0; t < threads; ++t) {
        clients.emplace_back([&] {
            for (int i = 0; i < count / threads; ++i) {
                std::unique_ptr<RawClient> tunnel = open_tunnel(proxy_port, echo_port);
                if (!tunnel || !echoes(*tunnel, "ping")) ++failures;
                {
                    std::lock_guard lock(mutex);
                    out.push_back(std::move(tunnel));
                }
                std::this_thread::sleep_for(pace);
            }
        });
    }
    for (std::thread& t : clients) t.join();
    return failures.load();
}

// Worker 1 is stopped while the first tunnels arrive, so worker 0 holds them
// all, and must go on taking them however few worker 1 holds (a silent
// worker is no peer to step aside for). Once worker 1 runs again, the master
// pauses worker 0's accepts (and worker 0 yields them) while it holds more
// than the other, so the next tunnels make up for it: the two end within
// 20 % of the mean. Without balancing each would take about half of the new
// tunnels, leaving worker 1 with a third of all. Neither worker may be
// replaced on the way, so the counters are whole.
TEST(Supervision, AcceptsAreSpreadOverBothWorkers) {
    constexpr int kFirst = 24;
    constexpr int kThen = 48;
    constexpr int64_t kTotal = kFirst + kThen;
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    std::vector<ProxydInstance::Worker> before = proxy.workers();
    ASSERT_EQ(before.size(), 2u);
    RawTcpServer echo(echo_handler());
    std::vector<std::unique_ptr<RawClient>> tunnels;

    ASSERT_EQ(kill(before[1].pid, SIGSTOP), 0);
    int failures =
        open_tunnels_concurrently(proxy.listener_port(), echo.port(), 4, kFirst, 0ms, tunnels);
    ASSERT_EQ(kill(before[1].pid, SIGCONT), 0);
    ASSERT_EQ(failures, 0);
    // The master sees the imbalance in the reports and pauses worker 0.
    ASSERT_TRUE(wait_for(
        [&] {
            Json answer = proxy.control_json("workers");
            for (const Json& w : answer["workers"].items()) {
                if (w["pid"].as_int() == before[0].pid) {
                    return w["active_sessions"].as_int() == kFirst && w["paused"].boolean();
                }
            }
            return false;
        },
        5s))
        << proxy.control("workers").value_or("no answer");
    // Paced over a few heartbeats, so that the master sees the load reports.
    failures =
        open_tunnels_concurrently(proxy.listener_port(), echo.port(), 8, kThen, 150ms, tunnels);
    EXPECT_EQ(failures, 0);

    std::vector<ProxydInstance::Worker> held;
    EXPECT_TRUE(wait_for(
        [&] {
            held = proxy.workers();
            return held.size() == 2 && held[0].active_sessions + held[1].active_sessions == kTotal;
        },
        5s))
        << proxy.control("workers").value_or("no answer");
    ASSERT_EQ(held.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(held[i].pid, before[i].pid) << "a worker was replaced during the load";
        EXPECT_TRUE(harness::process_alive(held[i].pid));
        // Every session of this test is one of the tunnels.
        EXPECT_EQ(held[i].total_sessions, held[i].active_sessions) << "worker " << held[i].pid;
    }
    std::printf("[ info     ] tunnels per worker: %lld / %lld\n",
                static_cast<long long>(held[0].active_sessions),
                static_cast<long long>(held[1].active_sessions));
    for (const ProxydInstance::Worker& w : held) {
        EXPECT_LE(w.active_sessions * 2 * 10, kTotal * 12)
            << "worker " << w.pid << " holds " << w.active_sessions << " of " << kTotal;
    }
}

}  // namespace
