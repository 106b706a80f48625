// End-to-end tests of SOCKS5/SOCKS4/SOCKS4a listeners and TLS listeners
// (issue 5): the real binary, curl, raw sockets and an OpenSSL client owned by
// the test, origins on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/dns_server.h"
#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"
#include "tests/integration/tls_client.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::closed_port;
using harness::ConfigBuilder;
using harness::CurlResult;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Millis;
using harness::ms_since;
using harness::pattern_bytes;
using harness::ProxydInstance;
using harness::RawClient;
using harness::read_at_least;
using harness::sha256_hex;
using harness::since;
using harness::TlsOrigin;

namespace socks = harness::socks;
using harness::bytes;
using harness::hex;
using harness::TlsClient;

std::string http_get(const std::string& path, const std::string& host_port) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
}

// --- Fixture ---------------------------------------------------------------

class SocksTlsTest : public ::testing::Test {
  protected:
    // A config with the given listeners; "socks" is protocol socks5,
    // "https" is http over TLS with ${dir}/proxy.crt and ${dir}/proxy.key.
    static ConfigBuilder config_with(std::initializer_list<std::string> listeners) {
        ConfigBuilder config;
        for (const auto& name : listeners) {
            if (name == "socks") {
                config.add_listener("socks", "127.0.0.1:0", "socks5");
            } else if (name == "socks_tls") {
                config.add_listener("socks_tls", "127.0.0.1:0", "socks5");
                config.set("listen socks_tls", "tls_certificate", "${dir}/proxy.crt");
                config.set("listen socks_tls", "tls_key", "${dir}/proxy.key");
            } else if (name == "https") {
                config.add_listener("https", "127.0.0.1:0", "http");
                config.set("listen https", "tls_certificate", "${dir}/proxy.crt");
                config.set("listen https", "tls_key", "${dir}/proxy.key");
            } else {
                config.add_listener(name);
            }
        }
        return config;
    }

    // Starts proxyd; with `certificate`, first writes a fresh self-signed
    // certificate to proxy.crt / proxy.key in its temp dir.
    bool start(ConfigBuilder config, bool certificate = false) {
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        if (certificate && !harness::make_self_signed_cert(cert_path(), key_path())) return false;
        return proxy_->start();
    }
    std::string cert_path() const { return proxy_->path("proxy.crt"); }
    std::string key_path() const { return proxy_->path("proxy.key"); }

    uint16_t port(const std::string& name) {
        uint16_t p = proxy_->listener_port(name);
        EXPECT_NE(p, 0) << "no address for listener " << name
                        << " in status: " << proxy_->control("status").value_or("(none)");
        return p;
    }

    struct Fetch {
        int status = 0;
        std::string body;
        CurlResult curl;
    };
    // run_curl with the body written to a file and the status from -w.
    Fetch fetch(const std::vector<std::string>& args, Millis timeout = 15s) {
        std::string body_path = proxy_->path("body-" + std::to_string(++fetches_));
        std::vector<std::string> all = {"-o", body_path, "-w", "%{http_code}"};
        all.insert(all.end(), args.begin(), args.end());
        Fetch f;
        f.curl = harness::run_curl(all, timeout);
        f.status = std::atoi(f.curl.out.c_str());
        f.body = harness::read_file(body_path);
        ::unlink(body_path.c_str());
        return f;
    }

    // Connects a raw client to listener `name` and does the SOCKS5 no-auth
    // greeting; false (with a failure) if the proxy did not answer 05 00.
    bool socks5_greet(RawClient& client, uint16_t listener_port) {
        if (!client.connect(listener_port)) {
            ADD_FAILURE() << "cannot connect to port " << listener_port;
            return false;
        }
        EXPECT_TRUE(client.send(socks::kGreetingNoAuth));
        std::string reply = read_at_least(client, 2);
        EXPECT_EQ(hex(reply), hex(socks::kMethodNoAuth));
        return reply == socks::kMethodNoAuth;
    }

    // Sends `request` on a fresh raw connection and returns everything the
    // proxy sent until it closed; `closed` tells whether it did within 3 s.
    std::string socks_exchange(uint16_t listener_port, const std::string& request, bool* closed,
                               bool greet = false) {
        RawClient client;
        if (greet) {
            if (!socks5_greet(client, listener_port)) return "(no greeting)";
        } else if (!client.connect(listener_port)) {
            ADD_FAILURE() << "cannot connect to port " << listener_port;
            return "(no connection)";
        }
        EXPECT_TRUE(client.send(request));
        return client.read_until_close(3s, closed);
    }

    // An HTTP CONNECT on listener "main"; the status (0 when none).
    int http_connect(const std::string& authority) {
        RawClient client;
        if (!client.connect(proxy_->listener_port("main"))) return 0;
        client.send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
        auto response = client.read_response(10s, true);
        return response ? response->status : 0;
    }

    HttpOrigin origin_;
    TlsOrigin tls_origin_;
    std::unique_ptr<ProxydInstance> proxy_;  // declared after the origins: stops first
    int fetches_ = 0;
};

class SocksProxy : public SocksTlsTest {};
class TlsListener : public SocksTlsTest {};

// --- curl through SOCKS, byte-exact ------------------------------------------

struct CurlSocksCase {
    const char* name;
    const char* flag;     // curl option naming the SOCKS proxy
    bool proxy_resolves;  // the proxy resolves the host name (socks5h, socks4a)
    bool tls_origin;
};

void PrintTo(const CurlSocksCase& c, std::ostream* os) {
    *os << c.name;
}

class SocksCurl : public SocksTlsTest, public ::testing::WithParamInterface<CurlSocksCase> {};

TEST_P(SocksCurl, BodiesByteExact) {
    const CurlSocksCase& c = GetParam();
    ASSERT_TRUE(start(config_with({"socks"})));
    uint16_t socks = port("socks");
    ASSERT_NE(socks, 0);
    HttpOrigin& origin = c.tls_origin ? static_cast<HttpOrigin&>(tls_origin_) : origin_;
    // Names go to the proxy as names when it resolves them.
    std::string host = c.proxy_resolves ? "localhost" : "127.0.0.1";
    std::string base = std::string(c.tls_origin ? "https://" : "http://") + host + ":" +
                       std::to_string(origin.port());
    for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20, (size_t{3} << 20) + 7}) {
        SCOPED_TRACE(std::string(c.flag) + " " + base + "/bytes/" + std::to_string(n));
        std::vector<std::string> args = {c.flag, "127.0.0.1:" + std::to_string(socks)};
        if (c.tls_origin) {
            args.push_back("--cacert");
            args.push_back(tls_origin_.cert_path());
        }
        args.push_back(base + "/bytes/" + std::to_string(n));
        Fetch f = fetch(args);
        EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
        EXPECT_EQ(f.status, 200);
        EXPECT_EQ(f.body.size(), n);
        EXPECT_EQ(sha256_hex(f.body), sha256_hex(pattern_bytes(n)));
    }
    EXPECT_EQ(origin.request_count(), 5u);
    // An upload goes the other way byte-exact too.
    const std::string data = pattern_bytes((size_t{2} << 20) + 3, 7);
    const std::string file = proxy_->path("upload.bin");
    ASSERT_TRUE(harness::write_file(file, data));
    std::vector<std::string> args = {
        c.flag, "127.0.0.1:" + std::to_string(socks), "-H", "Expect:", "--data-binary", "@" + file};
    if (c.tls_origin) {
        args.push_back("--cacert");
        args.push_back(tls_origin_.cert_path());
    }
    args.push_back(base + "/echo");
    Fetch f = fetch(args);
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.status, 200);
    EXPECT_EQ(sha256_hex(f.body), sha256_hex(data));
}

INSTANTIATE_TEST_SUITE_P(
    SocksProxy, SocksCurl,
    ::testing::Values(CurlSocksCase{"Socks5Http", "--socks5", false, false},
                      CurlSocksCase{"Socks5Https", "--socks5", false, true},
                      CurlSocksCase{"Socks5HostnameHttp", "--socks5-hostname", true, false},
                      CurlSocksCase{"Socks5HostnameHttps", "--socks5-hostname", true, true},
                      CurlSocksCase{"Socks4Http", "--socks4", false, false},
                      CurlSocksCase{"Socks4Https", "--socks4", false, true},
                      CurlSocksCase{"Socks4aHttp", "--socks4a", true, false},
                      CurlSocksCase{"Socks4aHttps", "--socks4a", true, true}),
    [](const ::testing::TestParamInfo<CurlSocksCase>& param_info) {
        return param_info.param.name;
    });

// --- Raw SOCKS: replies and tunnels -------------------------------------------

TEST_F(SocksProxy, Socks5ReplyCarriesBoundAddressAndTunnels) {
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(socks5_greet(client, port("socks")));
    ASSERT_TRUE(client.send(socks::connect_ipv4(origin_.port())));
    std::string reply = read_at_least(client, 10);
    ASSERT_EQ(reply.size(), 10u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 4)), hex(bytes({5, 0, 0, 1})));
    EXPECT_EQ(hex(reply.substr(4, 4)), hex(socks::kLoopbackIpv4)) << "BND.ADDR";
    uint16_t bound_port = static_cast<uint16_t>((static_cast<uint8_t>(reply[8]) << 8) |
                                                static_cast<uint8_t>(reply[9]));
    EXPECT_NE(bound_port, 0) << "BND.PORT";
    EXPECT_NE(bound_port, origin_.port()) << "BND.PORT is the proxy's side, not the origin's";
    ASSERT_TRUE(client.send(http_get("/bytes/300000", origin_.host_port())));
    auto response = client.read_response(10s);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(sha256_hex(response->body), sha256_hex(pattern_bytes(300000)));
    EXPECT_EQ(origin_.connections_accepted(), 1);
}

TEST_F(SocksProxy, Socks5DomainNameIsResolvedByTheProxy) {
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(socks5_greet(client, port("socks")));
    ASSERT_TRUE(client.send(socks::connect_name("localhost", origin_.port())));
    std::string reply = read_at_least(client, 10);
    ASSERT_EQ(reply.size(), 10u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 8)), hex(bytes({5, 0, 0, 1, 127, 0, 0, 1})));
    ASSERT_TRUE(client.send(http_get("/bytes/10", origin_.host_port())));
    auto response = client.read_response(5s);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body, pattern_bytes(10));
}

TEST_F(SocksProxy, Socks4ReplyGrantedAndTunnels) {
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(client.connect(port("socks")));
    ASSERT_TRUE(
        client.send(socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4, "someone")));
    std::string reply = read_at_least(client, 8);
    ASSERT_EQ(reply.size(), 8u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 2)), hex(bytes({0, 0x5a})));
    EXPECT_EQ(hex(reply.substr(4, 4)), hex(socks::kLoopbackIpv4));
    EXPECT_NE(reply.substr(2, 2), bytes({0, 0})) << "bound port";
    ASSERT_TRUE(client.send(http_get("/bytes/5000", origin_.host_port())));
    auto response = client.read_response(5s);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body, pattern_bytes(5000));
}

TEST_F(SocksProxy, Socks4aNameIsResolvedByTheProxy) {
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(client.connect(port("socks")));
    ASSERT_TRUE(client.send(socks::socks4a_connect("localhost", origin_.port())));
    std::string reply = read_at_least(client, 8);
    ASSERT_EQ(reply.size(), 8u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 2)), hex(bytes({0, 0x5a})));
    ASSERT_TRUE(client.send(http_get("/bytes/10", origin_.host_port())));
    auto response = client.read_response(5s);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->body, pattern_bytes(10));
}

TEST_F(SocksProxy, PipelinedGreetingRequestAndPayload) {
    // A client that sends greeting, request and the first tunnel bytes in one
    // write: nothing may be lost or reordered.
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(client.connect(port("socks")));
    ASSERT_TRUE(client.send(socks::kGreetingNoAuth + socks::connect_ipv4(origin_.port()) +
                            http_get("/bytes/2000", origin_.host_port())));
    std::string replies = read_at_least(client, 12);
    ASSERT_GE(replies.size(), 12u) << hex(replies);
    EXPECT_EQ(hex(replies.substr(0, 6)), hex(bytes({5, 0, 5, 0, 0, 1})));
    // Whatever came after the two replies is the start of the response.
    bool closed = false;
    std::string rest = replies.substr(12) + client.read_until_close(5s, &closed);
    EXPECT_TRUE(closed);
    size_t consumed = 0;
    bool need_more = false;
    auto response = harness::parse_response(rest, false, consumed, need_more, true);
    ASSERT_TRUE(response) << rest.substr(0, 200);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, pattern_bytes(2000));
}

// The same, with a half-close right behind the payload: the EOF ends the
// client's sending, not the request. It reaches the origin after the
// payload, and the origin's answer comes back. Before, an EOF that arrived
// while the proxy was still connecting closed the session unanswered. The
// origin's accept queue is kept full at first, so the proxy's SYN is
// dropped and its connect lasts until the retransmission (about 1 s): the
// EOF surely arrives while it connects. (The payload is short: a longer one
// would fill the read buffer of the handshake, and the proxy would read no
// further, nor see the EOF, before the tunnel starts.)
TEST_F(SocksProxy, HalfCloseWhileConnectingIsPassedOnAfterThePayload) {
    ASSERT_TRUE(start(config_with({"socks"})));
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    ASSERT_EQ(::listen(listener, 0), 0);  // room for one connection not yet accepted
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&sin), &len);
    std::vector<RawClient> fillers(2);
    for (RawClient& f : fillers) f.connect(ntohs(sin.sin_port), 1s);

    RawClient client;
    ASSERT_TRUE(client.connect(port("socks")));
    ASSERT_TRUE(client.send(socks::kGreetingNoAuth + socks::connect_ipv4(ntohs(sin.sin_port)) +
                            std::string(10, 'x')));
    client.shutdown_write();
    std::this_thread::sleep_for(300ms);  // the proxy has read the EOF by now
    for (RawClient& f : fillers) f.close();
    // Serve every queued connection: each reads to EOF and answers the count.
    std::thread origin([listener] {
        for (int served = 0; served < 3; ++served) {
            pollfd p{listener, POLLIN, 0};
            if (::poll(&p, 1, 3000) <= 0) return;
            int fd = ::accept(listener, nullptr, nullptr);
            if (fd < 0) return;
            size_t total = 0;
            char buf[4096];
            for (;;) {
                pollfd q{fd, POLLIN, 0};
                if (::poll(&q, 1, 3000) <= 0) break;
                ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                total += static_cast<size_t>(n);
            }
            std::string answer = "got " + std::to_string(total) + "\n";
            ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
            ::close(fd);
        }
    });
    bool closed = false;
    std::string all = client.read_until_close(8s, &closed);
    origin.join();
    ::close(listener);
    EXPECT_TRUE(closed);
    ASSERT_GE(all.size(), 12u) << "the session closed unanswered: " << hex(all);
    EXPECT_EQ(hex(all.substr(0, 4)), hex(bytes({5, 0, 5, 0})));
    EXPECT_EQ(all.substr(12), "got 10\n");
}

// --- Malformed greetings and requests -------------------------------------------

TEST_F(SocksProxy, FirstByteNotSocksIsClosedWithoutReply) {
    ASSERT_TRUE(start(config_with({"socks"})));
    for (const std::string& first : {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                                     bytes({6, 1, 0}), bytes({0}), bytes({0x16, 3, 1, 0, 5})}) {
        SCOPED_TRACE(hex(first));
        bool closed = false;
        std::string got = socks_exchange(port("socks"), first, &closed);
        EXPECT_EQ(hex(got), "");
        EXPECT_TRUE(closed);
    }
}

TEST_F(SocksProxy, GreetingWithoutMethodsGetsNoAcceptableMethodAndClose) {
    ASSERT_TRUE(start(config_with({"socks"})));
    // NMETHODS = 0: a greeting has no REP field; the answer is the method
    // selection "no acceptable methods" (05 FF), then the close.
    bool closed = false;
    std::string got = socks_exchange(port("socks"), bytes({5, 0}), &closed);
    EXPECT_EQ(hex(got), hex(bytes({5, 0xff})));
    EXPECT_TRUE(closed);
}

TEST_F(SocksProxy, NoAcceptableMethodGets05FFAndClose) {
    ASSERT_TRUE(start(config_with({"socks"})));
    for (const std::string& greeting :
         {bytes({5, 1, 2}), bytes({5, 2, 1, 2}), bytes({5, 1, 0x80})}) {
        SCOPED_TRACE(hex(greeting));
        bool closed = false;
        std::string got = socks_exchange(port("socks"), greeting, &closed);
        EXPECT_EQ(hex(got), hex(bytes({5, 0xff})));
        EXPECT_TRUE(closed);
    }
}

TEST_F(SocksProxy, NoAuthAmongSeveralMethodsIsSelected) {
    ASSERT_TRUE(start(config_with({"socks"})));
    RawClient client;
    ASSERT_TRUE(client.connect(port("socks")));
    ASSERT_TRUE(client.send(bytes({5, 3, 2, 1, 0})));
    EXPECT_EQ(hex(read_at_least(client, 2)), hex(socks::kMethodNoAuth));
}

struct BadRequestCase {
    const char* name;
    std::string request;   // after a successful no-auth greeting
    std::string expected;  // everything the proxy sends before it closes
};

void PrintTo(const BadRequestCase& c, std::ostream* os) {
    *os << c.name << " " << hex(c.request);
}

class SocksBadRequest : public SocksTlsTest,
                        public ::testing::WithParamInterface<BadRequestCase> {};

TEST_P(SocksBadRequest, RefusedWithReplyAndClosed) {
    ASSERT_TRUE(start(config_with({"socks"})));
    const BadRequestCase& c = GetParam();
    bool closed = false;
    std::string got = socks_exchange(port("socks"), c.request, &closed, /*greet=*/true);
    EXPECT_EQ(hex(got), hex(c.expected));
    EXPECT_TRUE(closed) << "the proxy must close after a refusal";
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

// The origin port is not known when the cases are built: 8080 is never
// reached because every request is refused before any connect.
INSTANTIATE_TEST_SUITE_P(
    SocksProxy, SocksBadRequest,
    ::testing::Values(
        BadRequestCase{"UnknownAddressType", socks::request(1, bytes({9, 1, 2, 3, 4}), 8080),
                       socks::failure(0x08)},
        BadRequestCase{"AddressTypeZero",
                       socks::request(1, bytes({0}) + socks::kLoopbackIpv4, 8080),
                       socks::failure(0x08)},
        BadRequestCase{"UnknownCommand", socks::request(9, bytes({1}) + socks::kLoopbackIpv4, 8080),
                       socks::failure(0x07)},
        BadRequestCase{"CommandZero", socks::request(0, bytes({1}) + socks::kLoopbackIpv4, 8080),
                       socks::failure(0x07)},
        BadRequestCase{"Bind", socks::request(2, bytes({1}) + socks::kLoopbackIpv4, 8080),
                       socks::failure(0x07)},
        BadRequestCase{"UdpAssociate", socks::request(3, bytes({1}) + socks::kLoopbackIpv4, 8080),
                       socks::failure(0x07)},
        BadRequestCase{"NulInDomain",
                       socks::request(1, bytes({3, 9}) + std::string("local\0ost", 9), 8080),
                       socks::failure(0x01)},
        BadRequestCase{"ZeroLengthDomain", socks::request(1, bytes({3, 0}), 8080),
                       socks::failure(0x01)},
        BadRequestCase{"SpaceInDomain", socks::connect_name("a b", 8080), socks::failure(0x01)},
        BadRequestCase{"ZeroPort", socks::connect_ipv4(0), socks::failure(0x01)},
        BadRequestCase{"BadVersionInRequest", bytes({4, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}),
                       socks::failure(0x01)},
        BadRequestCase{"NonZeroReserved", bytes({5, 1, 7, 1, 127, 0, 0, 1, 0x1f, 0x90}),
                       socks::failure(0x01)}),
    [](const ::testing::TestParamInfo<BadRequestCase>& param_info) {
        return param_info.param.name;
    });

TEST_F(SocksProxy, Socks4BindAndMalformedSocks4Rejected) {
    ASSERT_TRUE(start(config_with({"socks"})));
    struct Case {
        const char* name;
        std::string request;
    };
    const Case cases[] = {
        {"BIND", socks::socks4_request(2, origin_.port(), socks::kLoopbackIpv4, "me")},
        {"unknown command", socks::socks4_request(3, origin_.port(), socks::kLoopbackIpv4)},
        {"zero port", socks::socks4_request(1, 0, socks::kLoopbackIpv4)},
        {"SOCKS4a empty host",
         socks::socks4_request(1, origin_.port(), bytes({0, 0, 0, 1}), "", "")},
        {"SOCKS4a bad host char", socks::socks4a_connect("local host", origin_.port())},
        {"user id too long",
         socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4, std::string(300, 'u'))},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        bool closed = false;
        std::string got = socks_exchange(port("socks"), c.request, &closed);
        EXPECT_EQ(hex(got), hex(socks::kSocks4Rejected));
        EXPECT_TRUE(closed);
    }
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

TEST_F(SocksProxy, StalledGreetingCutByHeaderTimeoutOthersServed) {
    constexpr Millis kHeaderTimeout = 1s;
    ConfigBuilder config = config_with({"socks"});
    config.set("limits", "header_timeout", std::to_string(kHeaderTimeout.count()) + "ms");
    ASSERT_TRUE(start(config));
    uint16_t socks = port("socks");
    struct Stall {
        const char* name;
        std::string bytes;
    };
    const Stall stalls[] = {
        {"version byte only", bytes({5})},
        {"greeting missing methods", bytes({5, 3, 0})},
        {"request half sent", socks::kGreetingNoAuth + bytes({5, 1, 0, 1, 127})},
        {"SOCKS4 without NUL", bytes({4, 1, 0, 80, 127, 0, 0, 1, 'a'})}};
    std::vector<std::unique_ptr<RawClient>> clients;
    auto started = Clock::now();
    for (const Stall& s : stalls) {
        clients.push_back(std::make_unique<RawClient>());
        ASSERT_TRUE(clients.back()->connect(socks));
        ASSERT_TRUE(clients.back()->send(s.bytes));
    }
    // Meanwhile another client is served normally.
    Fetch f = fetch({"--socks5", "127.0.0.1:" + std::to_string(socks), origin_.url("/bytes/1234")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(1234));
    for (size_t i = 0; i < clients.size(); ++i) {
        SCOPED_TRACE(stalls[i].name);
        bool closed = false;
        std::string got = clients[i]->read_until_close(5 * kHeaderTimeout, &closed);
        EXPECT_TRUE(closed) << "still open after " << ms_since(started) << " ms";
        // Each is cut at header_timeout: not before, and late only by a
        // loaded machine's slack, not by more timeouts.
        EXPECT_GE(since(started), kHeaderTimeout * 9 / 10) << "closed before header_timeout";
        EXPECT_LT(since(started), 4 * kHeaderTimeout);
        // A greeting with no-auth gets its 05 00 before the stall.
        if (i == 2) {
            EXPECT_EQ(hex(got), hex(socks::kMethodNoAuth));
        } else {
            EXPECT_EQ(hex(got), "");
        }
    }
}

// --- Destination checks: the same as for HTTP -----------------------------------

TEST_F(SocksProxy, PrivateDestinationsDeniedLikeHttp) {
    ConfigBuilder config = config_with({"main", "socks"});
    config.set("acl", "deny_private_destinations", "yes");
    ASSERT_TRUE(start(config));
    uint16_t socks = port("socks");
    bool closed = false;
    EXPECT_EQ(hex(socks_exchange(socks, socks::connect_ipv4(origin_.port()), &closed, true)),
              hex(socks::failure(0x02)));
    EXPECT_TRUE(closed);
    // A name that resolves to loopback is judged by the address it resolves to.
    EXPECT_EQ(
        hex(socks_exchange(socks, socks::connect_name("localhost", origin_.port()), &closed, true)),
        hex(socks::failure(0x02)));
    EXPECT_TRUE(closed);
    EXPECT_EQ(hex(socks_exchange(
                  socks, socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4), &closed)),
              hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);
    EXPECT_EQ(
        hex(socks_exchange(socks, socks::socks4a_connect("localhost", origin_.port()), &closed)),
        hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);
    // Other private ranges too, without a connect attempt.
    for (const std::string& ip : {bytes({10, 1, 2, 3}), bytes({192, 168, 0, 1}),
                                  bytes({169, 254, 1, 1}), bytes({172, 16, 0, 1})}) {
        SCOPED_TRACE(hex(ip));
        EXPECT_EQ(
            hex(socks_exchange(socks, socks::connect_ipv4(origin_.port(), ip), &closed, true)),
            hex(socks::failure(0x02)));
    }
    // HTTP CONNECT on the same proxy is refused the same way.
    EXPECT_EQ(http_connect(origin_.host_port()), 403);
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

TEST_F(SocksProxy, PortNotInConnectPortsDeniedLikeHttp) {
    ConfigBuilder config = config_with({"main", "socks"});
    config.set("acl", "connect_ports", "443");
    ASSERT_TRUE(start(config));
    ASSERT_NE(origin_.port(), 443);
    uint16_t socks = port("socks");
    bool closed = false;
    EXPECT_EQ(hex(socks_exchange(socks, socks::connect_ipv4(origin_.port()), &closed, true)),
              hex(socks::failure(0x02)));
    EXPECT_TRUE(closed);
    EXPECT_EQ(
        hex(socks_exchange(socks, socks::connect_name("localhost", origin_.port()), &closed, true)),
        hex(socks::failure(0x02)));
    EXPECT_EQ(hex(socks_exchange(
                  socks, socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4), &closed)),
              hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);
    EXPECT_EQ(http_connect(origin_.host_port()), 403);
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

TEST_F(SocksProxy, RefusedPortGetsConnectionRefusedLikeHttp) {
    ASSERT_TRUE(start(config_with({"main", "socks"})));
    uint16_t dead = closed_port();
    bool closed = false;
    EXPECT_EQ(hex(socks_exchange(port("socks"), socks::connect_ipv4(dead), &closed, true)),
              hex(socks::failure(0x05)));
    EXPECT_TRUE(closed);
    EXPECT_EQ(hex(socks_exchange(port("socks"),
                                 socks::socks4_request(1, dead, socks::kLoopbackIpv4), &closed)),
              hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);
    EXPECT_EQ(http_connect("127.0.0.1:" + std::to_string(dead)), 502);
}

// The nameserver answers NXDOMAIN (not the .invalid short cut, which sends
// no query): every protocol's "host unreachable", each after a real query.
TEST_F(SocksProxy, UnresolvableNameGetsHostUnreachableLikeHttp) {
    harness::DnsServer dns;
    ConfigBuilder config = config_with({"main", "socks"});
    config.set("resolver", "nameservers", dns.address());
    config.set("limits", "dns_timeout", "10s");
    ASSERT_TRUE(start(config));
    bool closed = false;
    auto started = Clock::now();
    EXPECT_EQ(
        hex(socks_exchange(port("socks"), socks::connect_name("x.dns.test", 443), &closed, true)),
        hex(socks::failure(0x04)));
    EXPECT_TRUE(closed);
    EXPECT_EQ(
        hex(socks_exchange(port("socks"), socks::socks4a_connect("x.dns.test", 443), &closed)),
        hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);
    EXPECT_EQ(http_connect("x.dns.test:443"), 502);
    // Answered, not timed out: well within dns_timeout.
    EXPECT_LT(since(started), 10s);
    // A failure is not cached: each of the three asked.
    EXPECT_GE(dns.queries_for("x.dns.test", harness::DnsServer::kTypeA), 3u);
}

// --- Counters and access log ------------------------------------------------------

TEST_F(SocksProxy, CountsTunnelsAndLogsAccess) {
    ConfigBuilder config = config_with({"socks"});
    config.set("log", "access_log", "${dir}/access.log");
    ASSERT_TRUE(start(config));
    uint16_t socks = port("socks");
    auto stats = proxy_->control_json("stats");
    ASSERT_TRUE(stats["ok"].boolean()) << proxy_->control("stats").value_or("(none)");
    int64_t tunnels_before = stats["tunnels"].as_int();
    for (const char* flag : {"--socks5", "--socks5-hostname", "--socks4", "--socks4a"}) {
        Fetch f = fetch({flag, "127.0.0.1:" + std::to_string(socks), origin_.url("/bytes/4321")});
        EXPECT_EQ(f.curl.exit_code, 0) << flag << ": " << f.curl.err;
        EXPECT_EQ(f.body, pattern_bytes(4321)) << flag;
    }
    int64_t tunnels = 0;
    EXPECT_TRUE(harness::wait_for(
        [&] {
            tunnels = proxy_->control_json("stats")["tunnels"].as_int();
            return tunnels >= tunnels_before + 4;
        },
        5s))
        << "tunnels went from " << tunnels_before << " to " << tunnels;

    const std::string log_path = proxy_->path("access.log");
    const std::string socks5_line =
        "\"CONNECT 127.0.0.1:" + std::to_string(origin_.port()) + " SOCKS5\"";
    const std::string socks4_line =
        "\"CONNECT 127.0.0.1:" + std::to_string(origin_.port()) + " SOCKS4\"";
    std::string log;
    EXPECT_TRUE(harness::wait_for(
        [&] {
            log = harness::read_file(log_path);
            return log.find(socks5_line + " 200 ") != std::string::npos &&
                   log.find(socks4_line + " 200 ") != std::string::npos;
        },
        5s))
        << log;
    // A refusal is logged too, with its status.
    bool closed = false;
    socks_exchange(socks, socks::connect_ipv4(closed_port()), &closed, true);
    EXPECT_TRUE(harness::wait_for(
        [&] {
            log = harness::read_file(log_path);
            return log.find("\" 502 ") != std::string::npos;
        },
        5s))
        << log;
}

// --- TLS listeners ----------------------------------------------------------------

TEST_F(TlsListener, HttpsProxyPlainHttpByteExact) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    std::string proxy = "https://127.0.0.1:" + std::to_string(port("https"));
    for (size_t n : {size_t{0}, size_t{1}, size_t{70000}, (size_t{2} << 20) + 1}) {
        SCOPED_TRACE(n);
        Fetch f = fetch({"--proxy", proxy, "--proxy-cacert", cert_path(),
                         origin_.url("/bytes/" + std::to_string(n))});
        EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
        EXPECT_EQ(f.status, 200);
        EXPECT_EQ(sha256_hex(f.body), sha256_hex(pattern_bytes(n)));
    }
    auto req = origin_.last_request();
    ASSERT_TRUE(req);
    EXPECT_EQ(req->target, "/bytes/" + std::to_string((size_t{2} << 20) + 1));
}

TEST_F(TlsListener, HttpsProxyConnectToTlsOriginByteExact) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    std::string proxy = "https://127.0.0.1:" + std::to_string(port("https"));
    for (size_t n : {size_t{0}, size_t{1}, size_t{70000}, (size_t{2} << 20) + 1}) {
        SCOPED_TRACE(n);
        Fetch f = fetch({"--proxy", proxy, "--proxy-cacert", cert_path(), "--cacert",
                         tls_origin_.cert_path(), tls_origin_.url("/bytes/" + std::to_string(n))});
        EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
        EXPECT_EQ(f.status, 200);
        EXPECT_EQ(sha256_hex(f.body), sha256_hex(pattern_bytes(n)));
    }
    // Upload through both TLS layers.
    const std::string data = pattern_bytes(size_t{1} << 20, 3);
    const std::string file = proxy_->path("upload.bin");
    ASSERT_TRUE(harness::write_file(file, data));
    Fetch f =
        fetch({"--proxy", proxy, "--proxy-cacert", cert_path(), "--cacert", tls_origin_.cert_path(),
               "-H", "Expect:", "--data-binary", "@" + file, tls_origin_.url("/echo")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(sha256_hex(f.body), sha256_hex(data));
}

TEST_F(TlsListener, HttpsProxyVerifiedAgainstItsCertificateOnly) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    std::string proxy = "https://127.0.0.1:" + std::to_string(port("https"));
    // Another CA does not vouch for the proxy: curl refuses (60 = peer
    // certificate cannot be authenticated), and the proxy stays up.
    Fetch f = fetch(
        {"--proxy", proxy, "--proxy-cacert", tls_origin_.cert_path(), origin_.url("/bytes/10")});
    EXPECT_NE(f.curl.exit_code, 0);
    EXPECT_EQ(origin_.request_count(), 0u);
    f = fetch({"--proxy", proxy, "--proxy-cacert", cert_path(), origin_.url("/bytes/10")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(10));
}

TEST_F(TlsListener, PlaintextClientOnTlsListenerIsClosed) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    uint16_t https = port("https");
    RawClient client;
    ASSERT_TRUE(client.connect(https));
    ASSERT_TRUE(client.send(http_get(origin_.url("/bytes/10"), origin_.host_port())));
    bool closed = false;
    std::string got = client.read_until_close(5s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.find("HTTP/1.1 200"), std::string::npos);
    EXPECT_EQ(origin_.request_count(), 0u);
    // A handshake failure is not fatal: the next client is served.
    Fetch f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert",
                     cert_path(), origin_.url("/bytes/10")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(10));
}

TEST_F(TlsListener, CloseWithoutCloseNotifyIsNotAnError) {
    // transport.cpp allows a dirty shutdown: a client that closes without
    // close_notify ends its stream like a TCP EOF, so it is neither counted
    // as an error nor logged as a TLS error.
    ASSERT_TRUE(start(config_with({"https"}), true));
    uint16_t https = port("https");
    auto before = proxy_->control_json("stats");
    ASSERT_TRUE(before["ok"].boolean());
    {
        TlsClient client;
        TlsClient::Options options;
        options.ca_file = cert_path();
        ASSERT_TRUE(client.connect(https, options)) << client.error();
        ASSERT_TRUE(client.send("GET " + origin_.url("/bytes/10") +
                                " HTTP/1.1\r\nHost: " + origin_.host_port() + "\r\n\r\n"));
        std::string raw;
        std::optional<HttpResponse> response;
        auto deadline = Clock::now() + 5s;
        while (!response && Clock::now() < deadline) {
            std::string part = client.read_at_least(1, 1s);
            if (part.empty()) break;
            raw += part;
            size_t consumed = 0;
            bool need_more = false;
            response = harness::parse_response(raw, false, consumed, need_more);
        }
        ASSERT_TRUE(response) << raw;
        EXPECT_EQ(response->body, pattern_bytes(10));
    }  // closed without SSL_shutdown
    EXPECT_TRUE(harness::wait_for(
        [&] {
            return proxy_->control_json("stats")["total_sessions"].as_int() >
                   before["total_sessions"].as_int();
        },
        5s));
    // The session's end is in the workers' reports once the active count is
    // back where it was: its error, if any, is counted by then.
    harness::Json after;
    EXPECT_TRUE(harness::wait_for(
        [&] {
            after = proxy_->control_json("stats");
            return after["active_sessions"].as_int() == before["active_sessions"].as_int();
        },
        5s))
        << proxy_->control("stats").value_or("");
    ASSERT_TRUE(after["ok"].boolean()) << "no stats answer";
    EXPECT_EQ(after["errors"].type(), harness::Json::Type::kNumber);
    EXPECT_EQ(after["errors"].as_int(), before["errors"].as_int())
        << proxy_->control("stats").value_or("");
    EXPECT_TRUE(proxy_->log_lines_with("TLS error").empty()) << proxy_->error_log();
}

TEST_F(TlsListener, NegotiatesAlpnHttp11AndTls12Or13Only) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    uint16_t https = port("https");
    TlsClient client;
    TlsClient::Options options;
    options.ca_file = cert_path();
    options.alpn = std::string("\x02h2\x08http/1.1", 12);
    ASSERT_TRUE(client.connect(https, options)) << client.error();
    EXPECT_EQ(client.alpn(), "http/1.1");
    EXPECT_EQ(client.version(), TLS1_3_VERSION);
    EXPECT_EQ(client.peer_fingerprint(), harness::certificate_fingerprint(cert_path()));

    TlsClient tls12;
    options.max_version = TLS1_2_VERSION;
    ASSERT_TRUE(tls12.connect(https, options)) << tls12.error();
    EXPECT_EQ(tls12.version(), TLS1_2_VERSION);
    EXPECT_EQ(tls12.alpn(), "http/1.1");

    // TLS 1.1 is refused by the proxy (the client allows it at security
    // level 0, so the refusal is the server's).
    TlsClient tls11;
    TlsClient::Options old;
    old.max_version = TLS1_1_VERSION;
    old.ciphers = "DEFAULT:@SECLEVEL=0";
    EXPECT_FALSE(tls11.connect(https, old)) << "TLS 1.1 handshake succeeded";
}

TEST_F(TlsListener, SocksOverTls) {
    // curl 7.88 cannot speak SOCKS over TLS: an OpenSSL client in the test does.
    ASSERT_TRUE(start(config_with({"socks_tls"}), true));
    uint16_t listener = port("socks_tls");
    TlsClient client;
    TlsClient::Options options;
    options.ca_file = cert_path();
    ASSERT_TRUE(client.connect(listener, options)) << client.error();
    ASSERT_TRUE(client.send(socks::kGreetingNoAuth));
    EXPECT_EQ(hex(client.read_at_least(2)), hex(socks::kMethodNoAuth));
    ASSERT_TRUE(client.send(socks::connect_ipv4(origin_.port())));
    std::string reply = client.read_at_least(10);
    ASSERT_EQ(reply.size(), 10u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 8)), hex(bytes({5, 0, 0, 1, 127, 0, 0, 1})));
    ASSERT_TRUE(client.send(http_get("/bytes/1048577", origin_.host_port())));
    bool closed = false;
    std::string raw = client.read_until_close(10s, &closed);
    EXPECT_TRUE(closed);
    size_t consumed = 0;
    bool need_more = false;
    auto response = harness::parse_response(raw, false, consumed, need_more, true);
    ASSERT_TRUE(response) << raw.substr(0, 200);
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(sha256_hex(response->body), sha256_hex(pattern_bytes(1048577)));

    // SOCKS4 over TLS too, and refusals arrive through TLS before the close.
    TlsClient socks4;
    ASSERT_TRUE(socks4.connect(listener, options)) << socks4.error();
    ASSERT_TRUE(socks4.send(socks::socks4_request(2, origin_.port(), socks::kLoopbackIpv4)));
    EXPECT_EQ(hex(socks4.read_until_close(3s, &closed)), hex(socks::kSocks4Rejected));
    EXPECT_TRUE(closed);

    // A plain-TCP SOCKS4 request on a TLS listener is not a handshake: closed.
    RawClient plain;
    ASSERT_TRUE(plain.connect(listener));
    ASSERT_TRUE(plain.send(
        socks::socks4_request(1, origin_.port(), socks::kLoopbackIpv4, "user-id-long-enough")));
    std::string got = plain.read_until_close(5s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(got.find(bytes({0, 0x5a})), std::string::npos) << hex(got);
    EXPECT_EQ(origin_.connections_accepted(), 1);
}

TEST_F(TlsListener, StalledHandshakeCutByHeaderTimeout) {
    constexpr Millis kHeaderTimeout = 1s;
    ConfigBuilder config = config_with({"https", "socks_tls"});
    config.set("limits", "header_timeout", std::to_string(kHeaderTimeout.count()) + "ms");
    ASSERT_TRUE(start(config, true));
    std::vector<std::pair<std::string, std::unique_ptr<RawClient>>> stalled;
    for (const char* name : {"https", "socks_tls"}) {
        // Nothing at all, and a partial ClientHello record header.
        for (const std::string& sent : {std::string(), bytes({0x16, 3, 1})}) {
            auto client = std::make_unique<RawClient>();
            ASSERT_TRUE(client->connect(port(name)));
            if (!sent.empty()) {
                ASSERT_TRUE(client->send(sent));
            }
            stalled.emplace_back(std::string(name) + (sent.empty() ? " silent" : " partial"),
                                 std::move(client));
        }
    }
    auto started = Clock::now();
    // Others are served meanwhile.
    Fetch f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(port("https")),
                     "--proxy-cacert", cert_path(), origin_.url("/bytes/10")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(10));
    for (auto& [name, client] : stalled) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(client->wait_closed(5 * kHeaderTimeout))
            << "still open after " << ms_since(started) << " ms";
        // Cut at header_timeout, late only by a loaded machine's slack.
        EXPECT_LT(since(started), 4 * kHeaderTimeout);
    }
}

// Fingerprint of the certificate listener `port` serves to a new connection.
std::string served_fingerprint(uint16_t port) {
    TlsClient client;
    if (!client.connect(port, {}, 3s)) return "(handshake failed: " + client.error() + ")";
    return client.peer_fingerprint();
}

// After a reload the old generation keeps accepting until the whole new one
// is ready (zero downtime), then drains. Waits until that happened and
// `consecutive` new connections in a row were served `fingerprint`.
bool wait_served(ProxydInstance& proxy, uint16_t port, const std::string& fingerprint,
                 int64_t generation, std::string& last, int consecutive = 8) {
    bool old_gone = harness::wait_for(
        [&] {
            auto workers = proxy.control_json("workers")["workers"];
            if (workers.size() == 0) return false;
            for (const auto& w : workers.items()) {
                if (w["generation"].as_int() < generation && w["state"].str() != "draining")
                    return false;
            }
            return true;
        },
        10s, 50ms);
    if (!old_gone) {
        last = "old generation still running: " + proxy.control("workers").value_or("(none)");
        return false;
    }
    int in_a_row = 0;
    return harness::wait_for(
        [&] {
            last = served_fingerprint(port);
            in_a_row = last == fingerprint ? in_a_row + 1 : 0;
            return in_a_row >= consecutive;
        },
        5s, 10ms);
}

TEST_F(TlsListener, ReloadSwapsCertificateInPlace) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    uint16_t https = port("https");
    const std::string old_fp = harness::certificate_fingerprint(cert_path());
    ASSERT_FALSE(old_fp.empty());
    EXPECT_EQ(served_fingerprint(https), old_fp);
    int64_t generation = proxy_->status()["generation"].as_int();
    // Keep the old CA for the "old one no longer served" check.
    const std::string old_ca = proxy_->path("old-ca.crt");
    ASSERT_TRUE(harness::write_file(old_ca, harness::read_file(cert_path())));

    // New certificate and key at the same paths, same config file, SIGHUP.
    ASSERT_TRUE(harness::make_self_signed_cert(cert_path(), key_path()));
    const std::string new_fp = harness::certificate_fingerprint(cert_path());
    ASSERT_NE(new_fp, old_fp);
    ASSERT_TRUE(proxy_->signal(SIGHUP));
    ASSERT_TRUE(harness::wait_for(
        [&] { return proxy_->status()["generation"].as_int() > generation; }, 5s));
    std::string served;
    EXPECT_TRUE(wait_served(*proxy_, https, new_fp, generation + 1, served))
        << "served: " << served << " (old " << old_fp << ", new " << new_fp << ")";
    EXPECT_EQ(proxy_->listener_port("https"), https);
    Fetch f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert",
                     cert_path(), origin_.url("/bytes/100")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(100));
    f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert", old_ca,
               origin_.url("/bytes/100")});
    EXPECT_NE(f.curl.exit_code, 0) << "the old certificate is still served";
}

TEST_F(TlsListener, ReloadWithNewCertificatePathsViaControl) {
    // Fixed ports, as an operator configures them: the listeners must keep
    // their addresses when only their certificate files change.
    uint16_t https = closed_port();
    uint16_t socks_tls = closed_port();
    ASSERT_NE(https, socks_tls);
    ConfigBuilder config = config_with({"https", "socks_tls"});
    config.set("listen https", "address", "127.0.0.1:" + std::to_string(https));
    config.set("listen socks_tls", "address", "127.0.0.1:" + std::to_string(socks_tls));
    ASSERT_TRUE(start(config, true));
    ASSERT_EQ(port("https"), https);
    ASSERT_EQ(port("socks_tls"), socks_tls);
    int64_t generation = proxy_->status()["generation"].as_int();
    const std::string old_fp = harness::certificate_fingerprint(cert_path());
    EXPECT_EQ(served_fingerprint(https), old_fp);
    const std::string new_cert = proxy_->path("new.crt");
    const std::string new_key = proxy_->path("new.key");
    ASSERT_TRUE(harness::make_self_signed_cert(new_cert, new_key));
    const std::string new_fp = harness::certificate_fingerprint(new_cert);
    ASSERT_NE(new_fp, old_fp);
    for (const char* section : {"listen https", "listen socks_tls"}) {
        proxy_->config().set(section, "tls_certificate", "${dir}/new.crt");
        proxy_->config().set(section, "tls_key", "${dir}/new.key");
    }
    ASSERT_TRUE(proxy_->write_config());
    auto line = proxy_->control("reload", 10s);
    ASSERT_TRUE(line);
    auto answer = harness::Json::parse(*line);
    ASSERT_TRUE(answer) << *line;
    EXPECT_TRUE((*answer)["ok"].boolean()) << *line;
    ASSERT_EQ(proxy_->status()["generation"].as_int(), generation + 1) << *line;
    for (uint16_t p : {https, socks_tls}) {
        std::string served;
        EXPECT_TRUE(wait_served(*proxy_, p, new_fp, generation + 1, served))
            << "port " << p << " serves " << served;
    }
    Fetch f =
        fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert", new_cert,
               "--cacert", tls_origin_.cert_path(), tls_origin_.url("/bytes/1000")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(1000));
    f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert",
               cert_path(), origin_.url("/bytes/10")});
    EXPECT_NE(f.curl.exit_code, 0) << "the old certificate is still served";
}

TEST_F(TlsListener, ReloadWithNewCertificatePathsOnEphemeralPorts) {
    // With "127.0.0.1:0" a listener whose certificate paths changed may get
    // a new port: the test follows status. New connections see the new one.
    ASSERT_TRUE(start(config_with({"https"}), true));
    int64_t generation = proxy_->status()["generation"].as_int();
    const std::string new_cert = proxy_->path("new.crt");
    ASSERT_TRUE(harness::make_self_signed_cert(new_cert, proxy_->path("new.key")));
    const std::string new_fp = harness::certificate_fingerprint(new_cert);
    proxy_->config().set("listen https", "tls_certificate", "${dir}/new.crt");
    proxy_->config().set("listen https", "tls_key", "${dir}/new.key");
    ASSERT_TRUE(proxy_->write_config());
    auto answer = proxy_->control_json("reload", 10s);
    ASSERT_TRUE(answer["ok"].boolean()) << proxy_->error_log();
    uint16_t https = port("https");
    std::string served;
    EXPECT_TRUE(wait_served(*proxy_, https, new_fp, generation + 1, served)) << served;
    Fetch f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert",
                     new_cert, origin_.url("/bytes/1000")});
    EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
    EXPECT_EQ(f.body, pattern_bytes(1000));
}

TEST_F(TlsListener, BadCertificateReloadRefusedOldOneKeepsWorking) {
    ASSERT_TRUE(start(config_with({"https"}), true));
    uint16_t https = port("https");
    const std::string fp = harness::certificate_fingerprint(cert_path());
    auto generation = proxy_->status()["generation"].as_int();

    // A mismatched key, for the third case.
    const std::string other_cert = proxy_->path("other.crt");
    const std::string other_key = proxy_->path("other.key");
    ASSERT_TRUE(harness::make_self_signed_cert(other_cert, other_key));
    ASSERT_TRUE(harness::write_file(proxy_->path("garbage.crt"), "not a certificate\n"));
    ASSERT_TRUE(
        harness::write_file(proxy_->path("garbage.key"), "-----BEGIN PRIVATE KEY-----\nxx\n"));

    struct Case {
        const char* name;
        std::string cert, key;
        std::string named;  // the file the error must name
    };
    const Case cases[] = {
        {"garbage certificate", "garbage.crt", "proxy.key", proxy_->path("garbage.crt")},
        {"garbage key", "proxy.crt", "garbage.key", proxy_->path("garbage.key")},
        {"key of another certificate", "proxy.crt", "other.key", proxy_->path("other.key")},
        {"missing certificate", "missing.crt", "proxy.key", proxy_->path("missing.crt")},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        proxy_->config().set("listen https", "tls_certificate", "${dir}/" + c.cert);
        proxy_->config().set("listen https", "tls_key", "${dir}/" + c.key);
        ASSERT_TRUE(proxy_->write_config());
        auto line = proxy_->control("reload", 10s);
        ASSERT_TRUE(line);
        auto answer = harness::Json::parse(*line);
        ASSERT_TRUE(answer) << *line;
        // Exactly a refusal: "ok": false (not a missing "ok") with the reason.
        ASSERT_EQ((*answer)["ok"].type(), harness::Json::Type::kBool) << *line;
        EXPECT_FALSE((*answer)["ok"].boolean()) << *line;
        EXPECT_NE((*answer)["error"].str().find(c.named), std::string::npos) << *line;
        // The old certificate keeps working, with the same workers.
        EXPECT_EQ(served_fingerprint(https), fp);
        Fetch f = fetch({"--proxy", "https://127.0.0.1:" + std::to_string(https), "--proxy-cacert",
                         cert_path(), origin_.url("/bytes/100")});
        EXPECT_EQ(f.curl.exit_code, 0) << f.curl.err;
        EXPECT_EQ(f.body, pattern_bytes(100));
        EXPECT_EQ(proxy_->status()["generation"].as_int(), generation);
    }
    // Same through SIGHUP: refused, logged with the reason, still serving.
    proxy_->config().set("listen https", "tls_certificate", "${dir}/garbage.crt");
    proxy_->config().set("listen https", "tls_key", "${dir}/proxy.key");
    ASSERT_TRUE(proxy_->write_config());
    ASSERT_TRUE(proxy_->signal(SIGHUP));
    EXPECT_TRUE(proxy_->wait_for_log("garbage.crt"));
    EXPECT_EQ(served_fingerprint(https), fp);
    EXPECT_EQ(proxy_->status()["generation"].as_int(), generation);
}

}  // namespace
