// Shared state across nodes (issue 17): two proxyd nodes naming one real
// redis-server (redis_server.h) hold per-user limits, destination budgets
// and sticky routes together; a node killed outright gives its leases back
// within the holder TTL; Redis killed under load and restarted leaves the
// nodes serving (on_redis_down = local) or refusing what needs it with a
// clear reason (deny), and sharing again once it is back.
//
// Timing: everything is polled with generous bounds; the only time asserted
// is the holder TTL's bound on a dead node's leases, with a wide margin.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <barrier>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/redis_server.h"
#include "tests/integration/users_fixture.h"

namespace {

using namespace std::chrono_literals;
using harness::base64;
using harness::basic;
using harness::Clock;
using harness::ConfigBuilder;
using harness::echo_handler;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Json;
using harness::Millis;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::read_at_least;
using harness::read_connect_answer;
using harness::RedisServer;
using harness::UsersFile;
using harness::wait_for;

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

const std::vector<std::string> kSources = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"};

class ClusterState : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!redis_.available()) GTEST_SKIP() << redis_.skip_reason();
        ASSERT_TRUE(users_.add("alice", "secret"));
    }

    // A node: [cluster] node = NAME, redis = the test's server, `workers`
    // workers, an auth = password HTTP listener with alice:secret.
    ConfigBuilder node_config(const std::string& name, int workers = 2,
                              const std::string& on_down = "local") {
        ConfigBuilder c;
        c.set("master", "workers", std::to_string(workers));
        c.set("auth", "users_file", "${dir}/users");
        c.set("cluster", "redis", redis_.address());
        c.set("cluster", "node", name);
        c.set("cluster", "on_redis_down", on_down);
        c.add_listener("main");
        c.set("listen main", "auth", "password");
        return c;
    }
    ProxydInstance* start_node(ConfigBuilder c) {
        auto node = std::make_unique<ProxydInstance>(std::move(c));
        if (!users_.write(node->path("users"))) {
            ADD_FAILURE() << "cannot write the users file";
            return nullptr;
        }
        if (!node->start(30s)) return nullptr;
        nodes_.push_back(std::move(node));
        return nodes_.back().get();
    }
    // Waits until every worker of `node` reports its Redis connection up.
    bool wait_connected(ProxydInstance& node, Millis timeout = 20s) {
        return wait_for(
            [&] {
                Json answer = node.control_json("cluster");
                return answer["workers_up"].as_int() > 0 &&
                       answer["workers_up"].as_int() == answer["workers"].as_int();
            },
            timeout, 50ms);
    }

    struct Tunnel {
        std::unique_ptr<RawClient> client = std::make_unique<RawClient>();
        std::optional<HttpResponse> response;
        int status() const { return response ? response->status : 0; }
    };
    std::string connect_request(const std::string& extra) const {
        const std::string authority = "127.0.0.1:" + std::to_string(echo_.port());
        return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n" + extra + "\r\n";
    }
    Tunnel open_tunnel(ProxydInstance& node, const std::string& user = "alice") {
        Tunnel t;
        if (!t.client->connect(node.listener_port()) ||
            !t.client->send(connect_request(basic(user, "secret")))) {
            ADD_FAILURE() << "cannot send CONNECT";
            return t;
        }
        t.response = read_connect_answer(*t.client, 30s);
        return t;
    }
    std::optional<HttpResponse> get(ProxydInstance& node, const std::string& path,
                                    const std::string& user = "alice") {
        RawClient client;
        if (!client.connect(node.listener_port())) return std::nullopt;
        if (!client.send("GET " + origin_.url(path) + " HTTP/1.1\r\nHost: " + origin_.host_port() +
                         "\r\n" + basic(user, "secret") + "\r\n")) {
            return std::nullopt;
        }
        return client.read_response(30s);
    }
    int get_status(ProxydInstance& node, const std::string& path,
                   const std::string& user = "alice") {
        auto r = get(node, path, user);
        return r ? r->status : 0;
    }

    // `count` CONNECTs at once, alternating between the nodes.
    std::vector<Tunnel> open_at_once(int count) {
        std::vector<Tunnel> tunnels(static_cast<size_t>(count));
        std::barrier<> sync(count);
        std::vector<std::thread> threads;
        for (int i = 0; i < count; ++i) {
            threads.emplace_back([&, i] {
                Tunnel& t = tunnels[static_cast<size_t>(i)];
                ProxydInstance& node = *nodes_[static_cast<size_t>(i) % nodes_.size()];
                bool connected = t.client->connect(node.listener_port());
                sync.arrive_and_wait();
                if (connected && t.client->send(connect_request(basic("alice", "secret")))) {
                    t.response = read_connect_answer(*t.client, 60s);
                }
            });
        }
        for (std::thread& t : threads) t.join();
        return tunnels;
    }
    // Leases alice holds in Redis, summed over holders (dead ones included).
    int redis_leases() {
        std::string values = redis_.cli({"HVALS", "proxyd:lease:user:alice"});
        int sum = 0;
        for (size_t at = 0; at < values.size();) {
            size_t end = values.find('\n', at);
            if (end == std::string::npos) end = values.size();
            sum += std::atoi(values.substr(at, end - at).c_str());
            at = end + 1;
        }
        return sum;
    }

    RedisServer redis_;
    UsersFile users_;
    HttpOrigin origin_;
    RawTcpServer echo_{echo_handler()};
    std::vector<std::unique_ptr<ProxydInstance>> nodes_;
};

// (a) max_sessions = 5 over two nodes of two workers each: of 16 CONNECTs
// at once, alternating between the nodes, exactly 5 tunnels, 11 refusals;
// closing them frees the count, and the same holds again.
TEST_F(ClusterState, UserLimitIsExactAcrossNodesUnderConcurrentOpens) {
    for (const char* name : {"node-a", "node-b"}) {
        ConfigBuilder c = node_config(name);
        c.set("user alice", "max_sessions", "5");
        ASSERT_TRUE(start_node(c));
        ASSERT_TRUE(wait_connected(*nodes_.back()));
    }
    for (int round = 1; round <= 2; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::vector<Tunnel> tunnels = open_at_once(16);
        int ok = 0, limited = 0;
        for (Tunnel& t : tunnels) {
            if (t.status() == 200) {
                ++ok;
            } else if (t.status() == 429) {
                ++limited;
                EXPECT_TRUE(
                    contains(t.response->header("Proxy-Status").value_or(""), "max_sessions"));
            } else {
                ADD_FAILURE() << "CONNECT answered " << t.status();
            }
        }
        EXPECT_EQ(ok, 5);
        EXPECT_EQ(limited, 11);
        EXPECT_EQ(redis_leases(), 5);
        tunnels.clear();
        EXPECT_TRUE(wait_for([&] { return redis_leases() == 0; }, 20s, 50ms))
            << redis_leases() << " leases left in Redis";
    }
}

// (b) destination_rate 0.01/s, burst 4, no queue: 12 requests alternating
// between the nodes pass 4 times in all, not 4 per node.
TEST_F(ClusterState, DestinationBudgetIsSharedAcrossNodes) {
    for (const char* name : {"node-a", "node-b"}) {
        ConfigBuilder c = node_config(name);
        c.set("limits", "destination_rate", "0.01");
        c.set("limits", "destination_burst", "4");
        c.set("limits", "destination_queue_timeout", "0s");
        ASSERT_TRUE(start_node(c));
        ASSERT_TRUE(wait_connected(*nodes_.back()));
    }
    int ok = 0, limited = 0;
    for (int i = 0; i < 12; ++i) {
        int status = get_status(*nodes_[static_cast<size_t>(i) % 2], "/budget");
        if (status == 200) ++ok;
        if (status == 429) ++limited;
    }
    EXPECT_EQ(ok, 4);
    EXPECT_EQ(limited, 8);
}

// (c) One session ID leaves from the same source address on both nodes.
TEST_F(ClusterState, SessionIdGetsTheSameRouteOnBothNodes) {
    std::string sources;
    for (const std::string& s : kSources) sources += (sources.empty() ? "" : ", ") + s;
    for (const char* name : {"node-a", "node-b"}) {
        ConfigBuilder c = node_config(name);
        c.set("route", "source_addresses", sources);
        ASSERT_TRUE(start_node(c));
        ASSERT_TRUE(wait_connected(*nodes_.back()));
    }
    std::set<std::string> used;
    for (int id = 0; id < 6; ++id) {
        const std::string user = "alice-session-c" + std::to_string(id);
        std::set<std::string> exits;
        for (int i = 0; i < 6; ++i) {
            auto r = get(*nodes_[static_cast<size_t>(i) % 2], "/peer", user);
            ASSERT_TRUE(r);
            ASSERT_EQ(r->status, 200) << r->body;
            exits.insert(r->body.substr(0, r->body.rfind(':')));
        }
        EXPECT_EQ(exits.size(), 1u) << user << " left from " << exits.size() << " addresses";
        used.insert(*exits.begin());
        EXPECT_NE(redis_.cli({"GET", "proxyd:route:sticky:alice:c" + std::to_string(id)}), "")
            << "no sticky value in Redis for " << user;
    }
    EXPECT_GE(used.size(), 2u) << "six session IDs all on one address";
}

// (d) A node SIGKILLed while it holds alice's two sessions: the other node
// refuses her until the dead node's holder expires, then serves her, within
// the holder TTL (10 s) plus one refresh and a margin.
TEST_F(ClusterState, KilledNodesLeasesExpireWithinTheBound) {
    for (const char* name : {"node-a", "node-b"}) {
        ConfigBuilder c = node_config(name, 1);
        c.set("user alice", "max_sessions", "2");
        ASSERT_TRUE(start_node(c));
        ASSERT_TRUE(wait_connected(*nodes_.back()));
    }
    ProxydInstance& a = *nodes_[0];
    ProxydInstance& b = *nodes_[1];
    std::vector<Tunnel> held;
    held.push_back(open_tunnel(a));
    held.push_back(open_tunnel(a));
    for (Tunnel& t : held) ASSERT_EQ(t.status(), 200);
    EXPECT_EQ(open_tunnel(b).status(), 429);
    // The whole node dies at once: its worker has no chance to give back.
    std::vector<pid_t> workers = a.worker_pids();
    for (pid_t pid : workers) kill(pid, SIGSTOP);
    ASSERT_TRUE(a.signal(SIGKILL));
    for (pid_t pid : workers) kill(pid, SIGKILL);
    ASSERT_TRUE(a.wait_exit(10s));
    auto killed = Clock::now();
    EXPECT_EQ(redis_leases(), 2) << "the dead node's leases should count until they expire";
    std::optional<Tunnel> served;
    EXPECT_TRUE(wait_for(
        [&] {
            Tunnel t = open_tunnel(b);
            if (t.status() != 200) return false;
            served.emplace(std::move(t));
            return true;
        },
        25s, 250ms));
    long long waited = ms_since(killed);
    std::printf("[ info     ] the dead node's leases were free after %lld ms\n", waited);
    EXPECT_LT(waited, 10000 + 3400 + 3000) << "holder TTL + a refresh interval + margin";
    held.clear();
}

// (e) Redis killed under load with on_redis_down = local: requests keep
// being served from each node's table; once Redis is back the nodes
// reconnect, write their holdings again and share the count again.
TEST_F(ClusterState, RedisKilledUnderLoadLocalKeepsServingAndResyncs) {
    for (const char* name : {"node-a", "node-b"}) {
        ConfigBuilder c = node_config(name);
        c.set("user alice", "max_sessions", "50");
        ASSERT_TRUE(start_node(c));
        ASSERT_TRUE(wait_connected(*nodes_.back()));
    }
    Tunnel kept = open_tunnel(*nodes_[0]);
    ASSERT_EQ(kept.status(), 200);
    std::atomic<bool> stop{false};
    std::atomic<int> served{0}, failed{0};
    std::vector<std::thread> load;
    for (int i = 0; i < 2; ++i) {
        load.emplace_back([&, i] {
            while (!stop) {
                int status = get_status(*nodes_[static_cast<size_t>(i)], "/load");
                (status == 200 ? served : failed)++;
            }
        });
    }
    ASSERT_TRUE(wait_for([&] { return served > 20; }, 20s));
    redis_.kill();
    for (auto& node : nodes_) EXPECT_TRUE(node->wait_for_log("is unreachable", 10s));
    int before = served;
    EXPECT_TRUE(wait_for([&] { return served > before + 20; }, 20s)) << "not served while down";
    ASSERT_TRUE(redis_.restart());
    for (auto& node : nodes_) {
        EXPECT_TRUE(node->wait_for_log("is reachable again", 20s));
        EXPECT_TRUE(wait_connected(*node));
    }
    stop = true;
    for (std::thread& t : load) t.join();
    EXPECT_EQ(failed, 0);
    // The tunnel opened before the outage is written back to the new Redis.
    EXPECT_TRUE(wait_for([&] { return redis_leases() == 1; }, 10s, 50ms)) << redis_leases();
    kept = Tunnel();
    EXPECT_TRUE(wait_for([&] { return redis_leases() == 0; }, 10s, 50ms)) << redis_leases();
    for (auto& node : nodes_) {
        // Once per worker (two), not once per request.
        EXPECT_LE(node->log_lines_with("is unreachable").size(), 2u)
            << "the outage was logged more than once per worker";
    }
}

// (e) With on_redis_down = deny: a user with a limit is refused with the
// reason while Redis is down (503, Proxy-Status naming it), a user without
// one is served; after restart alice is served again.
TEST_F(ClusterState, RedisDownDenyRefusesWhatNeedsItWithTheReason) {
    ASSERT_TRUE(users_.add("bob", "secret"));
    ConfigBuilder c = node_config("node-a", 2, "deny");
    c.set("user alice", "max_sessions", "5");
    ProxydInstance* node = start_node(c);
    ASSERT_TRUE(node);
    ASSERT_TRUE(wait_connected(*node));
    EXPECT_EQ(get_status(*node, "/before"), 200);
    redis_.kill();
    EXPECT_TRUE(node->wait_for_log("is unreachable", 10s));
    std::optional<HttpResponse> refused;
    EXPECT_TRUE(wait_for(
        [&] {
            refused = get(*node, "/down");
            return refused && refused->status == 503;
        },
        10s, 100ms));
    ASSERT_TRUE(refused);
    std::string status = refused->header("Proxy-Status").value_or("");
    EXPECT_TRUE(contains(status, "cluster store (Redis " + redis_.address() + ") is unreachable"))
        << status;
    EXPECT_TRUE(contains(refused->body, "is unreachable")) << refused->body;
    EXPECT_EQ(get_status(*node, "/unlimited", "bob"), 200)
        << "a user without a limit needs no store";
    ASSERT_TRUE(redis_.restart());
    EXPECT_TRUE(wait_connected(*node));
    EXPECT_TRUE(wait_for([&] { return get_status(*node, "/after") == 200; }, 10s, 100ms));
}

// (e) Redis paused (it keeps the connection but answers nothing): the
// command timeout drops the connection, requests are answered from the
// node's table meanwhile (a request waits the timeout at most), and after
// the pause the workers reconnect.
TEST_F(ClusterState, RedisPausedTimesOutAndRecovers) {
    ConfigBuilder c = node_config("node-a", 1);
    c.set("user alice", "max_sessions", "5");
    ProxydInstance* node = start_node(c);
    ASSERT_TRUE(node);
    ASSERT_TRUE(wait_connected(*node));
    redis_.pause();
    auto start = Clock::now();
    EXPECT_EQ(get_status(*node, "/paused"), 200);
    std::printf("[ info     ] a request while Redis is paused took %lld ms\n", ms_since(start));
    EXPECT_TRUE(node->wait_for_log("no answer within 500 ms", 10s));
    EXPECT_EQ(get_status(*node, "/paused-again"), 200);
    redis_.resume();
    // The reports come with the heartbeat: wait for one after the reconnect.
    Json cluster;
    EXPECT_TRUE(wait_for(
        [&] {
            cluster = node->control_json("cluster");
            return cluster["reconnects"].as_int() > 0 && cluster["state"].str() == "connected";
        },
        30s, 100ms))
        << node->control("cluster").value_or("");
    EXPECT_GE(cluster["fallbacks"].as_int(), 2);
    EXPECT_TRUE(contains(cluster["last_error"].str(), "no answer within 500 ms"))
        << cluster["last_error"].str();
}

// (f) The node's name in `status`, and the `cluster` answer and proxyctl's.
TEST_F(ClusterState, StatusAndClusterCommandNameTheNodeAndTheStore) {
    ProxydInstance* node = start_node(node_config("node-a"));
    ASSERT_TRUE(node);
    ASSERT_TRUE(wait_connected(*node));
    EXPECT_EQ(node->status()["node"].str(), "node-a");
    EXPECT_EQ(get_status(*node, "/x"), 200);
    Json cluster = node->control_json("cluster");
    EXPECT_EQ(cluster["node"].str(), "node-a");
    EXPECT_EQ(cluster["redis"].str(), redis_.address());
    EXPECT_EQ(cluster["state"].str(), "connected");
    EXPECT_GT(cluster["commands"].as_int(), 0);
    harness::CurlResult printed = harness::run_program(
        {harness::proxyctl_bin(), "-s", node->control_socket_path(), "cluster"}, 10s);
    EXPECT_EQ(printed.exit_code, 0) << printed.err;
    EXPECT_TRUE(contains(printed.out, "connected")) << printed.out;
    EXPECT_TRUE(contains(printed.out, redis_.address())) << printed.out;
}

// The cost: commands sent to Redis per request of a user with a limit (the
// lease, and its release when the session ends) and of one without (none),
// and the round trip as the workers measure it.
TEST_F(ClusterState, RoundTripsPerRequestAreMeasured) {
    ASSERT_TRUE(users_.add("bob", "secret"));
    ConfigBuilder c = node_config("node-a", 1);
    c.set("user alice", "max_sessions", "100");
    c.set("route", "source_addresses", "127.0.0.2, 127.0.0.3");
    ProxydInstance* node = start_node(c);
    ASSERT_TRUE(node);
    ASSERT_TRUE(wait_connected(*node));
    auto commands = [&] { return node->control_json("cluster")["commands"].as_int(); };
    // Counts reach the master with the heartbeat: wait for them to settle.
    auto settled = [&] {
        int64_t last = -1;
        wait_for(
            [&] {
                int64_t now = commands();
                bool same = now == last;
                last = now;
                return same;
            },
            10s, 1200ms);
        return last;
    };
    constexpr int kRequests = 40;
    // With a session ID the route comes from the worker's sticky cache but
    // about once a second: still about the lease and its release.
    for (const char* user : {"alice", "alice-session-rt", "bob"}) {
        int64_t before = settled();
        for (int i = 0; i < kRequests; ++i) ASSERT_EQ(get_status(*node, "/rt", user), 200);
        int64_t after = settled();
        double per_request = static_cast<double>(after - before) / kRequests;
        std::printf("[ info     ] %s: %.2f Redis commands per request (refreshes included)\n", user,
                    per_request);
        if (std::string(user) != "bob") {
            EXPECT_GE(per_request, 2.0);  // acquire, and the release sent when it ends
            EXPECT_LT(per_request, 2.5);
        } else {
            EXPECT_LT(per_request, 0.5) << "a user without a limit needs no Redis";
        }
    }
    Json cluster = node->control_json("cluster");
    std::printf("[ info     ] Redis round trip: %lld us average, %lld us max (last interval)\n",
                static_cast<long long>(cluster["latency_ewma_us"].as_int()),
                static_cast<long long>(cluster["latency_max_us"].as_int()));
    EXPECT_GT(cluster["latency_ewma_us"].as_int(), 0);
}

// (g) The metrics carry the redis series, and promtool accepts them.
TEST_F(ClusterState, MetricsHaveTheRedisSeries) {
    ConfigBuilder c = node_config("node-a", 1);
    c.set("metrics", "listen", "127.0.0.1:0");
    c.set("user alice", "max_sessions", "3");
    ProxydInstance* node = start_node(c);
    ASSERT_TRUE(node);
    ASSERT_TRUE(wait_connected(*node));
    EXPECT_EQ(get_status(*node, "/m"), 200);
    std::string text;
    EXPECT_TRUE(wait_for(
        [&] {
            text = node->control_json("metrics")["text"].str();
            return contains(text, "proxyd_redis_up 1") &&
                   !contains(text, "proxyd_redis_commands_total 0\n");
        },
        10s, 100ms))
        << text;
    for (const char* series :
         {"proxyd_redis_errors_total", "proxyd_redis_reconnects_total",
          "proxyd_redis_latency_seconds_bucket{le=\"0.0001\"}", "proxyd_redis_latency_seconds_sum",
          "proxyd_redis_latency_seconds_count", "proxyd_cluster_fallbacks_total",
          "proxyd_cluster_denials_total"}) {
        EXPECT_TRUE(contains(text, series)) << series;
    }
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
    }
    const std::string file = node->path("metrics.txt");
    ASSERT_TRUE(harness::write_file(file, text));
    harness::CurlResult lint =
        harness::run_program({"sh", "-c", "promtool check metrics < " + file + " 2>&1"}, 30s);
    EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
    EXPECT_EQ(lint.out, "") << "promtool: " << lint.out;
}

}  // namespace
