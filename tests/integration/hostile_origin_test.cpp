// Hostile and broken origins (issue 12): what an upstream sends is input
// too. Interim (1xx) floods to a client that does not read, transfer codings
// the proxy cannot pass on, invalid lengths on bodiless responses, and the
// retry of a request on a reused connection that the origin dropped, which
// must never run a non-idempotent request twice.
//
// Each origin is a RawTcpServer the test scripts byte by byte; each test
// ends by checking that no worker was replaced and the proxy still serves.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/worker_memory.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::read_request_head;
using harness::send_all;

constexpr uint64_t kMiB = 1024 * 1024;

// A request through the proxy to the origin on 127.0.0.1:`origin_port`.
std::string request(const std::string& method, uint16_t origin_port,
                    const std::string& headers = "") {
    std::string authority = "127.0.0.1:" + std::to_string(origin_port);
    return method + " http://" + authority + "/ HTTP/1.1\r\nHost: " + authority + "\r\n" + headers +
           "\r\n";
}

// The request line's method.
std::string method_of(const std::string& head) {
    return head.substr(0, head.find(' '));
}

class HostileOrigin : public ::testing::Test {
  protected:
    void start(ConfigBuilder config = ConfigBuilder()) {
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        ASSERT_TRUE(proxy_->start());
        port_ = proxy_->listener_port();
        ASSERT_NE(port_, 0);
        memory_ = std::make_unique<harness::WorkerMemory>(*proxy_);
    }

    // The workers' resident set from /proc; a worker gone is a failure.
    uint64_t worker_rss() { return memory_->resident(); }

    // No worker was replaced, and a plain request is served.
    void expect_healthy() {
        memory_->expect_same_workers();
        HttpOrigin origin;
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send("GET " + origin.url("/bytes/100") +
                           " HTTP/1.1\r\nHost: " + origin.host_port() + "\r\n\r\n"));
        auto r = c.read_response(5s);
        ASSERT_TRUE(r) << "the proxy no longer serves";
        EXPECT_EQ(r->status, 200);
    }

    std::unique_ptr<ProxydInstance> proxy_;
    uint16_t port_ = 0;
    std::unique_ptr<harness::WorkerMemory> memory_;  // the workers at start
};

// --- Interim responses -----------------------------------------------------------

// An origin that answers with 1xx heads for as long as the proxy takes them.
// Before the fix one such connection grew a worker by about 1 GiB in 8 s
// while its client did not read; now the proxy refuses the ninth head (or
// the heads past max_header_size together) with a 502 and closes upstream.
void expect_interim_flood_bounded(size_t pad, uint16_t proxy_port,
                                  const std::function<uint64_t()>& rss) {
    std::atomic<bool> proxy_hung_up{false};
    std::atomic<uint64_t> sent{0};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_head(fd, in, stopping).empty()) return;
        const std::string interim =
            "HTTP/1.1 100 Continue\r\nX-Pad: " + std::string(pad, 'p') + "\r\n\r\n";
        auto deadline = Clock::now() + 10s;
        while (!stopping && Clock::now() < deadline) {
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t n = ::send(fd, interim.data(), interim.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EAGAIN) {
                proxy_hung_up = true;
                return;
            }
            if (n > 0) sent += static_cast<uint64_t>(n);
        }
    });
    uint64_t before = rss();
    RawClient client;
    ASSERT_TRUE(client.connect(proxy_port));
    // No read until the end.
    ASSERT_TRUE(client.send(request("GET", origin.port(), "Connection: close\r\n")));
    EXPECT_TRUE(harness::wait_for([&] { return proxy_hung_up.load(); }, 8s))
        << "the proxy kept taking interim heads: " << sent.load() << " bytes";
    uint64_t after = rss();
    std::printf("[ info     ] %zu-byte heads: origin sent %.1f KiB, worker RSS %+.1f MiB\n", pad,
                sent.load() / 1024.0, (double(after) - double(before)) / double(kMiB));
    EXPECT_LT(after, before + 8 * kMiB);
    std::string answer = client.read_until_close(5s);
    EXPECT_NE(answer.find("HTTP/1.1 502 "), std::string::npos) << answer.substr(0, 300);
    EXPECT_NE(answer.find("too many interim responses"), std::string::npos);
}

TEST_F(HostileOrigin, InterimFloodIsRefusedWithBoundedMemory) {
    start();
    {
        SCOPED_TRACE("small heads: the count bound");
        expect_interim_flood_bounded(100, port_, [this] { return worker_rss(); });
    }
    {
        SCOPED_TRACE("large heads: the size bound");
        expect_interim_flood_bounded(16000, port_, [this] { return worker_rss(); });
    }
    expect_healthy();
}

// A few interim heads are normal (100 Continue, 103 Early Hints): relayed
// in order, then the final response.
TEST_F(HostileOrigin, SomeInterimResponsesAreRelayed) {
    start();
    RawTcpServer origin([](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_head(fd, in, stopping).empty()) return;
        send_all(fd,
                 "HTTP/1.1 100 Continue\r\n\r\n"
                 "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        read_request_head(fd, in, stopping);
    });
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(request("GET", origin.port())));
    std::vector<int> statuses;
    for (int i = 0; i < 3; ++i) {
        auto r = client.read_response(5s);
        ASSERT_TRUE(r) << client.buffered();
        statuses.push_back(r->status);
        if (r->status == 200) {
            EXPECT_EQ(r->body, "ok");
        }
    }
    EXPECT_EQ(statuses, (std::vector<int>{100, 103, 200}));
    expect_healthy();
}

// --- Framing of responses -----------------------------------------------------------

struct ScriptedAnswer {
    std::string name;
    std::string method;
    std::string response;
    int status;                // what the client must get
    std::string proxy_status;  // its Proxy-Status error type, when the proxy refused
};

// The proxy re-frames bodies: only chunked can be decoded and sent on, so
// any other transfer coding is a 502 (as nginx does), never gzip data with
// the coding's name lost. The length fields of bodiless responses are
// passed on, so they are validated like any other.
TEST_F(HostileOrigin, ResponseFramingIsValidatedForEveryResponse) {
    start();
    const std::vector<ScriptedAnswer> answers = {
        {"gzip, chunked", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 502,
         "http_response_transfer_coding"},
        {"gzip alone, until close", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
         502, "http_response_transfer_coding"},
        {"HEAD with a Content-Length list", "HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", 502, "http_protocol_error"},
        {"HEAD with two Content-Length values", "HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 502,
         "http_protocol_error"},
        {"304 with a negative Content-Length", "GET",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: -1\r\n\r\n", 502, "http_protocol_error"},
        {"304 with Content-Length and Transfer-Encoding", "GET",
         "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         502, "http_protocol_error"},
        {"HEAD with a valid Content-Length", "HEAD",
         "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", 200, ""},
        {"plain chunked", "GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, ""},
    };
    for (const ScriptedAnswer& a : answers) {
        SCOPED_TRACE(a.name);
        RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
            std::string in;
            if (read_request_head(fd, in, stopping).empty()) return;
            send_all(fd, a.response);
            ::shutdown(fd, SHUT_WR);
            read_request_head(fd, in, stopping);
        });
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send(request(a.method, origin.port())));
        auto r = client.read_response(5s, a.method == "HEAD");
        ASSERT_TRUE(r) << client.buffered();
        EXPECT_EQ(r->status, a.status) << r->body;
        if (!a.proxy_status.empty()) {
            EXPECT_EQ(r->header("Proxy-Status")
                          .value_or("")
                          .rfind("proxyd; error=" + a.proxy_status + "; details=", 0),
                      0u)
                << r->header("Proxy-Status").value_or("(none)");
        } else if (a.method == "HEAD") {
            EXPECT_EQ(r->header("Content-Length").value_or(""), "42");
        } else {
            EXPECT_EQ(r->body, "abc");
        }
    }
    expect_healthy();
}

// --- Retries ---------------------------------------------------------------------

// The origin answers the first request on its first connection and keeps
// it alive, then reads the second request and closes without answering,
// as a server whose keep-alive timeout fired would. Every request head it
// reads, on any connection, is recorded.
class DroppingOrigin {
  public:
    DroppingOrigin()
        : server_([this](int fd, const std::atomic<bool>& stopping) { serve(fd, stopping); }) {}
    uint16_t port() const { return server_.port(); }
    std::vector<std::string> methods() {
        std::lock_guard<std::mutex> lock(mutex_);
        return methods_;
    }

  private:
    void serve(int fd, const std::atomic<bool>& stopping) {
        bool first_connection = connections_++ == 0;
        std::string in;
        for (int i = 0; !stopping; ++i) {
            std::string head = read_request_head(fd, in, stopping);
            if (head.empty()) return;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                methods_.push_back(method_of(head));
            }
            if (first_connection && i == 1) return;  // read it, then close unanswered
            send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    }

    std::atomic<int> connections_{0};
    std::mutex mutex_;
    std::vector<std::string> methods_;
    RawTcpServer server_;  // last: its threads stop before the members they use
};

// RFC 9112 §9.3.1.1: a proxy must not retry a non-idempotent request on its
// own; an idempotent one (without a body) may be sent once more.
TEST_F(HostileOrigin, OnlyIdempotentRequestsAreRetriedOnADroppedConnection) {
    start();
    for (const std::string method : {"POST", "PATCH", "DELETE", "GET"}) {
        SCOPED_TRACE(method);
        DroppingOrigin origin;
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send(request("GET", origin.port())));
        auto first = client.read_response(5s);
        ASSERT_TRUE(first);
        ASSERT_EQ(first->status, 200);
        // The same client connection, so the same worker and its pooled
        // upstream connection.
        ASSERT_TRUE(client.send(request(method, origin.port(), "Content-Length: 0\r\n")));
        auto second = client.read_response(5s);
        ASSERT_TRUE(second) << client.buffered();
        bool idempotent = method == "DELETE" || method == "GET";
        if (idempotent) {
            EXPECT_EQ(second->status, 200);
            EXPECT_EQ(origin.methods(), (std::vector<std::string>{"GET", method, method}));
        } else {
            EXPECT_EQ(second->status, 502);
            EXPECT_EQ(origin.methods(), (std::vector<std::string>{"GET", method}))
                << "the request was sent twice";
        }
    }
    expect_healthy();
}

}  // namespace
