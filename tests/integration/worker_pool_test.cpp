// End-to-end tests of the elastic worker pool ("workers = auto") and of
// "max_connections = auto": each worker takes only as many sessions as its
// descriptor limit holds, and the master adds workers as the running ones
// fill and retires them when the load is gone. The limit is set low for the
// master (as prlimit(1) would) so that a few dozen tunnels fill a worker.
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConfigBuilder;
using harness::ProxydInstance;
using harness::RawClient;

// With 300 open files a worker holds (300 - 128 splice pipes - 1 listener -
// 64 fixed) / 3 = 35 sessions (common::max_connections_within()).
constexpr uint64_t kDescriptorLimit = 300;
constexpr int kPerWorker = 35;

ConfigBuilder elastic(int min, int max) {
    ConfigBuilder config;
    config.set("master", "workers", "auto");
    config.set("master", "workers_min", std::to_string(min));
    config.set("master", "workers_max", std::to_string(max));
    return config;
}

// Opens `count` tunnels to the sink, one after the other; the number that
// got "200" within 10 s each (a worker at capacity leaves a new client in the
// backlog until the pool has grown: it waits, it is not refused).
int open_tunnels(uint16_t proxy_port, uint16_t sink_port, int count,
                 std::vector<std::unique_ptr<RawClient>>& held) {
    const std::string sink = "127.0.0.1:" + std::to_string(sink_port);
    const std::string request = "CONNECT " + sink + " HTTP/1.1\r\nHost: " + sink + "\r\n\r\n";
    int ok = 0;
    for (int i = 0; i < count; ++i) {
        auto client = std::make_unique<RawClient>();
        if (!client->connect(proxy_port) || !client->send(request)) continue;
        auto answer = harness::read_connect_answer(*client, 10s);
        if (answer && answer->status == 200) ++ok;
        held.push_back(std::move(client));
    }
    return ok;
}

int64_t status_number(ProxydInstance& proxy, const char* key) {
    return proxy.status()[key].as_int();
}

TEST(MaxConnectionsAuto, IsWhatTheDescriptorLimitHolds) {
    ProxydInstance proxy(elastic(1, 1));
    proxy.set_descriptor_limit(kDescriptorLimit);
    ASSERT_TRUE(proxy.start());
    EXPECT_EQ(status_number(proxy, "max_connections"), kPerWorker);
    EXPECT_TRUE(
        proxy.wait_for_log("each worker takes up to 35 connections (open files limit 300, "
                           "max_connections = auto)"));
}

TEST(MaxConnectionsAuto, ANumberAboveTheLimitIsLoweredWithAWarning) {
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("limits", "max_connections", "1000");
    ProxydInstance proxy(config);
    proxy.set_descriptor_limit(kDescriptorLimit);
    ASSERT_TRUE(proxy.start());
    EXPECT_EQ(status_number(proxy, "max_connections"), kPerWorker);
    EXPECT_EQ(proxy.log_lines_with("[warn]").size(), 1u) << proxy.error_log();
    EXPECT_FALSE(proxy.log_lines_with("max_connections = 1000 needs").empty());
    EXPECT_FALSE(proxy.log_lines_with("each worker takes at most 35 connections").empty());

    // A full worker is not out of descriptors: every tunnel up to its
    // capacity opens, the next waits in the backlog (no 502), and gets its
    // answer as soon as a session ends.
    harness::HttpOrigin sink;
    std::vector<std::unique_ptr<RawClient>> held;
    EXPECT_EQ(open_tunnels(proxy.listener_port(), sink.port(), kPerWorker, held), kPerWorker);
    RawClient waiting;
    ASSERT_TRUE(waiting.connect(proxy.listener_port()));
    ASSERT_TRUE(waiting.send("CONNECT " + sink.host_port() +
                             " HTTP/1.1\r\nHost: " + sink.host_port() + "\r\n\r\n"));
    EXPECT_EQ(waiting.recv_some(1s), "");
    held.front()->close();
    auto answer = harness::read_connect_answer(waiting, 5s);
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status, 200);
    EXPECT_TRUE(proxy.log_lines_with("Too many open files").empty());
}

TEST(ElasticPool, GrowsAsWorkersFillAndShrinksWhenTheSessionsEnd) {
    ProxydInstance proxy(elastic(1, 3));
    proxy.set_descriptor_limit(kDescriptorLimit);
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kReplaced});
    ASSERT_TRUE(proxy.start());
    EXPECT_EQ(status_number(proxy, "target_workers"), 1);
    EXPECT_TRUE(proxy.status()["elastic"].boolean());

    // 90 tunnels: more than two workers hold, fewer than three.
    harness::HttpOrigin sink;
    std::vector<std::unique_ptr<RawClient>> held;
    constexpr int kTunnels = 90;
    EXPECT_EQ(open_tunnels(proxy.listener_port(), sink.port(), kTunnels, held), kTunnels);
    EXPECT_TRUE(harness::wait_for([&] { return proxy.exactly_running(3); }, 10s));
    int64_t sum = 0;
    harness::wait_for(
        [&] {
            sum = 0;
            for (const auto& w : proxy.workers()) sum += w.active_sessions;
            return sum == kTunnels;
        },
        5s);
    EXPECT_EQ(sum, kTunnels);
    for (const auto& w : proxy.workers()) EXPECT_LE(w.active_sessions, kPerWorker) << w.pid;
    EXPECT_FALSE(proxy.log_lines_with("growing the worker pool from 1 to 2").empty());
    EXPECT_TRUE(proxy.log_lines_with("Too many open files").empty());
    EXPECT_TRUE(proxy.log_lines_with("shrinking").empty());

    // The load gone, the extra workers are retired one at a time after 30
    // heartbeat intervals (200 ms here) each.
    held.clear();
    EXPECT_TRUE(
        harness::wait_for([&] { return status_number(proxy, "target_workers") == 1; }, 30s, 200ms));
    EXPECT_TRUE(harness::wait_for([&] { return proxy.exactly_running(1); }, 10s));
    EXPECT_EQ(proxy.log_lines_with("shrinking the worker pool").size(), 2u);
}

TEST(ElasticPool, AnOperatorsCountIsKeptUntilAReload) {
    ProxydInstance proxy(elastic(1, 4));
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kReplaced});
    ASSERT_TRUE(proxy.start());
    auto answer = proxy.control("scale 3");
    ASSERT_TRUE(answer);
    EXPECT_TRUE(harness::wait_for([&] { return proxy.exactly_running(3); }, 10s));
    EXPECT_FALSE(proxy.status()["elastic"].boolean());
    // Idle for more than 30 heartbeat intervals: a pool would have shrunk.
    std::this_thread::sleep_for(8s);
    EXPECT_EQ(status_number(proxy, "target_workers"), 3);
    EXPECT_TRUE(proxy.log_lines_with("shrinking").empty());

    // A reload that changes the bounds makes the pool elastic again.
    proxy.config().set("master", "workers_max", "2");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(proxy.signal(SIGHUP));
    EXPECT_TRUE(harness::wait_for([&] { return proxy.status()["elastic"].boolean(); }, 10s));
    EXPECT_EQ(status_number(proxy, "target_workers"), 2);
}

}  // namespace
