// Tunnels on a TLS listener (issue 13): an HTTPS proxy taking CONNECT and
// SOCKS5 over TLS. Between a TLS client and a plain upstream the tunnel
// runs on the bufferevents (worker/tunnel.cpp), never through the splice
// relay, so half-close, backpressure and the idle timer are that code's,
// and the plain-TCP tests of splice_relay_test.cpp do not reach them.
//
// Each test runs once per way in (Via) against its own scripted origin
// (a RawTcpServer) and reads the tunnel's access-log line, whose reason
// field says how the tunnel ended (worker/tunnel.cpp, tunnel_start.cpp):
// "-" when both sides closed in turn, "idle timeout", "client connection
// error", "upstream connection error".
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"
#include "tests/integration/tls_client.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::Millis;
using harness::ms_since;
using harness::pattern_bytes;
using harness::ProxydInstance;
using harness::RawTcpServer;
using harness::sha256_hex;
using harness::TlsClient;
using harness::wait_for;

constexpr uint64_t kMiB = 1024 * 1024;
const std::string kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";

enum class Via { kHttpsConnect, kSocksOverTls };
constexpr Via kEveryVia[] = {Via::kHttpsConnect, Via::kSocksOverTls};

const char* name_of(Via via) {
    return via == Via::kHttpsConnect ? "CONNECT on an HTTPS listener" : "SOCKS5 over TLS";
}

std::string authority(uint16_t port) {
    return "127.0.0.1:" + std::to_string(port);
}

std::string connect_head(uint16_t port) {
    return "CONNECT " + authority(port) + " HTTP/1.1\r\nHost: " + authority(port) + "\r\n\r\n";
}

// --- Origin side ------------------------------------------------------------
// RawTcpServer hands its handlers blocking sockets; these poll in short
// steps, so each call is bounded by its deadline and the server's stop flag.

// Sends all of `data`, counting progress in `sent`; false on error, stop or
// `timeout`.
bool send_counted(int fd, std::string_view data, std::atomic<uint64_t>& sent,
                  const std::atomic<bool>& stopping, Millis timeout) {
    auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        if (stopping || Clock::now() >= deadline) return false;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
        sent += static_cast<uint64_t>(n);
    }
    return true;
}

// What an origin handler saw, read by the test thread.
struct OriginLog {
    std::mutex mutex;
    std::string received;
    std::atomic<bool> saw_eof{false};
    std::atomic<bool> done{false};
    std::atomic<uint64_t> sent{0};

    std::string copy() {
        std::lock_guard<std::mutex> lock(mutex);
        return received;
    }
    // Reads `fd` into `received` as bytes come, until EOF (saw_eof), an
    // error or a reset, a stop or `timeout`.
    void record_until_eof(int fd, const std::atomic<bool>& stopping, Millis timeout = 10s) {
        auto deadline = Clock::now() + timeout;
        char buf[65536];
        while (!stopping && Clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n == 0) saw_eof = true;
            if (n <= 0) return;
            std::lock_guard<std::mutex> lock(mutex);
            received.append(buf, static_cast<size_t>(n));
        }
    }
};

// --- The access log -----------------------------------------------------------

// One access-log record (access_log_format = json, worker/access_log.h),
// with "-" for what is null.
struct AccessLine {
    std::string client, user, request;
    int status = 0;
    uint64_t from_client = 0, to_client = 0;
    std::string upstream, route, reason;
};

AccessLine from_record(const harness::Json& r) {
    auto text = [&](const char* key) { return r[key].is_null() ? "-" : r[key].str(); };
    return AccessLine{text("client") + ":" + std::to_string(r["client_port"].as_int()),
                      text("user"),
                      text("method") + " " + text("target") + " " + text("protocol"),
                      static_cast<int>(r["status"].as_int()),
                      static_cast<uint64_t>(r["bytes_from_client"].as_int()),
                      static_cast<uint64_t>(r["bytes_to_client"].as_int()),
                      text("upstream"),
                      text("route"),
                      text("reason")};
}

// --- Fixture ----------------------------------------------------------------

class TlsListenerTunnel : public ::testing::Test {
  protected:
    // One worker, so its RSS is the proxy's memory; an HTTPS listener and a
    // SOCKS5-over-TLS one with a fresh self-signed certificate.
    bool start(ConfigBuilder config = ConfigBuilder()) {
        config.set("master", "workers", "1");
        config.set("log", "access_log", "${dir}/access.log");
        config.set("log", "access_log_format", "json");
        for (const char* name : {"https", "socks_tls"}) {
            std::string section = std::string("listen ") + name;
            config.add_listener(name, "127.0.0.1:0",
                                std::string(name) == "https" ? "http" : "socks5");
            config.set(section, "tls_certificate", "${dir}/proxy.crt");
            config.set(section, "tls_key", "${dir}/proxy.key");
        }
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        if (!harness::make_self_signed_cert(proxy_->path("proxy.crt"), proxy_->path("proxy.key")))
            return false;
        return proxy_->start();
    }

    TlsClient::Options verified(int receive_buffer = 0) const {
        TlsClient::Options options;
        options.ca_file = proxy_->path("proxy.crt");
        options.receive_buffer = receive_buffer;
        return options;
    }

    // Connects to the listener for `via` and opens a tunnel to the origin
    // on `origin_port`, checking the proxy's answer byte for byte. Returns
    // the tunnel bytes that came with that answer; nullopt (with a failure)
    // when the tunnel did not open.
    std::optional<std::string> open_tunnel(TlsClient& client, Via via, uint16_t origin_port,
                                           int receive_buffer = 0) {
        bool https = via == Via::kHttpsConnect;
        uint16_t port = proxy_->listener_port(https ? "https" : "socks_tls");
        if (!client.connect(port, verified(receive_buffer))) {
            ADD_FAILURE() << client.error();
            return std::nullopt;
        }
        std::string expected = kEstablished;
        if (https) {
            if (!client.send(connect_head(origin_port))) return std::nullopt;
        } else {
            if (!client.send(std::string("\x05\x01\x00", 3))) return std::nullopt;
            std::string method = client.read_at_least(2);
            EXPECT_EQ(method, std::string("\x05\x00", 2));
            if (!client.send(harness::socks::connect_ipv4(origin_port))) return std::nullopt;
            // 05 00 00 01, then the bound address (127.0.0.1) and port.
            expected = std::string("\x05\x00\x00\x01\x7f\x00\x00\x01", 8);
        }
        size_t reply_size = https ? kEstablished.size() : 10;
        std::string got = client.read_at_least(reply_size, 10s);
        if (got.size() < reply_size || got.compare(0, expected.size(), expected) != 0) {
            ADD_FAILURE() << name_of(via) << ": tunnel not opened, got \"" << got.substr(0, 80)
                          << "\"";
            return std::nullopt;
        }
        return got.substr(reply_size);
    }

    // What the tunnel's request looks like in the access log.
    static std::string logged_request(Via via, uint16_t origin_port) {
        return "CONNECT " + authority(origin_port) +
               (via == Via::kHttpsConnect ? " HTTP/1.1" : " SOCKS5");
    }
    // Bytes of the client's own protocol counted in the line: the CONNECT
    // head one way and the 200 the other; SOCKS counts tunnel bytes only.
    static uint64_t head_bytes_from_client(Via via, uint16_t origin_port) {
        return via == Via::kHttpsConnect ? connect_head(origin_port).size() : 0;
    }
    static uint64_t head_bytes_to_client(Via via) {
        return via == Via::kHttpsConnect ? kEstablished.size() : 0;
    }

    // Waits for the access-log line of the tunnel to `origin_port` (the
    // worker writes its log out every heartbeat).
    std::optional<AccessLine> access_line(Via via, uint16_t origin_port) {
        const std::string request = logged_request(via, origin_port);
        harness::Json record = harness::wait_for_record(
            proxy_->path("access.log"),
            [&](const harness::Json& r) { return from_record(r).request == request; });
        EXPECT_FALSE(record.is_null()) << "no access-log record of " << request << " in:\n"
                                       << harness::read_file(proxy_->path("access.log"));
        if (record.is_null()) return std::nullopt;
        return from_record(record);
    }

    // The line says who, to where, the status, how it ended and, when
    // given, the exact byte counts.
    void expect_logged(Via via, const TlsClient& client, uint16_t origin_port,
                       const std::string& reason, std::optional<uint64_t> tunnel_up = {},
                       std::optional<uint64_t> tunnel_down = {}, uint16_t client_port = 0) {
        std::optional<AccessLine> line = access_line(via, origin_port);
        if (!line) return;
        if (client_port == 0) client_port = client.local_port();
        EXPECT_EQ(line->client, authority(client_port));
        EXPECT_EQ(line->user, "-");
        EXPECT_EQ(line->status, 200);
        EXPECT_EQ(line->upstream, authority(origin_port));
        EXPECT_EQ(line->route, "direct");
        EXPECT_EQ(line->reason, reason);
        if (tunnel_up) {
            EXPECT_EQ(line->from_client, head_bytes_from_client(via, origin_port) + *tunnel_up);
        }
        if (tunnel_down) {
            EXPECT_EQ(line->to_client, head_bytes_to_client(via) + *tunnel_down);
        }
    }

    // Worker pids now, sorted.
    std::vector<pid_t> workers() {
        std::vector<pid_t> pids = proxy_->worker_pids();
        std::sort(pids.begin(), pids.end());
        return pids;
    }

    std::unique_ptr<ProxydInstance> proxy_;
};

// --- Half-close -------------------------------------------------------------------

// The client sends, then half-closes (close_notify and FIN): the origin
// must see every byte and then EOF, and its answer, sent after that EOF,
// must still reach the client in full before the client sees the end.
TEST_F(TlsListenerTunnel, ClientHalfCloseReachesTheOriginWhichStillAnswers) {
    ASSERT_TRUE(start());
    for (Via via : kEveryVia) {
        SCOPED_TRACE(name_of(via));
        const std::string upload = pattern_bytes(300000, 1);
        const std::string answer = pattern_bytes(200000, 2);
        OriginLog seen;
        RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
            seen.record_until_eof(fd, stopping);
            if (seen.saw_eof) send_counted(fd, answer, seen.sent, stopping, 10s);
            ::shutdown(fd, SHUT_WR);
            seen.done = true;
        });
        TlsClient client;
        std::optional<std::string> early = open_tunnel(client, via, origin.port());
        ASSERT_TRUE(early);
        ASSERT_TRUE(client.send(upload));
        ASSERT_TRUE(client.shutdown_write()) << "close_notify not sent";
        bool closed = false;
        std::string down = *early + client.read_until_close(10s, &closed);
        EXPECT_TRUE(closed) << "the proxy never passed the origin's close on";
        EXPECT_TRUE(wait_for([&] { return seen.done.load(); }, 5s));
        EXPECT_TRUE(seen.saw_eof) << "the client's half-close never reached the origin";
        EXPECT_EQ(sha256_hex(seen.copy()), sha256_hex(upload)) << seen.copy().size() << " bytes";
        EXPECT_EQ(down.size(), answer.size());
        EXPECT_EQ(sha256_hex(down), sha256_hex(answer));
        expect_logged(via, client, origin.port(), "-", upload.size(), answer.size());
    }
}

// The origin sends, then half-closes: the client reads every byte, then
// the end of the stream, and may still send; the origin gets that too and
// then the client's EOF.
TEST_F(TlsListenerTunnel, OriginHalfCloseReachesTheClientWhichStillSends) {
    ASSERT_TRUE(start());
    for (Via via : kEveryVia) {
        SCOPED_TRACE(name_of(via));
        const std::string banner = pattern_bytes(250000, 3);
        const std::string reply = pattern_bytes(100000, 4);
        OriginLog seen;
        RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
            send_counted(fd, banner, seen.sent, stopping, 10s);
            ::shutdown(fd, SHUT_WR);
            seen.record_until_eof(fd, stopping);
            seen.done = true;
        });
        TlsClient client;
        std::optional<std::string> early = open_tunnel(client, via, origin.port());
        ASSERT_TRUE(early);
        bool closed = false;
        std::string down = *early + client.read_until_close(10s, &closed);
        EXPECT_TRUE(closed) << "the origin's half-close never reached the client";
        EXPECT_EQ(down.size(), banner.size());
        EXPECT_EQ(sha256_hex(down), sha256_hex(banner));
        // Our side of the tunnel is still open.
        ASSERT_TRUE(client.send(reply)) << "the proxy closed both directions";
        ASSERT_TRUE(client.shutdown_write());
        EXPECT_TRUE(wait_for([&] { return seen.done.load(); }, 10s));
        EXPECT_TRUE(seen.saw_eof) << "the client's half-close never reached the origin";
        EXPECT_EQ(sha256_hex(seen.copy()), sha256_hex(reply)) << seen.copy().size() << " bytes";
        expect_logged(via, client, origin.port(), "-", reply.size(), banner.size());
    }
}

// --- Backpressure ---------------------------------------------------------------

// The origin sends 32 MiB to a client that does not read. The proxy must
// stop reading the origin once its buffer toward the client is full: the
// worker's resident set stays within a few buffers (a proxy that kept
// reading would hold most of the 32 MiB: the test's own sockets are small,
// so the kernel cannot take it), and once the client reads, every byte
// arrives in order.
TEST_F(TlsListenerTunnel, ClientThatDoesNotReadHoldsTheOriginBackWithBoundedMemory) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS means nothing under ASan";
    ASSERT_TRUE(start());
    constexpr uint64_t kGrowthBound = 12 * kMiB;  // buffer_size is 64 KiB
    const std::string download = pattern_bytes(32 * kMiB, 5);
    for (Via via : kEveryVia) {
        SCOPED_TRACE(name_of(via));
        const std::vector<pid_t> pids = workers();
        ASSERT_EQ(pids.size(), 1u);
        const uint64_t before = harness::resident_bytes(pids[0]);
        OriginLog seen;
        RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
            int small = 64 * 1024;
            ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
            send_counted(fd, download, seen.sent, stopping, 60s);
            ::shutdown(fd, SHUT_WR);
            seen.record_until_eof(fd, stopping, 60s);
            seen.done = true;
        });
        TlsClient client;
        std::optional<std::string> early = open_tunnel(client, via, origin.port(), 64 * 1024);
        ASSERT_TRUE(early);
        // Wait until the origin is held back: no progress for a second.
        uint64_t last = 0;
        auto last_change = Clock::now();
        wait_for(
            [&] {
                uint64_t now = seen.sent.load();
                if (now != last) last_change = Clock::now();
                last = now;
                return now == download.size() || Clock::now() - last_change > 1s;
            },
            30s, 50ms);
        const uint64_t held_at = seen.sent.load();
        const uint64_t during = harness::resident_bytes(pids[0]);
        EXPECT_EQ(workers(), pids) << "the worker changed: its RSS figures mean nothing";
        std::printf(
            "[ info     ] %s: origin held back after %.1f MiB; worker RSS %.1f -> %.1f MiB\n",
            name_of(via), double(held_at) / kMiB, double(before) / kMiB, double(during) / kMiB);
        EXPECT_LT(held_at, download.size()) << "the proxy took the whole download";
        EXPECT_LT(during, before + kGrowthBound) << "the proxy buffers what the client can't take";
        bool closed = false;
        std::string down = *early + client.read_until_close(60s, &closed);
        EXPECT_TRUE(closed);
        EXPECT_EQ(down.size(), download.size());
        EXPECT_TRUE(down == download) << "bytes lost, duplicated or reordered";
        client.shutdown_write();
        EXPECT_TRUE(wait_for([&] { return seen.done.load(); }, 10s));
        expect_logged(via, client, origin.port(), "-", 0, download.size());
    }
}

// --- Idle timeout -----------------------------------------------------------------

// A tunnel that carries a byte now and then stays open past
// tunnel_idle_timeout; once nothing moves for that long it is closed, both
// ways, not earlier, and the line says "idle timeout".
TEST_F(TlsListenerTunnel, IdleTunnelIsClosedAfterTunnelIdleTimeout) {
    constexpr Millis kIdle = 1000ms;
    ConfigBuilder config;
    config.set("limits", "tunnel_idle_timeout", "1s");
    ASSERT_TRUE(start(config));
    for (Via via : kEveryVia) {
        SCOPED_TRACE(name_of(via));
        OriginLog seen;
        RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
            char buf[4096];
            auto deadline = Clock::now() + 20s;
            while (!stopping && Clock::now() < deadline) {  // an echo until EOF
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0) continue;
                ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n == 0) seen.saw_eof = true;
                if (n <= 0) break;
                harness::send_all(fd, std::string_view(buf, static_cast<size_t>(n)));
            }
            seen.done = true;
        });
        TlsClient client;
        ASSERT_TRUE(open_tunnel(client, via, origin.port()));
        // Traffic every 0.4 s for longer than the timeout keeps it open.
        auto busy_since = Clock::now();
        int pings = 0;
        while (harness::since(busy_since) < kIdle * 3 / 2) {
            std::string ping = "ping " + std::to_string(pings++) + "\n";
            ASSERT_TRUE(client.send(ping));
            ASSERT_EQ(client.read_at_least(ping.size(), 5s), ping)
                << "closed while busy, after " << ms_since(busy_since) << " ms";
            std::this_thread::sleep_for(400ms);  // the idle gap under test
        }
        auto last_sent = Clock::now();
        ASSERT_TRUE(client.send("last"));
        ASSERT_EQ(client.read_at_least(4, 5s), "last");
        bool closed = false;
        std::string after = client.read_until_close(kIdle + 10s, &closed);
        const Millis idle_for = harness::since(last_sent);
        EXPECT_TRUE(closed) << "an idle tunnel stayed open";
        EXPECT_EQ(after, "");
        EXPECT_GE(idle_for, kIdle) << "closed before tunnel_idle_timeout";
        EXPECT_LT(idle_for, kIdle + 5s);
        EXPECT_TRUE(wait_for([&] { return seen.done.load(); }, 5s));
        EXPECT_TRUE(seen.saw_eof) << "the origin's side was not closed";
        uint64_t echoed = 4;
        for (int i = 0; i < pings; ++i) echoed += ("ping " + std::to_string(i) + "\n").size();
        expect_logged(via, client, origin.port(), "idle timeout", echoed, echoed);
    }
}

// --- Abnormal ends ----------------------------------------------------------------

// A reset on either side ends the tunnel at once, closes the other side,
// and is logged as that side's connection error, not as a normal close.
TEST_F(TlsListenerTunnel, ResetsEndTheTunnelAndAreLoggedAsConnectionErrors) {
    ASSERT_TRUE(start());
    for (Via via : kEveryVia) {
        SCOPED_TRACE(name_of(via));
        {
            SCOPED_TRACE("the client resets");
            OriginLog seen;
            RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
                seen.record_until_eof(fd, stopping);  // EOF or reset: the proxy closed
                seen.done = true;
            });
            TlsClient client;
            ASSERT_TRUE(open_tunnel(client, via, origin.port()));
            ASSERT_TRUE(client.send("hello"));
            ASSERT_TRUE(wait_for([&] { return seen.copy() == "hello" || seen.done; }, 5s));
            uint16_t client_port = client.local_port();
            client.reset();
            EXPECT_TRUE(wait_for([&] { return seen.done.load(); }, 5s))
                << "the origin's connection outlived the client's";
            EXPECT_EQ(seen.copy(), "hello");
            expect_logged(via, client, origin.port(), "client connection error", 5, 0, client_port);
        }
        {
            SCOPED_TRACE("the origin resets");
            RawTcpServer origin([&](int fd, const std::atomic<bool>& stopping) {
                std::string in;
                auto deadline = Clock::now() + 5s;
                char buf[64];
                while (in.size() < 5 && !stopping && Clock::now() < deadline) {
                    pollfd p{fd, POLLIN, 0};
                    if (::poll(&p, 1, 50) <= 0) continue;
                    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                    if (n <= 0) break;
                    in.append(buf, static_cast<size_t>(n));
                }
                harness::reset_on_close(fd);  // the close becomes a reset
            });
            TlsClient client;
            ASSERT_TRUE(open_tunnel(client, via, origin.port()));
            ASSERT_TRUE(client.send("hello"));
            bool closed = false;
            EXPECT_EQ(client.read_until_close(5s, &closed), "");
            EXPECT_TRUE(closed) << "the client's connection outlived the origin's";
            expect_logged(via, client, origin.port(), "upstream connection error", 5, 0);
        }
    }
}

}  // namespace
