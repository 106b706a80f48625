// End-to-end tests of deny_private_destinations against IPv6 spellings of
// private IPv4 addresses (IPv4-translated, NAT64, 6to4, Teredo...) and odd
// IPv4 spellings: HTTP GET, CONNECT and SOCKS5 are refused before anything is
// dialled. Which IPv4 address each IPv6 form carries is in common/address.cpp
// and tests/unit/common/address_test.cpp.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::HttpOrigin;
using harness::ProxydInstance;
using harness::RawClient;

// The proxy's connect_timeout and dns_timeout in these tests.
constexpr harness::Millis kDialTimeout = 10s;

// IPv6 literals whose embedded IPv4 address is private (loopback, RFC 1918,
// link-local), one or more per form.
const std::vector<std::string> kPrivateInIpv6 = {
    "::ffff:0:127.0.0.1",                    // IPv4-translated (RFC 2765)
    "::ffff:0:a9fe:a9fe",                    // IPv4-translated 169.254.169.254
    "64:ff9b::127.0.0.1",                    // NAT64 well-known prefix (RFC 6052)
    "64:ff9b::c0a8:101",                     // NAT64 192.168.1.1
    "64:ff9b:1::808:808",                    // local-use NAT64 (RFC 8215): refused whole
    "2002:7f00:1::1",                        // 6to4 (RFC 3056) 127.0.0.1
    "2002:a00:1::",                          // 6to4 10.0.0.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  // Teredo client 127.0.0.1
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",      // Teredo server 10.0.0.1
    "::ffff:127.0.0.1",                      // IPv4-mapped
    "::127.0.0.1",                           // IPv4-compatible: refused whole
};

// Numeric IPv4 spellings that resolvers read differently: refused as
// targets (400) before any resolver sees them, with a trailing dot too.
const std::vector<std::string> kOddIpv4 = {"0177.0.0.1",  "127.1",      "2130706433",
                                           "0x7f.1",      "0x7f000001", "127.1.",
                                           "2130706433.", "127.0.0.1.", "0177.0.0.1."};

using harness::bytes;

class EmbeddedIpv4 : public ::testing::Test {
  protected:
    bool start() {
        ConfigBuilder config;
        config.add_listener("main", "127.0.0.1:0", "http");
        config.add_listener("socks", "127.0.0.1:0", "socks5");
        config.set("acl", "deny_private_destinations", "yes");
        // Nothing here may be dialled or resolved. Were something dialled
        // (an unroutable address) or sent to the resolver, its answer would
        // wait for one of these timeouts, which the tests' bounds are
        // measured against: a refusal takes no time, however busy the machine.
        config.set("limits", "connect_timeout", std::to_string(kDialTimeout.count()) + "ms");
        config.set("limits", "dns_timeout", std::to_string(kDialTimeout.count()) + "ms");
        proxy_ = std::make_unique<ProxydInstance>(config);
        return proxy_->start();
    }

    // The status of `request` on a fresh connection; 0 without an answer.
    int status_of(const std::string& request) {
        RawClient client;
        if (!client.connect(proxy_->listener_port("main")) || !client.send(request)) return 0;
        auto response = client.read_response(2 * kDialTimeout);
        return response ? response->status : 0;
    }

    // The SOCKS5 reply code to a CONNECT to `address` (16 bytes); -1 without one.
    int socks5_reply(const std::string& address) {
        RawClient client;
        if (!client.connect(proxy_->listener_port("socks")) || !client.send(bytes({5, 1, 0}))) {
            return -1;
        }
        std::string reply;
        auto deadline = Clock::now() + 2 * kDialTimeout;
        auto read_to = [&](size_t n) {
            while (reply.size() < n && Clock::now() < deadline) {
                std::string more = client.recv_some(1s);
                if (more.empty() && client.eof()) break;
                reply += more;
            }
            return reply.size() >= n;
        };
        if (!read_to(2) || reply.substr(0, 2) != bytes({5, 0})) return -1;
        reply.clear();
        uint16_t port = origin_.port();
        std::string request = bytes({5, 1, 0, 4}) + address + bytes({port >> 8, port & 0xff});
        if (!client.send(request) || !read_to(2)) return -1;
        return static_cast<unsigned char>(reply[1]);
    }

    HttpOrigin origin_;
    std::unique_ptr<ProxydInstance> proxy_;
};

TEST_F(EmbeddedIpv4, PrivateIpv4InIpv6IsRefused403) {
    ASSERT_TRUE(start());
    const std::string port = std::to_string(origin_.port());
    for (const std::string& literal : kPrivateInIpv6) {
        const std::string authority = "[" + literal + "]:" + port;
        SCOPED_TRACE(authority);
        auto started = Clock::now();
        EXPECT_EQ(status_of("GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority +
                            "\r\nConnection: close\r\n\r\n"),
                  403);
        EXPECT_EQ(
            status_of("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"),
            403);
        in6_addr raw{};
        ASSERT_EQ(inet_pton(AF_INET6, literal.c_str(), &raw), 1);
        EXPECT_EQ(socks5_reply(std::string(reinterpret_cast<const char*>(raw.s6_addr), 16)),
                  0x02);  // not allowed
        EXPECT_LT(harness::since(started), kDialTimeout) << "refused only after trying to connect";
    }
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

TEST_F(EmbeddedIpv4, OddIpv4SpellingsAreRefusedAsTargets) {
    ASSERT_TRUE(start());
    const std::string port = std::to_string(origin_.port());
    for (const std::string& host : kOddIpv4) {
        const std::string authority = host + ":" + port;
        SCOPED_TRACE(authority);
        auto started = Clock::now();
        EXPECT_EQ(status_of("GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority +
                            "\r\nConnection: close\r\n\r\n"),
                  400);
        EXPECT_EQ(
            status_of("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n"),
            400);
        EXPECT_LT(harness::since(started), kDialTimeout) << "the name went to the resolver";
    }
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

}  // namespace
