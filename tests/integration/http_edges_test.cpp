// HTTP edges no other test reaches (issue 13): an upstream response head
// over max_header_size, an upstream 101 Switching Protocols, a client that
// ends its connection in the middle of a request body, an upload to an
// origin that does not read, and the keep-alive idle timeout.
//
// The origins are scripted (ScriptedOrigin, on a RawTcpServer): they
// record what they received on each connection, whether the proxy closed
// it, and which requests arrived complete.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Millis;
using harness::ms_since;
using harness::pattern_bytes;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::wait_for;

constexpr uint64_t kMiB = 1024 * 1024;

// An origin that reads requests (Content-Length or chunked bodies) and
// answers each with what `respond` returns for it.
class ScriptedOrigin {
  public:
    struct Request {
        int conn = 0;
        std::string head;  // through the blank line
        std::string body;  // raw, as it came (chunked framing included)
    };
    using Respond = std::function<std::string(const Request&)>;

    explicit ScriptedOrigin(Respond respond)
        : respond_(std::move(respond)),
          server_([this](int fd, const std::atomic<bool>& stopping) { serve(fd, stopping); }) {}

    uint16_t port() const { return server_.port(); }
    int connections() const { return server_.connections_accepted(); }
    // Connections the proxy closed (EOF or reset).
    int closed_by_proxy() const { return closed_by_proxy_.load(); }
    // Bytes received on every connection, heads and bodies.
    uint64_t received() const { return received_.load(); }
    // Requests that arrived whole (head and body), in order.
    std::vector<Request> complete() {
        std::lock_guard<std::mutex> lock(mutex_);
        return complete_;
    }

  private:
    void serve(int fd, const std::atomic<bool>& stopping) {
        int conn = ++next_conn_;
        std::string in;
        while (!stopping) {
            std::optional<Request> request = read_request(fd, in, stopping);
            if (!request) return;
            request->conn = conn;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                complete_.push_back(*request);
            }
            harness::send_all(fd, respond_(*request));
        }
    }

    // The size of the request at the front of `in` once it is all there.
    static std::optional<size_t> request_size(const std::string& in) {
        size_t end = in.find("\r\n\r\n");
        if (end == std::string::npos) return std::nullopt;
        std::string head = in.substr(0, end + 4);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (head.find("\r\ntransfer-encoding: chunked\r\n") != std::string::npos) {
            size_t last = in.find("\r\n0\r\n\r\n", end + 2);
            if (last == std::string::npos) return std::nullopt;
            return last + 7;
        }
        size_t at = head.find("\r\ncontent-length:");
        size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 17));
        if (in.size() < end + 4 + length) return std::nullopt;
        return end + 4 + length;
    }

    std::optional<Request> read_request(int fd, std::string& in,
                                        const std::atomic<bool>& stopping) {
        auto deadline = Clock::now() + 20s;
        char buf[65536];
        while (!stopping && Clock::now() < deadline) {
            if (std::optional<size_t> size = request_size(in)) {
                size_t head_end = in.find("\r\n\r\n") + 4;
                Request r{0, in.substr(0, head_end), in.substr(head_end, *size - head_end)};
                in.erase(0, *size);
                return r;
            }
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) {
                ++closed_by_proxy_;
                return std::nullopt;
            }
            received_ += static_cast<uint64_t>(n);
            in.append(buf, static_cast<size_t>(n));
        }
        return std::nullopt;
    }

    Respond respond_;
    std::atomic<int> next_conn_{0};
    std::atomic<int> closed_by_proxy_{0};
    std::atomic<uint64_t> received_{0};
    std::mutex mutex_;
    std::vector<Request> complete_;
    RawTcpServer server_;  // last: its threads stop before the members they use
};

std::string authority(uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

std::string get(uint16_t origin_port, const std::string& path = "/",
                const std::string& extra_headers = "") {
    return "GET http://" + authority(origin_port) + path +
           " HTTP/1.1\r\nHost: " + authority(origin_port) + "\r\n" + extra_headers + "\r\n";
}

std::string ok(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The Proxy-Status of a proxy-made answer starts with this.
std::string proxy_status_prefix(const std::string& error) {
    return "proxyd; error=" + error + "; details=";
}

class HttpEdges : public ::testing::Test {
  protected:
    bool start(ConfigBuilder config = ConfigBuilder()) {
        config.set("master", "workers", "1");
        config.set("log", "access_log", "${dir}/access.log");
        config.set("log", "access_log_format", "json");  // for the reason field
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        if (!proxy_->start()) return false;
        port_ = proxy_->listener_port();
        return port_ != 0;
    }

    // The access-log record whose target contains `needle`; a null Json
    // (with a failure) when none is written within 10 s.
    harness::Json access_line(const std::string& needle) {
        harness::Json record = harness::wait_for_record(
            proxy_->path("access.log"),
            [&](const harness::Json& r) { return harness::field_has(r, "target", needle); });
        EXPECT_FALSE(record.is_null()) << "no access-log record with " << needle;
        return record;
    }

    std::vector<pid_t> workers() {
        std::vector<pid_t> pids = proxy_->worker_pids();
        std::sort(pids.begin(), pids.end());
        return pids;
    }

    std::unique_ptr<ProxydInstance> proxy_;
    uint16_t port_ = 0;
};

// --- Upstream heads ------------------------------------------------------------

// A response head of `size` bytes exactly, with a 2-byte body.
std::string response_of_head_size(size_t size) {
    std::string start = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: ";
    std::string end = "\r\n\r\n";
    return start + std::string(size - start.size() - end.size(), 'p') + end + "ok";
}

// A response with `fields` header fields, Content-Length among them.
std::string response_with_fields(int fields) {
    std::string out = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
    for (int i = 1; i < fields; ++i) out += "X-Field-" + std::to_string(i) + ": v\r\n";
    return out + "\r\nok";
}

// max_header_size = 4k and max_headers = 20 bound response heads too: a
// head of exactly 4096 bytes or 20 fields is passed on; one byte or one
// field more is a 502 whose Proxy-Status says the header section was too
// large (RFC 9209), and the upstream connection, whose rest cannot be
// read, is closed, not pooled. The client's connection stays usable.
TEST_F(HttpEdges, UpstreamHeadOverTheLimitsIs502AndClosesTheUpstream) {
    ConfigBuilder config;
    config.set("limits", "max_header_size", "4k");
    config.set("limits", "max_headers", "20");
    ASSERT_TRUE(start(config));
    ScriptedOrigin origin([](const ScriptedOrigin::Request& r) {
        std::string target = r.head.substr(r.head.find(' ') + 1);
        target = target.substr(0, target.find(' '));
        if (target == "/size-4096") return response_of_head_size(4096);
        if (target == "/size-4097") return response_of_head_size(4097);
        if (target == "/fields-20") return response_with_fields(20);
        if (target == "/fields-21") return response_with_fields(21);
        return ok("small");
    });
    struct Step {
        const char* path;
        int status;
        int closed_after;  // upstream connections the proxy closed so far
    };
    const Step steps[] = {
        {"/size-4096", 200, 0}, {"/size-4097", 502, 1}, {"/fields-20", 200, 1},
        {"/fields-21", 502, 2}, {"/next", 200, 2},
    };
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    for (const Step& step : steps) {
        SCOPED_TRACE(step.path);
        ASSERT_TRUE(client.send(get(origin.port(), step.path)));
        std::optional<HttpResponse> r = client.read_response(10s);
        ASSERT_TRUE(r) << client.buffered();
        EXPECT_EQ(r->status, step.status);
        if (step.status == 502) {
            EXPECT_EQ(r->header("Proxy-Status")
                          .value_or("")
                          .rfind(proxy_status_prefix("http_response_header_section_size"), 0),
                      0u)
                << r->header("Proxy-Status").value_or("(none)");
        } else {
            EXPECT_EQ(r->body, std::string(step.path) == "/next" ? "small" : "ok");
        }
        EXPECT_TRUE(wait_for([&] { return origin.closed_by_proxy() == step.closed_after; }, 5s))
            << "upstream connections closed: " << origin.closed_by_proxy();
    }
    EXPECT_EQ(origin.connections(), 3);
}

// --- Upstream 101 ------------------------------------------------------------------

// proxyd does not relay protocol upgrades: Upgrade is hop-by-hop and never
// forwarded (http_forwarding.cpp), so an origin that answers 101 switched
// without being asked, whatever the client wanted. The client gets a 502,
// never the 101 or the bytes of the new protocol; the upstream connection
// is closed; the client's stays usable.
TEST_F(HttpEdges, UpstreamSwitchingProtocolsIs502AndItsBytesNeverReachTheClient) {
    ASSERT_TRUE(start());
    const std::string websocket_frame = "\x81\x05hello";
    ScriptedOrigin origin([&](const ScriptedOrigin::Request& r) {
        if (r.head.find(" /switch ") == std::string::npos) return ok("plain");
        return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
               "Upgrade\r\n\r\n" +
               websocket_frame;
    });
    const std::string asked = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
    int switched = 0;
    for (const std::string& headers : {std::string(), asked}) {
        SCOPED_TRACE(headers.empty() ? "no upgrade asked" : "the client asked for an upgrade");
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send(get(origin.port(), "/switch", headers)));
        std::optional<HttpResponse> r = client.read_response(10s);
        ASSERT_TRUE(r) << client.buffered();
        EXPECT_EQ(r->status, 502);
        EXPECT_EQ(r->header("Proxy-Status").value_or(""),
                  proxy_status_prefix("http_protocol_error") +
                      "\"upstream switched protocols without being asked\"");
        ++switched;
        EXPECT_TRUE(wait_for([&] { return origin.closed_by_proxy() == switched; }, 5s))
            << "the switched upstream connection was kept";
        std::vector<ScriptedOrigin::Request> seen = origin.complete();
        ASSERT_FALSE(seen.empty());
        std::string head = seen.back().head;
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        EXPECT_EQ(head.find("upgrade"), std::string::npos) << "forwarded: " << head;

        ASSERT_TRUE(client.send(get(origin.port(), "/after")));
        std::optional<HttpResponse> after = client.read_response(10s);
        ASSERT_TRUE(after) << client.buffered();
        EXPECT_EQ(after->body, "plain");
        EXPECT_EQ(client.buffered().find("hello"), std::string::npos);
    }
}

// --- Client EOF mid-body -------------------------------------------------------------

// A client that half-closes after part of its body (Content-Length or
// chunked) can never complete the request: the proxy closes the upstream
// connection (never pooled: the origin waits for the rest), the origin
// never gets a complete request, the next request gets a new connection,
// and the access log says what happened.
TEST_F(HttpEdges, ClientEofMidBodyClosesTheUpstreamAndNoRequestCompletes) {
    ASSERT_TRUE(start());
    ScriptedOrigin origin([](const ScriptedOrigin::Request&) { return ok("done"); });
    const std::string part = pattern_bytes(30000, 7);
    struct Case {
        const char* name;
        std::string head_fields;
        std::string body_part;
    };
    const Case cases[] = {
        {"content-length", "Content-Length: 100000\r\n", part},
        {"chunked", "Transfer-Encoding: chunked\r\n", "7530\r\n" + part + "\r\n"},
    };
    int expected_connections = 0;
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string path = std::string("/upload-") + c.name;
        uint64_t before = origin.received();
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send("POST http://" + authority(origin.port()) + path +
                                " HTTP/1.1\r\nHost: " + authority(origin.port()) + "\r\n" +
                                c.head_fields + "\r\n" + c.body_part));
        // The head and the part reached the origin: the upstream connection
        // is open and carrying this body.
        ASSERT_TRUE(wait_for([&] { return origin.received() >= before + part.size(); }, 5s));
        ++expected_connections;
        client.shutdown_write();
        EXPECT_TRUE(client.wait_closed(5s)) << "the proxy kept the client connection";
        EXPECT_TRUE(wait_for([&] { return origin.closed_by_proxy() == expected_connections; }, 5s))
            << "the upstream connection outlived the request";
        EXPECT_TRUE(origin.complete().empty());
        harness::Json line = access_line("http://" + authority(origin.port()) + path);
        EXPECT_EQ(line["method"].str(), "POST");
        EXPECT_EQ(line["reason"].str(), "client closed the connection mid-request");
    }
    RawClient next;
    ASSERT_TRUE(next.connect(port_));
    ASSERT_TRUE(next.send(get(origin.port(), "/next")));
    std::optional<HttpResponse> r = next.read_response(10s);
    ASSERT_TRUE(r) << next.buffered();
    EXPECT_EQ(r->body, "done");
    EXPECT_EQ(origin.connections(), expected_connections + 1);
    ASSERT_EQ(origin.complete().size(), 1u);
    EXPECT_NE(origin.complete()[0].head.find(" /next "), std::string::npos);
}

// --- Upload backpressure ---------------------------------------------------------------

// Sends `data` on a non-blocking socket until all is sent or no byte could
// go out for `stall`; returns how much was sent.
size_t send_until_stalled(int fd, std::string_view data, Millis stall, Millis limit) {
    size_t sent = 0;
    auto deadline = Clock::now() + limit;
    while (sent < data.size() && Clock::now() < deadline) {
        ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(stall.count())) == 0) break;  // stalled
    }
    return sent;
}

// An origin that takes the request head, then nothing for a while: the
// client's sends must block (the proxy stops reading once its buffer
// toward the origin is full) and the worker's memory stays within a few
// buffers, not the 64 MiB upload; once the origin reads, the body arrives
// byte-exact.
TEST_F(HttpEdges, UploadToAnOriginThatDoesNotReadBlocksTheClientWithBoundedMemory) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS means nothing under ASan";
    ASSERT_TRUE(start());
    const std::string body = pattern_bytes(64 * kMiB, 9);
    std::atomic<bool> head_seen{false}, reading{false}, matched{false};
    std::atomic<uint64_t> origin_got{0};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        int small = 64 * 1024;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        std::string in;
        char buf[65536];
        auto deadline = Clock::now() + 60s;
        while (!stopping && Clock::now() < deadline) {
            if (!head_seen) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n <= 0) return;
                in.append(buf, static_cast<size_t>(n));
                size_t end = in.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                in.erase(0, end + 4);
                head_seen = true;
            }
            if (!reading) {  // the slow part: nothing read until the test says so
                std::this_thread::sleep_for(10ms);
                continue;
            }
            size_t check = std::min<size_t>(in.size(), body.size() - origin_got);
            if (in.compare(0, check, body, origin_got, check) != 0) break;  // a wrong byte
            origin_got += check;
            in.erase(0, check);
            if (origin_got == body.size()) break;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) return;
            in.append(buf, static_cast<size_t>(n));
        }
        matched = origin_got == body.size();
        harness::send_all(fd, ok(matched ? "match" : "mismatch"));
    });
    const std::vector<pid_t> pids = workers();
    ASSERT_EQ(pids.size(), 1u);
    const uint64_t before = harness::resident_bytes(pids[0]);
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    int small = 64 * 1024;
    ::setsockopt(client.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ASSERT_TRUE(client.send("POST http://" + authority(origin.port()) +
                            "/upload HTTP/1.1\r\nHost: " + authority(origin.port()) +
                            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    ASSERT_TRUE(wait_for([&] { return head_seen.load(); }, 10s));
    size_t sent = send_until_stalled(client.fd(), body, 1s, 30s);
    const uint64_t during = harness::resident_bytes(pids[0]);
    EXPECT_EQ(workers(), pids) << "the worker changed: its RSS figures mean nothing";
    std::printf("[ info     ] client blocked after %.1f MiB; worker RSS %.1f -> %.1f MiB\n",
                double(sent) / kMiB, double(before) / kMiB, double(during) / kMiB);
    EXPECT_LT(sent, body.size() / 2) << "the client's sends never blocked";
    EXPECT_LT(during, before + 12 * kMiB) << "the proxy buffers the upload";

    reading = true;
    ASSERT_TRUE(client.send(std::string_view(body).substr(sent), 60s));
    std::optional<HttpResponse> r = client.read_response(60s);
    ASSERT_TRUE(r) << client.buffered();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "match");
    EXPECT_EQ(origin_got.load(), body.size());
}

// --- Keep-alive idle timeout ---------------------------------------------------------

// idle_timeout = 2s: a request sent well inside it is served (and starts
// the wait afresh); after the last answer the idle connection is closed,
// not before idle_timeout and not much after, without a word (no 408).
TEST_F(HttpEdges, IdleKeepAliveClientIsClosedAfterIdleTimeout) {
    constexpr Millis kIdle = 2000ms;
    ConfigBuilder config;
    config.set("limits", "idle_timeout", "2s");
    ASSERT_TRUE(start(config));
    HttpOrigin origin;
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(get(origin.port(), "/bytes/10")));
    std::optional<HttpResponse> first = client.read_response(10s);
    ASSERT_TRUE(first) << client.buffered();
    EXPECT_EQ(first->status, 200);
    std::this_thread::sleep_for(kIdle / 2);  // the idle time under test

    auto sent = Clock::now();
    ASSERT_TRUE(client.send(get(origin.port(), "/bytes/20")));
    std::optional<HttpResponse> second = client.read_response(10s);
    ASSERT_TRUE(second) << "closed before idle_timeout: " << client.buffered();
    EXPECT_EQ(second->body, pattern_bytes(20));
    bool closed = false;
    std::string unsolicited = client.read_until_close(kIdle + 10s, &closed);
    const Millis idle_for = harness::since(sent);
    EXPECT_TRUE(closed) << "an idle keep-alive connection stayed open";
    EXPECT_EQ(unsolicited, "");
    // libevent counts a timer from the loop's cached time, which may be a
    // few milliseconds older than the arming: that much early is fine.
    EXPECT_GE(idle_for, kIdle - 50ms) << "closed before idle_timeout";
    EXPECT_LT(idle_for, kIdle + 5s);
    EXPECT_EQ(origin.connections_accepted(), 1);
}

}  // namespace
