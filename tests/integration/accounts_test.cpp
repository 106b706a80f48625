// Accounts end to end (issue 14): password authentication on HTTP and SOCKS5
// listeners, user-name parameters, per-user session limits that hold exactly
// across workers, the `users` control command, and reloads of the users file.
//
// Every users file is made with the operators' tools (users_fixture.h):
// htpasswd for bcrypt, mkpasswd for yescrypt and SHA-512-crypt. Clients are
// curl where it can say what the test means, raw sockets where the bytes
// matter. Origins live on loopback; tunnels go to an echo server that holds
// each connection until the client closes it, so a tunnel is a session for
// exactly as long as the test keeps its client.
//
// Timing: everything is polled with generous bounds (a loaded 2-core machine
// stretches bcrypt and process start-up many times), except the one latency
// the hammering test exists to bound.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/socks_messages.h"
#include "tests/integration/users_fixture.h"

namespace {

using namespace std::chrono_literals;
using harness::base64;
using harness::basic;
using harness::bytes;
using harness::Clock;
using harness::ConfigBuilder;
using harness::CurlResult;
using harness::echo_handler;
using harness::HashKind;
using harness::hex;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Json;
using harness::Millis;
using harness::pattern_bytes;
using harness::ProxydInstance;
using harness::RawClient;
using harness::RawTcpServer;
using harness::read_at_least;
using harness::read_connect_answer;
using harness::UsersFile;
using harness::wait_for;
using Event = harness::ProxydInstance::WorkerEvent;
namespace socks = harness::socks;

// --- Small helpers -----------------------------------------------------------

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// Sends `message` through an echoing tunnel; true when exactly it came back.
bool echoes(RawClient& tunnel, const std::string& message) {
    if (!tunnel.send(message)) return false;
    return read_at_least(tunnel, message.size(), 10s) == message;
}

// p-quantile of `values` (any order); 0 when empty.
double quantile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(i, values.size() - 1)];
}

// SOCKS5 username/password (RFC 1929) bytes.
const std::string kGreetingPassword = bytes({5, 1, 2});  // one method offered: 02
const std::string kMethodPassword = bytes({5, 2});
const std::string kNoAcceptableMethod = bytes({5, 0xff});
const std::string kAuthSucceeded = bytes({1, 0});
const std::string kAuthFailed = bytes({1, 1});

std::string socks_credentials(const std::string& user, const std::string& password) {
    return bytes({1, static_cast<int>(user.size())}) + user +
           bytes({static_cast<int>(password.size())}) + password;
}

// The success reply of a SOCKS5 CONNECT starts 05 00; its bound address is
// the proxy's, so only the first two bytes are compared.
std::string reply_head(const std::string& reply) {
    return reply.substr(0, 2);
}

// The realm of every test's [auth] section: not the default, so a 407 is
// seen to take it from the config.
const std::string kRealm = "Accounts Test Realm";

// alice:secret, bcrypt at htpasswd's default cost.
UsersFile alice_only() {
    UsersFile users;
    EXPECT_TRUE(users.add("alice", "secret"));
    return users;
}

// --- Fixture -----------------------------------------------------------------

class AccountsTest : public ::testing::Test {
  protected:
    // The harness defaults plus accounts: users_file = ${dir}/users, a custom
    // realm, an access log, and an HTTP listener "main" with auth = password.
    static ConfigBuilder config(int workers = 2) {
        ConfigBuilder c;
        c.set("master", "workers", std::to_string(workers));
        c.set("log", "access_log", "${dir}/access.log");
        c.set("auth", "users_file", "${dir}/users");
        c.set("auth", "realm", kRealm);
        c.add_listener("main");
        c.set("listen main", "auth", "password");
        return c;
    }
    // A SOCKS5 listener "socks" with auth = password.
    static void add_socks(ConfigBuilder& c) {
        c.add_listener("socks", "127.0.0.1:0", "socks5");
        c.set("listen socks", "auth", "password");
    }
    // An HTTP listener "open" with auth = none.
    static void add_open(ConfigBuilder& c) {
        c.add_listener("open");
        c.set("listen open", "auth", "none");
    }
    // Writes `users` to ${dir}/users and starts proxyd with `c`.
    bool start(ConfigBuilder c, const UsersFile& users) {
        proxy_ = std::make_unique<ProxydInstance>(std::move(c));
        if (!users.write(users_path())) {
            ADD_FAILURE() << "cannot write " << users_path();
            return false;
        }
        return proxy_->start(30s);
    }
    std::string users_path() const { return proxy_->path("users"); }
    std::string access_log_path() const { return proxy_->path("access.log"); }

    uint16_t port(const std::string& name = "main") {
        uint16_t p = proxy_->listener_port(name);
        EXPECT_NE(p, 0) << "no address for listener " << name
                        << " in status: " << proxy_->control("status").value_or("(none)");
        return p;
    }

    // "GET <absolute url> HTTP/1.1" to the origin, with `extra` header lines.
    std::string get_request(const std::string& path, const std::string& extra = "") const {
        return "GET " + origin_.url(path) + " HTTP/1.1\r\nHost: " + origin_.host_port() + "\r\n" +
               extra + "\r\n";
    }
    // One GET on a fresh connection to `listener_port`; nullopt when no
    // complete response came.
    std::optional<HttpResponse> get(uint16_t listener_port, const std::string& path,
                                    const std::string& extra = "", Millis timeout = 30s) {
        RawClient client;
        if (!client.connect(listener_port)) {
            ADD_FAILURE() << "cannot connect to port " << listener_port;
            return std::nullopt;
        }
        if (!client.send(get_request(path, extra))) return std::nullopt;
        return client.read_response(timeout);
    }
    int get_status(uint16_t listener_port, const std::string& path, const std::string& extra = "",
                   Millis timeout = 30s) {
        std::optional<HttpResponse> r = get(listener_port, path, extra, timeout);
        return r ? r->status : 0;
    }

    // CONNECT to the echo server.
    struct Tunnel {
        std::unique_ptr<RawClient> client = std::make_unique<RawClient>();
        std::optional<HttpResponse> response;  // the head, and the body of a refusal
        int status() const { return response ? response->status : 0; }
    };
    std::string connect_request(const std::string& extra) const {
        const std::string authority = "127.0.0.1:" + std::to_string(echo_.port());
        return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n" + extra + "\r\n";
    }
    Tunnel open_tunnel(uint16_t listener_port, const std::string& extra, Millis timeout = 30s) {
        Tunnel t;
        if (!t.client->connect(listener_port) || !t.client->send(connect_request(extra))) {
            ADD_FAILURE() << "cannot send CONNECT to port " << listener_port;
            return t;
        }
        t.response = read_connect_answer(*t.client, timeout);
        return t;
    }

    // Connects to the SOCKS listener, offers method 02 and sends the
    // credentials; the server's two-byte answer to them ("" when none came).
    std::string socks_login(RawClient& client, uint16_t listener_port, const std::string& user,
                            const std::string& password) {
        if (!client.connect(listener_port)) {
            ADD_FAILURE() << "cannot connect to port " << listener_port;
            return "";
        }
        if (!client.send(kGreetingPassword)) return "";
        std::string chosen = read_at_least(client, 2, 20s);
        if (chosen != kMethodPassword) {
            ADD_FAILURE() << "greeting 05 01 02 answered " << hex(chosen);
            return "";
        }
        if (!client.send(socks_credentials(user, password))) return "";
        return read_at_least(client, 2, 30s);
    }
    // socks_login, then CONNECT to the echo server: the CONNECT reply
    // (10 bytes) or what came before a close.
    std::string socks_connect(RawClient& client, uint16_t listener_port, const std::string& user,
                              const std::string& password) {
        std::string auth = socks_login(client, listener_port, user, password);
        if (auth != kAuthSucceeded) return "auth:" + hex(auth);
        if (!client.send(socks::connect_ipv4(echo_.port()))) return "";
        return read_at_least(client, 10, 30s);
    }

    // The row of `name` in the `users` answer; a null Json when absent.
    Json user_row(const std::string& name) {
        Json answer = proxy_->control_json("users");
        for (const Json& row : answer["users"].items()) {
            if (row["name"].str() == name) return row;
        }
        return Json();
    }
    int64_t active_sessions(const std::string& name) {
        return user_row(name)["active_sessions"].as_int();
    }
    // Waits until `name` has exactly `n` active sessions.
    bool wait_active(const std::string& name, int64_t n, Millis timeout = 20s) {
        return wait_for(
            [&] { return user_row(name).has("active_sessions") && active_sessions(name) == n; },
            timeout, 50ms);
    }
    std::string users_answer() { return proxy_->control("users").value_or("(no answer)"); }

    // After a reload: waits until `count` workers of a generation above
    // `before` run and every older one drains (or is gone), so the next
    // connection is served with the new configuration. (The reload answer
    // comes when the configuration is accepted, before its workers are up.)
    bool wait_new_generation_serving(int64_t before, size_t count, Millis timeout = 30s) {
        return wait_for(
            [&] {
                size_t running = 0;
                for (const ProxydInstance::Worker& w : proxy_->workers()) {
                    if (w.generation > before && w.state == "running") ++running;
                    if (w.generation <= before && w.state != "draining") return false;
                }
                return running >= count;
            },
            timeout, 50ms);
    }

    // The access log line of a request by `user` (the field after the client
    // address) whose request line starts with `request`; "" when none came.
    std::string access_line(const std::string& user, const std::string& request) {
        return harness::wait_for_line(access_log_path(), {" - " + user + " [", "\"" + request},
                                      10s);
    }

    // Declared before proxy_: the proxy stops first, so tunnels end from its side.
    HttpOrigin origin_;
    RawTcpServer echo_{echo_handler()};
    std::unique_ptr<ProxydInstance> proxy_;
};

// Expects a 407 that names the realm, with a body.
void expect_407(const std::optional<HttpResponse>& r, const std::string& what) {
    ASSERT_TRUE(r) << what << ": no response";
    EXPECT_EQ(r->status, 407) << what << ": " << r->body;
    EXPECT_EQ(r->header("Proxy-Authenticate").value_or("(none)"), "Basic realm=\"" + kRealm + "\"")
        << what;
    EXPECT_FALSE(r->body.empty()) << what << ": a 407 without a body saying what is wrong";
}

// Expects a 429 whose Proxy-Status is http_request_denied naming max_sessions.
void expect_429(const std::optional<HttpResponse>& r, const std::string& what) {
    ASSERT_TRUE(r) << what << ": no response";
    EXPECT_EQ(r->status, 429) << what << ": " << r->body;
    std::string status = r->header("Proxy-Status").value_or("");
    EXPECT_TRUE(contains(status, "error=http_request_denied"))
        << what << ": Proxy-Status " << status;
    EXPECT_TRUE(contains(status, "max_sessions")) << what << ": Proxy-Status " << status;
}

class AccountsHttp : public AccountsTest {};
class AccountsSocks : public AccountsTest {};
class AccountsHashing : public AccountsTest {};
class AccountsLimits : public AccountsTest {};
class AccountsReload : public AccountsTest {};
class AccountsControl : public AccountsTest {};

// --- AccountsHttp --------------------------------------------------------------

// curl's --proxy-user (and its short form -U) through an HTTP listener: the
// origin never sees Proxy-Authorization, and the access log names alice.
TEST_F(AccountsHttp, CurlProxyUserGetsThroughAndCredentialsStayAtTheProxy) {
    ASSERT_TRUE(start(config(), alice_only()));
    for (const char* flag : {"--proxy-user", "-U"}) {
        SCOPED_TRACE(flag);
        origin_.clear();
        CurlResult r =
            harness::curl_via(port(), {flag, "alice:secret", origin_.url("/headers")}, 30s);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        ASSERT_TRUE(origin_.wait_requests(1));
        std::optional<harness::ReceivedRequest> seen = origin_.last_request();
        ASSERT_TRUE(seen);
        EXPECT_FALSE(seen->has_header("Proxy-Authorization")) << r.out;
        EXPECT_FALSE(contains(lower(r.out), "proxy-authorization")) << r.out;
    }
    EXPECT_NE(access_line("alice", "GET " + origin_.url("/headers")), "")
        << harness::read_file(access_log_path());
}

TEST_F(AccountsHttp, CurlProxyTunnelToPlainOrigin) {
    ASSERT_TRUE(start(config(), alice_only()));
    CurlResult r = harness::curl_via(
        port(), {"-p", "--proxy-user", "alice:secret", origin_.url("/bytes/5000")}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, pattern_bytes(5000));
    EXPECT_NE(access_line("alice", "CONNECT " + origin_.host_port()), "")
        << harness::read_file(access_log_path());
    // Without credentials curl's tunnel is refused with 407.
    CurlResult refused = harness::curl_via(
        port(), {"-p", "-w", "%{http_connect}", "-o", "/dev/null", origin_.url("/")}, 30s);
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_EQ(refused.out, "407") << refused.err;
}

// Proxy-Authorization is removed before forwarding on every listener, also
// where nobody asked for it (auth = none).
TEST_F(AccountsHttp, ProxyAuthorizationNeverForwardedOnAuthNoneListener) {
    ConfigBuilder c = config();
    add_open(c);
    ASSERT_TRUE(start(c, alice_only()));
    std::optional<HttpResponse> r = get(port("open"), "/headers", basic("alice", "secret"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_FALSE(contains(lower(r->body), "proxy-authorization")) << r->body;
    // And an auth = none listener wants no credentials at all, and ignores wrong ones.
    EXPECT_EQ(get_status(port("open"), "/"), 200);
    std::optional<HttpResponse> wrong = get(port("open"), "/headers", basic("alice", "wrong"));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 200);
    EXPECT_FALSE(contains(lower(wrong->body), "proxy-authorization")) << wrong->body;
    // The access log of an unauthenticated request has "-" as its user.
    EXPECT_NE(access_line("-", "GET " + origin_.url("/")), "")
        << harness::read_file(access_log_path());
}

TEST_F(AccountsHttp, MissingWrongUnknownAndMalformedCredentialsGet407WithRealm) {
    UsersFile users = alice_only();
    ASSERT_TRUE(users.add("bob", "hunter2"));
    ASSERT_TRUE(start(config(), users));
    const uint16_t p = port();
    expect_407(get(p, "/"), "no Proxy-Authorization");
    std::optional<HttpResponse> wrong = get(p, "/", basic("alice", "wrong"));
    std::optional<HttpResponse> unknown = get(p, "/", basic("mallory", "secret"));
    expect_407(wrong, "wrong password");
    expect_407(unknown, "unknown user");
    if (wrong && unknown) {
        // The same answer: a client cannot tell which names exist.
        EXPECT_EQ(wrong->body, unknown->body);
        EXPECT_EQ(wrong->header("Proxy-Authenticate"), unknown->header("Proxy-Authenticate"));
        EXPECT_EQ(wrong->header("Connection"), unknown->header("Connection"));
    }
    // bob's password is not alice's.
    expect_407(get(p, "/", basic("alice", "hunter2")), "another user's password");
    expect_407(get(p, "/", basic("alice", "")), "empty password");
    expect_407(get(p, "/", basic("", "secret")), "empty user");
    const std::vector<std::pair<std::string, std::string>> malformed = {
        {"Proxy-Authorization: Basic !!!\r\n", "Basic !!!"},
        {"Proxy-Authorization: Digest x\r\n", "Digest x"},
        {"Proxy-Authorization: Basic\r\n", "Basic without credentials"},
        {"Proxy-Authorization: Basic " + base64("alice") + "\r\n", "no colon"},
        {"Proxy-Authorization: Bearer abc\r\n", "Bearer"},
    };
    for (const auto& [header, what] : malformed) expect_407(get(p, "/", header), what);
    EXPECT_EQ(origin_.request_count(), 0u)
        << "a request without valid credentials reached the origin";
    // The right ones still work after all that.
    EXPECT_EQ(get_status(p, "/", basic("alice", "secret")), 200);
    EXPECT_EQ(get_status(p, "/", basic("bob", "hunter2")), 200);
    // Failed attempts are logged with the client address.
    EXPECT_TRUE(proxy_->wait_for_log("authentication failed", 10s)) << proxy_->error_log();
    std::vector<std::string> lines = proxy_->log_lines_with("authentication failed");
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
        return contains(l, "127.0.0.1");
    })) << proxy_->error_log();
}

// A refused CONNECT closes the connection (the client may not send the
// tunnel's bytes as a next request); a refused GET without a body may stay.
TEST_F(AccountsHttp, RefusedConnectClosesAndRefusedGetMayKeepAlive) {
    ASSERT_TRUE(start(config(), alice_only()));
    for (const std::string& extra : {std::string(), basic("alice", "wrong")}) {
        SCOPED_TRACE(extra.empty() ? "no credentials" : "wrong password");
        Tunnel t = open_tunnel(port(), extra);
        expect_407(t.response, "CONNECT");
        EXPECT_TRUE(t.client->wait_closed(10s))
            << "the connection stayed open after a refused CONNECT";
    }
    EXPECT_EQ(echo_.connections_accepted(), 0);
    // A GET: after the 407, the same connection may carry the right credentials.
    RawClient client;
    ASSERT_TRUE(client.connect(port()));
    ASSERT_TRUE(client.send(get_request("/first")));
    std::optional<HttpResponse> first = client.read_response(30s);
    expect_407(first, "GET without credentials");
    if (first && !contains(lower(first->header("Connection").value_or("")), "close") &&
        client.send(get_request("/second", basic("alice", "secret")))) {
        std::optional<HttpResponse> second = client.read_response(30s);
        ASSERT_TRUE(second) << "kept alive after the 407 but did not answer the next request";
        EXPECT_EQ(second->status, 200);
    }
}

// Every request on a keep-alive connection carries its own credentials: one
// that authenticated earlier lends nothing to a later one without them, with
// wrong ones, or with another user's.
TEST_F(AccountsHttp, KeepAliveConnectionChecksEveryRequest) {
    UsersFile users = alice_only();
    ASSERT_TRUE(users.add("bob", "hunter2"));
    ConfigBuilder c = config();
    c.set("user bob", "max_sessions", "1");
    ASSERT_TRUE(start(c, users));
    RawClient client;
    ASSERT_TRUE(client.connect(port()));
    auto exchange = [&](const std::string& path, const std::string& credentials) {
        std::optional<HttpResponse> r;
        if (client.send(get_request(path, credentials))) r = client.read_response(30s);
        return r;
    };
    auto still_open = [&](const std::optional<HttpResponse>& r) {
        return r && !contains(lower(r->header("Connection").value_or("")), "close");
    };
    std::optional<HttpResponse> first = exchange("/1", basic("alice", "secret"));
    ASSERT_TRUE(first);
    ASSERT_EQ(first->status, 200);
    ASSERT_TRUE(still_open(first));
    std::optional<HttpResponse> bare = exchange("/2", "");
    expect_407(bare, "no credentials after an authenticated request");
    if (!still_open(bare)) {
        client.close();
        ASSERT_TRUE(client.connect(port()));
    }
    std::optional<HttpResponse> wrong = exchange("/3", basic("alice", "wrong"));
    expect_407(wrong, "wrong password after an authenticated request");
    if (!still_open(wrong)) {
        client.close();
        ASSERT_TRUE(client.connect(port()));
    }
    std::optional<HttpResponse> again = exchange("/4", basic("alice", "secret"));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    // Another user on the same connection is that user (and counts as such).
    Tunnel bobs = open_tunnel(port(), basic("bob", "hunter2"));
    ASSERT_EQ(bobs.status(), 200);
    expect_429(exchange("/5", basic("bob", "hunter2")), "bob at his limit on alice's connection");
    EXPECT_NE(access_line("alice", "GET " + origin_.url("/4")), "");
    std::vector<std::string> paths;
    for (const harness::ReceivedRequest& r : origin_.requests()) paths.push_back(r.target);
    EXPECT_EQ(paths, (std::vector<std::string>{"/1", "/4"}));
}

// User-name parameters: valid ones authenticate as the name (and the access
// log says only the name), malformed ones get a 407 that names the parameter.
TEST_F(AccountsHttp, UserNameParameters) {
    UsersFile users = alice_only();
    ASSERT_TRUE(users.add("jean-luc", "engage"));
    ASSERT_TRUE(start(config(), users));
    const uint16_t p = port();
    const std::string id64(64, 'Z');
    const std::vector<std::string> valid = {
        "alice-session-a",           "alice-session-A_z9",        "alice-session-" + id64,
        "alice-session-x-ttl-1s",    "alice-session-x-ttl-90m",   "alice-session-x-ttl-24h",
        "alice-session-x-ttl-1440m", "alice-session-x-ttl-86400s"};
    for (const std::string& user : valid) {
        EXPECT_EQ(get_status(p, "/params", basic(user, "secret")), 200) << user;
    }
    // A name with a hyphen: parameters start at the first "-session-".
    EXPECT_EQ(get_status(p, "/params", basic("jean-luc-session-x", "engage")), 200);
    EXPECT_EQ(get_status(p, "/params", basic("jean-luc", "engage")), 200);
    EXPECT_NE(access_line("alice", "GET " + origin_.url("/params")), "");
    std::string log = harness::read_file(access_log_path());
    EXPECT_FALSE(contains(log, "-session-")) << "parameters in the access log's user field:\n"
                                             << log;

    // Malformed parameters: 407 whose body names what is wrong.
    struct Bad {
        std::string user;
        std::vector<std::string> words;  // the body names one of these (lower case)
    };
    const std::vector<Bad> bad = {
        {"alice-session-", {"session id"}},      {"alice-session-a.b", {"session id"}},
        {"alice-session-a-b", {"session id"}},   {"alice-session-" + id64 + "Z", {"session id"}},
        {"alice-ttl-10m", {"ttl", "session"}},   {"alice-session-x-ttl-", {"ttl"}},
        {"alice-session-x-ttl-0s", {"ttl"}},     {"alice-session-x-ttl-25h", {"ttl"}},
        {"alice-session-x-ttl-86401s", {"ttl"}}, {"alice-session-x-ttl-1441m", {"ttl"}},
        {"alice-session-x-ttl-10", {"ttl"}},     {"alice-session-x-ttl-10d", {"ttl"}},
        {"alice-session-x-ttl-1.5h", {"ttl"}},   {"alice-session-x-ttl--5m", {"ttl"}},
        {"alice-session-x-ttl-5ms", {"ttl"}},
    };
    for (const Bad& b : bad) {
        std::optional<HttpResponse> r = get(p, "/bad", basic(b.user, "secret"));
        expect_407(r, b.user);
        if (!r) continue;
        std::string body = lower(r->body);
        EXPECT_TRUE(std::any_of(b.words.begin(), b.words.end(),
                                [&](const std::string& w) { return contains(body, w); }))
            << b.user << ": the body does not name the parameter: " << r->body;
    }
    // Right parameters, wrong password; and an unknown name with parameters.
    expect_407(get(p, "/bad", basic("alice-session-x", "wrong")), "wrong password with parameters");
    expect_407(get(p, "/bad", basic("mallory-session-x", "secret")),
               "unknown name with parameters");
    EXPECT_EQ(origin_.request_count(), 10u);
}

// A refused request's body is the client's data, never a request: a 407 on
// a kept-alive connection must skip the body it announced (or close).
TEST_F(AccountsHttp, RefusedRequestBodyIsNeverParsedAsARequest) {
    ASSERT_TRUE(start(config(), alice_only()));
    const std::string smuggled = get_request("/smuggled", basic("alice", "secret"));
    for (const std::string& credentials : {std::string(), basic("alice", "wrong")}) {
        SCOPED_TRACE(credentials.empty() ? "no credentials" : "wrong password");
        for (bool chunked : {false, true}) {
            SCOPED_TRACE(chunked ? "chunked body" : "Content-Length body");
            RawClient client;
            ASSERT_TRUE(client.connect(port()));
            char size[16];
            std::snprintf(size, sizeof size, "%zx", smuggled.size());
            const std::string request =
                "POST " + origin_.url("/echo") + " HTTP/1.1\r\nHost: " + origin_.host_port() +
                "\r\n" + credentials +
                (chunked ? "Transfer-Encoding: chunked\r\n\r\n" + std::string(size) + "\r\n" +
                               smuggled + "\r\n0\r\n\r\n"
                         : "Content-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n" +
                               smuggled);
            ASSERT_TRUE(client.send(request));
            expect_407(client.read_response(30s), "POST");
            // Whatever the proxy does next (skip the body, or close), a
            // request of our own on the same connection is the only other one.
            if (client.send(get_request("/after", basic("alice", "secret")))) {
                std::optional<HttpResponse> after = client.read_response(30s);
                if (after) {
                    EXPECT_EQ(after->status, 200);
                }
            }
        }
    }
    for (const harness::ReceivedRequest& r : origin_.requests())
        EXPECT_NE(r.target, "/smuggled")
            << "the body of a refused request was forwarded as a request";
}

// Basic credentials split at the first colon: a password may hold colons.
// The scheme is case-insensitive (RFC 9110 §11.1).
TEST_F(AccountsHttp, PasswordWithColonsAndCaseInsensitiveScheme) {
    UsersFile users = alice_only();
    ASSERT_TRUE(users.add("bob", "pa:ss:word", HashKind::kYescrypt));
    ASSERT_TRUE(start(config(), users));
    EXPECT_EQ(get_status(port(), "/", basic("bob", "pa:ss:word")), 200);
    expect_407(get(port(), "/", basic("bob", "pa")), "a prefix of the password");
    for (const char* scheme : {"basic", "BASIC"}) {
        EXPECT_EQ(get_status(port(), "/",
                             std::string("Proxy-Authorization: ") + scheme + " " +
                                 base64("alice:secret") + "\r\n"),
                  200)
            << scheme;
    }
    CurlResult r =
        harness::curl_via(port(), {"--proxy-user", "bob:pa:ss:word", origin_.url("/")}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "hello\n");
}

// [proxy] name is the pseudonym of Via and Proxy-Status.
TEST_F(AccountsHttp, ProxyNameInViaAndProxyStatus) {
    ConfigBuilder c = config();
    c.set("proxy", "name", "edge-7");
    c.set("user alice", "max_sessions", "1");
    ASSERT_TRUE(start(c, alice_only()));
    std::optional<HttpResponse> r = get(port(), "/headers", basic("alice", "secret"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(contains(lower(r->body), "via: 1.1 edge-7")) << r->body;
    EXPECT_TRUE(contains(r->header("Via").value_or(""), "edge-7")) << r->header("Via").value_or("");
    Tunnel held = open_tunnel(port(), basic("alice", "secret"));
    ASSERT_EQ(held.status(), 200);
    std::optional<HttpResponse> limited = get(port(), "/", basic("alice", "secret"));
    expect_429(limited, "over the limit");
    if (limited) {
        EXPECT_EQ(limited->header("Proxy-Status").value_or("").rfind("edge-7;", 0), 0u)
            << limited->header("Proxy-Status").value_or("");
    }
}

// --- AccountsSocks -------------------------------------------------------------

TEST_F(AccountsSocks, CurlSocks5hWithCredentials) {
    ConfigBuilder c = config();
    add_socks(c);
    ASSERT_TRUE(start(c, alice_only()));
    const std::string proxy = "127.0.0.1:" + std::to_string(port("socks"));
    CurlResult ok = harness::run_curl(
        {"-x", "socks5h://alice:secret@" + proxy, origin_.url("/bytes/3000")}, 30s);
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_EQ(ok.out, pattern_bytes(3000));
    EXPECT_NE(access_line("alice", "CONNECT " + origin_.host_port() + " SOCKS5"), "")
        << harness::read_file(access_log_path());
    const size_t before = origin_.request_count();
    for (const char* credentials : {"alice:wrong", "mallory:secret"}) {
        CurlResult refused = harness::run_curl(
            {"-x", std::string("socks5h://") + credentials + "@" + proxy, origin_.url("/")}, 30s);
        EXPECT_NE(refused.exit_code, 0) << credentials << ": " << refused.out;
    }
    // No credentials at all: curl offers only "no authentication".
    CurlResult anonymous = harness::run_curl({"-x", "socks5h://" + proxy, origin_.url("/")}, 30s);
    EXPECT_NE(anonymous.exit_code, 0) << anonymous.out;
    EXPECT_EQ(origin_.request_count(), before);
}

TEST_F(AccountsSocks, MethodSelectionAndRfc1929Bytes) {
    ConfigBuilder c = config();
    add_socks(c);
    UsersFile users = alice_only();
    ASSERT_TRUE(users.add("jean-luc", "engage"));
    ASSERT_TRUE(start(c, users));
    const uint16_t p = port("socks");
    {
        SCOPED_TRACE("only 00 offered");
        RawClient client;
        ASSERT_TRUE(client.connect(p));
        ASSERT_TRUE(client.send(socks::kGreetingNoAuth));
        EXPECT_EQ(hex(read_at_least(client, 2, 20s)), hex(kNoAcceptableMethod));
        EXPECT_TRUE(client.wait_closed(10s));
    }
    {
        SCOPED_TRACE("00 and 02 offered");
        RawClient client;
        ASSERT_TRUE(client.connect(p));
        ASSERT_TRUE(client.send(bytes({5, 2, 0, 2})));
        EXPECT_EQ(hex(read_at_least(client, 2, 20s)), hex(kMethodPassword));
    }
    {
        SCOPED_TRACE("right password, then a tunnel");
        RawClient client;
        std::string reply = socks_connect(client, p, "alice", "secret");
        EXPECT_EQ(hex(reply_head(reply)), hex(bytes({5, 0}))) << hex(reply);
        EXPECT_EQ(reply.size(), 10u) << hex(reply);
        EXPECT_TRUE(echoes(client, "through the tunnel"));
    }
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"alice", "wrong"},
        {"mallory", "secret"},
        {"alice", ""},
        {"alice-session-", "secret"},
        {"alice-ttl-1m", "secret"},
        {"alice-session-x-ttl-0s", "secret"},
        {"", "secret"},
    };
    for (const auto& [user, password] : refused) {
        SCOPED_TRACE("refused: " + user + ":" + password);
        RawClient client;
        EXPECT_EQ(hex(socks_login(client, p, user, password)), hex(kAuthFailed));
        EXPECT_TRUE(client.wait_closed(10s));
    }
    for (const std::string& user :
         {std::string("alice-session-s1"), std::string("alice-session-s1-ttl-10m"),
          std::string("jean-luc-session-x")}) {
        SCOPED_TRACE("parameters: " + user);
        RawClient client;
        std::string reply = socks_connect(client, p, user, user[0] == 'j' ? "engage" : "secret");
        EXPECT_EQ(hex(reply_head(reply)), hex(bytes({5, 0}))) << hex(reply);
    }
    EXPECT_TRUE(proxy_->wait_for_log("authentication failed", 10s)) << proxy_->error_log();
}

TEST_F(AccountsSocks, Socks4And4aRefusedOnPasswordListener) {
    ConfigBuilder c = config();
    add_socks(c);
    ASSERT_TRUE(start(c, alice_only()));
    for (const std::string& request :
         {socks::socks4_request(1, echo_.port(), socks::kLoopbackIpv4, "alice"),
          socks::socks4a_connect("localhost", echo_.port())}) {
        RawClient client;
        ASSERT_TRUE(client.connect(port("socks")));
        ASSERT_TRUE(client.send(request));
        EXPECT_EQ(hex(read_at_least(client, 8, 20s)), hex(socks::kSocks4Rejected));
        EXPECT_TRUE(client.wait_closed(10s));
    }
    EXPECT_EQ(echo_.connections_accepted(), 0);
}

// --- AccountsHashing -----------------------------------------------------------

// Every hash kind the contract names, each made by its tool, over HTTP and
// SOCKS5; a wrong password refused for each.
TEST_F(AccountsHashing, EveryHashKindAuthenticates) {
    const std::vector<std::pair<std::string, HashKind>> kinds = {
        {"bcrypt", HashKind::kBcrypt},
        {"bcrypt2b", HashKind::kBcrypt2b},
        {"yescrypt", HashKind::kYescrypt},
        {"sha512", HashKind::kSha512crypt},
    };
    UsersFile users;
    for (const auto& [name, kind] : kinds) ASSERT_TRUE(users.add(name, "pw-of-" + name, kind));
    ConfigBuilder c = config();
    add_socks(c);
    ASSERT_TRUE(start(c, users));
    for (const auto& [name, kind] : kinds) {
        SCOPED_TRACE(harness::hash_kind_name(kind));
        EXPECT_EQ(get_status(port(), "/", basic(name, "pw-of-" + name)), 200);
        expect_407(get(port(), "/", basic(name, "pw-of-" + name + "x")), "wrong password");
        // Twice: the second time from the worker's cache, the same verdict.
        EXPECT_EQ(get_status(port(), "/", basic(name, "pw-of-" + name)), 200);
        expect_407(get(port(), "/", basic(name, "PW-OF-" + name)), "wrong case");
        RawClient ok;
        EXPECT_EQ(hex(socks_login(ok, port("socks"), name, "pw-of-" + name)), hex(kAuthSucceeded));
        RawClient wrong;
        EXPECT_EQ(hex(socks_login(wrong, port("socks"), name, "pw-of-")), hex(kAuthFailed));
    }
}

// A password hash is never computed on the event loop: one worker, bcrypt
// at cost 12 (~250 ms a try idle), 8 clients trying wrong passwords as fast
// as they are answered. Meanwhile requests on an auth = none listener and
// requests with credentials already verified (cached) stay fast.
TEST_F(AccountsHashing, HammeringWrongPasswordsStallsNeitherOtherListenersNorCachedUsers) {
    UsersFile users;
    ASSERT_TRUE(users.add("alice", "secret", HashKind::kBcrypt, 12));
    ConfigBuilder c = config(1);
    add_open(c);
    // proxyd answers 429 ("the password check waited too long") to a check
    // still queued at header_timeout. The 8 guesses of one client address
    // queue behind each other, and on a loaded machine (crypt threads run
    // at nice + 5) 8 bcrypt-12 hashes can take longer than the default 10 s:
    // a long header_timeout keeps this test about the loop, where every
    // wrong password is a 407.
    c.set("limits", "header_timeout", "60s");
    ASSERT_TRUE(start(c, users));
    const uint16_t a = port();
    const uint16_t b = port("open");
    // The first success fills the worker's cache (one hash, maybe slow).
    ASSERT_EQ(get_status(a, "/first", basic("alice", "secret"), 60s), 200);

    constexpr int kHammers = 8;
    constexpr auto kDuration = 4s;
    constexpr double kLimitMs = 500;
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::map<int, int> hammer_statuses;  // status (0: no answer) -> count
    auto hammer = [&](int id) {
        for (int n = 0; !stop; ++n) {
            // A new password each try: nothing can be answered from a cache.
            std::string password = "wrong-" + std::to_string(id) + "-" + std::to_string(n);
            RawClient client;
            int status = 0;
            if (client.connect(a) &&
                client.send(get_request("/hammer", basic("alice", password)))) {
                std::optional<HttpResponse> r = client.read_response(90s);
                status = r ? r->status : 0;
            }
            std::lock_guard<std::mutex> lock(mutex);
            ++hammer_statuses[status];
        }
    };
    struct Timed {
        std::vector<double> ms;
        std::map<int, int> statuses;
        std::vector<double> started_at_ms;  // since the hammering began
    };
    Clock::time_point hammer_start = Clock::now();
    auto timed = [&](uint16_t listener, const std::string& extra, Timed& out) {
        while (!stop) {
            auto t0 = Clock::now();
            out.started_at_ms.push_back(static_cast<double>(harness::ms_since(hammer_start)));
            std::optional<HttpResponse> r = get(listener, "/bytes/100", extra, 20s);
            out.ms.push_back(
                static_cast<double>(
                    std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
                        .count()) /
                1000.0);
            ++out.statuses[r ? r->status : 0];
            std::this_thread::sleep_for(20ms);
        }
    };
    Timed open_listener, cached;
    std::vector<std::thread> threads;
    hammer_start = Clock::now();
    for (int i = 0; i < kHammers; ++i) threads.emplace_back(hammer, i);
    // Let the queue of hashes fill before measuring.
    std::this_thread::sleep_for(300ms);
    threads.emplace_back(timed, b, std::string(), std::ref(open_listener));
    threads.emplace_back(timed, a, basic("alice", "secret"), std::ref(cached));
    std::this_thread::sleep_for(kDuration);
    stop = true;
    for (std::thread& t : threads) t.join();

    int hammer_total = 0;
    std::string hammer_summary;
    for (const auto& [status, count] : hammer_statuses) {
        hammer_total += count;
        hammer_summary += " " + std::to_string(status) + "x" + std::to_string(count);
    }
    auto describe = [](const char* name, const Timed& t) {
        size_t worst =
            static_cast<size_t>(std::max_element(t.ms.begin(), t.ms.end()) - t.ms.begin());
        std::printf(
            "[ info     ] %s: %zu requests, p50 %.1f ms, p99 %.1f ms, max %.1f ms (request %zu, "
            "started %.0f ms into the hammering)\n",
            name, t.ms.size(), quantile(t.ms, 0.5), quantile(t.ms, 0.99), quantile(t.ms, 1.0),
            worst, t.started_at_ms.empty() ? 0.0 : t.started_at_ms[worst]);
    };
    std::printf("[ info     ] hammering: %d wrong-password attempts answered:%s\n", hammer_total,
                hammer_summary.c_str());
    describe("auth = none listener", open_listener);
    describe("cached credentials", cached);

    EXPECT_GE(hammer_total, 4) << "the hammer hardly ran";
    EXPECT_EQ(hammer_statuses.size(), 1u) << "statuses:" << hammer_summary;
    EXPECT_EQ(hammer_statuses[407], hammer_total) << "statuses:" << hammer_summary;
    for (const Timed* t : {&open_listener, &cached}) {
        EXPECT_GE(t->ms.size(), 5u);
        EXPECT_EQ(t->statuses.size(), 1u);
        EXPECT_EQ(t->statuses.count(200), 1u);
        EXPECT_LT(quantile(t->ms, 1.0), kLimitMs)
            << (t == &cached ? "cached credentials" : "auth = none listener")
            << " waited behind the hashes of wrong passwords";
    }
    EXPECT_TRUE(proxy_->wait_for_log("authentication failed", 10s));
    std::vector<std::string> lines = proxy_->log_lines_with("authentication failed");
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                            [](const std::string& l) { return contains(l, "127.0.0.1"); }));
}

// --- AccountsLimits ------------------------------------------------------------

// Ten CONNECTs at once over three workers against max_sessions = 5:
// exactly five tunnels, five 429s; all of it again three times after the
// count returned to zero.
TEST_F(AccountsLimits, ExactlyMaxSessionsTunnelsAcrossWorkers) {
    ConfigBuilder c = config(3);
    c.set("user alice", "max_sessions", "5");
    ASSERT_TRUE(start(c, alice_only()));
    const uint16_t p = port();
    constexpr int kClients = 10;
    for (int round = 1; round <= 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        std::vector<Tunnel> tunnels(kClients);
        std::barrier<> sync(kClients);
        std::vector<std::thread> threads;
        for (int i = 0; i < kClients; ++i) {
            threads.emplace_back([&, i] {
                Tunnel& t = tunnels[static_cast<size_t>(i)];
                bool connected = t.client->connect(p);
                sync.arrive_and_wait();
                if (connected && t.client->send(connect_request(basic("alice", "secret"))))
                    t.response = read_connect_answer(*t.client, 60s);
            });
        }
        for (std::thread& t : threads) t.join();
        int ok = 0, limited = 0;
        for (Tunnel& t : tunnels) {
            if (t.status() == 200) {
                ++ok;
                EXPECT_TRUE(echoes(*t.client, "held"));
            } else if (t.status() == 429) {
                ++limited;
                expect_429(t.response, "over the limit");
            } else {
                ADD_FAILURE() << "CONNECT answered " << t.status();
            }
        }
        EXPECT_EQ(ok, 5);
        EXPECT_EQ(limited, 5);
        EXPECT_EQ(active_sessions("alice"), 5) << users_answer();
        // The spread over workers, once the reports count the tunnels (for the log only).
        std::string per_worker;
        wait_for(
            [&] {
                per_worker.clear();
                int64_t sum = 0;
                for (const ProxydInstance::Worker& w : proxy_->workers()) {
                    per_worker += " " + std::to_string(w.active_sessions);
                    sum += w.active_sessions;
                }
                return sum == 5;
            },
            5s);
        std::printf("[ info     ] round %d: %d tunnels, %d refused; connections per worker:%s\n",
                    round, ok, limited, per_worker.c_str());
        tunnels.clear();  // closes every client
        EXPECT_TRUE(wait_active("alice", 0)) << users_answer();
    }
}

TEST_F(AccountsLimits, ExactlyMaxSessionsSocksTunnelsAcrossWorkers) {
    ConfigBuilder c = config(3);
    add_socks(c);
    c.set("user alice", "max_sessions", "5");
    ASSERT_TRUE(start(c, alice_only()));
    const uint16_t p = port("socks");
    constexpr int kClients = 10;
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<RawClient>());
    std::vector<std::string> replies(kClients);
    std::barrier<> sync(kClients);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            RawClient& client = *clients[static_cast<size_t>(i)];
            // Authenticated before the barrier: the CONNECTs are what race.
            std::string auth = socks_login(client, p, "alice", "secret");
            sync.arrive_and_wait();
            if (auth != kAuthSucceeded) {
                replies[static_cast<size_t>(i)] = "auth " + hex(auth);
                return;
            }
            if (client.send(socks::connect_ipv4(echo_.port())))
                replies[static_cast<size_t>(i)] = read_at_least(client, 10, 60s);
        });
    }
    for (std::thread& t : threads) t.join();
    int ok = 0, limited = 0;
    for (size_t i = 0; i < replies.size(); ++i) {
        if (reply_head(replies[i]) == bytes({5, 0})) {
            ++ok;
            EXPECT_TRUE(echoes(*clients[i], "held"));
        } else if (reply_head(replies[i]) == bytes({5, socks::kNotAllowed})) {
            ++limited;
            EXPECT_TRUE(clients[i]->wait_closed(10s));
        } else {
            ADD_FAILURE() << "CONNECT answered " << hex(replies[i]);
        }
    }
    EXPECT_EQ(ok, 5);
    EXPECT_EQ(limited, 5);
    EXPECT_EQ(active_sessions("alice"), 5) << users_answer();
    clients.clear();
    EXPECT_TRUE(wait_active("alice", 0)) << users_answer();
}

// Sessions of user-name parameters count against the name.
TEST_F(AccountsLimits, ParametersCountAgainstTheName) {
    ConfigBuilder c = config();
    add_socks(c);
    c.set("user alice", "max_sessions", "1");
    ASSERT_TRUE(start(c, alice_only()));
    Tunnel held = open_tunnel(port(), basic("alice-session-one", "secret"));
    ASSERT_EQ(held.status(), 200);
    EXPECT_EQ(active_sessions("alice"), 1) << users_answer();
    expect_429(open_tunnel(port(), basic("alice-session-two-ttl-5m", "secret")).response,
               "another session ID");
    expect_429(open_tunnel(port(), basic("alice", "secret")).response, "the plain name");
    RawClient socks_client;
    EXPECT_EQ(hex(socks_connect(socks_client, port("socks"), "alice-session-three", "secret")),
              hex(socks::failure(socks::kNotAllowed)));
    held.client->close();
    ASSERT_TRUE(wait_active("alice", 0)) << users_answer();
    EXPECT_EQ(open_tunnel(port(), basic("alice-session-two", "secret")).status(), 200);
}

// A SIGKILLed worker's sessions return to the count once the master reaps
// it: alice can open exactly as many new tunnels as it held.
TEST_F(AccountsLimits, KilledWorkersSessionsReturnToTheCount) {
    constexpr int kLimit = 6;
    ConfigBuilder c = config(3);
    c.set("auth", "max_sessions_per_user", std::to_string(kLimit));
    ASSERT_TRUE(start(c, alice_only()));
    proxy_->expect_worker_events({Event::kExited});
    const uint16_t p = port();
    std::vector<Tunnel> tunnels;
    for (int i = 0; i < kLimit; ++i) {
        tunnels.push_back(open_tunnel(p, basic("alice", "secret")));
        ASSERT_EQ(tunnels.back().status(), 200) << "tunnel " << i;
    }
    expect_429(open_tunnel(p, basic("alice", "secret")).response, "one over the limit");
    // Until the reports count every tunnel: the victim's share is exact.
    std::vector<ProxydInstance::Worker> ws;
    ASSERT_TRUE(wait_for(
        [&] {
            ws = proxy_->workers();
            int64_t sum = 0;
            for (const ProxydInstance::Worker& w : ws) sum += w.active_sessions;
            return ws.size() == 3 && sum == kLimit;
        },
        20s))
        << proxy_->control("workers").value_or("(no answer)");
    const ProxydInstance::Worker victim = *std::max_element(
        ws.begin(), ws.end(), [](const ProxydInstance::Worker& x, const ProxydInstance::Worker& y) {
            return x.active_sessions < y.active_sessions;
        });
    const int64_t held = victim.active_sessions;
    ASSERT_GT(held, 0);
    std::printf("[ info     ] killing worker %d holding %lld of alice's %d tunnels\n", victim.pid,
                static_cast<long long>(held), kLimit);
    ASSERT_EQ(kill(victim.pid, SIGKILL), 0);
    ASSERT_TRUE(wait_for([&] { return !proxy_->lists_worker(victim.pid); }, 20s));
    EXPECT_TRUE(wait_active("alice", kLimit - held)) << users_answer();
    EXPECT_EQ(active_sessions("alice"), kLimit - held) << users_answer();
    ASSERT_TRUE(wait_for([&] { return proxy_->exactly_running(3); }, 30s));
    for (int64_t i = 0; i < held; ++i) {
        tunnels.push_back(open_tunnel(p, basic("alice", "secret")));
        EXPECT_EQ(tunnels.back().status(), 200) << "new tunnel " << i << " of " << held;
    }
    expect_429(open_tunnel(p, basic("alice", "secret")).response, "over the limit again");
    EXPECT_EQ(active_sessions("alice"), kLimit) << users_answer();
}

// Every way a session ends gives it back: the origin closing a tunnel (HTTP
// and SOCKS), an origin dying mid-body, an upstream that refuses, the client
// vanishing mid-tunnel. With max_sessions = 1 a leak shows as a 429.
TEST_F(AccountsLimits, SessionsReturnOnEveryEnd) {
    ConfigBuilder c = config();
    add_socks(c);
    c.set("user alice", "max_sessions", "1");
    ASSERT_TRUE(start(c, alice_only()));
    RawTcpServer closer([](int, const std::atomic<bool>& stopping) {
        auto until = Clock::now() + 200ms;
        while (!stopping && Clock::now() < until) std::this_thread::sleep_for(10ms);
    });
    const std::string auth = basic("alice", "secret");
    auto expect_released = [&](const std::string& what) {
        EXPECT_TRUE(wait_active("alice", 0)) << what << ": " << users_answer();
        Tunnel probe = open_tunnel(port(), auth);
        EXPECT_EQ(probe.status(), 200) << what << ": the session was not given back";
        probe.client->close();
        EXPECT_TRUE(wait_active("alice", 0)) << what << ", the probe: " << users_answer();
    };
    {
        const std::string authority = "127.0.0.1:" + std::to_string(closer.port());
        RawClient client;
        ASSERT_TRUE(client.connect(port()));
        ASSERT_TRUE(client.send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                                "\r\n" + auth + "\r\n"));
        std::optional<HttpResponse> head = read_connect_answer(client, 30s);
        ASSERT_TRUE(head);
        EXPECT_EQ(head->status, 200);
        // The proxy passes the origin's close on as a half-close; the
        // client closes its end as clients do, and the tunnel ends.
        EXPECT_TRUE(client.wait_closed(20s));
        client.close();
        expect_released("CONNECT tunnel closed by the origin");
    }
    {
        RawClient client;
        EXPECT_EQ(hex(socks_login(client, port("socks"), "alice", "secret")), hex(kAuthSucceeded));
        ASSERT_TRUE(client.send(socks::connect_ipv4(closer.port())));
        EXPECT_EQ(hex(reply_head(read_at_least(client, 10, 30s))), hex(bytes({5, 0})));
        EXPECT_TRUE(client.wait_closed(20s));
        client.close();
        expect_released("SOCKS tunnel closed by the origin");
    }
    {
        RawClient client;
        ASSERT_TRUE(client.connect(port()));
        ASSERT_TRUE(client.send(get_request("/close-mid-body/100000", auth)));
        client.read_until_close(20s);
        expect_released("origin closed mid-body");
    }
    {
        const std::string authority = "127.0.0.1:" + std::to_string(harness::closed_port());
        RawClient client;
        ASSERT_TRUE(client.connect(port()));
        ASSERT_TRUE(client.send("CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority +
                                "\r\n" + auth + "\r\n"));
        std::optional<HttpResponse> head = read_connect_answer(client, 30s);
        ASSERT_TRUE(head);
        EXPECT_EQ(head->status, 502);
        expect_released("CONNECT refused upstream");
    }
    {
        // A GET to a port nobody listens on: 502.
        RawClient client;
        ASSERT_TRUE(client.connect(port()));
        const std::string authority = "127.0.0.1:" + std::to_string(harness::closed_port());
        ASSERT_TRUE(client.send("GET http://" + authority + "/ HTTP/1.1\r\nHost: " + authority +
                                "\r\n" + auth + "\r\n"));
        std::optional<HttpResponse> r = client.read_response(30s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 502);
        expect_released("GET refused upstream");
    }
    {
        RawClient client;
        EXPECT_EQ(hex(socks_login(client, port("socks"), "alice", "secret")), hex(kAuthSucceeded));
        ASSERT_TRUE(client.send(socks::connect_ipv4(harness::closed_port())));
        EXPECT_EQ(hex(read_at_least(client, 10, 30s)),
                  hex(socks::failure(socks::kConnectionRefused)));
        expect_released("SOCKS CONNECT refused upstream");
    }
    {
        Tunnel t = open_tunnel(port(), auth);
        ASSERT_EQ(t.status(), 200);
        EXPECT_TRUE(echoes(*t.client, "then gone"));
        harness::reset_on_close(t.client->fd());
        t.client->close();
        expect_released("client reset mid-tunnel");
    }
}

// An origin whose answer to /slow waits until the test opens the gate (at
// most 30 s); every other path is answered at once. Keep-alive.
class GatedOrigin {
  public:
    GatedOrigin()
        : server_([this](int fd, const std::atomic<bool>& stopping) { serve(fd, stopping); }) {}
    uint16_t port() const { return server_.port(); }
    std::string host_port() const { return "127.0.0.1:" + std::to_string(port()); }
    void open() { open_ = true; }
    int slow_requests() const { return slow_.load(); }

  private:
    void serve(int fd, const std::atomic<bool>& stopping) {
        std::string in;
        for (;;) {
            std::string head = harness::read_request_head(fd, in, stopping, 60s);
            if (head.empty()) return;
            const bool slow = contains(head, "/slow");
            if (slow) {
                ++slow_;
                auto deadline = Clock::now() + 30s;
                while (!open_ && !stopping && Clock::now() < deadline)
                    std::this_thread::sleep_for(10ms);
            }
            const std::string body = slow ? "slow\n" : "fast\n";
            if (!harness::send_all(fd,
                                   "HTTP/1.1 200 OK\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body,
                                   stopping))
                return;
        }
    }
    std::atomic<bool> open_{false};
    std::atomic<int> slow_{0};
    RawTcpServer server_;
};

// An HTTP request is a session from its head until its response ends; an
// idle keep-alive connection holds none.
TEST_F(AccountsLimits, HttpRequestHoldsASessionUntilItsResponseEnds) {
    ConfigBuilder c = config();
    c.set("auth", "max_sessions_per_user", "1");
    GatedOrigin slow_origin;
    ASSERT_TRUE(start(c, alice_only()));
    const uint16_t p = port();
    auto request = [&](const std::string& path) {
        return "GET http://" + slow_origin.host_port() + path +
               " HTTP/1.1\r\nHost: " + slow_origin.host_port() + "\r\n" + basic("alice", "secret") +
               "\r\n";
    };
    RawClient first;
    ASSERT_TRUE(first.connect(p));
    ASSERT_TRUE(first.send(request("/slow")));
    ASSERT_TRUE(wait_for([&] { return slow_origin.slow_requests() == 1; }, 30s));
    EXPECT_EQ(active_sessions("alice"), 1) << users_answer();
    RawClient second;
    ASSERT_TRUE(second.connect(p));
    ASSERT_TRUE(second.send(request("/fast")));
    expect_429(second.read_response(30s), "a GET while the slow one runs");
    slow_origin.open();
    std::optional<HttpResponse> slow = first.read_response(30s);
    ASSERT_TRUE(slow);
    EXPECT_EQ(slow->status, 200);
    EXPECT_EQ(slow->body, "slow\n");
    // The response ended: the session is over, on this connection...
    ASSERT_TRUE(first.send(request("/fast")));
    std::optional<HttpResponse> again = first.read_response(30s);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    // ...and on another, while the first one stays open and idle.
    RawClient third;
    ASSERT_TRUE(third.connect(p));
    ASSERT_TRUE(third.send(request("/fast")));
    std::optional<HttpResponse> other = third.read_response(30s);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 200);
    // Pipelined requests on one connection are one session after another:
    // each is admitted when the one before it has ended.
    ASSERT_TRUE(third.send(request("/fast") + request("/fast")));
    for (int i = 0; i < 2; ++i) {
        std::optional<HttpResponse> pipelined = third.read_response(30s);
        ASSERT_TRUE(pipelined) << "pipelined request " << i;
        EXPECT_EQ(pipelined->status, 200) << "pipelined request " << i;
    }
    EXPECT_TRUE(wait_active("alice", 0, 10s)) << users_answer();
}

// --- AccountsReload ------------------------------------------------------------

TEST_F(AccountsReload, ReloadAddsAndRemovesUsers) {
    ConfigBuilder c = config();
    add_socks(c);
    ASSERT_TRUE(start(c, alice_only()));
    ASSERT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    UsersFile next;
    ASSERT_TRUE(next.add("bob", "hunter2", HashKind::kYescrypt));
    ASSERT_TRUE(next.write(users_path()));
    EXPECT_TRUE(harness::is_ok(proxy_->control_json("reload", 30s)));
    EXPECT_TRUE(
        wait_for([&] { return get_status(port(), "/", basic("bob", "hunter2")) == 200; }, 30s));
    EXPECT_TRUE(
        wait_for([&] { return get_status(port(), "/", basic("alice", "secret")) == 407; }, 30s));
    RawClient bob, alice;
    EXPECT_EQ(hex(socks_login(bob, port("socks"), "bob", "hunter2")), hex(kAuthSucceeded));
    EXPECT_EQ(hex(socks_login(alice, port("socks"), "alice", "secret")), hex(kAuthFailed));
    Json answer = proxy_->control_json("users");
    ASSERT_EQ(answer["users"].size(), 1u) << users_answer();
    EXPECT_EQ(answer["users"][0]["name"].str(), "bob");
    // SIGHUP does the same: alice back, bob gone.
    ASSERT_TRUE(alice_only().write(users_path()));
    ASSERT_TRUE(proxy_->signal(SIGHUP));
    EXPECT_TRUE(
        wait_for([&] { return get_status(port(), "/", basic("alice", "secret")) == 200; }, 30s));
    EXPECT_TRUE(
        wait_for([&] { return get_status(port(), "/", basic("bob", "hunter2")) == 407; }, 30s));
}

TEST_F(AccountsReload, BrokenUsersFileIsRefusedAndOldUsersKeepWorking) {
    ASSERT_TRUE(start(config(), alice_only()));
    ASSERT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    const int64_t generation = proxy_->status()["generation"].as_int();
    UsersFile broken;
    ASSERT_TRUE(broken.add("bob", "hunter2"));
    broken.add_raw_line("this line has no colon");
    ASSERT_TRUE(broken.write(users_path()));
    const std::string where = users_path() + ":2";
    Json answer = proxy_->control_json("reload", 30s);
    EXPECT_FALSE(answer["ok"].boolean()) << proxy_->control("status").value_or("");
    EXPECT_TRUE(contains(answer["error"].str(), where))
        << "the refusal does not name " << where << ": " << answer["error"].str();
    EXPECT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    expect_407(get(port(), "/", basic("bob", "hunter2")), "bob of the refused file");
    // SIGHUP: refused too, the error log says where.
    const size_t logged = proxy_->log_lines_with(where).size();
    ASSERT_TRUE(proxy_->signal(SIGHUP));
    EXPECT_TRUE(wait_for([&] { return proxy_->log_lines_with(where).size() > logged; }, 20s))
        << proxy_->error_log();
    EXPECT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    EXPECT_EQ(proxy_->status()["generation"].as_int(), generation)
        << "a refused reload started workers";
    EXPECT_TRUE(user_row("alice").is_object()) << users_answer();
    EXPECT_TRUE(user_row("bob").is_null()) << users_answer();
}

// A reload starts new workers and drains the old: the tunnels still open on
// the old generation count against the limit of the new one, and a limit
// changed by the reload applies at once.
TEST_F(AccountsReload, SessionsOfDrainingWorkersStillCount) {
    ConfigBuilder c = config();
    c.set("master", "graceful_timeout", "120s");  // the old tunnels outlive the test's checks
    c.set("user alice", "max_sessions", "2");
    ASSERT_TRUE(start(c, alice_only()));
    const std::string auth = basic("alice", "secret");
    std::vector<Tunnel> old;
    for (int i = 0; i < 2; ++i) {
        old.push_back(open_tunnel(port(), auth));
        ASSERT_EQ(old.back().status(), 200);
    }
    int64_t generation = proxy_->status()["generation"].as_int();
    ASSERT_TRUE(harness::is_ok(proxy_->control_json("reload", 30s)));
    ASSERT_TRUE(wait_new_generation_serving(generation, 2))
        << proxy_->control("workers").value_or("(no answer)");
    EXPECT_EQ(active_sessions("alice"), 2) << users_answer();
    expect_429(open_tunnel(port(), auth).response, "the old generation's tunnels count");
    EXPECT_TRUE(echoes(*old[0].client, "still here"));
    // The limit raised by a reload: one more, no more.
    proxy_->config().set("user alice", "max_sessions", "3");
    ASSERT_TRUE(proxy_->write_config());
    generation = proxy_->status()["generation"].as_int();
    ASSERT_TRUE(harness::is_ok(proxy_->control_json("reload", 30s)));
    ASSERT_TRUE(wait_new_generation_serving(generation, 2))
        << proxy_->control("workers").value_or("(no answer)");
    EXPECT_EQ(user_row("alice")["max_sessions"].as_int(), 3) << users_answer();
    EXPECT_EQ(active_sessions("alice"), 2) << users_answer();
    Tunnel third = open_tunnel(port(), auth);
    EXPECT_EQ(third.status(), 200);
    expect_429(open_tunnel(port(), auth).response, "over the raised limit");
    old.clear();
    third.client->close();
    EXPECT_TRUE(wait_active("alice", 0)) << users_answer();
}

// A changed password takes effect at the reload: no worker answers from a
// cache of the old one.
TEST_F(AccountsReload, ChangedPasswordTakesEffect) {
    ConfigBuilder c = config();
    add_socks(c);
    ASSERT_TRUE(start(c, alice_only()));
    // Cached in both workers, as far as two connections reach them.
    for (int i = 0; i < 4; ++i) ASSERT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    UsersFile changed;
    ASSERT_TRUE(changed.add("alice", "new-secret"));
    ASSERT_TRUE(changed.write(users_path()));
    ASSERT_TRUE(proxy_->signal(SIGHUP));
    EXPECT_TRUE(wait_for(
        [&] { return get_status(port(), "/", basic("alice", "new-secret")) == 200; }, 30s));
    for (int i = 0; i < 4; ++i)
        expect_407(get(port(), "/", basic("alice", "secret")), "the old password after the reload");
    RawClient client;
    EXPECT_EQ(hex(socks_login(client, port("socks"), "alice", "secret")), hex(kAuthFailed));
}

// users_file relative to the current directory, like every other path (the
// harness runs proxyd in the test's own cwd): the file sits in a directory
// under ./build, which the config's own directory cannot reach by the same
// relative path.
TEST_F(AccountsReload, RelativeUsersFileIsRelativeToTheCwd) {
    std::string dir = "build/accounts-users-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) GTEST_SKIP() << "no ./build directory to write into";
    struct Cleanup {
        std::string dir;
        ~Cleanup() { harness::remove_tree(dir); }
    } cleanup{dir};
    ConfigBuilder c = config();
    c.set("auth", "users_file", dir + "/users");
    ASSERT_TRUE(alice_only().write(dir + "/users"));
    ASSERT_TRUE(start(c, UsersFile()));  // ${dir}/users: empty, unused
    EXPECT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    UsersFile next;
    ASSERT_TRUE(next.add("bob", "hunter2"));
    ASSERT_TRUE(next.write(dir + "/users"));
    ASSERT_TRUE(harness::is_ok(proxy_->control_json("reload", 30s)));
    EXPECT_TRUE(
        wait_for([&] { return get_status(port(), "/", basic("bob", "hunter2")) == 200; }, 30s));
}

// The operator's own workflow: htpasswd creates and edits the users file in
// place (-c to create, -D to delete), and a reload picks up each edit.
TEST_F(AccountsReload, FileEditedInPlaceByHtpasswd) {
    const std::string cost = std::to_string(harness::kDefaultBcryptCost);
    auto htpasswd = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "htpasswd");
        CurlResult r = harness::run_program(args, 60s);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    };
    ConfigBuilder c = config();
    proxy_ = std::make_unique<ProxydInstance>(c);
    htpasswd({"-c", "-b", "-B", "-C", cost, users_path(), "alice", "secret"});
    ASSERT_TRUE(proxy_->start(30s));
    EXPECT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    auto reload = [&] {
        const int64_t generation = proxy_->status()["generation"].as_int();
        EXPECT_TRUE(harness::is_ok(proxy_->control_json("reload", 30s)));
        EXPECT_TRUE(wait_new_generation_serving(generation, 2))
            << proxy_->control("workers").value_or("(no answer)");
    };
    htpasswd({"-b", "-B", "-C", cost, users_path(), "bob", "hunter2"});
    reload();
    EXPECT_EQ(get_status(port(), "/", basic("bob", "hunter2")), 200);
    EXPECT_EQ(get_status(port(), "/", basic("alice", "secret")), 200);
    htpasswd({"-D", users_path(), "alice"});
    reload();
    expect_407(get(port(), "/", basic("alice", "secret")), "alice deleted by htpasswd -D");
    EXPECT_EQ(get_status(port(), "/", basic("bob", "hunter2")), 200);
    // A new password for bob, written by htpasswd over the old line.
    htpasswd({"-b", "-B", "-C", cost, users_path(), "bob", "changed"});
    reload();
    EXPECT_EQ(get_status(port(), "/", basic("bob", "changed")), 200);
    expect_407(get(port(), "/", basic("bob", "hunter2")), "bob's old password");
}

// --- AccountsControl -------------------------------------------------------------

TEST_F(AccountsControl, UsersCommandListsEveryUserSortedWithCounts) {
    ConfigBuilder c = config(2);
    c.set("auth", "max_sessions_per_user", "3");
    c.set("user alice", "max_sessions", "5");
    c.set("user carol", "max_sessions", "0");
    UsersFile users;
    // Not in name order: the answer sorts.
    ASSERT_TRUE(users.add("carol", "c-pass", HashKind::kSha512crypt));
    ASSERT_TRUE(users.add("alice", "secret"));
    ASSERT_TRUE(users.add("bob", "hunter2", HashKind::kYescrypt));
    ASSERT_TRUE(start(c, users));
    Json answer = proxy_->control_json("users");
    ASSERT_TRUE(harness::is_ok(answer)) << users_answer();
    ASSERT_EQ(answer["users"].size(), 3u) << users_answer();
    const std::vector<std::pair<std::string, int64_t>> expected = {
        {"alice", 5}, {"bob", 3}, {"carol", 0}};
    for (size_t i = 0; i < expected.size(); ++i) {
        const Json& row = answer["users"][i];
        EXPECT_EQ(row["name"].str(), expected[i].first) << users_answer();
        EXPECT_EQ(row["max_sessions"].as_int(), expected[i].second) << users_answer();
        EXPECT_EQ(row["active_sessions"].as_int(), 0) << users_answer();
        EXPECT_EQ(row["total_sessions"].as_int(), 0) << users_answer();
        for (const char* key : {"name", "active_sessions", "total_sessions", "max_sessions"})
            EXPECT_TRUE(row.has(key)) << key << " missing: " << users_answer();
    }
    // Active is exact at once; the total comes with the heartbeat reports.
    Tunnel t1 = open_tunnel(port(), basic("alice", "secret"));
    Tunnel t2 = open_tunnel(port(), basic("alice-session-x", "secret"));
    ASSERT_EQ(t1.status(), 200);
    ASSERT_EQ(t2.status(), 200);
    EXPECT_EQ(active_sessions("alice"), 2) << users_answer();
    EXPECT_EQ(get_status(port(), "/", basic("bob", "hunter2")), 200);
    t1.client->close();
    t2.client->close();
    EXPECT_TRUE(wait_active("alice", 0)) << users_answer();
    EXPECT_TRUE(wait_for(
        [&] {
            return user_row("alice")["total_sessions"].as_int() == 2 &&
                   user_row("bob")["total_sessions"].as_int() == 1;
        },
        20s))
        << users_answer();
    EXPECT_EQ(user_row("carol")["total_sessions"].as_int(), 0) << users_answer();
    // max_sessions = 0 is no limit, above max_sessions_per_user.
    std::vector<Tunnel> carols;
    for (int i = 0; i < 5; ++i) {
        carols.push_back(open_tunnel(port(), basic("carol", "c-pass")));
        EXPECT_EQ(carols.back().status(), 200) << "carol's tunnel " << i;
    }
    EXPECT_EQ(active_sessions("carol"), 5) << users_answer();
    carols.clear();
    EXPECT_TRUE(wait_active("carol", 0)) << users_answer();
    // The totals come with a heartbeat: until carol's have, two reads below
    // could differ (failed once under ASan).
    EXPECT_TRUE(wait_for([&] { return user_row("carol")["total_sessions"].as_int() == 5; }, 20s))
        << users_answer();

    // proxyctl: a table, and the JSON line unchanged.
    const std::string sock = proxy_->control_socket_path();
    CurlResult table = harness::run_program({harness::proxyctl_bin(), "-s", sock, "users"});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    for (const char* name : {"alice", "bob", "carol"})
        EXPECT_TRUE(contains(table.out, name)) << table.out;
    EXPECT_FALSE(contains(table.out, "{")) << "a table, not JSON: " << table.out;
    CurlResult json =
        harness::run_program({harness::proxyctl_bin(), "-s", sock, "--json", "users"});
    EXPECT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(json.out, proxy_->control("users").value_or("") + "\n");
}

// Without [auth], `users` answers an empty list.
TEST(AccountsControlPlain, UsersWithoutAuthIsAnEmptyList) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start(30s));
    Json answer = proxy.control_json("users");
    EXPECT_TRUE(harness::is_ok(answer)) << proxy.control("users").value_or("(no answer)");
    EXPECT_TRUE(answer["users"].is_array()) << proxy.control("users").value_or("(no answer)");
    EXPECT_EQ(answer["users"].size(), 0u);
}

// Configuration errors of accounts: start and -t refuse them, naming what.
class AccountsConfig : public ::testing::Test {
  protected:
    ~AccountsConfig() override { harness::remove_tree(dir_); }

    // proxyd -t -c (the config), and a start with it: both exit 1 and say `words`.
    void expect_refused(const ConfigBuilder& c, const std::vector<std::string>& words) {
        const std::string path = dir_ + "/proxyd.conf";
        ASSERT_TRUE(harness::write_file(path, c.render(dir_)));
        CurlResult test = harness::run_program({harness::proxyd_bin(), "-t", "-c", path}, 30s);
        EXPECT_EQ(test.exit_code, 1) << test.out << test.err;
        CurlResult run = harness::run_program({harness::proxyd_bin(), "-c", path}, 15s);
        EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
        for (const std::string& w : words) {
            EXPECT_TRUE(contains(test.err, w))
                << "-t does not say " << w << " on stderr: " << test.err;
            EXPECT_TRUE(contains(run.err, w))
                << "start does not say " << w << " on stderr: " << run.err;
        }
    }
    static ConfigBuilder base() {
        ConfigBuilder c;
        c.set("master", "workers", "1");
        c.add_listener("main");
        c.set("listen main", "auth", "password");
        c.set("auth", "users_file", "${dir}/users");
        return c;
    }
    std::string users_path() const { return dir_ + "/users"; }

    std::string dir_ = harness::make_temp_dir("proxyd-accounts-");
};

TEST_F(AccountsConfig, PasswordListenerWithoutUsersFile) {
    ConfigBuilder c = base();
    c.unset("auth", "users_file");
    c.set("auth", "realm", "x");  // the section exists, the key does not
    expect_refused(c, {"users_file"});
}

TEST_F(AccountsConfig, UserSectionForANameNotInTheFile) {
    ASSERT_TRUE(alice_only().write(users_path()));
    ConfigBuilder c = base();
    c.set("user bob", "max_sessions", "2");
    expect_refused(c, {"bob"});
}

TEST_F(AccountsConfig, BadUsersFileNamesFileAndLine) {
    UsersFile users = alice_only();
    users.add_raw_line("this line has no colon");
    ASSERT_TRUE(users.write(users_path()));
    expect_refused(base(), {users_path() + ":2"});
    // A hash of a kind the contract does not name (htpasswd's default, MD5
    // "$apr1$") is a bad line too.
    CurlResult md5 = harness::run_program({"htpasswd", "-nbm", "carol", "c-pass"});
    ASSERT_EQ(md5.exit_code, 0) << md5.err;
    UsersFile with_md5 = alice_only();
    with_md5.add_raw_line(md5.out.substr(0, md5.out.find('\n')));
    ASSERT_TRUE(with_md5.write(users_path()));
    expect_refused(base(), {users_path() + ":2"});
    // A missing file names the file.
    ::unlink(users_path().c_str());
    expect_refused(base(), {users_path()});
}

TEST_F(AccountsConfig, ValidAccountsConfigPassesTest) {
    ASSERT_TRUE(alice_only().write(users_path()));
    ConfigBuilder c = base();
    c.set("proxy", "name", "proxyd-test");
    c.set("auth", "realm", "r");
    c.set("auth", "max_sessions_per_user", "4");
    c.set("user alice", "max_sessions", "2");
    c.add_listener("socks", "127.0.0.1:0", "socks5");
    c.set("listen socks", "auth", "password");
    c.add_listener("open");
    c.set("listen open", "auth", "none");
    const std::string path = dir_ + "/proxyd.conf";
    ASSERT_TRUE(harness::write_file(path, c.render(dir_)));
    CurlResult test = harness::run_program({harness::proxyd_bin(), "-t", "-c", path}, 30s);
    EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
}

}  // namespace
