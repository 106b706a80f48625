// Unit tests for worker/resolver: the /etc/hosts parser, answers that need
// no DNS server (literals, /etc/hosts, RFC 6761 ".invalid") delivered from a
// real libevent loop, never from inside resolve(), unless cancelled, and a
// configured nameserver that is asked and whose silence ends in dns_timeout.
#include "worker/resolver.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace worker {
namespace {

using namespace std::chrono_literals;
using Hosts = std::multimap<std::string, common::SocketAddress>;

std::vector<std::string> addresses_of(const Hosts& hosts, const std::string& name) {
    std::vector<std::string> out;
    auto [first, last] = hosts.equal_range(name);
    for (auto it = first; it != last; ++it) out.push_back(it->second.host_string());
    return out;
}

TEST(ResolverHosts, ParsesNamesAliasesAndIpv6) {
    Hosts hosts = Resolver::parse_hosts(
        "# a comment line\n"
        "127.0.0.1\tlocalhost Localhost.Localdomain   # trailing comment\n"
        "::1 localhost ip6-localhost ip6-loopback\n"
        "\n"
        "   \t\n"
        "10.0.0.5 Web.Example.COM web\n"
        "2001:db8::7 v6only\n");
    EXPECT_EQ(hosts.size(), 8u);
    EXPECT_EQ(addresses_of(hosts, "localhost"), (std::vector<std::string>{"127.0.0.1", "::1"}));
    EXPECT_EQ(addresses_of(hosts, "localhost.localdomain"),
              (std::vector<std::string>{"127.0.0.1"}));
    EXPECT_EQ(addresses_of(hosts, "ip6-localhost"), (std::vector<std::string>{"::1"}));
    EXPECT_EQ(addresses_of(hosts, "ip6-loopback"), (std::vector<std::string>{"::1"}));
    EXPECT_EQ(addresses_of(hosts, "web.example.com"), (std::vector<std::string>{"10.0.0.5"}));
    EXPECT_EQ(addresses_of(hosts, "web"), (std::vector<std::string>{"10.0.0.5"}));
    EXPECT_EQ(addresses_of(hosts, "v6only"), (std::vector<std::string>{"2001:db8::7"}));
    // Names are stored lowercased only.
    EXPECT_EQ(hosts.count("Web.Example.COM"), 0u);
    EXPECT_EQ(hosts.count("Localhost.Localdomain"), 0u);
    // Comment text never becomes a name.
    EXPECT_EQ(hosts.count("trailing"), 0u);
    EXPECT_EQ(hosts.count("comment"), 0u);
    auto v6 = hosts.find("v6only");
    ASSERT_NE(v6, hosts.end());
    EXPECT_EQ(v6->second.family(), AF_INET6);
    EXPECT_EQ(v6->second.port(), 0);
}

TEST(ResolverHosts, InvalidLinesIgnored) {
    Hosts hosts = Resolver::parse_hosts(
        "not-an-address foo\n"
        "300.1.1.1 bad\n"
        "127.1 short\n"
        "fe80::1%lo0 scoped\n"
        "192.168.1.1\n"  // address without names
        "#127.0.0.2 commented\n"
        "1.2.3.4 good");  // no final newline
    EXPECT_EQ(hosts.size(), 1u);
    EXPECT_EQ(addresses_of(hosts, "good"), (std::vector<std::string>{"1.2.3.4"}));
}

TEST(ResolverHosts, EmptyText) {
    EXPECT_TRUE(Resolver::parse_hosts("").empty());
}

// A real event loop with a resolver; run() turns it until `done` or a
// bounded timeout.
class ResolverLoop : public ::testing::Test {
  protected:
    void SetUp() override {
        base_.reset(event_base_new());
        ASSERT_NE(base_, nullptr);
        resolver_ = Resolver::create(base_.get(), std::chrono::milliseconds(2000));
        ASSERT_NE(resolver_, nullptr);
    }
    void TearDown() override {
        resolver_.reset();
        base_.reset();
    }

    // Returns false on timeout.
    bool run(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
        bool timed_out = false;
        common::EventPtr timer(evtimer_new(
            base_.get(), [](evutil_socket_t, short, void* arg) { *static_cast<bool*>(arg) = true; },
            &timed_out));
        timeval tv{static_cast<time_t>(limit.count() / 1000),
                   static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
        evtimer_add(timer.get(), &tv);
        while (!done() && !timed_out) event_base_loop(base_.get(), EVLOOP_ONCE);
        return !timed_out;
    }

    // Resolves `host` and waits for the answer.
    std::optional<Resolution> resolve(const std::string& host) {
        std::optional<Resolution> result;
        resolver_->resolve(host, [&](const Resolution& r) { result = r; });
        EXPECT_FALSE(result.has_value()) << "callback ran inside resolve()";
        EXPECT_TRUE(run([&] { return result.has_value(); })) << "timed out resolving " << host;
        return result;
    }

    common::EventBasePtr base_;
    std::unique_ptr<Resolver> resolver_;
};

TEST_F(ResolverLoop, Ipv4Literal) {
    auto r = resolve("127.0.0.1");
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->error, "");
    ASSERT_EQ(r->addresses.size(), 1u);
    EXPECT_EQ(r->addresses[0].to_string(), "127.0.0.1:0");
}

TEST_F(ResolverLoop, Ipv6Literal) {
    auto r = resolve("::1");
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok);
    ASSERT_EQ(r->addresses.size(), 1u);
    EXPECT_EQ(r->addresses[0].to_string(), "[::1]:0");
}

TEST_F(ResolverLoop, LocalhostFromHostsFile) {
    auto r = resolve("localhost");
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(r->ok) << r->error;
    ASSERT_FALSE(r->addresses.empty());
    bool seen_v6 = false;
    for (const common::SocketAddress& a : r->addresses) {
        // Loopback only, IPv4 first.
        EXPECT_TRUE(a.host_string().rfind("127.", 0) == 0 || a.host_string() == "::1")
            << a.to_string();
        if (a.family() == AF_INET6) seen_v6 = true;
        if (seen_v6) {
            EXPECT_EQ(a.family(), AF_INET6) << "IPv4 after IPv6";
        }
        EXPECT_EQ(a.port(), 0);
    }
}

TEST_F(ResolverLoop, InvalidNameNotFoundWithoutDns) {
    auto r = resolve("foo.invalid");
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->error, "host not found");
    EXPECT_TRUE(r->addresses.empty());
    r = resolve("invalid");
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok);
    EXPECT_EQ(r->error, "host not found");
}

// A UDP socket on loopback standing in for a nameserver that never
// answers: it only collects the queries sent to it.
class SilentNameserver {
  public:
    SilentNameserver() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof(sin);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
        EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length), 0);
        address_ = common::SocketAddress::from(reinterpret_cast<sockaddr*>(&sin), length);
    }
    ~SilentNameserver() { ::close(fd_); }

    const common::SocketAddress& address() const { return address_; }
    // The names asked in the queries received so far, lower-cased (evdns
    // randomises their case).
    std::vector<std::string> names() {
        std::vector<std::string> out;
        char packet[512];
        ssize_t n;
        while ((n = ::recv(fd_, packet, sizeof packet, 0)) > 12) {
            std::string name;
            for (ssize_t at = 12; at < n && packet[at] != 0;) {
                ssize_t length = static_cast<unsigned char>(packet[at]);
                if (!name.empty()) name += '.';
                name.append(packet + at + 1, std::min<ssize_t>(length, n - at - 1));
                at += length + 1;
            }
            std::transform(name.begin(), name.end(), name.begin(), ::tolower);
            out.push_back(name);
        }
        return out;
    }

  private:
    int fd_ = -1;
    common::SocketAddress address_;
};

TEST_F(ResolverLoop, AsksTheConfiguredNameserverAndTimesOut) {
    SilentNameserver server;
    constexpr auto kTimeout = 400ms;
    resolver_ = Resolver::create(base_.get(), kTimeout, {server.address()});
    ASSERT_NE(resolver_, nullptr);
    auto started = std::chrono::steady_clock::now();
    auto r = resolve("Unit.Example.TEST");
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok);
    EXPECT_TRUE(r->timed_out);
    EXPECT_EQ(r->error, "DNS timeout");
    EXPECT_GE(std::chrono::steady_clock::now() - started, kTimeout - 50ms);
    // A and AAAA, each sent and retried once.
    auto names = server.names();
    EXPECT_GE(names.size(), 2u);
    for (const std::string& name : names) EXPECT_EQ(name, "unit.example.test");
}

TEST_F(ResolverLoop, InvalidNameIsRefusedWithoutAQuery) {
    SilentNameserver server;
    resolver_ = Resolver::create(base_.get(), 400ms, {server.address()});
    ASSERT_NE(resolver_, nullptr);
    auto r = resolve("foo.invalid");
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok);
    EXPECT_FALSE(r->timed_out);
    EXPECT_EQ(r->error, "host not found");
    EXPECT_TRUE(server.names().empty());
}

TEST_F(ResolverLoop, DistinctRequestIds) {
    int calls = 0;
    Resolver::RequestId a = resolver_->resolve("127.0.0.1", [&](const Resolution&) { ++calls; });
    Resolver::RequestId b = resolver_->resolve("127.0.0.1", [&](const Resolution&) { ++calls; });
    EXPECT_NE(a, b);
    EXPECT_EQ(calls, 0);
    EXPECT_TRUE(run([&] { return calls == 2; }));
}

TEST_F(ResolverLoop, CancelPreventsCallback) {
    bool cancelled_ran = false;
    bool later_ran = false;
    Resolver::RequestId id =
        resolver_->resolve("127.0.0.1", [&](const Resolution&) { cancelled_ran = true; });
    resolver_->resolve("localhost", [&](const Resolution&) { later_ran = true; });
    resolver_->cancel(id);
    // The later request is delivered after the cancelled one would have been.
    EXPECT_TRUE(run([&] { return later_ran; }));
    EXPECT_FALSE(cancelled_ran);
    // And nothing turns up afterwards either.
    run([] { return false; }, 100ms);
    EXPECT_FALSE(cancelled_ran);
}

TEST_F(ResolverLoop, CancelUnknownIdIsHarmless) {
    resolver_->cancel(12345);
    auto r = resolve("127.0.0.1");
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok);
}

TEST_F(ResolverLoop, DestroyWithPendingLocalAnswer) {
    bool ran = false;
    resolver_->resolve("127.0.0.1", [&](const Resolution&) { ran = true; });
    resolver_.reset();
    event_base_loop(base_.get(), EVLOOP_NONBLOCK);
    EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace worker
