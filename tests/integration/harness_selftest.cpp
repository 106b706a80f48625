// Tests of the harness itself, with curl talking straight to its origins (no
// proxyd): when an end-to-end test fails, these say the harness is sound.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/redis_server.h"

namespace {

using namespace std::chrono_literals;
using harness::pattern_bytes;
using harness::sha256_hex;

TEST(Harness, PatternBytesAreDeterministicAndVaried) {
    EXPECT_EQ(pattern_bytes(1000), pattern_bytes(1000));
    EXPECT_NE(pattern_bytes(1000, 1), pattern_bytes(1000, 2));
    EXPECT_EQ(pattern_bytes(10), pattern_bytes(20).substr(0, 10));
    std::string p = pattern_bytes(1 << 16);
    EXPECT_NE(p.substr(0, 4096), p.substr(4096, 4096));
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Harness, JsonReadsControlAnswers) {
    auto j = harness::Json::parse(
        R"({"ok":true,"listeners":[{"name":"main","address":"127.0.0.1:41234","tls":false}],)"
        R"("workers":[{"pid":123,"state":"running","rss_bytes":1.5e6}],"s":"a\"b\u00e9"})");
    ASSERT_TRUE(j);
    EXPECT_TRUE((*j)["ok"].boolean());
    EXPECT_EQ((*j)["listeners"][0]["address"].str(), "127.0.0.1:41234");
    EXPECT_EQ((*j)["workers"][0]["pid"].as_int(), 123);
    EXPECT_EQ((*j)["workers"][0]["rss_bytes"].num(), 1.5e6);
    EXPECT_EQ((*j)["s"].str(), "a\"b\xc3\xa9");
    EXPECT_TRUE((*j)["missing"][3]["x"].is_null());
    EXPECT_FALSE(harness::Json::parse("{\"a\":1} trailing"));
    EXPECT_FALSE(harness::Json::parse("{\"a\":"));
}

TEST(Harness, ConfigBuilderRendersDefaultsAndOverrides) {
    harness::ConfigBuilder config;
    config.set("master", "workers", "3").set("limits", "upstream_timeout", "1s");
    std::string text = config.render("/tmp/x");
    EXPECT_NE(text.find("workers = 3"), std::string::npos);
    EXPECT_EQ(text.find("workers = 2"), std::string::npos);
    EXPECT_NE(text.find("control_socket = /tmp/x/proxyd.sock"), std::string::npos);
    EXPECT_NE(text.find("[listen main]"), std::string::npos);
    EXPECT_NE(text.find("[limits]\nupstream_timeout = 1s"), std::string::npos);
    EXPECT_EQ(config.workers(), 3);
    config.add_listener("other", "127.0.0.1:0", "socks5");
    EXPECT_EQ(config.render("/d").find("[listen main]"), std::string::npos);
}

TEST(Harness, OriginServesRoutesToCurl) {
    harness::HttpOrigin origin;
    auto r = harness::run_curl({origin.url("/bytes/100000"), origin.url("/chunked/70000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, pattern_bytes(100000) + pattern_bytes(70000));
    EXPECT_EQ(origin.connections_accepted(), 1);

    r = harness::run_curl({"-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary",
                           "hello world", origin.url("/echo")});
    EXPECT_EQ(r.out, "hello world");
    auto req = origin.last_request();
    ASSERT_TRUE(req);
    EXPECT_TRUE(req->chunked);
    EXPECT_EQ(req->body, "hello world");

    // /peer names the client's address: curl's, on loopback.
    r = harness::run_curl({"--interface", "127.0.0.2", origin.url("/peer")});
    EXPECT_EQ(r.out.rfind("127.0.0.2:", 0), 0u) << r.out << r.err;
    ASSERT_TRUE(origin.last_request());
    EXPECT_EQ(origin.last_request()->peer, r.out);

    r = harness::run_curl({"-I", origin.url("/bytes/5")});
    EXPECT_NE(r.out.find("Content-Length: 5"), std::string::npos) << r.out;
    r = harness::run_curl({"-w", "%{http_code}", origin.url("/status/204")});
    EXPECT_EQ(r.out, "204");
    r = harness::run_curl({origin.url("/close-mid-body/100000")}, 3s);
    EXPECT_NE(r.exit_code, 0);
    r = harness::run_curl({origin.url("/silent")}, 500ms);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_FALSE(r.timed_out);  // curl's own --max-time ended it
}

TEST(Harness, RawClientPipelinesAgainstOrigin) {
    harness::HttpOrigin origin;
    harness::RawClient client;
    ASSERT_TRUE(client.connect(origin.port()));
    std::string host = "Host: " + origin.host_port() + "\r\n\r\n";
    ASSERT_TRUE(client.send("HEAD /bytes/9 HTTP/1.1\r\n" + host + "GET /chunked/300 HTTP/1.1\r\n" +
                            host + "GET /status/304 HTTP/1.1\r\n" + host));
    auto a = client.read_response(5s, true);
    auto b = client.read_response();
    auto c = client.read_response();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->header("content-length").value_or(""), "9");
    EXPECT_EQ(b->body, pattern_bytes(300));
    EXPECT_EQ(c->status, 304);
    ASSERT_TRUE(client.send("GET /close HTTP/1.1\r\n" + host));
    auto d = client.read_response();
    ASSERT_TRUE(d);
    EXPECT_TRUE(client.wait_closed(2s));
}

TEST(Harness, TlsOriginServesWithItsCertificate) {
    harness::TlsOrigin origin;
    auto r = harness::run_curl({"--cacert", origin.cert_path(), origin.url("/bytes/300000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(sha256_hex(r.out), sha256_hex(pattern_bytes(300000)));
}

TEST(Harness, RawTcpServerResets) {
    harness::RawTcpServer server([](int fd, const std::atomic<bool>&) {
        linger hard{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    });
    auto r = harness::run_curl({"http://127.0.0.1:" + std::to_string(server.port()) + "/"}, 3s);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(server.connections_accepted(), 1);
}

}  // namespace

namespace {

// The teardown checks must bite: an alert line fails the test...
TEST(Harness, TeardownFailsOnAlertLine) {
    EXPECT_NONFATAL_FAILURE(
        {
            harness::ProxydInstance never_started;
            harness::write_file(never_started.error_log_path(),
                                "2026-11-28 13:45:01.123 [alert] 1234 worker 0: boom\n");
        },
        "[alert]");
}

// ...unless the test said it causes alerts; sanitizer reports always fail.
TEST(Harness, TeardownFailsOnSanitizerReportEvenWhenAlertsExpected) {
    EXPECT_NONFATAL_FAILURE(
        {
            harness::ProxydInstance never_started;
            never_started.expect_alerts();
            harness::write_file(never_started.error_log_path(),
                                "2026-11-28 13:45:01.123 [alert] 1234 worker 0: boom\n"
                                "==1234==ERROR: AddressSanitizer: heap-use-after-free\n");
        },
        "AddressSanitizer");
}

// ...and so does a process left behind (here a stand-in "worker").
TEST(Harness, TeardownFailsOnLeftoverProcessAndKillsIt) {
    static pid_t leftover = -1;
    EXPECT_NONFATAL_FAILURE(
        {
            harness::ProxydInstance never_started;
            leftover = ::fork();
            if (leftover == 0) {
                ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
                ::_exit(127);
            }
            harness::wait_for([] { return harness::process_alive(leftover); }, 2s);
            never_started.remember_pid(leftover);
        },
        "still alive");
    int status = 0;
    EXPECT_EQ(::waitpid(leftover, &status, 0), leftover);
    EXPECT_TRUE(WIFSIGNALED(status));
}

// ...and so does a worker event the test did not declare: each line below is
// the master's own wording (master/supervisor.cpp) for one kind of event.
TEST(Harness, TeardownFailsOnUndeclaredWorkerEvents) {
    using Event = harness::ProxydInstance::WorkerEvent;
    const std::vector<std::pair<std::string, Event>> lines = {
        {"[error] 1 master: worker 0 (pid 7) sent no report for 5012 ms (blocked: ...), "
         "sending SIGABRT",
         Event::kAborted},
        {"[error] 1 master: worker 0 (pid 7) still alive after SIGABRT, sending SIGKILL",
         Event::kAborted},
        {"[warn] 1 master: worker 0 (pid 7) killed by signal 6 (Aborted)", Event::kAborted},
        {"[warn] 1 master: worker 0 (pid 7) exited unexpectedly after 20 ms", Event::kExited},
        {"[error] 1 master: worker 0 (pid 7) killed by signal 9 (Killed)", Event::kExited},
        {"[error] 1 master: worker 0 (pid 7) exited with code 3", Event::kExited},
        {"[info] 1 master: recycling worker 0 (pid 7): rss 123 bytes is above worker_max_rss",
         Event::kReplaced},
        {"[info] 1 master: retiring worker 0 (pid 7) on request; starting its replacement",
         Event::kReplaced},
        {"[warn] 1 master: worker 0 (pid 7) did not finish draining within 5000 ms, sending "
         "SIGKILL",
         Event::kDrainKilled},
        {"[warn] 1 master: too many generations draining: killing worker 0 (pid 7) of "
         "generation 2",
         Event::kDrainKilled},
    };
    for (const auto& [line, event] : lines) {
        SCOPED_TRACE(line);
        harness::ProxydInstance never_started;
        harness::write_file(never_started.error_log_path(),
                            "2026-12-01 01:00:00.000 " + line + "\n" +
                                "2026-12-01 01:00:00.000 [info] 1 master: worker 0 (pid 7) "
                                "exited\n");
        EXPECT_EQ(never_started.unexpected_worker_events().size(), 1u);
        never_started.expect_worker_events({event});
        EXPECT_TRUE(never_started.unexpected_worker_events().empty());
    }
    EXPECT_NONFATAL_FAILURE(
        {
            harness::ProxydInstance never_started;
            harness::write_file(never_started.error_log_path(),
                                "2026-12-01 01:00:00.000 [warn] 1 master: worker 0 (pid 7) "
                                "exited unexpectedly after 20 ms\n");
        },
        "unexpected worker event");
    // A malformed report is a product bug whatever the test declares.
    harness::ProxydInstance never_started;
    harness::write_file(never_started.error_log_path(),
                        "2026-12-01 01:00:00.000 [error] 1 master: malformed report (short, 3 "
                        "bytes) from worker 0 (pid 7)\n");
    never_started.expect_worker_events(
        {Event::kAborted, Event::kExited, Event::kReplaced, Event::kDrainKilled});
    EXPECT_EQ(never_started.unexpected_worker_events().size(), 1u);
    harness::write_file(never_started.error_log_path(), "");
}

// A control answer is judged whole: no answer is neither ok nor a refusal.
TEST(Harness, ControlVerdictsNeedAnAnswer) {
    const harness::Json none;
    EXPECT_FALSE(harness::is_ok(none));
    EXPECT_FALSE(harness::is_refusal(none, ""));
    auto refused = harness::Json::parse(R"({"ok":false,"error":"usage: drain PID"})");
    ASSERT_TRUE(refused);
    EXPECT_TRUE(harness::is_refusal(*refused, "usage: drain PID"));
    EXPECT_FALSE(harness::is_refusal(*refused, "usage"));
    EXPECT_FALSE(harness::is_ok(*refused));
    auto stringly = harness::Json::parse(R"({"ok":"false","error":""})");
    ASSERT_TRUE(stringly);
    EXPECT_FALSE(harness::is_refusal(*stringly, ""));
    auto ok = harness::Json::parse(R"({"ok":true})");
    ASSERT_TRUE(ok);
    EXPECT_TRUE(harness::is_ok(*ok));
}

}  // namespace

// The cluster tests lean on these: a server that keeps data, loses it when
// killed and restarted (persistence off), and refuses while it is down.
TEST(Harness, RedisServerStartsKillsAndRestartsOnItsPort) {
    harness::RedisServer redis;
    if (!redis.available()) GTEST_SKIP() << redis.skip_reason();
    ASSERT_TRUE(redis.running());
    EXPECT_EQ(redis.cli({"SET", "harness:key", "1"}), "OK");
    EXPECT_EQ(redis.cli({"GET", "harness:key"}), "1");
    uint16_t port = redis.port();
    redis.kill();
    EXPECT_EQ(redis.cli({"PING"}), "");
    ASSERT_TRUE(redis.restart());
    EXPECT_EQ(redis.port(), port);
    EXPECT_EQ(redis.cli({"EXISTS", "harness:key"}), "0");
}
