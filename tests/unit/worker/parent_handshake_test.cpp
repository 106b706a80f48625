// Unit tests for worker/parent_handshake: the pure pieces (Basic token,
// CONNECT head, which failures are the route's), then the handshake on a
// real libevent loop against a parent played by a thread on a real loopback
// socket: HTTP CONNECT, SOCKS5 and TLS (with a CA and certificates made
// here), every answer a parent can give, a parent that closes and one that
// never answers.
#include "worker/parent_handshake.h"

#include <arpa/inet.h>
#include <event2/bufferevent_ssl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/credentials.h"
#include "common/libevent_handles.h"
#include "common/tls.h"
#include "worker/deferred_delete.h"

namespace worker {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using common::ParentConfig;
using common::ParentScheme;

// --- pure pieces ----------------------------------------------------------------

ParentConfig parent_config(ParentScheme scheme, const std::string& host = "127.0.0.1") {
    ParentConfig parent;
    parent.name = "up";
    parent.scheme = scheme;
    parent.host = host;
    parent.port = 3128;
    return parent;
}

TEST(ParentHandshakeText, BasicTokenIsRfc7617) {
    EXPECT_EQ(common::accounts::encode_basic_token("Aladdin", "open sesame"),
              "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    EXPECT_EQ(common::accounts::encode_basic_token("a", "b"), "YTpi");
    EXPECT_EQ(common::accounts::encode_basic_token("ab", "c"), "YWI6Yw==");
    EXPECT_EQ(common::accounts::encode_basic_token("abc", "de"), "YWJjOmRl");
    // Only the first ':' separates: the password keeps its own.
    EXPECT_EQ(common::accounts::encode_basic_token("alice", "s3cr:t@/%~ x"),
              "YWxpY2U6czNjcjp0QC8lfiB4");
}

TEST(ParentHandshakeText, AuthorizationOnlyWithCredentials) {
    ParentConfig parent = parent_config(ParentScheme::kHttp);
    EXPECT_EQ(parent.authorization, "");
    parent.set_credentials("Aladdin", "open sesame");
    EXPECT_EQ(parent.authorization, "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n");
}

TEST(ParentHandshakeText, ConnectHead) {
    ParentConfig parent = parent_config(ParentScheme::kHttp);
    std::string out;
    append_connect_request(parent, {"2001:db8::1", 443, true}, "edge-1", out);
    EXPECT_EQ(out,
              "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"
              "Via: 1.1 edge-1\r\n\r\n");
    parent.set_credentials("a", "b");
    out.clear();
    append_connect_request(parent, {"example.com", 8443, false}, "edge-1", out);
    EXPECT_EQ(out,
              "CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n"
              "Proxy-Authorization: Basic YTpi\r\nVia: 1.1 edge-1\r\n\r\n");
}

TEST(ParentHandshakeText, RouteFailures) {
    EXPECT_TRUE(is_route_failure(ParentError::kTls));
    EXPECT_TRUE(is_route_failure(ParentError::kCertificate));
    EXPECT_TRUE(is_route_failure(ParentError::kProtocol));
    EXPECT_TRUE(is_route_failure(ParentError::kClosed));
    EXPECT_TRUE(is_route_failure(ParentError::kTimeout));
    EXPECT_FALSE(is_route_failure(ParentError::kNone));
    EXPECT_FALSE(is_route_failure(ParentError::kAuth));
    EXPECT_FALSE(is_route_failure(ParentError::kRefused));
    EXPECT_FALSE(is_route_failure(ParentError::kNoResources));
}

// --- a scripted parent ------------------------------------------------------------

// The parent's side of one connection, in the peer thread: blocking reads
// and writes, each bounded by the socket's timeouts, over TCP or TLS.
class PeerConnection {
  public:
    PeerConnection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

    // Up to `n` bytes; fewer on EOF, error or timeout.
    std::string read_exactly(size_t n) {
        std::string out;
        while (out.size() < n) {
            char chunk[4096];
            const size_t want = std::min(sizeof(chunk), n - out.size());
            const ssize_t got =
                ssl_ ? SSL_read(ssl_, chunk, static_cast<int>(want)) : recv(fd_, chunk, want, 0);
            if (got <= 0) break;
            out.append(chunk, static_cast<size_t>(got));
        }
        return out;
    }
    // Through the blank line of a head.
    std::string read_head() {
        std::string out;
        while (out.find("\r\n\r\n") == std::string::npos) {
            const std::string byte = read_exactly(1);
            if (byte.empty()) break;
            out += byte;
        }
        return out;
    }
    // Reads and drops bytes until the other side closes (or a read times out).
    void wait_for_close() {
        while (!read_exactly(1).empty()) {
        }
    }
    void send(std::string_view data) {
        if (ssl_) {
            SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        } else {
            ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        }
    }

  private:
    int fd_;
    SSL* ssl_;
};

// Plays the parent: listens on 127.0.0.1, accepts one connection in a
// thread (over TLS with `tls`), runs `script` on it and keeps what the
// script says it received; then closes. Every wait is bounded.
class ScriptedParent {
  public:
    using Script = std::function<std::string(PeerConnection&)>;

    explicit ScriptedParent(Script script, SSL_CTX* tls = nullptr) {
        listener_.reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof(address);
        EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), length), 0);
        EXPECT_EQ(listen(listener_.get(), 1), 0);
        EXPECT_EQ(getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length), 0);
        address_ = address;
        thread_ = std::thread([this, script = std::move(script), tls] { serve(script, tls); });
    }
    ~ScriptedParent() { join(); }

    void join() {
        if (thread_.joinable()) thread_.join();
    }
    // After the script (each joins first): what it received, the server
    // name the client sent, whether the TLS handshake failed.
    std::string received() {
        join();
        return received_;
    }
    const std::string& sni() {
        join();
        return sni_;
    }
    bool tls_failed() {
        join();
        return tls_failed_;
    }

    // A connected plain TCP bufferevent to it, as UpstreamConnect hands over.
    common::BufferEventPtr connect(event_base* base) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address_), sizeof(address_)), 0);
        evutil_make_socket_nonblocking(fd);
        return common::BufferEventPtr(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE));
    }

  private:
    void serve(const Script& script, SSL_CTX* tls) {
        pollfd ready{listener_.get(), POLLIN, 0};
        if (poll(&ready, 1, 3000) != 1) return;
        common::UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) return;
        timeval timeout{2, 0};
        setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
        common::SslPtr ssl;
        if (tls) {
            ssl.reset(SSL_new(tls));
            SSL_set_fd(ssl.get(), fd.get());
            if (SSL_accept(ssl.get()) != 1) {
                tls_failed_ = true;
                return;
            }
            const char* name = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
            sni_ = name ? name : "";
        }
        PeerConnection connection(fd.get(), ssl.get());
        received_ = script(connection);
        if (ssl) SSL_shutdown(ssl.get());
    }

    common::UniqueFd listener_;
    sockaddr_in address_{};
    std::thread thread_;
    std::string received_;
    std::string sni_;
    bool tls_failed_ = false;
};

// --- the loop ---------------------------------------------------------------------

class ParentHandshakeLoop : public ::testing::Test {
  protected:
    void SetUp() override {
        base_.reset(event_base_new());
        ASSERT_NE(base_, nullptr);
    }

    // Runs the loop until `done` or `limit`; false on timeout.
    bool run(const std::function<bool()>& done, std::chrono::milliseconds limit = 3000ms) {
        bool timed_out = false;
        common::EventPtr timer(evtimer_new(
            base_.get(), [](evutil_socket_t, short, void* arg) { *static_cast<bool*>(arg) = true; },
            &timed_out));
        const timeval tv{static_cast<time_t>(limit.count() / 1000),
                         static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
        evtimer_add(timer.get(), &tv);
        while (!done() && !timed_out) event_base_loop(base_.get(), EVLOOP_ONCE);
        return !timed_out;
    }

    // One whole handshake with `peer`; the handshake is gone when it returns.
    ParentResult handshake(ScriptedParent& peer, const ParentConfig& parent,
                           std::optional<TunnelTarget> target,
                           std::chrono::milliseconds timeout = 2000ms, size_t max_head = 4096) {
        std::optional<ParentResult> result;
        auto step =
            std::make_unique<ParentHandshake>(base_.get(), parent, "edge-1", timeout, max_head);
        step->start(peer.connect(base_.get()), std::move(target),
                    [&](ParentResult&& r) { result = std::move(r); });
        EXPECT_TRUE(run([&] { return result.has_value(); })) << "no result";
        // libevent closes a freed bufferevent's socket from the loop.
        step.reset();
        event_base_loop(base_.get(), EVLOOP_NONBLOCK);
        if (result) return std::move(*result);
        ParentResult none;  // an error no test expects
        none.error = ParentError::kNoResources;
        return none;
    }

    // Bytes already read from the parent after its answer.
    static std::string pending_input(const ParentResult& result) {
        evbuffer* input = bufferevent_get_input(result.connection.get());
        std::string out(evbuffer_get_length(input), '\0');
        evbuffer_copyout(input, out.data(), out.size());
        return out;
    }

    common::EventBasePtr base_;
};

const TunnelTarget kName{"example.com", 443, false};
const TunnelTarget kIpv4{"192.0.2.7", 80, true};
const TunnelTarget kIpv6{"2001:db8::1", 443, true};

// --- HTTP CONNECT -----------------------------------------------------------------

using ParentHandshakeHttp = ParentHandshakeLoop;

TEST_F(ParentHandshakeHttp, TunnelOpensAndKeepsTheBytesAfterTheAnswer) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\nSSH-2.0-hello");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kIpv6);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    ASSERT_NE(result.connection, nullptr);
    EXPECT_EQ(peer.received(),
              "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n"
              "Via: 1.1 edge-1\r\n\r\n");
    // Whatever Content-Length says: a 2xx to CONNECT has no body.
    EXPECT_TRUE(run([&] { return pending_input(result).size() >= 13; }));
    EXPECT_EQ(pending_input(result), "SSH-2.0-hello");
}

TEST_F(ParentHandshakeHttp, InterimAnswersAreSkipped) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 100 Continue\r\n\r\n");
        c.send("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    EXPECT_EQ(pending_input(result), "");
}

TEST_F(ParentHandshakeHttp, RefusedCredentialsAreKAuth) {
    ParentConfig parent = parent_config(ParentScheme::kHttp);
    parent.set_credentials("alice", "s3cr:t@/%~ x");
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent, kName);
    EXPECT_EQ(result.error, ParentError::kAuth);
    EXPECT_EQ(result.http_status, 407);
    EXPECT_EQ(result.detail, "parent up refused our credentials (407)");
    EXPECT_EQ(result.connection, nullptr);
    EXPECT_FALSE(is_route_failure(result.error));
    EXPECT_EQ(peer.received(),
              "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
              "Proxy-Authorization: Basic YWxpY2U6czNjcjp0QC8lfiB4\r\n"
              "Via: 1.1 edge-1\r\n\r\n");
}

TEST_F(ParentHandshakeHttp, CredentialsRequiredWithoutOursIsKAuth) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName);
    EXPECT_EQ(result.error, ParentError::kAuth);
    EXPECT_EQ(result.detail, "parent up requires credentials (407)");
    EXPECT_EQ(peer.received().find("Proxy-Authorization"), std::string::npos);
}

TEST_F(ParentHandshakeHttp, OtherStatusIsKRefused) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName);
    EXPECT_EQ(result.error, ParentError::kRefused);
    EXPECT_EQ(result.http_status, 403);
    EXPECT_EQ(result.detail, "parent up answered CONNECT with 403 Forbidden");
    EXPECT_FALSE(is_route_failure(result.error));
}

TEST_F(ParentHandshakeHttp, GarbageIsKProtocol) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("SSH-2.0-OpenSSH_9.2\r\n\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName);
    EXPECT_EQ(result.error, ParentError::kProtocol);
    EXPECT_EQ(result.detail.rfind("parent up sent a malformed answer to CONNECT: ", 0), 0u)
        << result.detail;
    EXPECT_TRUE(is_route_failure(result.error));
}

TEST_F(ParentHandshakeHttp, HeadOverMaxHeadIsKProtocol) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 200 OK\r\nX-Filler: " + std::string(600, 'f') + "\r\n\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName, 2000ms, 512);
    EXPECT_EQ(result.error, ParentError::kProtocol);
    EXPECT_EQ(result.detail, "parent up sent an answer to CONNECT over 512 bytes");
}

TEST_F(ParentHandshakeHttp, CloseBeforeAWholeHeadIsKClosed) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 200 OK\r\n");
        return head;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName);
    EXPECT_EQ(result.error, ParentError::kClosed);
    EXPECT_EQ(result.detail,
              "parent up closed the connection before its answer to CONNECT was whole");
    EXPECT_TRUE(is_route_failure(result.error));
}

TEST_F(ParentHandshakeHttp, SilenceIsKTimeout) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.wait_for_close();
        return head;
    });
    const auto started = std::chrono::steady_clock::now();
    ParentResult result = handshake(peer, parent_config(ParentScheme::kHttp), kName, 200ms);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(result.error, ParentError::kTimeout);
    EXPECT_EQ(result.detail, "parent up did not finish its handshake within 200ms");
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 1000ms);
    EXPECT_TRUE(is_route_failure(result.error));
}

TEST_F(ParentHandshakeHttp, WithoutTargetTheConnectionComesBackAtOnce) {
    ScriptedParent peer([](PeerConnection&) { return ""s; });
    std::optional<ParentResult> result;
    const ParentConfig parent = parent_config(ParentScheme::kHttp);
    ParentHandshake step(base_.get(), parent, "edge-1", 2000ms, 4096);
    step.start(peer.connect(base_.get()), std::nullopt,
               [&](ParentResult&& r) { result = std::move(r); });
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->error, ParentError::kNone);
    EXPECT_NE(result->connection, nullptr);
}

TEST_F(ParentHandshakeHttp, DestroyingCancels) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.wait_for_close();  // the handshake's end closes the connection
        return head;
    });
    bool called = false;
    const ParentConfig parent = parent_config(ParentScheme::kHttp);
    auto step = std::make_unique<ParentHandshake>(base_.get(), parent, "edge-1", 100ms, 4096);
    step->start(peer.connect(base_.get()), kName, [&](ParentResult&&) { called = true; });
    run([] { return false; }, 50ms);
    step.reset();
    run([] { return false; }, 150ms);  // past the handshake's timeout
    EXPECT_FALSE(called);
    EXPECT_EQ(peer.received().rfind("CONNECT ", 0), 0u);
}

TEST_F(ParentHandshakeHttp, CallbackMayRetireTheHandshake) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string head = c.read_head();
        c.send("HTTP/1.1 200 OK\r\n\r\n");
        return head;
    });
    DeferredDeleter graveyard;
    ASSERT_TRUE(graveyard.start(base_.get()));
    const ParentConfig parent = parent_config(ParentScheme::kHttp);
    auto owned = std::make_unique<ParentHandshake>(base_.get(), parent, "edge-1", 2000ms, 4096);
    ParentHandshake* step = owned.get();
    std::optional<ParentResult> result;
    step->start(peer.connect(base_.get()), kName, [&](ParentResult&& r) {
        result = std::move(r);
        graveyard.defer(std::move(owned));
    });
    ASSERT_TRUE(run([&] { return result.has_value() && graveyard.pending() == 0; }));
    EXPECT_EQ(result->error, ParentError::kNone);
    EXPECT_NE(result->connection, nullptr);
}

// --- SOCKS5 -------------------------------------------------------------------------

using ParentHandshakeSocks = ParentHandshakeLoop;

TEST_F(ParentHandshakeSocks, NoAuthToANameKeepsTheTunnelsBytes) {
    const std::string connect = "\x05\x01\x00\x03\x0b"s + "example.com" + "\x01\xbb";
    ScriptedParent peer([&](PeerConnection& c) {
        std::string got = c.read_exactly(3);
        c.send("\x05\x00"s);
        got += c.read_exactly(connect.size());
        c.send("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"s + "SSH-2.0-hello");
        return got;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kName);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    EXPECT_EQ(peer.received(), "\x05\x01\x00"s + connect);
    EXPECT_TRUE(run([&] { return pending_input(result).size() >= 13; }));
    EXPECT_EQ(pending_input(result), "SSH-2.0-hello");
}

TEST_F(ParentHandshakeSocks, UsernamePasswordToAnIpv4Literal) {
    ParentConfig parent = parent_config(ParentScheme::kSocks5);
    parent.set_credentials("alice", "s3cr:t@/%~ x");
    const std::string auth = "\x01\x05"s + "alice" + "\x0c" + "s3cr:t@/%~ x";
    const std::string connect = "\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x50"s;
    ScriptedParent peer([&](PeerConnection& c) {
        std::string got = c.read_exactly(4);
        c.send("\x05\x02"s);
        got += c.read_exactly(auth.size());
        c.send("\x01\x00"s);
        got += c.read_exactly(connect.size());
        c.send("\x05\x00\x00\x03\x09"s + "localhost" + "\x04\x38");
        return got;
    });
    ParentResult result = handshake(peer, parent, kIpv4);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    EXPECT_EQ(peer.received(), "\x05\x02\x00\x02"s + auth + connect);
    EXPECT_EQ(pending_input(result), "");
}

TEST_F(ParentHandshakeSocks, AnswersSentAheadAreReadInTurn) {
    // A parent that answers method and CONNECT in one segment, before it
    // read the request.
    ScriptedParent peer([&](PeerConnection& c) {
        std::string got = c.read_exactly(3);
        c.send("\x05\x00"s + "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"s + "tunnel");
        got += c.read_exactly(10);
        return got;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kIpv4);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    EXPECT_EQ(pending_input(result), "tunnel");
    // The CONNECT request may still be queued: the connection's new owner
    // sends it as it sends its own bytes.
    evbuffer* output = bufferevent_get_output(result.connection.get());
    EXPECT_TRUE(run([&] { return evbuffer_get_length(output) == 0; }));
    EXPECT_EQ(peer.received().size(), 13u);
}

TEST_F(ParentHandshakeSocks, WrongPasswordIsKAuth) {
    ParentConfig parent = parent_config(ParentScheme::kSocks5);
    parent.set_credentials("alice", "wrong");
    ScriptedParent peer([](PeerConnection& c) {
        std::string got = c.read_exactly(4);
        c.send("\x05\x02"s);
        got += c.read_exactly(1 + 1 + 5 + 1 + 5);
        c.send("\x01\x01"s);
        return got;
    });
    ParentResult result = handshake(peer, parent, kName);
    EXPECT_EQ(result.error, ParentError::kAuth);
    EXPECT_EQ(result.detail, "parent up refused our credentials (SOCKS5 username/password)");
    EXPECT_FALSE(is_route_failure(result.error));
}

TEST_F(ParentHandshakeSocks, NoAcceptableMethodIsKAuth) {
    for (bool credentials : {true, false}) {
        ParentConfig parent = parent_config(ParentScheme::kSocks5);
        if (credentials) parent.set_credentials("alice", "pw");
        ScriptedParent peer([&](PeerConnection& c) {
            std::string got = c.read_exactly(credentials ? 4 : 3);
            c.send("\x05\xff"s);
            return got;
        });
        ParentResult result = handshake(peer, parent, kName);
        EXPECT_EQ(result.error, ParentError::kAuth);
        EXPECT_EQ(result.detail, credentials
                                     ? "parent up accepts none of our authentication methods"
                                     : "parent up requires credentials");
    }
}

TEST_F(ParentHandshakeSocks, MethodWeDidNotOfferIsKProtocol) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string got = c.read_exactly(3);
        c.send("\x05\x02"s);
        return got;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kName);
    EXPECT_EQ(result.error, ParentError::kProtocol);
    EXPECT_EQ(result.detail,
              "parent up chose SOCKS5 authentication method 0x02, which we did not offer");
}

TEST_F(ParentHandshakeSocks, NonZeroReplyIsKRefusedWithTheReply) {
    const std::string connect =
        "\x05\x01\x00\x04\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01\x01\xbb"s;
    ScriptedParent peer([&](PeerConnection& c) {
        std::string got = c.read_exactly(3);
        c.send("\x05\x00"s);
        got += c.read_exactly(connect.size());
        c.send("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"s);
        return got;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kIpv6);
    EXPECT_EQ(result.error, ParentError::kRefused);
    EXPECT_EQ(result.socks_reply, 5);
    EXPECT_EQ(result.detail,
              "parent up could not reach [2001:db8::1]:443 (SOCKS reply 5: connection refused)");
    EXPECT_FALSE(is_route_failure(result.error));
    EXPECT_EQ(peer.received(), "\x05\x01\x00"s + connect);
}

TEST_F(ParentHandshakeSocks, MalformedReplyIsKProtocol) {
    ScriptedParent peer([](PeerConnection& c) {
        std::string got = c.read_exactly(3);
        c.send("\x05\x00"s);
        got += c.read_exactly(10);
        c.send("\x05\x00\x00\x07"s);
        return got;
    });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kIpv4);
    EXPECT_EQ(result.error, ParentError::kProtocol);
    EXPECT_EQ(result.detail, "parent up sent a malformed SOCKS5 reply: unknown address type");
}

TEST_F(ParentHandshakeSocks, CloseBeforeTheMethodIsKClosed) {
    ScriptedParent peer([](PeerConnection& c) { return c.read_exactly(3); });
    ParentResult result = handshake(peer, parent_config(ParentScheme::kSocks5), kName);
    EXPECT_EQ(result.error, ParentError::kClosed);
    EXPECT_EQ(result.detail, "parent up closed the connection before its SOCKS5 method selection");
}

// --- TLS --------------------------------------------------------------------------------

// A key pair and a certificate for it, signed by `issuer` (itself when null).
struct Identity {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};
    std::unique_ptr<X509, decltype(&X509_free)> cert{nullptr, X509_free};
};

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
    ASSERT_NE(extension, nullptr) << value;
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
}

Identity make_identity(const char* common_name, const Identity* issuer, long serial) {
    Identity id;
    id.key.reset(EVP_EC_gen("P-256"));
    id.cert.reset(X509_new());
    X509* cert = id.cert.get();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, id.key.get());
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
    X509* issuer_cert = issuer ? issuer->cert.get() : cert;
    X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
    if (issuer == nullptr) {
        add_extension(cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert, issuer_cert, NID_basic_constraints, "CA:FALSE");
        add_extension(cert, issuer_cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    X509_sign(cert, issuer ? issuer->key.get() : id.key.get(), EVP_sha256());
    return id;
}

bool write_pem(const std::string& path, X509* cert, EVP_PKEY* key = nullptr) {
    FILE* file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return false;
    bool ok = PEM_write_X509(file, cert) == 1;
    if (key) ok = ok && PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    return std::fclose(file) == 0 && ok;
}

// A CA, a server certificate it signed (localhost, 127.0.0.1), and a second
// CA that signed nothing, made once for the suite in a temp directory.
class ParentHandshakeTls : public ParentHandshakeLoop {
  protected:
    static void SetUpTestSuite() {
        char pattern[] = "/tmp/parent_handshake_test.XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
        const Identity ca = make_identity("Test CA", nullptr, 1);
        const Identity other_ca = make_identity("Other CA", nullptr, 2);
        const Identity server = make_identity("localhost", &ca, 3);
        ASSERT_TRUE(write_pem(dir_ + "/ca.pem", ca.cert.get()));
        ASSERT_TRUE(write_pem(dir_ + "/other_ca.pem", other_ca.cert.get()));
        ASSERT_TRUE(write_pem(dir_ + "/server.pem", server.cert.get(), server.key.get()));
        std::string error;
        server_ctx_ =
            common::tls::create_server_context(dir_ + "/server.pem", dir_ + "/server.pem", error);
        ASSERT_NE(server_ctx_, nullptr) << error;
    }
    static void TearDownTestSuite() {
        server_ctx_.reset();
        for (const char* file : {"/ca.pem", "/other_ca.pem", "/server.pem"}) {
            std::remove((dir_ + file).c_str());
        }
        rmdir(dir_.c_str());
    }

    // An https parent at `host`, verified with `ca`.
    static ParentConfig https_parent(const std::string& host, const std::string& ca = "ca.pem") {
        ParentConfig parent = parent_config(ParentScheme::kHttps, host);
        std::string error;
        parent.tls_context = common::tls::create_client_context(dir_ + "/" + ca, error);
        EXPECT_NE(parent.tls_context, nullptr) << error;
        return parent;
    }

    static inline std::string dir_;
    static inline common::tls::SharedSslCtx server_ctx_;
};

TEST_F(ParentHandshakeTls, ConnectOverTlsToANameWithSni) {
    ScriptedParent peer(
        [](PeerConnection& c) {
            std::string head = c.read_head();
            c.send("HTTP/1.1 200 OK\r\n\r\nSSH-2.0-hello");
            return head;
        },
        server_ctx_.get());
    ParentResult result = handshake(peer, https_parent("localhost"), kName);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    EXPECT_NE(bufferevent_openssl_get_ssl(result.connection.get()), nullptr);
    EXPECT_EQ(peer.sni(), "localhost");
    EXPECT_EQ(peer.received().rfind("CONNECT example.com:443 HTTP/1.1\r\n", 0), 0u);
    EXPECT_TRUE(run([&] { return pending_input(result).size() >= 13; }));
    EXPECT_EQ(pending_input(result), "SSH-2.0-hello");
}

TEST_F(ParentHandshakeTls, TransportOnlyToAnIpLiteralCarriesBytes) {
    ScriptedParent peer(
        [](PeerConnection& c) {
            std::string got = c.read_exactly(4);
            c.send("pong");
            return got;
        },
        server_ctx_.get());
    ParentResult result = handshake(peer, https_parent("127.0.0.1"), std::nullopt);
    ASSERT_EQ(result.error, ParentError::kNone) << result.detail;
    bufferevent_write(result.connection.get(), "ping", 4);
    EXPECT_TRUE(run([&] { return pending_input(result).size() >= 4; }));
    EXPECT_EQ(pending_input(result), "pong");
    EXPECT_EQ(peer.received(), "ping");
    EXPECT_EQ(peer.sni(), "") << "no SNI for an address (RFC 6066)";
}

TEST_F(ParentHandshakeTls, UnknownCaIsACertificateRefusal) {
    ScriptedParent peer([](PeerConnection&) { return ""s; }, server_ctx_.get());
    ParentResult result = handshake(peer, https_parent("localhost", "other_ca.pem"), kName);
    EXPECT_EQ(result.error, ParentError::kCertificate);
    EXPECT_EQ(result.detail,
              "TLS to parent up failed: certificate verify failed "
              "(unable to get local issuer certificate)");
    EXPECT_TRUE(is_route_failure(result.error));
    EXPECT_TRUE(peer.tls_failed());
}

TEST_F(ParentHandshakeTls, WrongNameIsACertificateRefusal) {
    ScriptedParent peer([](PeerConnection&) { return ""s; }, server_ctx_.get());
    ParentResult result = handshake(peer, https_parent("proxy.example"), kName);
    EXPECT_EQ(result.error, ParentError::kCertificate);
    EXPECT_EQ(result.detail,
              "TLS to parent up failed: certificate verify failed (hostname mismatch)");
}

TEST_F(ParentHandshakeTls, WrongAddressIsACertificateRefusal) {
    ScriptedParent peer([](PeerConnection&) { return ""s; }, server_ctx_.get());
    ParentResult result = handshake(peer, https_parent("127.0.0.2"), kName);
    EXPECT_EQ(result.error, ParentError::kCertificate);
    EXPECT_EQ(result.detail,
              "TLS to parent up failed: certificate verify failed (IP address mismatch)");
}

TEST_F(ParentHandshakeTls, CloseDuringTheHandshakeIsKTls) {
    // A plain TCP peer that closes at once.
    ScriptedParent peer([](PeerConnection&) { return ""s; });
    ParentResult result = handshake(peer, https_parent("localhost"), kName);
    EXPECT_EQ(result.error, ParentError::kTls);
    EXPECT_EQ(result.detail.rfind("TLS to parent up failed: ", 0), 0u) << result.detail;
}

TEST_F(ParentHandshakeTls, TheTimeoutCoversTheTlsHandshake) {
    // A TCP peer that never answers the ClientHello.
    ScriptedParent peer([](PeerConnection& c) {
        c.wait_for_close();
        return ""s;
    });
    ParentResult result = handshake(peer, https_parent("localhost"), kName, 200ms);
    EXPECT_EQ(result.error, ParentError::kTimeout);
    EXPECT_EQ(result.detail, "parent up did not finish its handshake within 200ms");
}

}  // namespace
}  // namespace worker
