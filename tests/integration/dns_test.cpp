// The real DNS path and the connect that follows it, through the real
// binary: the workers' resolver is pointed at a loopback DNS server the test
// controls ([resolver] nameservers), so NXDOMAIN, a silent server
// (dns_timeout), several addresses (the next one is tried when one refuses
// or hangs), private answers and connect_timeout are each met for real, over
// HTTP, CONNECT and SOCKS5 (domain-name ATYP) where they apply.
//
// A hanging connect needs no unroutable address: a loopback listener whose
// accept queue is full and never drained makes Linux drop further SYNs, so a
// connect to it waits until the proxy's connect_timeout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/dns_server.h"
#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"

namespace {

using harness::Clock;
using harness::ConfigBuilder;
using harness::DnsServer;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Millis;
using harness::ProxydInstance;
using harness::RawClient;
using harness::since;
using namespace std::chrono_literals;

namespace socks = harness::socks;
using harness::bytes;
using harness::hex;

// The origin's /bytes/N body, compared without dumping binary on failure.
bool is_pattern(const std::string& body, size_t n) {
    return body == harness::pattern_bytes(n);
}

// The Proxy-Status field proxyd sends with a refusal (RFC 9209), with the
// details string escaped as an sf-string.
std::string proxy_status(const std::string& error_type, const std::string& details) {
    std::string escaped;
    for (char c : details) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
    }
    return "proxyd; error=" + error_type + "; details=\"" + escaped + "\"";
}

// A TCP listener with listen(fd, 0) that never accepts, its accept queue
// filled with connections of its own, so that Linux drops every further SYN
// and a connect to it hangs (the client retransmits, nobody answers).
class UnacceptedListener {
  public:
    explicit UnacceptedListener(const std::string& ip = "127.0.0.1", uint16_t port = 0) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        ::inet_pton(AF_INET, ip.c_str(), &sin.sin_addr);
        socklen_t length = sizeof(sin);
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0 ||
            ::listen(fd_, 0) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &length) != 0) {
            ADD_FAILURE() << "cannot listen on " << ip << ":" << port << ": "
                          << std::strerror(errno);
            return;
        }
        port_ = ntohs(sin.sin_port);
        full_ = fill(sin);
        if (!full_) ADD_FAILURE() << "the accept queue of " << ip << " never filled";
    }
    ~UnacceptedListener() {
        for (int fd : fillers_) ::close(fd);
        if (fd_ >= 0) ::close(fd_);
    }
    UnacceptedListener(const UnacceptedListener&) = delete;
    UnacceptedListener& operator=(const UnacceptedListener&) = delete;

    uint16_t port() const { return port_; }
    // True once a connect of its own hung: the next ones will too.
    bool full() const { return full_; }

  private:
    // Connects until one connect does not complete within a grace period
    // (the queue is full) or a few tries did: a queue of backlog 0 holds one.
    bool fill(const sockaddr_in& address) {
        constexpr int kMaxFillers = 8;
        constexpr int kGraceMs = 300;
        for (int i = 0; i < kMaxFillers; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) return false;
            fillers_.push_back(fd);
            int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
            if (rc != 0 && errno != EINPROGRESS) return false;
            if (rc == 0) continue;
            pollfd p{fd, POLLOUT, 0};
            if (::poll(&p, 1, kGraceMs) == 0) return true;  // hung: the queue is full
        }
        return false;
    }

    int fd_ = -1;
    uint16_t port_ = 0;
    bool full_ = false;
    std::vector<int> fillers_;
};

class DnsTest : public ::testing::Test {
  protected:
    // Starts proxyd with an HTTP listener "main" and a SOCKS5 listener
    // "socks", its resolver asking dns_ only.
    void start(ConfigBuilder config = ConfigBuilder()) {
        config.set("resolver", "nameservers", dns_.address());
        config.add_listener("main");
        config.add_listener("socks", "127.0.0.1:0", "socks5");
        proxy_ = std::make_unique<ProxydInstance>(config);
        ASSERT_TRUE(proxy_->start());
    }

    // One absolute-form GET for http://AUTHORITY/ on a fresh connection.
    std::optional<HttpResponse> get(const std::string& authority, Millis timeout = 10s) {
        return exchange("GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority +
                            "\r\nConnection: close\r\n\r\n",
                        timeout);
    }
    // One CONNECT to AUTHORITY; only a refusal's answer is read whole.
    std::optional<HttpResponse> connect(const std::string& authority, Millis timeout = 10s) {
        return exchange("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n",
                        timeout);
    }
    std::optional<HttpResponse> exchange(const std::string& request, Millis timeout) {
        RawClient client;
        if (!client.connect(proxy_->listener_port("main"))) return std::nullopt;
        if (!client.send(request)) return std::nullopt;
        return client.read_response(timeout);
    }

    // A SOCKS5 CONNECT to HOST:PORT by name that the proxy refuses: the
    // reply bytes up to its close (which must come).
    std::string socks_connect(const std::string& host, uint16_t port, Millis timeout = 10s) {
        RawClient client;
        if (!client.connect(proxy_->listener_port("socks"))) return "(no connection)";
        if (!client.send(bytes({5, 1, 0}))) return "(greeting not sent)";
        std::string method = client.recv_some(timeout);
        if (method != bytes({5, 0})) return "(method reply " + hex(method) + ")";
        if (!client.send(socks::connect_name(host, port))) return "(request not sent)";
        bool closed = false;
        std::string reply = client.read_until_close(timeout, &closed);
        if (!closed) ADD_FAILURE() << "no close after the SOCKS reply " << hex(reply);
        return reply;
    }

    std::string at_origin(const std::string& name) const {
        return name + ":" + std::to_string(origin_.port());
    }

    HttpOrigin origin_;
    DnsServer dns_;
    std::unique_ptr<ProxydInstance> proxy_;  // declared last: stops first
};

// What the nameserver answers, and what the proxy makes of it.
class DnsAnswer : public DnsTest {};
// A name with several addresses: the next is tried when one fails.
class DnsFallback : public DnsTest {};
// A connect that never completes.
class DnsConnectTimeout : public DnsTest {};
// The nameserver list across a reload.
class DnsReload : public DnsTest {};

// --- A name that resolves -----------------------------------------------------

TEST_F(DnsAnswer, NameResolvedByTheNameserverReachesTheOrigin) {
    dns_.set_addresses("origin.dns.test", {"127.0.0.1"});
    start();
    const std::string url = "http://" + at_origin("origin.dns.test") + "/bytes/3000";
    auto http = harness::curl_via(proxy_->listener_port("main"), {url});
    EXPECT_EQ(http.exit_code, 0) << http.err;
    EXPECT_TRUE(is_pattern(http.out, 3000)) << http.out.size() << " bytes";
    ASSERT_TRUE(origin_.wait_requests(1));
    EXPECT_EQ(origin_.last_request()->header("Host"), at_origin("origin.dns.test"));
    // The proxy asked the server for both families, with the name it was given.
    EXPECT_GE(dns_.queries_for("origin.dns.test", DnsServer::kTypeA), 1u);
    EXPECT_GE(dns_.queries_for("origin.dns.test", DnsServer::kTypeAAAA), 1u);

    auto tunnel = harness::curl_via(proxy_->listener_port("main"), {"-p", url});
    EXPECT_EQ(tunnel.exit_code, 0) << tunnel.err;
    EXPECT_TRUE(is_pattern(tunnel.out, 3000)) << tunnel.out.size() << " bytes";

    auto socks = harness::run_curl(
        {"--socks5-hostname", "127.0.0.1:" + std::to_string(proxy_->listener_port("socks")), url});
    EXPECT_EQ(socks.exit_code, 0) << socks.err;
    EXPECT_TRUE(is_pattern(socks.out, 3000)) << socks.out.size() << " bytes";
    EXPECT_EQ(origin_.request_count(), 3u);
    EXPECT_EQ(dns_.malformed(), 0u);
}

// --- NXDOMAIN -----------------------------------------------------------------

TEST_F(DnsAnswer, NxdomainIs502DnsErrorAndSocksHostUnreachable) {
    start();
    const std::string name = "missing.dns.test";
    const std::string status =
        proxy_status("dns_error", "cannot resolve \"" + name + "\": host not found");
    auto http = get(at_origin(name));
    ASSERT_TRUE(http);
    EXPECT_EQ(http->status, 502);
    EXPECT_EQ(http->header("Proxy-Status"), status);
    EXPECT_GE(dns_.queries_for(name, DnsServer::kTypeA), 1u);
    EXPECT_GE(dns_.queries_for(name, DnsServer::kTypeAAAA), 1u);

    auto tunnel = connect(at_origin(name));
    ASSERT_TRUE(tunnel);
    EXPECT_EQ(tunnel->status, 502);
    EXPECT_EQ(tunnel->header("Proxy-Status"), status);

    const size_t asked = dns_.queries_for(name);
    EXPECT_EQ(hex(socks_connect(name, origin_.port())),
              hex(socks::failure(socks::kHostUnreachable)));
    // A failure is not cached: the SOCKS request asked again.
    EXPECT_GT(dns_.queries_for(name), asked);
    EXPECT_EQ(origin_.connections_accepted(), 0);
    EXPECT_EQ(dns_.malformed(), 0u);
}

// RFC 6761: .invalid never resolves, so the resolver refuses it without
// asking anyone. The answer is that of NXDOMAIN; the server saw nothing.
TEST_F(DnsAnswer, InvalidTldIsRefusedWithoutAQuery) {
    start();
    auto http = get("nothing.invalid:80");
    ASSERT_TRUE(http);
    EXPECT_EQ(http->status, 502);
    EXPECT_EQ(http->header("Proxy-Status"),
              proxy_status("dns_error", "cannot resolve \"nothing.invalid\": host not found"));
    EXPECT_EQ(hex(socks_connect("nothing.invalid", 80)),
              hex(socks::failure(socks::kHostUnreachable)));
    EXPECT_TRUE(dns_.queries().empty());
    EXPECT_EQ(dns_.malformed(), 0u);
}

// --- A silent nameserver: dns_timeout ----------------------------------------

TEST_F(DnsAnswer, SilentNameserverIs504DnsTimeoutAfterDnsTimeout) {
    constexpr Millis kDnsTimeout = 1000ms;
    // Generous: the bound is that the proxy does not wait far past it.
    constexpr Millis kSlack = 5s;
    const std::string name = "silent.dns.test";
    dns_.set_silent(name);
    ConfigBuilder config;
    config.set("limits", "dns_timeout", "1s");
    start(config);
    const std::string status =
        proxy_status("dns_timeout", "cannot resolve \"" + name + "\": DNS timeout");
    auto check_elapsed = [&](Clock::time_point started, const char* what) {
        // evdns retries once at half the timeout; allow timer granularity.
        EXPECT_GE(since(started), kDnsTimeout - 100ms) << what;
        EXPECT_LT(since(started), kDnsTimeout + kSlack) << what;
    };

    auto started = Clock::now();
    auto http = get(at_origin(name));
    check_elapsed(started, "GET");
    ASSERT_TRUE(http);
    EXPECT_EQ(http->status, 504);
    EXPECT_EQ(http->header("Proxy-Status"), status);
    EXPECT_GE(dns_.queries_for(name, DnsServer::kTypeA), 1u);

    started = Clock::now();
    auto tunnel = connect(at_origin(name));
    check_elapsed(started, "CONNECT");
    ASSERT_TRUE(tunnel);
    EXPECT_EQ(tunnel->status, 504);
    EXPECT_EQ(tunnel->header("Proxy-Status"), status);

    started = Clock::now();
    EXPECT_EQ(hex(socks_connect(name, origin_.port())),
              hex(socks::failure(socks::kHostUnreachable)));
    check_elapsed(started, "SOCKS5");
    EXPECT_EQ(origin_.connections_accepted(), 0);
    EXPECT_EQ(dns_.malformed(), 0u);
}

// --- Several addresses: the next one after a failure -------------------------

// 127.0.0.2 and 127.0.0.3 are loopback addresses nothing listens on at the
// origin's port: a connect there is refused at once.
TEST_F(DnsFallback, RefusedAddressFallsBackToTheNextInAnswerOrder) {
    dns_.set_addresses("fallback.dns.test", {"127.0.0.2", "127.0.0.1"});
    dns_.set_addresses("all-refuse.dns.test", {"127.0.0.2", "127.0.0.3"});
    start();
    const std::string url = "http://" + at_origin("fallback.dns.test") + "/bytes/777";
    auto http = harness::curl_via(proxy_->listener_port("main"), {url});
    EXPECT_EQ(http.exit_code, 0) << http.err;
    EXPECT_TRUE(is_pattern(http.out, 777)) << http.out.size() << " bytes";
    auto tunnel = harness::curl_via(proxy_->listener_port("main"), {"-p", url});
    EXPECT_EQ(tunnel.exit_code, 0) << tunnel.err;
    EXPECT_TRUE(is_pattern(tunnel.out, 777)) << tunnel.out.size() << " bytes";
    EXPECT_EQ(origin_.request_count(), 2u);

    // Both refuse: the answer names the last address tried, so both were
    // tried, in the order the server gave.
    auto refused = get(at_origin("all-refuse.dns.test"));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 502);
    EXPECT_EQ(refused->header("Proxy-Status")
                  .value_or("")
                  .rfind("proxyd; error=connection_refused; details=\"connect() to 127.0.0.3:" +
                             std::to_string(origin_.port()) + " failed (",
                         0),
              0u)
        << refused->header("Proxy-Status").value_or("(none)");
}

// The first address hangs (a full accept queue on 127.0.0.2 at the origin's
// port): the proxy gives it connect_timeout, then succeeds on the second. The
// elapsed time shows the first was tried first.
TEST_F(DnsFallback, HangingAddressFallsBackAfterConnectTimeout) {
    constexpr Millis kConnectTimeout = 1000ms;
    UnacceptedListener hang("127.0.0.2", origin_.port());
    ASSERT_TRUE(hang.full());
    dns_.set_addresses("slow-first.dns.test", {"127.0.0.2", "127.0.0.1"});
    ConfigBuilder config;
    config.set("limits", "connect_timeout", "1s");
    start(config);
    auto started = Clock::now();
    auto r = harness::curl_via(proxy_->listener_port("main"),
                               {"http://" + at_origin("slow-first.dns.test") + "/bytes/500"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_pattern(r.out, 500)) << r.out.size() << " bytes";
    EXPECT_GE(since(started), kConnectTimeout - 100ms);
    EXPECT_EQ(origin_.request_count(), 1u);
}

// --- Private answers ------------------------------------------------------------

TEST_F(DnsAnswer, PrivateAnswersAreRefusedWhenDenied) {
    dns_.set_addresses("loopback.dns.test", {"127.0.0.1"});
    dns_.set_addresses("ten.dns.test", {"10.11.12.13"});
    dns_.set_addresses("mixed.dns.test", {"10.11.12.13", "127.0.0.1"});
    ConfigBuilder config;
    config.set("acl", "deny_private_destinations", "yes");
    start(config);
    struct Case {
        const char* name;
        const char* denied;  // the address the refusal names: the last one checked
    };
    for (Case c : {Case{"loopback.dns.test", "127.0.0.1"}, Case{"ten.dns.test", "10.11.12.13"},
                   Case{"mixed.dns.test", "127.0.0.1"}}) {
        SCOPED_TRACE(c.name);
        const std::string status =
            proxy_status("destination_ip_prohibited",
                         "destination " + std::string(c.denied) + " is a private address");
        auto http = get(at_origin(c.name));
        ASSERT_TRUE(http);
        EXPECT_EQ(http->status, 403);
        EXPECT_EQ(http->header("Proxy-Status"), status);
        auto tunnel = connect(at_origin(c.name));
        ASSERT_TRUE(tunnel);
        EXPECT_EQ(tunnel->status, 403);
        EXPECT_EQ(tunnel->header("Proxy-Status"), status);
        EXPECT_EQ(hex(socks_connect(c.name, origin_.port())),
                  hex(socks::failure(socks::kNotAllowed)));
        EXPECT_GE(dns_.queries_for(c.name, DnsServer::kTypeA), 1u);
    }
    EXPECT_EQ(origin_.connections_accepted(), 0);
}

// --- connect_timeout --------------------------------------------------------------

TEST_F(DnsConnectTimeout, HangingConnectIs504ConnectionTimeoutAfterConnectTimeout) {
    constexpr Millis kConnectTimeout = 1000ms;
    constexpr Millis kSlack = 5s;
    UnacceptedListener hang;
    ASSERT_TRUE(hang.full());
    dns_.set_addresses("hang.dns.test", {"127.0.0.1"});
    ConfigBuilder config;
    config.set("limits", "connect_timeout", "1s");
    start(config);
    const std::string authority = "hang.dns.test:" + std::to_string(hang.port());
    const std::string status = proxy_status(
        "connection_timeout", "connect to 127.0.0.1:" + std::to_string(hang.port()) + " timed out");
    auto check_elapsed = [&](Clock::time_point started, const char* what) {
        EXPECT_GE(since(started), kConnectTimeout - 50ms) << what;
        EXPECT_LT(since(started), kConnectTimeout + kSlack) << what;
    };

    auto started = Clock::now();
    auto http = get(authority);
    check_elapsed(started, "GET");
    ASSERT_TRUE(http);
    EXPECT_EQ(http->status, 504);
    EXPECT_EQ(http->header("Proxy-Status"), status);

    started = Clock::now();
    auto tunnel = connect(authority);
    check_elapsed(started, "CONNECT");
    ASSERT_TRUE(tunnel);
    EXPECT_EQ(tunnel->status, 504);
    EXPECT_EQ(tunnel->header("Proxy-Status"), status);

    started = Clock::now();
    EXPECT_EQ(hex(socks_connect("hang.dns.test", hang.port())),
              hex(socks::failure(socks::kTtlExpired)));
    check_elapsed(started, "SOCKS5");
}

// --- Reload ---------------------------------------------------------------------

// The nameserver list is read by each worker at start: after a reload, the
// new generation asks the new server.
TEST_F(DnsReload, PointsTheNewGenerationAtTheNewNameserver) {
    DnsServer second;
    second.set_addresses("moved.dns.test", {"127.0.0.1"});
    start();
    auto before = get(at_origin("moved.dns.test"));
    ASSERT_TRUE(before);
    EXPECT_EQ(before->status, 502);  // the first server does not know it
    EXPECT_GE(dns_.queries_for("moved.dns.test"), 1u);

    proxy_->config().set("resolver", "nameservers", second.address());
    ASSERT_TRUE(proxy_->write_config());
    auto reload = proxy_->control_json("reload");
    ASSERT_TRUE(reload["ok"].boolean()) << proxy_->control("status").value_or("(none)");
    const int64_t generation = reload["generation"].as_int();
    ASSERT_TRUE(harness::wait_for(
        [&] {
            auto workers = proxy_->status()["workers"];
            if (workers.size() == 0) return false;
            for (const auto& w : workers.items()) {
                if (w["generation"].as_int() != generation || w["state"].str() != "running")
                    return false;
            }
            return true;
        },
        10s));
    const size_t asked_first = dns_.queries_for("moved.dns.test");
    auto after = harness::curl_via(proxy_->listener_port("main"),
                                   {"http://" + at_origin("moved.dns.test") + "/bytes/64"});
    EXPECT_EQ(after.exit_code, 0) << after.err;
    EXPECT_TRUE(is_pattern(after.out, 64)) << after.out.size() << " bytes";
    EXPECT_GE(second.queries_for("moved.dns.test", DnsServer::kTypeA), 1u);
    EXPECT_EQ(dns_.queries_for("moved.dns.test"), asked_first);
}

// --- The test's own nameserver, on the wire ----------------------------------

// One UDP exchange with the DnsServer: the reply, or "" when none came
// within `timeout`.
std::string dns_exchange(const DnsServer& server, const std::string& query, Millis timeout = 2s) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server.port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string reply;
    if (::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) ==
        static_cast<ssize_t>(query.size())) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
            char buffer[1024];
            ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n > 0) reply.assign(buffer, static_cast<size_t>(n));
        }
    }
    ::close(fd);
    return reply;
}

// Header: id 0x1234, the given flags, one question, nothing else.
std::string query_header(int flags = 0x0100) {
    return bytes({0x12, 0x34, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0});
}
// "Origin.DNS.test" in labels, mixed case as evdns sends it.
const std::string kQName =
    bytes({6}) + "Origin" + bytes({3}) + "DNS" + bytes({4}) + "test" + bytes({0});
std::string question(int type) {
    return kQName + bytes({0, type, 0, 1});
}

TEST(DnsServerWire, AnswersAAndAaaaFromTheTableInOrder) {
    DnsServer dns;
    dns.set_addresses("origin.dns.test", {"127.0.0.1", "10.0.0.2", "::1"}, 60);
    const std::string a = question(DnsServer::kTypeA);
    // QR AA RD RA, 1 question (echoed as sent), 2 answers pointing at it.
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + a)),
              hex(bytes({0x12, 0x34, 0x85, 0x80, 0, 1, 0, 2, 0, 0, 0, 0}) + a +
                  bytes({0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1}) +
                  bytes({0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 2})));
    const std::string aaaa = question(DnsServer::kTypeAAAA);
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + aaaa)),
              hex(bytes({0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}) + aaaa +
                  bytes({0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16}) + std::string(15, '\0') +
                  bytes({1})));
    // A type it has no record of: NOERROR, no answer (NODATA).
    const std::string mx = question(15);
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + mx)),
              hex(bytes({0x12, 0x34, 0x85, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}) + mx));
    ASSERT_EQ(dns.queries().size(), 3u);
    EXPECT_EQ(dns.queries()[0].name, "origin.dns.test");
    EXPECT_EQ(dns.queries()[1].type, DnsServer::kTypeAAAA);
    EXPECT_EQ(dns.queries_for("ORIGIN.dns.test.", DnsServer::kTypeA), 1u);
    EXPECT_EQ(dns.malformed(), 0u);
}

TEST(DnsServerWire, UnknownNameIsNxdomainSilentNameNeverAnswers) {
    DnsServer dns;
    const std::string a = question(DnsServer::kTypeA);
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + a)),
              hex(bytes({0x12, 0x34, 0x85, 0x83, 0, 1, 0, 0, 0, 0, 0, 0}) + a));
    dns.set_silent("origin.dns.test");
    // A bounded quiet period: the reply would come in well under a millisecond.
    EXPECT_EQ(dns_exchange(dns, query_header() + a, 300ms), "");
    EXPECT_EQ(dns.queries_for("origin.dns.test", DnsServer::kTypeA), 2u);
    EXPECT_EQ(dns.malformed(), 0u);
}

TEST(DnsServerWire, MalformedQueriesGetFormerrOrNotimpAndAreCounted) {
    DnsServer dns;
    dns.set_addresses("origin.dns.test", {"127.0.0.1"});
    const std::string formerr = hex(bytes({0x12, 0x34, 0x85, 0x81, 0, 0, 0, 0, 0, 0, 0, 0}));
    // A compression pointer in the question (nothing to point back to).
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + bytes({0xc0, 12, 0, 1, 0, 1}))), formerr);
    // A byte after the question.
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + question(1) + bytes({0}))), formerr);
    // Class CH instead of IN.
    EXPECT_EQ(hex(dns_exchange(dns, query_header() + kQName + bytes({0, 1, 0, 3}))), formerr);
    // Two questions announced, one sent.
    EXPECT_EQ(
        hex(dns_exchange(dns, bytes({0x12, 0x34, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0}) + question(1))),
        formerr);
    // Opcode STATUS (2): not implemented.
    EXPECT_EQ(hex(dns_exchange(dns, query_header(0x1100) + question(1))),
              hex(bytes({0x12, 0x34, 0x95, 0x84, 0, 0, 0, 0, 0, 0, 0, 0})));
    // A response (QR set) is never answered.
    EXPECT_EQ(dns_exchange(dns, query_header(0x8100) + question(1), 300ms), "");
    EXPECT_EQ(dns.malformed(), 6u);
    EXPECT_TRUE(dns.queries().empty());
}

}  // namespace
