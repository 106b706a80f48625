// tunnel_hold: open N idle CONNECT tunnels through an HTTP proxy and hold them.
//
//   tunnel_hold PROXY_PORT SINK_PORT N [CONCURRENCY] [TIMEOUT_S] [SOURCE_ADDR] [SINK_ADDR]
//
// The tool is its own origin: it listens on SINK_ADDR:SINK_PORT (default
// 127.0.0.1) and accepts (and keeps) whatever the proxy dials there. It opens
// N connections to 127.0.0.1:PROXY_PORT from SOURCE_ADDR (default: the
// kernel's choice, 127.0.0.1), at most CONCURRENCY handshakes in flight, sends
// "CONNECT SINK_ADDR:SINK_PORT HTTP/1.1" on each and waits for a 2xx answer.
//
// One process holds 2 descriptors per tunnel and one source address has
// about 28k ephemeral ports towards one proxy address, so bench/sessions.sh
// runs many of these, each with its own source address and sink, to hold
// 100k tunnels (Linux routes all of 127.0.0.0/8 on lo).
// When every tunnel is up (or failed, or TIMEOUT_S passed, or no new tunnel
// got up for 15 s: a proxy out of descriptors leaves connections in its
// backlog, or refuses them one by one) it prints one line
//   READY established=E failed=F sink_accepted=S elapsed_ms=T
// (N - E - F tunnels were still pending, counted as not established)
// and then holds everything open until SIGTERM/SIGINT, when it prints
//   DONE alive=A sink_accepted=S
// (A = tunnels whose proxy side is still open) and exits. SIGUSR1 prints
//   ALIVE alive=A sink_accepted=S
// at any time and goes on holding.
//
// Loopback only. Built by bench/run.sh with g++ -O2.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_report = 0;
void on_signal(int) {
    g_stop = 1;
}
void on_report(int) {
    g_report = 1;
}

enum class State : unsigned char { kConnecting, kSent, kEstablished, kFailed };

struct Conn {
    int fd = -1;
    State state = State::kConnecting;
    std::string reply;
};

// No new tunnel got up for this long: the rest will not (see above).
constexpr long long kStallMs = 15000;

long long now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

// address(TEXT, PORT): TEXT (dotted IPv4) and PORT; false if TEXT is not one
bool address(const char* text, int port, sockaddr_in& a) {
    a = sockaddr_in{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    return inet_pton(AF_INET, text, &a.sin_addr) == 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s PROXY_PORT SINK_PORT N [CONCURRENCY] [TIMEOUT_S] [SOURCE_ADDR] "
                     "[SINK_ADDR]\n",
                     argv[0]);
        return 2;
    }
    const int proxy_port = std::atoi(argv[1]);
    const int sink_port = std::atoi(argv[2]);
    const int n = std::atoi(argv[3]);
    const int concurrency = argc > 4 ? std::atoi(argv[4]) : 256;
    const int timeout_s = argc > 5 ? std::atoi(argv[5]) : 120;
    const char* source_text = argc > 6 && argv[6][0] != '\0' ? argv[6] : nullptr;
    const char* sink_text = argc > 7 ? argv[7] : "127.0.0.1";
    sockaddr_in source{}, sink{}, proxy{};
    if ((source_text != nullptr && !address(source_text, 0, source)) ||
        !address(sink_text, sink_port, sink) || !address("127.0.0.1", proxy_port, proxy)) {
        std::fprintf(stderr, "tunnel_hold: bad address\n");
        return 2;
    }

    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < static_cast<rlim_t>(2 * n + 64)) {
        std::fprintf(stderr, "tunnel_hold: RLIMIT_NOFILE %llu too low for %d tunnels\n",
                     static_cast<unsigned long long>(rl.rlim_cur), n);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    // no SA_RESTART: the signal ends the epoll_wait, which then reports
    struct sigaction report {};
    report.sa_handler = on_report;
    sigaction(SIGUSR1, &report, nullptr);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&sink), sizeof sink) != 0 ||
        listen(lfd, 65535) != 0) {
        std::fprintf(stderr, "tunnel_hold: cannot listen on %s:%d: %s\n", sink_text, sink_port,
                     std::strerror(errno));
        return 1;
    }
    epoll_event lev{};
    lev.events = EPOLLIN;
    lev.data.u64 = ~0ULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

    std::vector<Conn> conns(static_cast<size_t>(n));
    std::vector<int> sink_fds;
    sink_fds.reserve(static_cast<size_t>(n));
    const std::string target = std::string(sink_text) + ":" + std::to_string(sink_port);
    const std::string request = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";

    int next = 0, inflight = 0, established = 0, failed = 0;
    const long long start = now_ms();
    long long last_progress = start;
    int last_established = 0;
    bool ready = false;
    std::vector<epoll_event> events(1024);

    auto fail = [&](Conn& c) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        close(c.fd);
        c.fd = -1;
        c.state = State::kFailed;
        ++failed;
        --inflight;
    };

    // tunnels whose proxy side is still open (nothing to read, no EOF)
    auto count_alive = [&conns]() {
        int alive = 0;
        for (const Conn& c : conns) {
            if (c.state != State::kEstablished) continue;
            char b;
            ssize_t r = recv(c.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r < 0 && errno == EAGAIN) ++alive;
        }
        return alive;
    };

    while (!g_stop) {
        if (g_report && ready) {
            g_report = 0;
            std::printf("ALIVE alive=%d sink_accepted=%zu\n", count_alive(), sink_fds.size());
            std::fflush(stdout);
        }
        while (!ready && inflight < concurrency && next < n) {
            Conn& c = conns[static_cast<size_t>(next)];
            c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c.fd < 0) {
                c.state = State::kFailed;
                ++failed;
                ++next;
                continue;
            }
            // A source address of its own: the port is picked at connect()
            // (IP_BIND_ADDRESS_NO_PORT), per 4-tuple, not at bind().
            if (source_text != nullptr) {
                setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
                if (bind(c.fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
                    close(c.fd);
                    c.fd = -1;
                    c.state = State::kFailed;
                    ++failed;
                    ++next;
                    continue;
                }
            }
            int r = connect(c.fd, reinterpret_cast<const sockaddr*>(&proxy), sizeof proxy);
            epoll_event ev{};
            ev.events = EPOLLOUT;
            ev.data.u64 = static_cast<uint64_t>(next);
            ++inflight;
            ++next;
            if (r != 0 && errno != EINPROGRESS) {
                close(c.fd);
                c.fd = -1;
                c.state = State::kFailed;
                ++failed;
                --inflight;
                continue;
            }
            epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
        }
        if (established != last_established) {
            last_established = established;
            last_progress = now_ms();
        }
        if (!ready && (established + failed == n || now_ms() - start > timeout_s * 1000LL ||
                       now_ms() - last_progress > kStallMs)) {
            // Give the proxy a moment to finish dialling the sink.
            long long until = now_ms() + 2000;
            while (static_cast<int>(sink_fds.size()) < established && now_ms() < until) {
                int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0)
                    sink_fds.push_back(fd);
                else
                    usleep(1000);
            }
            ready = true;
            std::printf("READY established=%d failed=%d sink_accepted=%zu elapsed_ms=%lld\n",
                        established, failed, sink_fds.size(), now_ms() - start);
            std::fflush(stdout);
        }
        int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < k; ++i) {
            if (events[i].data.u64 == ~0ULL) {
                for (;;) {
                    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    sink_fds.push_back(fd);
                }
                continue;
            }
            Conn& c = conns[events[i].data.u64];
            if (c.state == State::kConnecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0 || (events[i].events & (EPOLLERR | EPOLLHUP))) {
                    fail(c);
                    continue;
                }
                if (write(c.fd, request.data(), request.size()) !=
                    static_cast<ssize_t>(request.size())) {
                    fail(c);
                    continue;
                }
                c.state = State::kSent;
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = events[i].data.u64;
                epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
            } else if (c.state == State::kSent) {
                char buf[1024];
                ssize_t r = read(c.fd, buf, sizeof buf);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN) continue;
                    fail(c);
                    continue;
                }
                c.reply.append(buf, static_cast<size_t>(r));
                if (c.reply.find("\r\n\r\n") == std::string::npos) {
                    if (c.reply.size() > 8192) fail(c);
                    continue;
                }
                // "HTTP/1.x 2xx"
                if (c.reply.size() < 12 || c.reply.compare(0, 5, "HTTP/") != 0 ||
                    c.reply[9] != '2') {
                    fail(c);
                    continue;
                }
                c.state = State::kEstablished;
                std::string().swap(c.reply);
                epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                ++established;
                --inflight;
            }
        }
    }

    std::printf("DONE alive=%d sink_accepted=%zu\n", count_alive(), sink_fds.size());
    std::fflush(stdout);
    return 0;
}
