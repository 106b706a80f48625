// PROXY protocol on listeners (issue 17): a load balancer's header, v1 or v2,
// in front of an HTTP request, a CONNECT, a SOCKS5 connect and a TLS
// handshake. The address it reports is the client's for allow_clients and
// the access log; a sender outside proxy_protocol_from, a malformed header
// and one that does not arrive within header_timeout are closed with a log
// line; LOCAL and UNKNOWN keep the socket's address; a listener without
// proxy_protocol reads a PROXY line as a bad request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"
#include "tests/integration/tls_client.h"

namespace {

using namespace harness;

const std::string kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

// "PROXY TCP4 SRC 127.0.0.1 SPORT DPORT\r\n".
std::string v1(const std::string& source, uint16_t source_port, uint16_t proxy_port) {
    const bool v6 = source.find(':') != std::string::npos;
    return std::string("PROXY ") + (v6 ? "TCP6 " : "TCP4 ") + source + " " +
           (v6 ? "::1" : "127.0.0.1") + " " + std::to_string(source_port) + " " +
           std::to_string(proxy_port) + "\r\n";
}

// A v2 PROXY header over TCP/IPv4 from `source`, with one NOOP TLV so the
// skipping of TLVs is on the path too.
std::string v2(const std::string& source, uint16_t source_port, uint16_t proxy_port) {
    in_addr src{};
    inet_pton(AF_INET, source.c_str(), &src);
    in_addr dst{};
    inet_pton(AF_INET, "127.0.0.1", &dst);
    std::string block(reinterpret_cast<const char*>(&src), 4);
    block.append(reinterpret_cast<const char*>(&dst), 4);
    block += socks::port_bytes(source_port) + socks::port_bytes(proxy_port);
    block += bytes({0x04, 0x00, 0x02}) + "ab";
    return kV2Signature + bytes({0x21, 0x11, 0, static_cast<int>(block.size())}) + block;
}

// A v2 LOCAL header, as a balancer's health check sends it.
std::string v2_local() {
    return kV2Signature + bytes({0x20, 0x00, 0, 0});
}

std::string get(const std::string& host_port, const std::string& path) {
    return "GET http://" + host_port + path + " HTTP/1.1\r\nHost: " + host_port +
           "\r\nConnection: close\r\n\r\n";
}

// What came back on `fd` before the peer closed; `closed` says whether it
// did within `timeout`.
std::string read_to_close(int fd, Millis timeout, bool& closed) {
    std::string out;
    closed = false;
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            closed = true;
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

class ProxyProtocol : public ::testing::Test {
  protected:
    void SetUp() override {
        config_.set("master", "workers", "1");
        config_.set("log", "access_log", "${dir}/access.log");
        config_.set("log", "access_log_format", "json");
        // 127.0.0.1 is the balancer; the clients it reports are judged on
        // their own.
        config_.set("acl", "allow_clients", "127.0.0.1/32, 192.0.2.0/24, 2001:db8::/32");
        config_.set("limits", "header_timeout", "2s");
        config_.add_listener("http");
        config_.set("listen http", "proxy_protocol", "yes");
        config_.add_listener("socks", "127.0.0.1:0", "socks5");
        config_.set("listen socks", "proxy_protocol", "yes");
        config_.set("listen socks", "proxy_protocol_from", "127.0.0.1, ::1");
        config_.add_listener("plain");
    }

    bool start() {
        proxy_ = std::make_unique<ProxydInstance>(config_);
        if (!proxy_->start()) return false;
        http_ = proxy_->listener_port("http");
        return true;
    }

    // Sends `data` in one write on a new connection to `port`; the response.
    std::optional<HttpResponse> exchange(uint16_t port, const std::string& data) {
        RawClient client;
        if (!client.connect(port)) return std::nullopt;
        if (!client.send(data)) return std::nullopt;
        return client.read_response(10s);
    }

    // The access log's record of `path`, asked by client `address`:`port`.
    Json record_of(const std::string& path, const std::string& address, int64_t port) {
        return wait_for_record(proxy_->path("access.log"), [&](const Json& r) {
            return field_has(r, "target", path) && r["client"].str() == address &&
                   (port == 0 || r["client_port"].as_int() == port);
        });
    }

    ConfigBuilder config_;
    std::unique_ptr<ProxydInstance> proxy_;
    HttpOrigin origin_;
    uint16_t http_ = 0;
};

TEST_F(ProxyProtocol, V1HeaderAndRequestInOneWrite) {
    ASSERT_TRUE(start());
    auto r =
        exchange(http_, v1("192.0.2.10", 40001, http_) + get(origin_.host_port(), "/bytes/10"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, pattern_bytes(10));
    EXPECT_FALSE(record_of("/bytes/10", "192.0.2.10", 40001).is_null());
}

TEST_F(ProxyProtocol, V2HeaderThenRequestInItsOwnWrite) {
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    ASSERT_TRUE(client.send(v2("192.0.2.11", 40002, http_)));
    ASSERT_TRUE(client.send(get(origin_.host_port(), "/bytes/11")));
    auto r = client.read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(record_of("/bytes/11", "192.0.2.11", 40002).is_null());
}

TEST_F(ProxyProtocol, HeaderCutAcrossWritesStillServes) {
    ASSERT_TRUE(start());
    const std::string header = v1("192.0.2.12", 40003, http_);
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    for (char c : header) ASSERT_TRUE(client.send(std::string(1, c)));
    ASSERT_TRUE(client.send(get(origin_.host_port(), "/bytes/12")));
    auto r = client.read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(record_of("/bytes/12", "192.0.2.12", 40003).is_null());
}

TEST_F(ProxyProtocol, V1Tcp6ReportedAddress) {
    ASSERT_TRUE(start());
    auto r = exchange(http_, v1("2001:db8::5", 40004, http_) + get(origin_.host_port(), "/six"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(record_of("/six", "2001:db8::5", 40004).is_null());
}

TEST_F(ProxyProtocol, ConnectTunnel) {
    RawTcpServer echo(echo_handler());
    ASSERT_TRUE(start());
    const std::string target = "127.0.0.1:" + std::to_string(echo.port());
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    ASSERT_TRUE(client.send(v1("192.0.2.13", 40005, http_) + "CONNECT " + target +
                            " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
    std::string head = read_at_least(client, 12, 10s);
    ASSERT_EQ(head.substr(0, 12), "HTTP/1.1 200") << head;
    while (head.find("\r\n\r\n") == std::string::npos) {
        std::string more = client.recv_some(5s);
        ASSERT_FALSE(more.empty()) << head;
        head += more;
    }
    ASSERT_TRUE(client.send("ping"));
    EXPECT_EQ(read_at_least(client, 4, 10s), "ping");
    client.close();
    EXPECT_FALSE(record_of(target, "192.0.2.13", 40005).is_null());
}

TEST_F(ProxyProtocol, Socks5Connect) {
    RawTcpServer echo(echo_handler());
    ASSERT_TRUE(start());
    const uint16_t socks_port = proxy_->listener_port("socks");
    RawClient client;
    ASSERT_TRUE(client.connect(socks_port));
    ASSERT_TRUE(client.send(v2("192.0.2.14", 40006, socks_port) + socks::kGreetingNoAuth));
    EXPECT_EQ(hex(read_at_least(client, 2, 10s)), hex(socks::kMethodNoAuth));
    ASSERT_TRUE(client.send(socks::connect_ipv4(echo.port())));
    std::string reply = read_at_least(client, 10, 10s);
    ASSERT_EQ(reply.size(), 10u) << hex(reply);
    EXPECT_EQ(hex(reply.substr(0, 2)), hex(bytes({5, socks::kSucceeded})));
    ASSERT_TRUE(client.send("pong"));
    EXPECT_EQ(read_at_least(client, 4, 10s), "pong");
    client.close();
    EXPECT_FALSE(record_of(std::to_string(echo.port()), "192.0.2.14", 40006).is_null());
}

TEST_F(ProxyProtocol, TlsListenerReadsTheHeaderBeforeTheHandshake) {
    const std::string dir = make_temp_dir("proxyd-pp-tls-");
    ASSERT_TRUE(make_self_signed_cert(dir + "/cert.pem", dir + "/key.pem"));
    config_.add_listener("tls");
    config_.set("listen tls", "proxy_protocol", "yes");
    config_.set("listen tls", "tls_certificate", dir + "/cert.pem");
    config_.set("listen tls", "tls_key", dir + "/key.pem");
    ASSERT_TRUE(start());
    const uint16_t tls_port = proxy_->listener_port("tls");
    TlsClient client;
    TlsClient::Options options;
    options.ca_file = dir + "/cert.pem";
    options.preface = v1("192.0.2.15", 40007, tls_port);
    ASSERT_TRUE(client.connect(tls_port, options, 10s)) << client.error();
    ASSERT_TRUE(client.send(get(origin_.host_port(), "/bytes/15")));
    std::string response = client.read_until_close(10s);
    EXPECT_EQ(response.substr(0, 12), "HTTP/1.1 200") << response.substr(0, 200);
    EXPECT_FALSE(record_of("/bytes/15", "192.0.2.15", 40007).is_null());
    remove_tree(dir);
}

TEST_F(ProxyProtocol, AllowClientsJudgesTheReportedAddress) {
    ASSERT_TRUE(start());
    // The balancer, 127.0.0.1, is allowed; the client it reports is not.
    auto r = exchange(http_, v1("198.51.100.9", 40008, http_) + get(origin_.host_port(), "/no"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403);
    EXPECT_FALSE(record_of("/no", "198.51.100.9", 40008).is_null());
    EXPECT_EQ(origin_.request_count(), 0u);
}

TEST_F(ProxyProtocol, SenderOutsideProxyProtocolFromIsClosed) {
    ASSERT_TRUE(start());
    int fd = connect_from("127.0.0.2", http_);
    ASSERT_GE(fd, 0);
    send_all(fd, v1("192.0.2.16", 40009, http_) + get(origin_.host_port(), "/outside"));
    bool closed = false;
    std::string answer = read_to_close(fd, 10s, closed);
    ::close(fd);
    EXPECT_TRUE(closed);
    EXPECT_EQ(answer, "");
    EXPECT_TRUE(proxy_->wait_for_log("client 127.0.0.2:"));
    EXPECT_FALSE(proxy_->log_lines_with("not in proxy_protocol_from").empty())
        << proxy_->error_log();
    EXPECT_EQ(origin_.request_count(), 0u);
}

TEST_F(ProxyProtocol, MalformedHeaderClosesAndLogs) {
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    ASSERT_TRUE(client.send("PROXY TCP4 192.0.2.17 127.0.0.1 040010 80\r\n" +
                            get(origin_.host_port(), "/bad")));
    bool closed = false;
    EXPECT_EQ(client.read_until_close(10s, &closed), "");
    EXPECT_TRUE(closed);
    EXPECT_TRUE(proxy_->wait_for_log("bad PROXY protocol header (v1: port")) << proxy_->error_log();
    EXPECT_EQ(origin_.request_count(), 0u);
}

TEST_F(ProxyProtocol, PartialHeaderHitsHeaderTimeout) {
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    auto started = Clock::now();
    ASSERT_TRUE(client.send("PROXY TCP4 192.0."));
    bool closed = false;
    client.read_until_close(20s, &closed);
    EXPECT_TRUE(closed);
    // Never before header_timeout (2 s): the lower bound holds on any load.
    EXPECT_GE(ms_since(started), 1900);
    EXPECT_TRUE(proxy_->wait_for_log("no complete PROXY protocol header within header_timeout"))
        << proxy_->error_log();
}

TEST_F(ProxyProtocol, TricklingHeaderGetsOneDeadline) {
    ASSERT_TRUE(start());
    RawClient client;
    ASSERT_TRUE(client.connect(http_));
    auto started = Clock::now();
    // A byte every 200 ms would take 9 s for this header: the deadline runs
    // from the accept, not from the last byte.
    const std::string header = "PROXY UNKNOWN " + std::string(30, 'x') + "\r\n";
    bool closed = false;
    for (char c : header) {
        if (!client.send(std::string(1, c))) {  // reset: closed under our feet
            closed = true;
            break;
        }
        if (client.wait_closed(200ms)) {
            closed = true;
            break;
        }
    }
    EXPECT_TRUE(closed);
    EXPECT_GE(ms_since(started), 1900);
    EXPECT_LT(ms_since(started), 8500);
}

TEST_F(ProxyProtocol, LocalAndUnknownKeepTheSocketAddress) {
    ASSERT_TRUE(start());
    RawClient local;
    ASSERT_TRUE(local.connect(http_));
    ASSERT_TRUE(local.send(v2_local() + get(origin_.host_port(), "/local")));
    auto r = local.read_response(10s);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(record_of("/local", "127.0.0.1", 0).is_null());

    auto u = exchange(http_, "PROXY UNKNOWN\r\n" + get(origin_.host_port(), "/unknown"));
    ASSERT_TRUE(u);
    EXPECT_EQ(u->status, 200);
    EXPECT_FALSE(record_of("/unknown", "127.0.0.1", 0).is_null());
}

TEST_F(ProxyProtocol, WithoutProxyProtocolAProxyLineIsABadRequest) {
    ASSERT_TRUE(start());
    const uint16_t plain = proxy_->listener_port("plain");
    auto r = exchange(plain, v1("192.0.2.18", 40011, plain) + get(origin_.host_port(), "/plain"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(origin_.request_count(), 0u);
}

TEST_F(ProxyProtocol, RefusalsAreCountedAsErrors) {
    ASSERT_TRUE(start());
    auto r = exchange(http_, "PROXY TCP9\r\n");
    EXPECT_FALSE(r);
    EXPECT_TRUE(wait_for(
        [&] {
            Json stats = proxy_->control_json("stats");
            return stats["errors_by_class"]["client_protocol"].as_int() >= 1;
        },
        10s))
        << proxy_->control("stats").value_or("no answer");
}

}  // namespace
