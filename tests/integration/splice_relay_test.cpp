// End-to-end tests of the splice(2) relay (worker/socket_relay.h): between
// plain TCP sockets, large response bodies (Content-Length with at least
// buffer_size bytes still to send, or delimited by the upstream closing) and
// CONNECT tunnels move through a kernel pipe instead of the bufferevents.
// The tests run the real binary against origins they own on loopback and
// check the bytes (sha256), their order, keep-alive reuse after a spliced
// body, and every way a spliced exchange can end early: the upstream closes,
// stalls or sends too much; the client stops reading, half-closes or resets.
//
// That a test really went through the relay is checked, not assumed: a
// worker's PipePool keeps an emptied pipe for the next chunk, so the pipes the
// workers hold grow by one the first time a worker splices (spliced()).
//
// Large bodies through a TLS listener (the bufferevent path) are covered by
// TlsListener.HttpsProxyPlainHttpByteExact and
// TlsListener.HttpsProxyConnectToTlsOriginByteExact (socks_tls_test.cpp);
// large SOCKS tunnels by SocksProxy/SocksCurl.BodiesByteExact.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::CurlResult;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Millis;
using harness::ms_since;
using harness::pattern_bytes;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::send_all;
using harness::sha256_hex;
using harness::since;
using harness::wait_for;
using harness::wait_peer_close;

// limits.buffer_size in every test here (also the binary's default).
constexpr size_t kBufferSize = 64 * 1024;
constexpr size_t kMiB = size_t{1} << 20;

// --- Raw origin plumbing ---------------------------------------------------
// RawTcpServer hands its handlers blocking sockets; everything here uses
// MSG_DONTWAIT and short polls, so each call is bounded by its deadline and
// by the server's stop flag.

// Reads one request head from `fd` and returns its target ("" on EOF, error,
// stop or timeout). Bytes after the head stay in `in`.
std::string read_request_target(int fd, std::string& in, const std::atomic<bool>& stopping,
                                Millis timeout = 5s) {
    std::string head = harness::read_request_head(fd, in, stopping, timeout);
    std::string line = head.substr(0, head.find("\r\n"));
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) return "";
    return line.substr(sp1 + 1, sp2 - sp1 - 1);
}
// Reads until EOF; `eof` tells whether it came (not a reset, stop or timeout).
std::string read_to_eof(int fd, const std::atomic<bool>& stopping, Millis timeout, bool* eof) {
    auto deadline = Clock::now() + timeout;
    std::string out;
    char buf[65536];
    *eof = false;
    while (harness::wait_ready(fd, POLLIN, stopping, deadline)) {
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            out.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) {
            *eof = true;
            break;
        }
        if (errno != EAGAIN && errno != EINTR) break;
    }
    return out;
}

std::string response_head(size_t content_length) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
           std::to_string(content_length) + "\r\n\r\n";
}

// Reads from `client` until it closes or `timeout` passes. `last_byte` is
// when the last bytes arrived; `closed` whether the proxy closed (EOF/reset).
std::string read_timed(RawClient& client, Millis timeout, Clock::time_point* last_byte,
                       bool* closed) {
    auto deadline = Clock::now() + timeout;
    std::string got;
    *last_byte = Clock::now();
    while (Clock::now() < deadline) {
        std::string part = client.recv_some(100ms);
        if (!part.empty()) {
            got += part;
            *last_byte = Clock::now();
        } else if (client.eof()) {
            break;
        }
    }
    *closed = client.eof();
    return got;
}

// Sends "CONNECT 127.0.0.1:<origin_port>" with `early` right behind the head
// in the same send(), and reads the proxy's answer head. Returns the status
// (0 when none came); bytes that followed the head go to `after`.
int open_tunnel(RawClient& client, uint16_t proxy_port, uint16_t origin_port,
                const std::string& early, std::string& after) {
    if (!client.connect(proxy_port)) return 0;
    const std::string authority = "127.0.0.1:" + std::to_string(origin_port);
    if (!client.send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n" +
                     early))
        return 0;
    std::string got;
    auto deadline = Clock::now() + 5s;
    size_t end;
    while ((end = got.find("\r\n\r\n")) == std::string::npos) {
        if (Clock::now() >= deadline) return 0;
        std::string part = client.recv_some(200ms);
        if (part.empty() && client.eof()) return 0;
        got += part;
    }
    after = got.substr(end + 4);
    if (got.rfind("HTTP/1.1 ", 0) != 0) return 0;
    return std::atoi(got.c_str() + 9);
}

// Splits a raw response that ended with the connection: head and body.
bool split_head(const std::string& raw, std::string& head, std::string& body) {
    size_t end = raw.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    head = raw.substr(0, end + 4);
    body = raw.substr(end + 4);
    return true;
}

// What a tunnel origin saw, filled by its handler thread.
struct TunnelOriginRecord {
    std::mutex mutex;
    std::string received;
    bool eof = false;       // the proxy half-closed towards the origin
    bool sent_all = false;  // the origin's own bytes all went out
    std::atomic<bool> done{false};

    // Called once by the origin's thread when it is finished.
    void finish(std::string got, bool got_eof, bool sent) {
        std::lock_guard lock(mutex);
        received = std::move(got);
        eof = got_eof;
        sent_all = sent;
        done = true;
    }
};

// --- The fixture -----------------------------------------------------------

class SpliceRelay : public ::testing::Test {
  protected:
    bool start(ConfigBuilder config = ConfigBuilder()) {
        config.set("limits", "buffer_size", "64k");
        config.set("log", "access_log", "${dir}/access.log");
        config.set("log", "access_log_format", "json");  // for the reason field
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        if (!proxy_->start()) return false;
        port_ = proxy_->listener_port("main");
        EXPECT_NE(port_, 0) << "no address for listener main in status: "
                            << proxy_->control("status").value_or("(none)");
        pipes_at_start_ = worker_pipes();
        return port_ != 0;
    }

    // Distinct pipes the workers hold now.
    size_t worker_pipes() {
        std::set<std::string> pipes;
        for (pid_t pid : proxy_->worker_pids()) {
            for (const auto& [fd, target] : harness::descriptor_targets(pid)) {
                if (target.rfind("pipe:", 0) == 0) pipes.insert(target);
            }
        }
        return pipes.size();
    }
    // Did a worker splice since start()? (See the file comment.)
    bool spliced() { return worker_pipes() > pipes_at_start_; }

    // "GET http://127.0.0.1:<origin_port><path> HTTP/1.1" with its Host.
    static std::string get(uint16_t origin_port, const std::string& path,
                           const std::string& extra_headers = "") {
        const std::string authority = "127.0.0.1:" + std::to_string(origin_port);
        return "GET http://" + authority + path + " HTTP/1.1\r\nHost: " + authority + "\r\n" +
               extra_headers + "\r\n";
    }

    // The access-log record whose target holds `path` (and whose reason
    // holds `needle`, when given), waiting for the heartbeat that flushes
    // it; a null Json if none.
    harness::Json wait_access_line(const std::string& path, const std::string& needle = "",
                                   Millis timeout = 5s) {
        return harness::wait_for_record(
            proxy_->path("access.log"),
            [&](const harness::Json& r) {
                return harness::field_has(r, "target", path) &&
                       (needle.empty() || harness::field_has(r, "reason", needle));
            },
            timeout);
    }

    // A fresh connection still gets a (spliced) body byte-exact.
    void expect_serves_large_body() {
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(get(origin_.port(), "/bytes/" + std::to_string(kMiB))));
        auto r = c.read_response(10s);
        ASSERT_TRUE(r) << "no response from the proxy afterwards";
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(sha256_hex(r->body), sha256_hex(pattern_bytes(kMiB)));
    }

    HttpOrigin origin_;
    std::unique_ptr<ProxydInstance> proxy_;  // declared after origin_: stops first
    uint16_t port_ = 0;
    size_t pipes_at_start_ = 0;
};

// --- Complete bodies and keep-alive ----------------------------------------

// curl fetches three bodies on one connection; the spliced ones come back
// byte-exact and the upstream connection is reused for the next request.
TEST_F(SpliceRelay, CurlLargeBodiesByteExactOverOneUpstreamConnection) {
    ASSERT_TRUE(start());
    const std::vector<size_t> sizes = {3 * kMiB, kBufferSize + 1, 100};
    std::vector<std::string> args = {"-v"};
    for (size_t i = 0; i < sizes.size(); ++i) {
        args.push_back("-o");
        args.push_back(proxy_->path("body-" + std::to_string(i)));
        args.push_back(origin_.url("/bytes/" + std::to_string(sizes[i])));
    }
    CurlResult r = harness::curl_via(port_, args, 10s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (size_t i = 0; i < sizes.size(); ++i) {
        SCOPED_TRACE("body of " + std::to_string(sizes[i]) + " bytes");
        std::string body = harness::read_file(proxy_->path("body-" + std::to_string(i)));
        EXPECT_EQ(body.size(), sizes[i]);
        EXPECT_EQ(sha256_hex(body), sha256_hex(pattern_bytes(sizes[i])));
    }
    EXPECT_NE(r.err.find("Re-using existing connection"), std::string::npos) << r.err;
    EXPECT_EQ(origin_.request_count(), 3u);
    EXPECT_EQ(origin_.connections_accepted(), 1)
        << "the upstream connection was not reused after a spliced body";
    EXPECT_TRUE(spliced()) << "no worker spliced a 3 MiB body";
}

// The same with a raw client: after a spliced body the client connection
// takes the next request at once, and the upstream connection serves it.
TEST_F(SpliceRelay, RawClientGetsLargeBodiesAndKeepsBothConnections) {
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    for (size_t n : {3 * kMiB, size_t{10}, kMiB + 5, 4 * kBufferSize}) {
        SCOPED_TRACE("body of " + std::to_string(n) + " bytes");
        ASSERT_TRUE(client.send(get(origin_.port(), "/bytes/" + std::to_string(n))));
        auto resp = client.read_response(10s);
        ASSERT_TRUE(resp) << "no complete response; buffered " << client.buffered().size()
                          << " bytes, eof " << client.eof();
        EXPECT_EQ(resp->status, 200);
        EXPECT_EQ(resp->header("Content-Length").value_or(""), std::to_string(n));
        EXPECT_EQ(resp->body.size(), n);
        EXPECT_EQ(sha256_hex(resp->body), sha256_hex(pattern_bytes(n)));
    }
    EXPECT_EQ(client.recv_some(200ms), "") << "stray bytes after the last response";
    EXPECT_FALSE(client.eof()) << "the proxy closed a keep-alive connection";
    EXPECT_EQ(origin_.connections_accepted(), 1);
    for (const auto& req : origin_.requests()) EXPECT_EQ(req.connection_id, 1) << req.target;
    EXPECT_TRUE(spliced());
}

// Where the splice begins: a body is spliced when at least buffer_size bytes
// are still to send after what arrived with the head, never when fewer are,
// and never when it is chunked. The origin sends the head with one body byte
// and the rest 300 ms later, so "what arrived with the head" is known.
TEST_F(SpliceRelay, SplicesOnlyWhenBufferSizeBytesAreStillToSend) {
    RawTcpServer split([](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        for (;;) {
            std::string target = read_request_target(fd, in, stopping);
            if (target.empty()) return;
            const size_t n = std::stoull(target.substr(target.rfind('/') + 1));
            const std::string body = pattern_bytes(n);
            if (!send_all(fd, response_head(n) + body.substr(0, 1), stopping)) return;
            std::this_thread::sleep_for(300ms);
            if (!send_all(fd, std::string_view(body).substr(1), stopping)) return;
        }
    });
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    auto fetch = [&](uint16_t origin_port, const std::string& path, size_t n) {
        SCOPED_TRACE(path);
        ASSERT_TRUE(client.send(get(origin_port, path)));
        auto resp = client.read_response(10s);
        ASSERT_TRUE(resp) << "buffered " << client.buffered().size() << " bytes";
        EXPECT_EQ(resp->status, 200);
        EXPECT_EQ(resp->body.size(), n);
        EXPECT_EQ(sha256_hex(resp->body), sha256_hex(pattern_bytes(n)));
    };

    fetch(origin_.port(), "/chunked/" + std::to_string(3 * kMiB), 3 * kMiB);
    EXPECT_FALSE(spliced()) << "a chunked body was spliced";

    // buffer_size - 1 bytes left after the first byte: the bufferevents move it.
    fetch(split.port(), "/split/" + std::to_string(kBufferSize), kBufferSize);
    EXPECT_FALSE(spliced()) << "a body with fewer than buffer_size bytes to go was spliced";

    // Exactly buffer_size bytes left: spliced.
    fetch(split.port(), "/split/" + std::to_string(kBufferSize + 1), kBufferSize + 1);
    EXPECT_TRUE(spliced()) << "a body with buffer_size bytes to go was not spliced";

    // And the connection goes on.
    fetch(split.port(), "/split/" + std::to_string(kBufferSize + 2), kBufferSize + 2);
    EXPECT_EQ(split.connections_accepted(), 1);
}

// Three requests in one send; the first answer is spliced. The second and
// third wait in the client's input meanwhile and are answered after it, in
// order, byte-exact, over the same upstream connection.
TEST_F(SpliceRelay, PipelinedRequestsBehindASplicedBodyAnsweredInOrder) {
    ASSERT_TRUE(start());
    const size_t sizes[] = {3 * kMiB, 2 * kBufferSize + 7, 10};
    std::string pipeline;
    for (size_t n : sizes) pipeline += get(origin_.port(), "/bytes/" + std::to_string(n));
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(pipeline));
    for (size_t n : sizes) {
        SCOPED_TRACE("pipelined body of " + std::to_string(n) + " bytes");
        auto resp = client.read_response(10s);
        ASSERT_TRUE(resp) << "buffered " << client.buffered().size() << " bytes, eof "
                          << client.eof();
        EXPECT_EQ(resp->status, 200);
        EXPECT_EQ(resp->body.size(), n);
        EXPECT_EQ(sha256_hex(resp->body), sha256_hex(pattern_bytes(n)));
    }
    EXPECT_EQ(client.recv_some(200ms), "");
    EXPECT_EQ(origin_.request_count(), 3u);
    EXPECT_EQ(origin_.connections_accepted(), 1);
    EXPECT_TRUE(spliced());
}

// The client half-closes right after its request: the spliced body still
// arrives whole, then the proxy closes.
TEST_F(SpliceRelay, ClientHalfCloseAfterRequestStillGetsTheWholeBody) {
    ASSERT_TRUE(start());
    const size_t n = 3 * kMiB;
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(get(origin_.port(), "/bytes/" + std::to_string(n))));
    client.shutdown_write();
    bool closed = false;
    std::string raw = client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed);
    size_t consumed = 0;
    bool need_more = false;
    auto resp = harness::parse_response(raw, false, consumed, need_more, true);
    ASSERT_TRUE(resp) << raw.substr(0, 200);
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body.size(), n);
    EXPECT_EQ(sha256_hex(resp->body), sha256_hex(pattern_bytes(n)));
    EXPECT_EQ(consumed, raw.size()) << "bytes after the response";
    EXPECT_TRUE(spliced());
}

// The same for a body below buffer_size, which the bufferevents move (not a
// splice path). This used to lose the body in most runs: the exchange ended
// with "Connection: close", close_after_flush() enabled reading again on a
// client that had already sent its EOF, the EOF came back in kClosing and
// the session was destroyed with the body still unwritten.
TEST_F(SpliceRelay, ClientHalfCloseAfterRequestStillGetsASmallBody) {
    ASSERT_TRUE(start());
    int truncated = 0;
    for (int i = 0; i < 20; ++i) {
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send(get(origin_.port(), "/bytes/1000")));
        client.shutdown_write();
        bool closed = false;
        std::string raw = client.read_until_close(5s, &closed);
        size_t consumed = 0;
        bool need_more = false;
        auto resp = harness::parse_response(raw, false, consumed, need_more, true);
        if (!resp || resp->body != pattern_bytes(1000)) ++truncated;
    }
    EXPECT_EQ(truncated, 0) << "of 20 half-closing clients";
}

// An HTTP/1.0-style answer without Content-Length ends with the origin's
// close: the whole body goes to the client, then its connection closes, and
// the exchange counts as complete.
TEST_F(SpliceRelay, BodyDelimitedByOriginCloseByteExactThenClientClosed) {
    const size_t n = 2 * kMiB;
    RawTcpServer origin([n](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_target(fd, in, stopping).empty()) return;
        send_all(fd,
                 "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" +
                     pattern_bytes(n, 4),
                 stopping);
        ::shutdown(fd, SHUT_WR);  // the server closes the socket after we return
    });
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(get(origin.port(), "/until-close")));
    bool closed = false;
    std::string raw = client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed) << "the client connection stayed open after a close-delimited body";
    size_t consumed = 0;
    bool need_more = false;
    auto resp = harness::parse_response(raw, false, consumed, need_more, true);
    ASSERT_TRUE(resp) << raw.substr(0, 200);
    EXPECT_EQ(resp->status, 200);
    EXPECT_FALSE(resp->has_header("Content-Length"));
    EXPECT_EQ(resp->body.size(), n);
    EXPECT_EQ(sha256_hex(resp->body), sha256_hex(pattern_bytes(n, 4)));
    EXPECT_TRUE(spliced());
    harness::Json line = wait_access_line("/until-close");
    EXPECT_EQ(line["status"].as_int(), 200);
    EXPECT_TRUE(line["reason"].is_null())
        << "a complete close-delimited body was logged with a reason: " << line["reason"].str();
}

// --- Bodies cut short --------------------------------------------------------

// The origin promises 1 MiB, sends 300 KiB and closes: the client gets those
// 300 KiB and then a close, promptly, never a response passed off as whole.
TEST_F(SpliceRelay, OriginClosingBeforeContentLengthTruncatesAndClosesTheClient) {
    const size_t promised = kMiB, sent = 300 * 1024;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_target(fd, in, stopping).empty()) return;
        send_all(fd, response_head(promised) + pattern_bytes(sent), stopping);
        ::shutdown(fd, SHUT_WR);
        wait_peer_close(fd, stopping, 5s);
    });
    // A client left hanging would be closed by one of these timeouts at the
    // earliest: the close must come before them, however busy the machine.
    constexpr Millis kTimeout = 10s;
    ConfigBuilder config;
    config.set("limits", "upstream_timeout", std::to_string(kTimeout.count()) + "ms");
    config.set("limits", "idle_timeout", std::to_string(kTimeout.count()) + "ms");
    ASSERT_TRUE(start(config));
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    auto started = Clock::now();
    ASSERT_TRUE(client.send(get(origin.port(), "/truncated")));
    bool closed = false;
    std::string raw = client.read_until_close(2 * kTimeout, &closed);
    Millis elapsed = since(started);
    EXPECT_TRUE(closed) << "the client connection hung after the origin closed mid-body";
    EXPECT_LT(elapsed, kTimeout) << "closed by a timeout, not by the origin's close";
    std::string head, body;
    ASSERT_TRUE(split_head(raw, head, body)) << raw.substr(0, 200);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    EXPECT_NE(head.find("Content-Length: " + std::to_string(promised)), std::string::npos) << head;
    EXPECT_LT(body.size(), promised);
    EXPECT_EQ(body.size(), sent) << "bytes the origin sent before closing were lost";
    EXPECT_TRUE(body == pattern_bytes(sent).substr(0, body.size())) << "the prefix is corrupt";
    EXPECT_TRUE(spliced());
    harness::Json line = wait_access_line("/truncated", "upstream connection closed mid-response");
    EXPECT_FALSE(line.is_null()) << harness::read_file(proxy_->path("access.log"));

    // curl sees a partial transfer (18), not a success.
    CurlResult r = harness::curl_via(
        port_, {"-o", "/dev/null", "http://127.0.0.1:" + std::to_string(origin.port()) + "/t2"},
        5s);
    EXPECT_EQ(r.exit_code, 18) << r.err;
    expect_serves_large_body();
}

// The origin sends the head and 256 KiB of a 4 MiB body, then nothing: after
// upstream_timeout (1 s) the exchange is aborted, the client's connection
// closes and the origin's too.
TEST_F(SpliceRelay, StalledOriginIsCutAfterUpstreamTimeout) {
    const size_t promised = 4 * kMiB, sent = 256 * 1024;
    std::atomic<bool> origin_closed{false};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_target(fd, in, stopping).empty()) return;
        if (!send_all(fd, response_head(promised) + pattern_bytes(sent), stopping)) return;
        origin_closed = wait_peer_close(fd, stopping, 10s);
    });
    constexpr Millis kUpstreamTimeout = 1s;
    ConfigBuilder config;
    config.set("limits", "upstream_timeout", std::to_string(kUpstreamTimeout.count()) + "ms");
    ASSERT_TRUE(start(config));
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    ASSERT_TRUE(client.send(get(origin.port(), "/stall")));
    Clock::time_point last_byte;
    bool closed = false;
    std::string raw = read_timed(client, 6 * kUpstreamTimeout, &last_byte, &closed);
    Millis cut_after = std::chrono::duration_cast<Millis>(Clock::now() - last_byte);
    std::printf("[ info     ] stalled origin: client closed %lld ms after the last byte\n",
                static_cast<long long>(cut_after.count()));
    EXPECT_TRUE(closed) << "the client connection was not closed after the upstream stalled";
    // (read_timed's 100 ms polls make the last byte's time up to that early.)
    EXPECT_GE(cut_after, kUpstreamTimeout * 8 / 10) << "cut before upstream_timeout";
    EXPECT_LE(cut_after, 4 * kUpstreamTimeout) << "cut far later than upstream_timeout";
    std::string head, body;
    ASSERT_TRUE(split_head(raw, head, body)) << raw.substr(0, 200);
    EXPECT_EQ(body.size(), sent);
    EXPECT_TRUE(body == pattern_bytes(sent)) << "the prefix is corrupt";
    EXPECT_TRUE(wait_for([&] { return origin_closed.load(); }, 3s))
        << "the stalled upstream connection was left open";
    EXPECT_TRUE(spliced());
    harness::Json line = wait_access_line("/stall", "upstream timed out mid-response");
    EXPECT_FALSE(line.is_null()) << harness::read_file(proxy_->path("access.log"));
    expect_serves_large_body();
}

// A slow origin that keeps sending (a piece every 150 ms for ~2.5 s, well
// past upstream_timeout = 1 s) is not cut: the timer measures silence, not
// the length of the body.
TEST_F(SpliceRelay, SlowButSteadyOriginIsNotCutByUpstreamTimeout) {
    const size_t first = kBufferSize, piece = 32 * 1024, pieces = 18;
    const size_t total = first + piece * pieces;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_target(fd, in, stopping).empty()) return;
        const std::string body = pattern_bytes(total, 5);
        if (!send_all(fd, response_head(total) + body.substr(0, first), stopping)) return;
        for (size_t i = 0; i < pieces && !stopping.load(); ++i) {
            std::this_thread::sleep_for(150ms);
            if (!send_all(fd, std::string_view(body).substr(first + i * piece, piece), stopping))
                return;
        }
        wait_peer_close(fd, stopping, 5s);
    });
    ConfigBuilder config;
    config.set("limits", "upstream_timeout", "1s");
    config.set("limits", "idle_timeout", "1s");
    ASSERT_TRUE(start(config));
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    auto started = Clock::now();
    ASSERT_TRUE(client.send(get(origin.port(), "/trickle")));
    auto resp = client.read_response(8s);
    Millis elapsed = since(started);
    ASSERT_TRUE(resp) << "cut after " << elapsed.count() << " ms with " << client.buffered().size()
                      << " bytes";
    EXPECT_EQ(resp->body.size(), total);
    EXPECT_TRUE(resp->body == pattern_bytes(total, 5));
    EXPECT_GE(elapsed, 2s) << "the trickle was faster than planned: the test proves nothing";
    EXPECT_TRUE(spliced());
}

// A client asks for 16 MiB and never reads: once the relay has been waiting
// on it for idle_timeout (3 s) the proxy closes it (and the upstream), and
// the same worker goes on serving.
TEST_F(SpliceRelay, ClientThatStopsReadingIsClosedAfterIdleTimeout) {
    const size_t n = 16 * kMiB;
    std::atomic<bool> origin_cut{false};
    std::atomic<int64_t> origin_cut_at_ms{0};
    const auto t0 = Clock::now();
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        if (read_request_target(fd, in, stopping).empty()) return;
        bool gone = false;
        std::string data = response_head(n) + pattern_bytes(n, 6);
        if (!send_all(fd, data, stopping, 10s, &gone) && gone) {
            origin_cut_at_ms = ms_since(t0);
            origin_cut = true;
        }
    });
    // Long enough to look at the stuck session before it ends on a loaded
    // machine; the cut is timed against it.
    constexpr Millis kIdleTimeout = 3s;
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("limits", "idle_timeout", std::to_string(kIdleTimeout.count()) + "ms");
    ASSERT_TRUE(start(config));
    const std::vector<pid_t> workers = proxy_->worker_pids();
    RawClient client;
    ASSERT_TRUE(client.connect(port_));
    int rcvbuf = 16 * 1024;  // and no autotuning: the client's window stays small
    ::setsockopt(client.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    const int64_t sent_at_ms = ms_since(t0);
    ASSERT_TRUE(client.send(get(origin.port(), "/never-read")));
    // While the relay waits for the client its pipe holds bytes; the pipe is
    // closed with them when the session ends, so look now.
    EXPECT_TRUE(wait_for([&] { return spliced(); }, kIdleTimeout * 9 / 10))
        << "the body is not spliced: the bufferevent path would give the same outcome";
    auto active_sessions = [&] {
        return proxy_->status()["workers"][0]["active_sessions"].as_int();
    };
    EXPECT_TRUE(wait_for([&] { return active_sessions() == 1 || origin_cut.load(); },
                         kIdleTimeout * 9 / 10) &&
                !origin_cut.load())
        << "the stuck session is not counted, so its end could not be seen";
    EXPECT_TRUE(wait_for([&] { return origin_cut.load(); }, 4 * kIdleTimeout))
        << "the proxy kept a client that does not read (and its upstream)";
    const int64_t cut_after = origin_cut_at_ms.load() - sent_at_ms;
    std::printf("[ info     ] non-reading client: upstream closed %lld ms after the request\n",
                static_cast<long long>(cut_after));
    EXPECT_GE(cut_after, kIdleTimeout.count() * 9 / 10) << "closed before idle_timeout";
    EXPECT_LE(cut_after, 3 * kIdleTimeout.count()) << "closed far later than idle_timeout";
    harness::Json line = wait_access_line("/never-read", "client stopped reading");
    EXPECT_FALSE(line.is_null()) << harness::read_file(proxy_->path("access.log"));
    // The session is gone on the proxy's side. (The client would see the
    // close only after reading what the kernel still holds for it, at a pace
    // set by TCP's zero-window probing, so it is not watched from there.)
    int64_t active = -1;
    EXPECT_TRUE(wait_for(
        [&] {
            active = active_sessions();
            return active == 0;
        },
        3s))
        << "the session of the client that stopped reading is still open: " << active;

    expect_serves_large_body();
    EXPECT_EQ(proxy_->worker_pids(), workers);
}

// A client resets its connection (SO_LINGER 0) in the middle of a spliced
// 8 MiB body: the proxy closes the upstream connection instead of pooling it
// with half a body unread, and the worker serves the next client over a new
// upstream connection.
TEST_F(SpliceRelay, ClientResetMidBodyClosesTheUpstreamConnection) {
    const size_t n = 8 * kMiB;
    std::atomic<int> connections{0};
    std::atomic<bool> first_closed{false};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        const int id = ++connections;
        std::string in;
        for (;;) {
            std::string target = read_request_target(fd, in, stopping, 10s);
            if (target.empty()) break;  // EOF (or stop)
            bool gone = false;
            std::string answer = target == "/big" ? response_head(n) + pattern_bytes(n, 7)
                                                  : response_head(5) + "small";
            if (!send_all(fd, answer, stopping, 10s, &gone)) break;
        }
        if (id == 1 && !stopping.load()) first_closed = true;
    });
    ConfigBuilder config;
    config.set("master", "workers", "1");  // one worker, one upstream pool
    ASSERT_TRUE(start(config));
    const std::vector<pid_t> workers = proxy_->worker_pids();
    {
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        ASSERT_TRUE(client.send(get(origin.port(), "/big")));
        std::string got;
        auto deadline = Clock::now() + 5s;
        while (got.size() < 512 * 1024 && Clock::now() < deadline && !client.eof())
            got += client.recv_some(200ms);
        ASSERT_GE(got.size(), 512u * 1024) << "the body did not start";
        ASSERT_TRUE(spliced()) << "the body is not spliced: the test would prove nothing";
        harness::reset_on_close(client.fd());  // the close becomes a reset
        client.close();                        // RST
    }
    EXPECT_TRUE(wait_for([&] { return first_closed.load(); }, 3s))
        << "the upstream connection of the reset client was not closed";

    RawClient next;
    ASSERT_TRUE(next.connect(port_));
    ASSERT_TRUE(next.send(get(origin.port(), "/small")));
    auto resp = next.read_response(5s);
    ASSERT_TRUE(resp) << "buffered: " << next.buffered().substr(0, 200);
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->body, "small");
    EXPECT_EQ(connections.load(), 2) << "a connection with half a body unread was reused";
    expect_serves_large_body();
    EXPECT_EQ(proxy_->worker_pids(), workers) << "the worker died";
    // If the aborted exchange was logged, it does not pass for complete.
    harness::Json big = wait_access_line("/big", "", 1s);
    std::printf("[ info     ] access log for the reset client: %s\n",
                big.is_null() ? "(no line)" : big["reason"].str().c_str());
    if (!big.is_null()) {
        EXPECT_FALSE(big["reason"].is_null()) << "logged as complete";
    }
}

// RFC 9112 6.3: bytes an origin sends after a complete response must not be
// forwarded as a response of their own. Here they follow a spliced 1 MiB body
// in the same write and look like a response ("EVIL!"); the next request on
// the client connection, pipelined or not, must get the origin's real answer.
TEST_F(SpliceRelay, ExtraBytesAfterASplicedBodyAreNeverTheNextResponse) {
    const size_t n = kMiB;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        std::string in;
        for (;;) {
            std::string target = read_request_target(fd, in, stopping);
            if (target.empty()) return;
            std::string answer = target == "/big" ? response_head(n) + pattern_bytes(n, 8) +
                                                        response_head(5) + "EVIL!"
                                                  : response_head(5) + "GOOD!";
            if (!send_all(fd, answer, stopping)) return;
        }
    });
    ASSERT_TRUE(start());
    for (bool pipelined : {true, false}) {
        SCOPED_TRACE(pipelined ? "pipelined" : "sequential");
        RawClient client;
        ASSERT_TRUE(client.connect(port_));
        const std::string first = get(origin.port(), "/big");
        const std::string second = get(origin.port(), "/small");
        ASSERT_TRUE(client.send(pipelined ? first + second : first));
        auto r1 = client.read_response(10s);
        ASSERT_TRUE(r1);
        EXPECT_EQ(r1->status, 200);
        EXPECT_TRUE(r1->body == pattern_bytes(n, 8));
        if (!pipelined) {
            std::this_thread::sleep_for(100ms);
            ASSERT_TRUE(client.send(second));
        }
        auto r2 = client.read_response(5s);
        ASSERT_TRUE(r2) << "buffered: " << client.buffered().substr(0, 200);
        EXPECT_EQ(r2->status, 200);
        EXPECT_EQ(r2->body, "GOOD!") << "the origin's stray bytes were forwarded as a response";
    }
    EXPECT_TRUE(spliced());
}

// --- CONNECT tunnels through a plain listener ----------------------------------

// 8 MiB each way at the same time, byte-exact both ways, then EOF both ways.
TEST_F(SpliceRelay, ConnectTunnelCarriesEightMiBEachWayConcurrently) {
    const std::string up = pattern_bytes(8 * kMiB, 21);
    const std::string down = pattern_bytes(8 * kMiB, 22);
    TunnelOriginRecord rec;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        bool sent = false;
        std::thread sender([&] {
            sent = send_all(fd, down, stopping, 10s);
            ::shutdown(fd, SHUT_WR);
        });
        bool eof = false;
        std::string got = read_to_eof(fd, stopping, 10s, &eof);
        sender.join();
        rec.finish(std::move(got), eof, sent);
    });
    ASSERT_TRUE(start());
    RawClient client;
    std::string after;
    ASSERT_EQ(open_tunnel(client, port_, origin.port(), "", after), 200);
    auto started = Clock::now();
    std::atomic<bool> client_sent{false};
    std::thread sender([&] {
        client_sent = client.send(up, 10s);
        client.shutdown_write();
    });
    bool closed = false;
    std::string got = after + client.read_until_close(10s, &closed);
    sender.join();
    std::printf("[ info     ] 2 x 8 MiB through the tunnel in %lld ms\n",
                static_cast<long long>(ms_since(started)));
    EXPECT_TRUE(client_sent.load());
    EXPECT_TRUE(closed) << "no EOF after the origin's half-close";
    EXPECT_EQ(got.size(), down.size());
    EXPECT_EQ(sha256_hex(got), sha256_hex(down));
    ASSERT_TRUE(wait_for([&] { return rec.done.load(); }, 5s));
    std::lock_guard lock(rec.mutex);
    EXPECT_TRUE(rec.sent_all);
    EXPECT_TRUE(rec.eof) << "the client's half-close did not reach the origin";
    EXPECT_EQ(rec.received.size(), up.size());
    EXPECT_EQ(sha256_hex(rec.received), sha256_hex(up));
    EXPECT_TRUE(spliced()) << "the tunnel did not splice";
}

// The client sends, then shuts down its write side; only after that EOF does
// the origin send its 4 MiB, and the client gets all of it, then EOF.
TEST_F(SpliceRelay, ConnectTunnelOriginSendsAfterClientHalfClose) {
    const std::string up = pattern_bytes(kMiB, 23);
    const std::string down = pattern_bytes(4 * kMiB, 24);
    TunnelOriginRecord rec;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        bool eof = false;
        std::string got = read_to_eof(fd, stopping, 10s, &eof);
        bool sent = eof && send_all(fd, down, stopping, 10s);
        ::shutdown(fd, SHUT_WR);
        rec.finish(std::move(got), eof, sent);
    });
    ASSERT_TRUE(start());
    RawClient client;
    std::string after;
    ASSERT_EQ(open_tunnel(client, port_, origin.port(), "", after), 200);
    ASSERT_TRUE(client.send(up, 10s));
    client.shutdown_write();
    bool closed = false;
    std::string got = after + client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.size(), down.size()) << "the origin's answer after the half-close was cut";
    EXPECT_EQ(sha256_hex(got), sha256_hex(down));
    ASSERT_TRUE(wait_for([&] { return rec.done.load(); }, 5s));
    std::lock_guard lock(rec.mutex);
    EXPECT_TRUE(rec.eof);
    EXPECT_TRUE(rec.sent_all);
    EXPECT_EQ(sha256_hex(rec.received), sha256_hex(up));
    EXPECT_TRUE(spliced());
}

// The other way round: the origin sends 2 MiB and half-closes; the client
// reads to that EOF, and only then sends 1 MiB, which still reaches the origin.
TEST_F(SpliceRelay, ConnectTunnelClientSendsAfterOriginHalfClose) {
    const std::string down = pattern_bytes(2 * kMiB, 25);
    const std::string up = pattern_bytes(kMiB, 26);
    TunnelOriginRecord rec;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        bool sent = send_all(fd, down, stopping, 10s);
        ::shutdown(fd, SHUT_WR);
        bool eof = false;
        std::string got = read_to_eof(fd, stopping, 10s, &eof);
        rec.finish(std::move(got), eof, sent);
    });
    ASSERT_TRUE(start());
    RawClient client;
    std::string after;
    ASSERT_EQ(open_tunnel(client, port_, origin.port(), "", after), 200);
    bool closed = false;
    std::string got = after + client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed) << "the origin's half-close did not reach the client";
    EXPECT_EQ(sha256_hex(got), sha256_hex(down));
    ASSERT_TRUE(client.send(up, 10s)) << "the tunnel closed with the origin's half-close";
    client.shutdown_write();
    ASSERT_TRUE(wait_for([&] { return rec.done.load(); }, 5s));
    std::lock_guard lock(rec.mutex);
    EXPECT_TRUE(rec.sent_all);
    EXPECT_TRUE(rec.eof);
    EXPECT_EQ(rec.received.size(), up.size());
    EXPECT_EQ(sha256_hex(rec.received), sha256_hex(up));
    EXPECT_TRUE(spliced());
}

// Bytes the client sends in the same packet as the CONNECT head reach the
// origin first and intact; a banner the origin sends as soon as it accepts
// reaches the client right after the 200, never before it.
TEST_F(SpliceRelay, ConnectTunnelEarlyDataAndOriginBannerKeepTheirOrder) {
    const std::string early = pattern_bytes(1000, 31);
    const std::string later = pattern_bytes(3 * kBufferSize, 32);
    const std::string banner = "BANNER " + pattern_bytes(3000, 33);
    const std::string bye = pattern_bytes(kMiB, 34);
    TunnelOriginRecord rec;
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        bool sent = send_all(fd, banner, stopping);
        bool eof = false;
        std::string got = read_to_eof(fd, stopping, 10s, &eof);
        sent = sent && send_all(fd, bye, stopping);
        ::shutdown(fd, SHUT_WR);
        rec.finish(std::move(got), eof, sent);
    });
    ASSERT_TRUE(start());
    RawClient client;
    std::string after;
    ASSERT_EQ(open_tunnel(client, port_, origin.port(), early, after), 200);
    // Wait for the banner before sending more, so "early" really was early.
    auto deadline = Clock::now() + 5s;
    while (after.size() < banner.size() && Clock::now() < deadline && !client.eof())
        after += client.recv_some(200ms);
    EXPECT_EQ(after.substr(0, banner.size()), banner) << "the banner came first or corrupt";
    ASSERT_TRUE(client.send(later));
    client.shutdown_write();
    bool closed = false;
    std::string got = after + client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.size(), banner.size() + bye.size());
    EXPECT_TRUE(got == banner + bye);
    ASSERT_TRUE(wait_for([&] { return rec.done.load(); }, 5s));
    std::lock_guard lock(rec.mutex);
    EXPECT_TRUE(rec.eof);
    EXPECT_TRUE(rec.sent_all);
    EXPECT_EQ(rec.received.size(), early.size() + later.size());
    EXPECT_EQ(rec.received.substr(0, early.size()), early) << "early data lost or reordered";
    EXPECT_TRUE(rec.received == early + later);
    EXPECT_TRUE(spliced());
}

// tunnel_idle_timeout (1 s) counts spliced bytes as activity: a tunnel that
// trickles for 2.4 s is kept, and closed about 1 s after it went quiet.
TEST_F(SpliceRelay, ConnectTunnelIdleTimerSeesSplicedBytes) {
    std::atomic<bool> origin_closed{false};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        for (int i = 0; i < 12 && !stopping.load(); ++i) {
            if (!send_all(fd, pattern_bytes(1024, 40 + i), stopping)) return;
            std::this_thread::sleep_for(200ms);
        }
        origin_closed = wait_peer_close(fd, stopping, 8s);
    });
    constexpr Millis kTunnelIdleTimeout = 1s;
    ConfigBuilder config;
    config.set("limits", "tunnel_idle_timeout", std::to_string(kTunnelIdleTimeout.count()) + "ms");
    ASSERT_TRUE(start(config));
    RawClient client;
    std::string after;
    ASSERT_EQ(open_tunnel(client, port_, origin.port(), "", after), 200);
    Clock::time_point last_byte;
    bool closed = false;
    std::string got = after + read_timed(client, 8 * kTunnelIdleTimeout, &last_byte, &closed);
    Millis quiet = std::chrono::duration_cast<Millis>(Clock::now() - last_byte);
    std::printf("[ info     ] tunnel closed %lld ms after its last byte\n",
                static_cast<long long>(quiet.count()));
    std::string expected;
    for (int i = 0; i < 12; ++i) expected += pattern_bytes(1024, 40 + i);
    EXPECT_EQ(got.size(), expected.size()) << "the trickling tunnel was cut as idle";
    EXPECT_TRUE(got == expected);
    EXPECT_TRUE(closed);
    EXPECT_GE(quiet, kTunnelIdleTimeout * 7 / 10) << "closed before tunnel_idle_timeout";
    EXPECT_LE(quiet, 4 * kTunnelIdleTimeout) << "closed far later than tunnel_idle_timeout";
    EXPECT_TRUE(wait_for([&] { return origin_closed.load(); }, 3s));
    EXPECT_TRUE(spliced());
}

// A client resets its tunnel while 8 MiB flow towards it: the origin's
// connection is closed too, and the worker goes on serving.
TEST_F(SpliceRelay, ConnectTunnelClientResetClosesTheOriginConnection) {
    std::atomic<bool> origin_gone{false};
    RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
        bool gone = false;
        if (!send_all(fd, pattern_bytes(8 * kMiB, 50), stopping, 10s, &gone) && gone) {
            origin_gone = true;
            return;
        }
        origin_gone = wait_peer_close(fd, stopping, 10s);
    });
    ConfigBuilder config;
    config.set("master", "workers", "1");
    ASSERT_TRUE(start(config));
    const std::vector<pid_t> workers = proxy_->worker_pids();
    {
        RawClient client;
        std::string got;
        ASSERT_EQ(open_tunnel(client, port_, origin.port(), "", got), 200);
        auto deadline = Clock::now() + 5s;
        while (got.size() < 256 * 1024 && Clock::now() < deadline && !client.eof())
            got += client.recv_some(200ms);
        ASSERT_GE(got.size(), 256u * 1024);
        ASSERT_TRUE(spliced());
        harness::reset_on_close(client.fd());  // the close becomes a reset
        client.close();
    }
    EXPECT_TRUE(wait_for([&] { return origin_gone.load(); }, 3s))
        << "the origin side of a reset tunnel stayed open";
    expect_serves_large_body();
    EXPECT_EQ(proxy_->worker_pids(), workers);
}

}  // namespace
