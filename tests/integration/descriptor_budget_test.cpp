// End-to-end tests of a worker's descriptor budget (common::descriptor_budget):
// idle upstream connections kept for keep-alive must never leave a worker
// without descriptors for new clients and new requests.
//
// The origin is one thread serving many ports of 127.0.0.1: each port is a
// destination of its own, so a single client can make the proxy pool one
// idle connection per port, as a client naming many host names would.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
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

// An HTTP origin on `count` ports of 127.0.0.1, all served by one thread
// with poll(). Every request head gets "200 ok" and the connection stays
// open. Requests carry no body here.
class ManyPortOrigin {
  public:
    explicit ManyPortOrigin(size_t count) {
        for (size_t i = 0; i < count; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t length = sizeof(address);
            if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
                ::listen(fd, 64) != 0 ||
                ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
                ADD_FAILURE() << "origin port " << i << ": " << std::strerror(errno);
                if (fd >= 0) ::close(fd);
                continue;
            }
            listeners_.push_back(fd);
            ports_.push_back(ntohs(address.sin_port));
        }
        thread_ = std::thread([this] { serve(); });
    }
    ~ManyPortOrigin() {
        stopping_ = true;
        thread_.join();
        for (int fd : listeners_) ::close(fd);
    }
    ManyPortOrigin(const ManyPortOrigin&) = delete;
    ManyPortOrigin& operator=(const ManyPortOrigin&) = delete;

    const std::vector<uint16_t>& ports() const { return ports_; }
    int requests() const { return requests_.load(); }

  private:
    void serve() {
        std::map<int, std::string> connections;  // fd -> bytes not yet answered
        while (!stopping_) {
            std::vector<pollfd> fds;
            for (int fd : listeners_) fds.push_back({fd, POLLIN, 0});
            for (const auto& [fd, pending] : connections) fds.push_back({fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
            for (size_t i = 0; i < fds.size(); ++i) {
                if (fds[i].revents == 0) continue;
                if (i < listeners_.size()) {
                    int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd >= 0) connections[fd];
                    continue;
                }
                if (!read_and_answer(fds[i].fd, connections[fds[i].fd])) {
                    ::close(fds[i].fd);
                    connections.erase(fds[i].fd);
                }
            }
        }
        for (const auto& [fd, pending] : connections) ::close(fd);
    }

    // False when the connection is over.
    bool read_and_answer(int fd, std::string& pending) {
        char buffer[4096];
        ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
        if (n > 0) pending.append(buffer, static_cast<size_t>(n));
        static const std::string kResponse =
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n";
        for (size_t end; (end = pending.find("\r\n\r\n")) != std::string::npos;) {
            pending.erase(0, end + 4);
            requests_++;
            if (::send(fd, kResponse.data(), kResponse.size(), MSG_NOSIGNAL) !=
                static_cast<ssize_t>(kResponse.size())) {
                return false;
            }
        }
        return true;
    }

    std::vector<int> listeners_;
    std::vector<uint16_t> ports_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> requests_{0};
    std::thread thread_;
};

// Lowers this process's soft RLIMIT_NOFILE for the scope: a proxyd spawned
// meanwhile starts below its budget and its master raises it to exactly that.
class ScopedSoftNofile {
  public:
    explicit ScopedSoftNofile(rlim_t soft) {
        ::getrlimit(RLIMIT_NOFILE, &saved_);
        rlimit lowered = saved_;
        lowered.rlim_cur = std::min(soft, saved_.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lowered);
    }
    ~ScopedSoftNofile() { ::setrlimit(RLIMIT_NOFILE, &saved_); }
    ScopedSoftNofile(const ScopedSoftNofile&) = delete;
    ScopedSoftNofile& operator=(const ScopedSoftNofile&) = delete;

  private:
    rlimit saved_{};
};

// The descriptors `pid` holds: how many, how many are sockets, the highest.
struct Descriptors {
    int count = 0;
    int sockets = 0;
    int highest = -1;
};

Descriptors descriptors_of(pid_t pid) {
    Descriptors out;
    for (const auto& [fd, target] : harness::descriptor_targets(pid)) {
        out.count++;
        out.highest = std::max(out.highest, fd);
        if (target.rfind("socket:", 0) == 0) out.sockets++;
    }
    return out;
}

std::string get_request(uint16_t port) {
    std::string authority = "127.0.0.1:" + std::to_string(port);
    return "GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
}

// One request on `client` (kept alive); its status, or 0 without an answer.
// `body` receives the answer's body, which names the cause of an error.
int request(RawClient& client, uint16_t port, std::string* body = nullptr) {
    if (!client.send(get_request(port))) return 0;
    auto response = client.read_response(5s);
    if (!response) return 0;
    if (body) *body = response->body;
    return response->status;
}

// `count` new clients at once, each with one request to its own destination
// among `ports` (from `first` on). Returns how many got 200.
int new_clients_at_once(uint16_t proxy_port, const std::vector<uint16_t>& ports, size_t first,
                        size_t count) {
    std::vector<std::unique_ptr<RawClient>> clients;
    for (size_t i = 0; i < count; ++i) {
        auto client = std::make_unique<RawClient>();
        if (client->connect(proxy_port, 3s) &&
            client->send(get_request(ports[(first + i) % ports.size()]))) {
            clients.push_back(std::move(client));
        }
    }
    int ok = 0;
    for (auto& client : clients) {
        auto response = client->read_response(5s);
        if (response && response->status == 200) {
            ++ok;
        } else {
            ADD_FAILURE() << "new client: "
                          << (response ? std::to_string(response->status) + " " + response->body
                                       : "no answer");
        }
    }
    return ok;
}

ConfigBuilder one_worker(const std::string& max_connections) {
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("limits", "max_connections", max_connections);
    return config;
}

// A client naming many destinations one after the other leaves an idle
// pooled connection to each. With max_connections = 16 the master sizes the
// worker's descriptors for 16 sessions and the pool's total cap (16 idle,
// since the cap is never above max_connections): the worker must stay
// inside that however many destinations there are, and new clients and new
// requests must still be served, never "502 Too many open files".
TEST(DescriptorBudget, IdleUpstreamsToManyDestinationsStayInsideTheBudget) {
    constexpr size_t kDestinations = 300;  // more than the whole budget
    constexpr int kMaxIdle = 16;
    ProxydInstance proxy(one_worker("16"));
    {
        // Room for what spawning opens here (new descriptors take the lowest
        // free numbers), and still below any budget.
        ScopedSoftNofile low(static_cast<rlim_t>(descriptors_of(::getpid()).count) + 16);
        ASSERT_TRUE(proxy.spawn());
    }
    ASSERT_TRUE(proxy.wait_ready());
    std::vector<pid_t> workers = proxy.worker_pids();
    ASSERT_EQ(workers.size(), 1u);
    const pid_t worker = workers[0];
    const Descriptors at_start = descriptors_of(worker);
    ManyPortOrigin origin(kDestinations);
    ASSERT_EQ(origin.ports().size(), kDestinations);
    const uint16_t proxy_port = proxy.listener_port();

    RawClient client;
    ASSERT_TRUE(client.connect(proxy_port));
    int most_sockets = 0;
    for (size_t i = 0; i < kDestinations; ++i) {
        std::string body;
        int status = request(client, origin.ports()[i], &body);
        ASSERT_EQ(status, 200) << "request " << i << " to a new destination: " << body;
        // A worker gone would read as holding nothing: that is no pass.
        const Descriptors now = descriptors_of(worker);
        ASSERT_GT(now.count, 0) << "worker " << worker << " is gone";
        most_sockets = std::max(most_sockets, now.sockets);
    }
    // Its own sockets at start, the client, at most kMaxIdle idle upstreams,
    // and the one the pool just let go (libevent closes a freed socket on
    // its next loop turn).
    rlimit limit{};
    ::prlimit(worker, RLIMIT_NOFILE, nullptr, &limit);
    std::printf(
        "[ info     ] worker (RLIMIT_NOFILE %llu) held %d sockets at start, at most %d "
        "after %zu destinations\n",
        static_cast<unsigned long long>(limit.rlim_cur), at_start.sockets, most_sockets,
        kDestinations);
    EXPECT_LE(most_sockets, at_start.sockets + 1 + kMaxIdle + 1);

    EXPECT_EQ(new_clients_at_once(proxy_port, origin.ports(), 0, 12), 12);
    EXPECT_EQ(request(client, origin.ports()[kDestinations - 1]), 200);
    EXPECT_TRUE(proxy.log_lines_with("Too many open files").empty());
    EXPECT_TRUE(proxy.log_lines_with("accepting paused").empty());
    EXPECT_EQ(proxy.worker_pids(), workers) << "the worker died or was replaced";
}

// When the worker has fewer descriptors than its budget (a hard limit below
// it, lowered here from outside as prlimit(1) does), idle pooled connections
// are what gives way: the dialler and the acceptor close the oldest of them
// and go on, instead of failing the request or pausing accepting.
TEST(DescriptorBudget, WorkerShortOfDescriptorsClosesIdleUpstreamsFirst) {
    // UBSan's vptr check probes memory through a pipe; in a worker with no
    // descriptor to spare that fails, and it reports a valid object (a
    // session freed from the graveyard) as having an invalid vptr.
    if (harness::sanitized_build())
        GTEST_SKIP() << "UBSan reports false errors in a process at its descriptor limit";
    constexpr size_t kDestinations = 60;
    constexpr rlim_t kFree = 12;
    ProxydInstance proxy(one_worker("64"));
    ASSERT_TRUE(proxy.start());
    std::vector<pid_t> workers = proxy.worker_pids();
    ASSERT_EQ(workers.size(), 1u);
    const pid_t worker = workers[0];
    ManyPortOrigin origin(kDestinations);
    const uint16_t proxy_port = proxy.listener_port();

    rlimit before{};
    ASSERT_EQ(::prlimit(worker, RLIMIT_NOFILE, nullptr, &before), 0) << std::strerror(errno);
    rlimit low = before;
    low.rlim_cur = static_cast<rlim_t>(descriptors_of(worker).highest) + 1 + kFree;
    ASSERT_EQ(::prlimit(worker, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);

    RawClient client;
    ASSERT_TRUE(client.connect(proxy_port));
    for (size_t i = 0; i < kDestinations; ++i) {
        std::string body;
        int status = request(client, origin.ports()[i], &body);
        ASSERT_EQ(status, 200) << "request " << i << " to a new destination: " << body;
    }
    EXPECT_FALSE(proxy.log_lines_with("out of descriptors: closed").empty())
        << "descriptors never ran out: the test did not test anything";
    // Every descriptor is taken, mostly by idle upstreams: new clients get
    // theirs from the pool too.
    EXPECT_EQ(descriptors_of(worker).count, static_cast<int>(low.rlim_cur));
    EXPECT_EQ(new_clients_at_once(proxy_port, origin.ports(), 0, 4), 4);
    EXPECT_EQ(request(client, origin.ports()[0]), 200);
    EXPECT_TRUE(proxy.log_lines_with("Too many open files").empty());
    EXPECT_TRUE(proxy.log_lines_with("accepting paused").empty());
    EXPECT_EQ(proxy.worker_pids(), workers);
    ::prlimit(worker, RLIMIT_NOFILE, &before, nullptr);
}

}  // namespace
