// Memory per session (issue 7, item 5): many held idle CONNECT tunnels and
// many clients that never read their responses cost a bounded, documented
// amount of worker memory each; nothing grows with the size of the data.
//
// Worker memory is the resident set of the worker processes, read from
// /proc/PID/statm (harness::WorkerMemory): never the reports' rss_bytes,
// which a stalled worker freezes. A measurement counts only when the same
// workers ran from start to end. Kernel socket buffers (and the pipes of the
// splice relay) are not part of it. Each part runs against its own proxyd
// so memory freed by one part cannot hide the cost of the other.
//
// Measured on the 2-core development VM (g++ -O2, glibc malloc, libevent
// 2.1), two workers, buffer_size = 64k, with two CPU hogs beside them:
//   - 2,000 idle tunnels, each after 1 KiB echoed both ways: 4.0 KiB of
//     worker RSS per tunnel (about 8 MiB over the two workers);
//   - 300 clients that never read an 8 MiB body: 5-9 KiB per client. Bodies
//     that large move through splice(2) pipes, kernel memory outside the
//     RSS; without splice a session holds two buffers of buffer_size (the
//     client's output at the high watermark and the upstream input read
//     before reading paused), about 130 KiB.
// The assertions leave headroom for the copying path: 16 KiB per idle
// tunnel and buffer_size * 2 + 32 KiB (160 KiB) per non-reading client.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/load.h"
#include "tests/integration/worker_memory.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::HttpOrigin;
using harness::Json;
using harness::Millis;
using harness::ms_since;
using harness::ProxydInstance;
using harness::RawClient;
using harness::wait_for;

constexpr double kKiB = 1024.0;
constexpr uint64_t kBufferSize = 64 * 1024;  // the default buffer_size

int64_t active_sessions(ProxydInstance& proxy) {
    return proxy.control_json("stats")["active_sessions"].as_int();
}

// Enough descriptors in the test process for both ends of every tunnel.
void raise_nofile(rlim_t wanted) {
    rlimit l{};
    ::getrlimit(RLIMIT_NOFILE, &l);
    if (l.rlim_cur >= wanted) return;
    if (l.rlim_max < wanted) l.rlim_max = wanted;  // we may be root
    l.rlim_cur = wanted;
    if (::setrlimit(RLIMIT_NOFILE, &l) != 0) {
        ::getrlimit(RLIMIT_NOFILE, &l);
        l.rlim_cur = l.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &l);
    }
}

// The far end of the tunnels: one epoll thread that accepts any number of
// connections and echoes what it reads. Every descriptor is closed by the
// destructor.
class EchoSink {
  public:
    EchoSink() {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
            ::listen(listen_fd_, 4096) != 0) {
            ADD_FAILURE() << "EchoSink: " << std::strerror(errno);
            return;
        }
        socklen_t len = sizeof sin;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sin), &len);
        port_ = ntohs(sin.sin_port);
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listen_fd_;
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
        thread_ = std::thread([this] { loop(); });
    }
    ~EchoSink() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        for (int fd : fds_) ::close(fd);
        if (epoll_fd_ >= 0) ::close(epoll_fd_);
        if (listen_fd_ >= 0) ::close(listen_fd_);
    }
    EchoSink(const EchoSink&) = delete;
    EchoSink& operator=(const EchoSink&) = delete;

    uint16_t port() const { return port_; }
    int open_connections() const { return open_.load(); }

  private:
    void loop() {
        epoll_event events[256];
        char buf[16384];
        while (!stop_) {
            int n = ::epoll_wait(epoll_fd_, events, 256, 50);
            for (int i = 0; i < n; ++i) {
                int fd = events[i].data.fd;
                if (fd == listen_fd_) {
                    for (;;) {
                        int c =
                            ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (c < 0) break;
                        epoll_event ev{};
                        ev.events = EPOLLIN;
                        ev.data.fd = c;
                        ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c, &ev);
                        fds_.insert(c);
                        ++open_;
                    }
                    continue;
                }
                ssize_t got = ::recv(fd, buf, sizeof buf, 0);
                if (got > 0) {
                    (void)::send(fd, buf, static_cast<size_t>(got), MSG_NOSIGNAL);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
                    ::close(fd);
                    fds_.erase(fd);
                    --open_;
                }
            }
        }
    }

    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> open_{0};
    std::set<int> fds_;  // touched by the loop thread only, then the destructor
    std::thread thread_;
};

// Opens `count` tunnels through the proxy to the sink and echoes `echo`
// through each; the clients are appended to `out`. False on the first
// failure (with a test failure recorded).
bool open_tunnels(uint16_t proxy_port, uint16_t sink_port, int count, const std::string& echo,
                  std::vector<std::unique_ptr<RawClient>>& out) {
    const std::string target = "127.0.0.1:" + std::to_string(sink_port);
    const std::string request = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
    constexpr int kBatch = 200;
    for (int done = 0; done < count;) {
        int n = std::min(kBatch, count - done);
        std::vector<std::unique_ptr<RawClient>> batch;
        for (int i = 0; i < n; ++i) {
            auto c = std::make_unique<RawClient>();
            if (!c->connect(proxy_port) || !c->send(request)) {
                ADD_FAILURE() << "tunnel " << done + i << ": cannot connect or send";
                return false;
            }
            batch.push_back(std::move(c));
        }
        for (auto& c : batch) {
            std::string head = c->recv_some(5s);
            if (head.compare(0, 12, "HTTP/1.1 200") != 0 ||
                head.find("\r\n\r\n") != head.size() - 4) {
                ADD_FAILURE() << "CONNECT answered: " << head.substr(0, 80);
                return false;
            }
            if (!c->send(echo)) {
                ADD_FAILURE() << "cannot send through a tunnel";
                return false;
            }
        }
        for (auto& c : batch) {
            std::string back;
            auto deadline = Clock::now() + 5s;
            while (back.size() < echo.size() && Clock::now() < deadline) {
                std::string part = c->recv_some(1s);
                if (part.empty() && c->eof()) break;
                back += part;
            }
            if (back != echo) {
                ADD_FAILURE() << "echo through a tunnel: got " << back.size() << " bytes";
                return false;
            }
        }
        for (auto& c : batch) out.push_back(std::move(c));
        done += n;
    }
    return true;
}

TEST(MemoryBound, IdleTunnelsCostAFewKiBEach) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS bounds are not measurable under ASan";
    constexpr int kTunnels = 2000;
    raise_nofile(3 * kTunnels + 1024);
    EchoSink sink;
    ConfigBuilder config;
    config.set("limits", "tunnel_idle_timeout", "60s");
    ProxydInstance proxy(config);
    ASSERT_TRUE(proxy.start());
    const uint16_t port = proxy.listener_port();
    harness::WorkerMemory memory(proxy);
    ASSERT_EQ(memory.pids().size(), 2u);
    const std::string echo = harness::pattern_bytes(1024, 7);

    // Warm-up: the first tunnels allocate what every later one reuses.
    {
        std::vector<std::unique_ptr<RawClient>> warm;
        ASSERT_TRUE(open_tunnels(port, sink.port(), 100, echo, warm));
        warm.clear();
        ASSERT_TRUE(wait_for([&] { return active_sessions(proxy) == 0; }, 5s));
    }
    const uint64_t before = memory.settled_resident(10s);
    auto start = Clock::now();
    std::vector<std::unique_ptr<RawClient>> tunnels;
    ASSERT_TRUE(open_tunnels(port, sink.port(), kTunnels, echo, tunnels));
    long long took = ms_since(start);
    ASSERT_TRUE(wait_for([&] { return active_sessions(proxy) == kTunnels; }, 5s))
        << active_sessions(proxy);
    const uint64_t held = memory.settled_resident(10s);
    const double per_tunnel = (static_cast<double>(held) - static_cast<double>(before)) / kTunnels;
    std::printf(
        "[ info     ] %d idle tunnels (opened and echoed 1 KiB in %lld ms): worker RSS %.1f -> "
        "%.1f MiB: %.2f KiB per tunnel\n",
        kTunnels, took, before / kKiB / kKiB, held / kKiB / kKiB, per_tunnel / kKiB);
    EXPECT_LE(per_tunnel, 16 * kKiB);
    ASSERT_TRUE(memory.expect_same_workers()) << "the figures above mean nothing";
    EXPECT_EQ(sink.open_connections(), kTunnels + 0);

    // Closing the clients ends every tunnel and its upstream connection.
    tunnels.clear();
    EXPECT_TRUE(wait_for([&] { return active_sessions(proxy) == 0; }, 5s))
        << active_sessions(proxy);
    EXPECT_TRUE(wait_for([&] { return sink.open_connections() == 0; }, 5s))
        << sink.open_connections();
    memory.expect_same_workers();
}

TEST(MemoryBound, ClientsThatNeverReadCostAtMostTwoBuffersEach) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS bounds are not measurable under ASan";
    constexpr int kClients = 300;
    constexpr size_t kBody = 8 << 20;
    raise_nofile(4 * kClients + 1024);
    HttpOrigin origin;
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const uint16_t port = proxy.listener_port();
    harness::WorkerMemory memory(proxy);
    ASSERT_EQ(memory.pids().size(), 2u);
    const std::string request = loadgen::get_request(origin, "/bytes/" + std::to_string(kBody));

    // Warm-up: a few full reads of the same body.
    for (int i = 0; i < 4; ++i) {
        RawClient c;
        ASSERT_TRUE(c.connect(port));
        ASSERT_TRUE(c.send(request));
        auto r = c.read_response(10s);
        ASSERT_TRUE(r);
        ASSERT_EQ(r->body.size(), kBody);
    }
    origin.clear();
    const uint64_t before = memory.settled_resident(10s);
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < kClients; ++i) {
        auto c = std::make_unique<RawClient>();
        ASSERT_TRUE(c->connect(port));
        ASSERT_TRUE(c->send(request));
        clients.push_back(std::move(c));
    }
    ASSERT_TRUE(wait_for([&] { return origin.request_count() >= kClients; }, 20s))
        << origin.request_count();
    // Let every pipe fill up: the kernel's socket buffers first, then the
    // proxy's, until it stops reading from the origin. Settled when the
    // workers' resident set (from /proc, not from their reports, which a
    // stalled worker would freeze) stops growing.
    auto settle = Clock::now();
    const uint64_t held = memory.settled_resident(20s, 256 * 1024, 450ms);
    std::printf("[ info     ] worker memory settled after %lld ms\n", ms_since(settle));
    const double per_client = (static_cast<double>(held) - static_cast<double>(before)) / kClients;
    std::printf(
        "[ info     ] %d clients not reading %zu MiB each: worker RSS %.1f -> %.1f MiB: %.1f KiB "
        "per client (bound %.0f KiB)\n",
        kClients, kBody >> 20, before / kKiB / kKiB, held / kKiB / kKiB, per_client / kKiB,
        (2 * kBufferSize + 32 * 1024) / kKiB);
    EXPECT_LE(per_client, static_cast<double>(2 * kBufferSize + 32 * 1024));
    ASSERT_TRUE(memory.expect_same_workers()) << "the figures above mean nothing";
    EXPECT_TRUE(wait_for([&] { return active_sessions(proxy) == kClients; }, 5s))
        << active_sessions(proxy);

    // Any client can still read its whole body, byte-exact.
    {
        auto r = clients.front()->read_response(20s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(harness::sha256_hex(r->body), harness::sha256_hex(harness::pattern_bytes(kBody)));
    }
    clients.clear();
    EXPECT_TRUE(wait_for([&] { return active_sessions(proxy) == 0; }, 5s))
        << active_sessions(proxy);
    memory.expect_same_workers();
}

}  // namespace
