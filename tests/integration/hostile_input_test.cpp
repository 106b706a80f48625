// Hostile input (issue 7, item 2): malformed and malicious HTTP sent with raw
// sockets, each with the answer it requires: request smuggling shapes
// (RFC 9112 §6.1, §6.3, §11.2), header syntax (§5.1, §5.2, §2.2), oversized
// lines and header blocks, bad chunks, CONNECT authority abuse, hop-by-hop
// abuse (RFC 9110 §7.6.1), loops to the proxy itself, alternate spellings of
// private addresses, slowloris, pipelining floods and clients that never
// read. Malformed SOCKS input is in socks_tls_test.cpp.
//
// Every test ends by checking that no worker crashed (the same worker pids
// as at its start) and that the proxy still serves a plain request; the
// harness's teardown also checks the error log for alerts and sanitizer
// reports.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/integration/dns_server.h"
#include "tests/integration/harness.h"
#include "tests/integration/load.h"
#include "tests/integration/worker_memory.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::closed_port;
using harness::ConfigBuilder;
using harness::HttpOrigin;
using harness::HttpResponse;
using harness::Json;
using harness::Millis;
using harness::ms_since;
using harness::ProxydInstance;
using harness::RawClient;
using harness::wait_for;

constexpr uint64_t kMiB = 1024 * 1024;

class Hostile : public ::testing::Test {
  protected:
    void start(ConfigBuilder config = ConfigBuilder()) {
        proxy_ = std::make_unique<ProxydInstance>(std::move(config));
        ASSERT_TRUE(proxy_->start());
        port_ = proxy_->listener_port();
        ASSERT_NE(port_, 0);
        pids_ = sorted_pids();
        ASSERT_EQ(pids_.size(), 2u);
    }

    std::vector<pid_t> sorted_pids() { return harness::sorted_worker_pids(*proxy_); }

    // No worker crashed or was replaced, and a plain request is served.
    void expect_healthy() {
        EXPECT_EQ(sorted_pids(), pids_)
            << "a worker died: " << proxy_->control("status").value_or("");
        for (pid_t p : pids_) EXPECT_TRUE(harness::process_alive(p)) << p;
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(get("/bytes/1000")));
        auto r = c.read_response(5s);
        ASSERT_TRUE(r) << "the proxy no longer serves";
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, harness::pattern_bytes(1000));
    }

    std::string get(const std::string& path, const std::string& headers = "") const {
        return "GET " + origin_.url(path) + " HTTP/1.1\r\nHost: " + origin_.host_port() + "\r\n" +
               headers + "\r\n";
    }
    std::string post(const std::string& headers, const std::string& body,
                     const std::string& path = "/echo",
                     const std::string& version = "HTTP/1.1") const {
        return "POST " + origin_.url(path) + " " + version + "\r\nHost: " + origin_.host_port() +
               "\r\n" + headers + "\r\n" + body;
    }

    HttpOrigin origin_;
    std::unique_ptr<ProxydInstance> proxy_;
    uint16_t port_ = 0;
    std::vector<pid_t> pids_;
};

// --- The table of malformed requests ----------------------------------------------
//
// One row, one test: a malformed request gets its required answer (or a close
// where that is allowed), and the origin receives nothing, not even a
// request smuggled behind it. Every row runs against one proxy and one origin
// shared by the suite (a proxyd per row would cost more than the rows), so a
// row also checks that no worker died under it.
//
// Rows are written before the origin exists: their bytes carry placeholders
// that expand() fills in when the row runs.
//   {origin}       127.0.0.1:PORT of the suite's origin
//   {port}         PORT
//   {port+65536}   PORT + 65536 (a port number that wraps to the origin's)
//   {closed_port}  a loopback port nothing listens on
//   {smuggled}     a complete GET of /smuggled, to be forwarded by a bug

struct MalformedRow {
    std::string name;  // the test name: letters, digits and underscores
    std::string bytes;
    std::set<int> statuses;   // acceptable answers
    bool close_ok = false;    // closing without any response is acceptable too
    bool must_close = false;  // after the answer the connection must be closed
};

// gtest prints a failing row's parameter: its name says it all.
void PrintTo(const MalformedRow& row, std::ostream* os) {
    *os << row.name;
}

// "CL then TE" -> "CL_then_TE": gtest names allow [A-Za-z0-9_] only.
std::string test_name(const std::string& text) {
    std::string name;
    for (char c : text) {
        if (std::isalnum(static_cast<unsigned char>(c))) {
            name += c;
        } else if (!name.empty() && name.back() != '_') {
            name += '_';
        }
    }
    while (!name.empty() && name.back() == '_') name.pop_back();
    return name;
}

MalformedRow answer(const std::string& name, std::string bytes, int status,
                    bool must_close = true) {
    return {test_name(name), std::move(bytes), {status}, false, must_close};
}
MalformedRow answer_or_close(const std::string& name, std::string bytes, int status) {
    return {test_name(name), std::move(bytes), {status}, true, true};
}

const std::string kHost = "Host: {origin}\r\n";
const std::string kSmuggled = "{smuggled}";

std::string get_row(const std::string& path, const std::string& headers = "") {
    return "GET http://{origin}" + path + " HTTP/1.1\r\n" + kHost + headers + "\r\n";
}
std::string post_row(const std::string& headers, const std::string& body,
                     const std::string& version = "HTTP/1.1") {
    return "POST http://{origin}/echo " + version + "\r\n" + kHost + headers + "\r\n" + body;
}
std::string connect_row(const std::string& target) {
    return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
    for (size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
        text.replace(at, from.size(), to);
    }
}

std::string expand(std::string bytes, const HttpOrigin& origin) {
    replace_all(bytes, kSmuggled, get_row("/smuggled"));
    replace_all(bytes, "{origin}", origin.host_port());
    replace_all(bytes, "{port+65536}", std::to_string(65536 + origin.port()));
    replace_all(bytes, "{port}", std::to_string(origin.port()));
    replace_all(bytes, "{closed_port}", std::to_string(closed_port()));
    return bytes;
}

// Smuggling: ambiguous framing is refused with 400 and the connection closed
// (RFC 9112 §6.3 items 3-5, §11.2), before anything goes upstream.
std::vector<MalformedRow> framing_rows() {
    const std::string s = kSmuggled;
    return {
        answer("CL then TE",
               post_row("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\nX" + s),
               400),
        answer("TE then CL",
               post_row("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", "0\r\n\r\nX" + s),
               400),
        answer("two differing Content-Length fields",
               post_row("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!" + s), 400),
        answer("differing Content-Length list", post_row("Content-Length: 5, 6\r\n", "hello!" + s),
               400),
        answer("Content-Length with a plus sign", post_row("Content-Length: +5\r\n", "hello"), 400),
        answer("Content-Length with a minus sign", post_row("Content-Length: -5\r\n", "hello"),
               400),
        answer("Content-Length in hex", post_row("Content-Length: 0x5\r\n", "hello"), 400),
        answer("Content-Length with inner space", post_row("Content-Length: 1 0\r\n", "hello"),
               400),
        answer("Content-Length overflow",
               post_row("Content-Length: 184467440737095516160\r\n", "hello"), 400),
        answer("empty Content-Length", post_row("Content-Length:\r\n", "hello"), 400),
        answer("Transfer-Encoding: chunked, identity",
               post_row("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"), 400),
        answer("Transfer-Encoding : chunked (space before colon)",
               post_row("Transfer-Encoding : chunked\r\n", "0\r\n\r\n" + s), 400),
        // "xchunked" is an unknown coding *and* leaves chunked not final: §6.3
        // item 4's MUST (400) wins over §6.1's SHOULD (501).
        answer("Transfer-Encoding: xchunked",
               post_row("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n" + s), 400),
        answer("Transfer-Encoding in HTTP/1.0",
               post_row("Transfer-Encoding: chunked\r\n", "0\r\n\r\n" + s, "HTTP/1.0"), 400),
        answer("chunked twice",
               post_row("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n0\r\n\r\n" + s), 400),
        answer(
            "chunked not last (two fields)",
            post_row("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", "0\r\n\r\n" + s),
            400),
        answer("Transfer-Encoding with a vertical tab",
               post_row("Transfer-Encoding: \x0b"
                        "chunked\r\n",
                        "0\r\n\r\n" + s),
               400),
        answer("gzip alone, with a Content-Length",
               post_row("Transfer-Encoding: gzip\r\nContent-Length: 3\r\n", "abc"), 400),
        // A coding the proxy cannot decode in front of chunked: framing is
        // known, the coding is not (RFC 9112 §6.1: 501).
        answer("gzip, chunked", post_row("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"), 501),
    };
}

// Header syntax (§5.1, §5.2, §2.2): reject, never repair.
std::vector<MalformedRow> header_syntax_rows() {
    const std::string line = "GET http://{origin}/ ";
    return {
        answer("space before colon", get_row("/", "X-Foo : bar\r\n"), 400),
        answer("tab before colon", get_row("/", "X-Foo\t: bar\r\n"), 400),
        answer("obs-fold", get_row("/", "X-Foo: bar\r\n baz\r\n"), 400),
        answer("obs-fold with tab", get_row("/", "X-Foo: bar\r\n\tbaz\r\n"), 400),
        answer("NUL in a value", get_row("/", std::string("X-Foo: b\0ar\r\n", 14)), 400),
        answer("bare CR in a value", get_row("/", "X-Foo: b\rar\r\n"), 400),
        answer("bare LF ending a field", get_row("/", "X-Foo: bar\n"), 400),
        answer("bare LF ending the request line", line + "HTTP/1.1\n" + kHost + "\r\n", 400),
        answer("whitespace before the first field", line + "HTTP/1.1\r\n " + kHost + "\r\n", 400),
        answer("space in a field name", get_row("/", "X Foo: bar\r\n"), 400),
        answer("empty field name", get_row("/", ": bar\r\n"), 400),
        answer("no colon", get_row("/", "X-Foo bar\r\n"), 400),
        answer("missing Host in HTTP/1.1", line + "HTTP/1.1\r\n\r\n", 400),
        answer("two Host fields", get_row("/", kHost), 400),
        answer("two spaces in the request line",
               "GET  http://{origin}/ HTTP/1.1\r\n" + kHost + "\r\n", 400),
        answer("lower-case version", line + "http/1.1\r\n" + kHost + "\r\n", 400),
        answer("control byte in the method",
               "G\x01T http://{origin}/ HTTP/1.1\r\n" + kHost + "\r\n", 400),
        answer("HTTP/2.0 in an HTTP/1 request line", line + "HTTP/2.0\r\n" + kHost + "\r\n", 505),
        answer("userinfo in an absolute URI",
               "GET http://user:pw@{origin}/ HTTP/1.1\r\n" + kHost + "\r\n", 400, false),
    };
}

std::string many_fields(int count, size_t value_size) {
    std::string fields;
    for (int i = 0; i < count; ++i) {
        fields += "X-F" + std::to_string(i) + ": " + std::string(value_size, 'p') + "\r\n";
    }
    return fields;
}

std::vector<MalformedRow> oversized_rows() {
    return {
        answer("request line too long (9000-byte target)", get_row("/" + std::string(9000, 'a')),
               414, false),
        answer("header block too large (40 KiB)", get_row("/", many_fields(40, 1000)), 431, false),
        answer("one 33 KiB field", get_row("/", "X-Big: " + std::string(33 * 1024, 'b') + "\r\n"),
               431, false),
        answer("101 fields", get_row("/", many_fields(101, 1)), 431, false),
    };
}

// Bad chunks: the head is fine, so the request may already be on its way
// upstream; the bad chunk ends it with a 400 or a close, and the origin never
// gets a complete request, let alone the one smuggled behind it.
std::vector<MalformedRow> bad_chunk_rows() {
    std::vector<MalformedRow> rows;
    for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
             {"chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n"},
             {"negative chunk size", "-5\r\nhello\r\n0\r\n\r\n"},
             {"chunk size with 0x", "0x5\r\nhello\r\n0\r\n\r\n"},
             {"chunk size with a plus sign", "+5\r\nhello\r\n0\r\n\r\n"},
             {"chunk size with leading space", " 5\r\nhello\r\n0\r\n\r\n"},
             {"chunk size overflow", "10000000000000005\r\nhello\r\n0\r\n\r\n"},
             {"chunk longer than its size", "3\r\nhello\r\n0\r\n\r\n"},
             {"chunk size line ended by LF", "5\nhello\r\n0\r\n\r\n"},
             {"chunk data ended by LF", "5\r\nhello\n0\r\n\r\n"},
             {"control byte in a chunk extension", "5;a\x01=b\r\nhello\r\n0\r\n\r\n"},
             {"unterminated quoted chunk extension", "5;a=\"b\r\nhello\r\n0\r\n\r\n"},
             {"chunk extension without a name", "5;=b\r\nhello\r\n0\r\n\r\n"},
             {"huge chunk extension", "5;" + std::string(70000, 'e') + "\r\nhello\r\n0\r\n\r\n"},
             {"bad trailer", "5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n"},
         }) {
        rows.push_back(answer_or_close(
            name, post_row("Transfer-Encoding: chunked\r\n", body + kSmuggled), 400));
    }
    return rows;
}

// CONNECT authority abuse (RFC 9110 §9.3.6: authority-form with a port).
std::vector<MalformedRow> connect_authority_rows() {
    return {
        answer("CONNECT without a port", connect_row("127.0.0.1"), 400),
        answer("CONNECT to port 0", connect_row("127.0.0.1:0"), 400),
        answer("CONNECT to port 65536", connect_row("127.0.0.1:65536"), 400),
        answer("CONNECT to port 65536+P", connect_row("127.0.0.1:{port+65536}"), 400),
        answer("CONNECT port with a sign", connect_row("127.0.0.1:+{port}"), 400),
        answer("CONNECT with userinfo", connect_row("user:pw@{origin}"), 400),
        answer("CONNECT with a path", connect_row("{origin}/path"), 400),
        answer("CONNECT with an absolute URI", connect_row("http://{origin}/"), 400),
        answer("CONNECT with an empty host", connect_row(":{port}"), 400),
        answer("CONNECT with an unbracketed IPv6", connect_row("::1:{port}"), 400),
        answer("CONNECT with an asterisk", connect_row("*"), 400),
    };
}

// A name the suite's own nameserver answers NXDOMAIN for: a real "host not
// found", not the .invalid short cut that never reaches the resolver.
constexpr const char* kUnknownHost = "no-such-host.dns.test";

// The head rules apply to CONNECT as to every method (RFC 9112 §3.2, §6.3),
// and a CONNECT has no content (RFC 9110 §9.3.6): what follows its head
// could only be tunnel data, here a request to smuggle.
std::vector<MalformedRow> connect_head_rows() {
    const std::string line = "CONNECT {origin} HTTP/1.1\r\n";
    const std::string host = kHost;
    const std::string s = kSmuggled;
    return {
        answer("CONNECT without Host in HTTP/1.1", line + "\r\n" + s, 400),
        answer("CONNECT with two Host fields", line + host + host + "\r\n" + s, 400),
        answer("CONNECT with Content-Length and Transfer-Encoding",
               line + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + s, 400),
        answer("CONNECT with an invalid Content-Length",
               line + host + "Content-Length: 5x\r\n\r\n" + s, 400),
        answer("CONNECT with content", line + host + "Content-Length: 5\r\n\r\nhello" + s, 400),
        answer("CONNECT with a chunked body",
               line + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + s, 400),
        // A refused CONNECT closes, whatever stage refused it: the bytes behind
        // its head were meant for the tunnel, never to be read as a request.
        answer("refused CONNECT (nothing listens), then a request",
               connect_row("127.0.0.1:{closed_port}") + s, 502),
        answer("refused CONNECT (host not found), then a request",
               connect_row(std::string(kUnknownHost) + ":80") + s, 502),
    };
}

// Request-target forms (RFC 9112 §3.2): a forward proxy takes the absolute
// form (and CONNECT's authority form) only.
std::vector<MalformedRow> target_form_rows() {
    return {
        answer("asterisk form to a proxy", "OPTIONS * HTTP/1.1\r\n" + kHost + "\r\n", 400, false),
        answer("authority form without CONNECT", "GET {origin} HTTP/1.1\r\n" + kHost + "\r\n", 400,
               false),
        answer("fragment in the target", "GET http://{origin}/#frag HTTP/1.1\r\n" + kHost + "\r\n",
               400, false),
    };
}

// How long the origin must stay silent after the proxy answered or closed: a
// request forwarded late (a smuggled one read from the rest of the bytes)
// arrives well within it even on a loaded machine.
constexpr Millis kOriginQuietPeriod = 300ms;

class MalformedRequest : public ::testing::TestWithParam<MalformedRow> {
  protected:
    static void SetUpTestSuite() {
        origin_ = std::make_unique<HttpOrigin>();
        dns_ = std::make_unique<harness::DnsServer>();
        ConfigBuilder config;
        config.set("resolver", "nameservers", dns_->address());
        proxy_ = std::make_unique<ProxydInstance>(config);
        if (!proxy_->start()) return;
        port_ = proxy_->listener_port();
        pids_ = harness::sorted_worker_pids(*proxy_);
    }
    // The proxy's destructor runs the harness's teardown checks (alerts,
    // sanitizer reports, worker events, leftovers) for the whole suite.
    static void TearDownTestSuite() {
        proxy_.reset();
        origin_.reset();
        dns_.reset();
    }
    void SetUp() override {
        ASSERT_NE(port_, 0) << "the suite's proxyd did not start";
        ASSERT_EQ(pids_.size(), 2u);
    }

    static std::unique_ptr<HttpOrigin> origin_;
    static std::unique_ptr<harness::DnsServer> dns_;
    static std::unique_ptr<ProxydInstance> proxy_;
    static uint16_t port_;
    static std::vector<pid_t> pids_;
};
std::unique_ptr<HttpOrigin> MalformedRequest::origin_;
std::unique_ptr<harness::DnsServer> MalformedRequest::dns_;
std::unique_ptr<ProxydInstance> MalformedRequest::proxy_;
uint16_t MalformedRequest::port_ = 0;
std::vector<pid_t> MalformedRequest::pids_;

TEST_P(MalformedRequest, GetsItsRequiredAnswerAndNothingReachesTheOrigin) {
    const MalformedRow& row = GetParam();
    const size_t requests_before = origin_->request_count();
    RawClient c;
    ASSERT_TRUE(c.connect(port_));
    // (A refusal may come and the connection close before all is sent.)
    const bool sent = c.send(expand(row.bytes, *origin_), 5s);
    auto r = c.read_response(5s);
    if (r) {
        EXPECT_TRUE(row.statuses.count(r->status) != 0)
            << "answered " << r->status << " " << r->reason << ": " << r->body;
        if (row.must_close) {
            EXPECT_TRUE(c.wait_closed(5s)) << "connection left open after the refusal";
        }
    } else {
        EXPECT_TRUE(row.close_ok) << "no response (sent " << sent << ", eof " << c.eof() << ", "
                                  << c.buffered().size() << " bytes: " << c.buffered().substr(0, 60)
                                  << ")";
        EXPECT_TRUE(c.eof()) << "neither an answer nor a close within 5 s";
    }
    // The answer (or close) came; a late forward would reach the origin now.
    // Whatever wait_for returns, the period is over when it returns false.
    const bool reached = wait_for([&] { return origin_->request_count() != requests_before; },
                                  kOriginQuietPeriod, 10ms);
    EXPECT_FALSE(reached) << "the origin got a request";
    for (const auto& req : origin_->requests()) {
        EXPECT_EQ(req.target.find("smuggled"), std::string::npos) << "smuggled request passed";
    }
    EXPECT_EQ(harness::sorted_worker_pids(*proxy_), pids_)
        << "a worker died: " << proxy_->control("status").value_or("");
    if (row.bytes.find(kUnknownHost) != std::string::npos) {
        EXPECT_GE(dns_->queries_for(kUnknownHost), 1u) << "the host-not-found row asked no DNS";
    }
}

std::string row_name(const ::testing::TestParamInfo<MalformedRow>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Framing, MalformedRequest, ::testing::ValuesIn(framing_rows()), row_name);
INSTANTIATE_TEST_SUITE_P(HeaderSyntax, MalformedRequest, ::testing::ValuesIn(header_syntax_rows()),
                         row_name);
INSTANTIATE_TEST_SUITE_P(Oversized, MalformedRequest, ::testing::ValuesIn(oversized_rows()),
                         row_name);
INSTANTIATE_TEST_SUITE_P(BadChunks, MalformedRequest, ::testing::ValuesIn(bad_chunk_rows()),
                         row_name);
INSTANTIATE_TEST_SUITE_P(ConnectAuthority, MalformedRequest,
                         ::testing::ValuesIn(connect_authority_rows()), row_name);
INSTANTIATE_TEST_SUITE_P(ConnectHead, MalformedRequest, ::testing::ValuesIn(connect_head_rows()),
                         row_name);
INSTANTIATE_TEST_SUITE_P(TargetForms, MalformedRequest, ::testing::ValuesIn(target_form_rows()),
                         row_name);

// Controls: the valid forms next to the rows above are served. ("Content-Length:
// 5, 5" is left out: RFC 9110 §8.6 lets a recipient reject it, as proxyd does.)
TEST_F(Hostile, ValidFormsNextToTheMalformedOnesAreServed) {
    start();
    const std::string te = "Transfer-Encoding: chunked\r\n";
    for (auto [name, request, body] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"valid chunked with an extension",
              post(te, "5;name=value;q=\"a b\"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"), "hello"},
             {"Transfer-Encoding in capitals",
              post("Transfer-Encoding: CHUNKED\r\n", "5\r\nhello\r\n0\r\n\r\n"), "hello"},
         }) {
        SCOPED_TRACE(name);
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(request));
        auto r = c.read_response(5s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
        EXPECT_EQ(r->body, body);
    }
    expect_healthy();
}

// --- Hop-by-hop abuse (RFC 9110 §7.6.1) ----------------------------------------------

TEST_F(Hostile, ConnectionOptionsCannotStripFraming) {
    start();
    // "Connection: Content-Length" must not make the proxy drop the framing:
    // either refused, or forwarded with its length, and the next request on
    // the connection is still a separate request.
    {
        SCOPED_TRACE("Connection: Content-Length");
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(post("Connection: Content-Length\r\nContent-Length: 5\r\n", "hello") +
                           get("/bytes/10")));
        auto r = c.read_response(3s);
        ASSERT_TRUE(r);
        if (r->status == 400) {
            EXPECT_TRUE(c.wait_closed(3s));
        } else {
            EXPECT_EQ(r->status, 200);
            EXPECT_EQ(r->body, "hello");
            auto second = c.read_response(3s);
            ASSERT_TRUE(second);
            EXPECT_EQ(second->status, 200);
            EXPECT_EQ(second->body, harness::pattern_bytes(10));
            auto reqs = origin_.requests();
            ASSERT_EQ(reqs.size(), 2u);
            EXPECT_EQ(reqs[0].header("Content-Length").value_or(""), "5");
            EXPECT_EQ(reqs[0].body, "hello");
        }
    }
    origin_.clear();
    {
        SCOPED_TRACE("Connection: Transfer-Encoding");
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(post("Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n",
                                "5\r\nhello\r\n0\r\n\r\n") +
                           get("/bytes/10")));
        auto r = c.read_response(3s);
        ASSERT_TRUE(r);
        if (r->status == 400) {
            EXPECT_TRUE(c.wait_closed(3s));
        } else {
            EXPECT_EQ(r->status, 200);
            EXPECT_EQ(r->body, "hello");
            auto second = c.read_response(3s);
            ASSERT_TRUE(second);
            EXPECT_EQ(second->body, harness::pattern_bytes(10));
            EXPECT_EQ(origin_.request_count(), 2u);
        }
    }
    origin_.clear();
    {
        SCOPED_TRACE("Connection: Host");
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(get("/headers", "Connection: Host\r\n")));
        auto r = c.read_response(3s);
        ASSERT_TRUE(r);
        if (r->status != 400) {
            EXPECT_EQ(r->status, 200);
            auto req = origin_.last_request();
            ASSERT_TRUE(req);
            EXPECT_EQ(req->header("Host").value_or("(none)"), origin_.host_port());
        }
    }
    origin_.clear();
    {
        SCOPED_TRACE("fields named by Connection are removed");
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(get("/headers",
                               "Connection: X-Secret, keep-alive\r\nX-Secret: 1\r\n"
                               "Keep-Alive: timeout=5\r\nTE: trailers\r\n"
                               "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\n")));
        auto r = c.read_response(3s);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200);
        auto req = origin_.last_request();
        ASSERT_TRUE(req);
        for (const char* h : {"X-Secret", "Keep-Alive", "Upgrade", "Proxy-Connection"}) {
            EXPECT_FALSE(req->has_header(h)) << h << " was forwarded";
        }
    }
    expect_healthy();
}

// --- Loops to the proxy itself ---------------------------------------------------

// The workers' accept count as `stats` sums it from their reports, once it
// has stopped moving (two reports in a row with the same total) and reached
// `at_least`: a fixed sleep would guess how long the reports take. -1 when
// it did not settle within `timeout`.
int64_t settled_accepts(ProxydInstance& proxy, int64_t at_least, Millis timeout = 10s) {
    int64_t last = -1;
    int64_t settled = -1;
    wait_for(
        [&] {
            const int64_t now = proxy.control_json("stats")["accepts"].as_int();
            if (now == last && now >= at_least) settled = now;
            last = now;
            return settled >= 0;
        },
        timeout, 450ms);  // longer than two heartbeat_intervals: a report came between
    return settled;
}

TEST_F(Hostile, RequestsToTheProxyItselfAre508WithoutAStorm) {
    start();
    const std::string self = "127.0.0.1:" + std::to_string(port_);
    const int64_t accepts_before = settled_accepts(*proxy_, 0);
    ASSERT_GE(accepts_before, 0) << "stats never settled";
    std::vector<std::pair<std::string, std::string>> rows = {
        {"absolute URI to the listener",
         "GET http://" + self + "/ HTTP/1.1\r\nHost: " + self + "\r\n\r\n"},
        {"absolute URI by name",
         "GET http://localhost:" + std::to_string(port_) + "/ HTTP/1.1\r\nHost: localhost\r\n\r\n"},
        {"CONNECT to the listener", "CONNECT " + self + " HTTP/1.1\r\nHost: " + self + "\r\n\r\n"},
    };
    for (const auto& [name, request] : rows) {
        SCOPED_TRACE(name);
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(request));
        auto r = c.read_response(5s);
        ASSERT_TRUE(r) << "no answer";
        EXPECT_EQ(r->status, 508) << r->body;
    }
    // At least one accept per client connection must show; a storm would
    // keep the count moving.
    const int64_t accepts_after =
        settled_accepts(*proxy_, accepts_before + static_cast<int64_t>(rows.size()));
    ASSERT_GE(accepts_after, 0) << "stats never showed the clients' accepts";
    const int64_t accepts = accepts_after - accepts_before;
    std::printf("[ info     ] %zu looping requests cost %lld accepts\n", rows.size(),
                static_cast<long long>(accepts));
    // One accept per client connection, at most one more per request when a
    // loop is only caught by its Via on the second pass.
    EXPECT_LE(accepts, static_cast<int64_t>(2 * rows.size()));
    EXPECT_EQ(origin_.connections_accepted(), 0);
    expect_healthy();
}

// The same loop through addresses that reach the listener without naming
// it: 0.0.0.0 (Linux connects that to the local host) and the v4-mapped
// spelling of 127.0.0.1.
TEST_F(Hostile, LoopsThroughUnspecifiedOrMappedAddressesAre508) {
    start();
    const std::string p = std::to_string(port_);
    const int64_t accepts_before = settled_accepts(*proxy_, 0);
    ASSERT_GE(accepts_before, 0) << "stats never settled";
    const std::vector<std::string> requests = {
        "GET http://0.0.0.0:" + p + "/ HTTP/1.1\r\nHost: 0.0.0.0:" + p + "\r\n\r\n",
        "GET http://[::ffff:127.0.0.1]:" + p + "/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET http://[::ffff:7f00:1]:" + p + "/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT 0.0.0.0:" + p + " HTTP/1.1\r\nHost: 0.0.0.0:" + p + "\r\n\r\n",
        "CONNECT [::ffff:127.0.0.1]:" + p + " HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (const std::string& request : requests) {
        SCOPED_TRACE(request.substr(0, request.find('\r')));
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(request));
        // (A 2xx to CONNECT has no length: read the head only.)
        std::string head = c.recv_some(3s);
        EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 508") << head;
    }
    const int64_t accepts_after =
        settled_accepts(*proxy_, accepts_before + static_cast<int64_t>(requests.size()));
    ASSERT_GE(accepts_after, 0) << "stats never showed the clients' accepts";
    const int64_t accepts = accepts_after - accepts_before;
    EXPECT_LE(accepts, static_cast<int64_t>(requests.size()));
    expect_healthy();
}

// --- Private destinations spelled otherwise ------------------------------------------

TEST_F(Hostile, AlternateSpellingsOfPrivateAddressesAreDenied) {
    ConfigBuilder config;
    config.set("acl", "deny_private_destinations", "yes");
    // A host that went to the resolver (and waited for it) would take this
    // long; a refusal of an address takes no time at all, however busy the
    // machine.
    constexpr Millis kDnsTimeout = 5s;
    config.set("limits", "dns_timeout", std::to_string(kDnsTimeout.count()) + "ms");
    start(config);
    const std::string P = std::to_string(origin_.port());
    const std::vector<std::string> hosts = {
        "127.0.0.1",
        "127.1",
        "0x7f.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "0177.1",
        "127.000.000.001",
        "0.0.0.0",
        "0",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:7f00:1]",
        "[::1]",
        "[::]",
        "[::127.0.0.1]",
        "localhost",
        "localhost.",
        "LOCALHOST",
        "127.0.0.1.",
    };
    std::set<int> allowed = {400, 403};
    for (const std::string& h : hosts) {
        for (bool tunnel : {false, true}) {
            SCOPED_TRACE((tunnel ? "CONNECT " : "GET http://") + h + ":" + P);
            std::string request =
                tunnel ? "CONNECT " + h + ":" + P + " HTTP/1.1\r\nHost: " + h + ":" + P + "\r\n\r\n"
                       : "GET http://" + h + ":" + P + "/ HTTP/1.1\r\nHost: " + h + ":" + P +
                             "\r\n\r\n";
            RawClient c;
            ASSERT_TRUE(c.connect(port_));
            ASSERT_TRUE(c.send(request));
            auto start = Clock::now();
            auto r = c.read_response(2 * kDnsTimeout);
            ASSERT_TRUE(r) << "no answer";
            // A trailing-dot name is a name, not an address: "cannot resolve" (502)
            // is fine too as long as nothing is dialled.
            bool name = h.back() == '.';
            EXPECT_TRUE(allowed.count(r->status) || (name && r->status == 502))
                << r->status << ": " << r->body;
            EXPECT_LT(harness::since(start), kDnsTimeout) << "refused only after a DNS timeout";
        }
    }
    EXPECT_EQ(origin_.connections_accepted(), 0) << "a private destination was dialled";
    // (expect_healthy() would be denied here: only the pids are checked.)
    EXPECT_EQ(sorted_pids(), pids_);
}

// --- Slowloris -----------------------------------------------------------------------

// Latencies of the requests in `records`, in microseconds.
std::vector<uint32_t> latencies_of(const std::vector<loadgen::Record>& records) {
    std::vector<uint32_t> latencies;
    for (const auto& r : records) latencies.push_back(r.latency_us);
    return latencies;
}

// One slow sender: a head trickled one byte per round, never finished.
struct SlowSender {
    std::unique_ptr<RawClient> client;
    Clock::time_point connected;
    size_t sent = 0;
    std::string received;  // what the proxy sent it
    bool closed = false;   // the proxy closed it (EOF or reset read)
    Millis cut{0};         // when, after connect
};

// Reads what the proxy sent a readable slow sender (briefly: 300 of them
// share the loop). It counts as cut only when the proxy closed the
// connection: an answer alone, or an error of our own while sending, is not
// a cut. An answer and its close usually come together; when they don't,
// the close is read in a later round.
void read_slow_sender(SlowSender& s) {
    for (int reads = 0; reads < 2 && !s.client->eof(); ++reads) {
        std::string in = s.client->recv_some(20ms);
        if (in.empty()) break;
        s.received += in;
    }
    if (!s.client->eof()) return;
    s.closed = true;
    s.cut = harness::since(s.connected);
}

// The status the proxy answered a slow sender with; 0 for none.
int status_of(const SlowSender& s) {
    if (s.received.compare(0, 9, "HTTP/1.1 ") != 0) return 0;
    return std::atoi(s.received.c_str() + 9);
}

// Normal clients make requests with no slow sender first (the baseline),
// then again while 300 slow senders trickle heads that never end. Each slow
// sender must be cut by the proxy at header_timeout (408 or a bare close),
// not before it; the normal clients must not fail, nor wait behind them.
// Every time bound is relative to header_timeout or to the baseline measured
// here, so a loaded machine makes nothing fail that works.
TEST_F(Hostile, SlowlorisDoesNotSlowOthersAndIsCutAtHeaderTimeout) {
    constexpr Millis kHeaderTimeout = 2s;
    ConfigBuilder config;
    config.set("limits", "header_timeout", std::to_string(kHeaderTimeout.count()) + "ms");
    start(config);
    constexpr int kSlow = 300;
    const std::string head = get("/");

    // Normal clients: a new connection per request, 20 at once.
    loadgen::Options o;
    o.port = port_;
    o.request = get("/bytes/100");
    o.expect_body_size = 100;
    o.connections = 20;
    o.new_connection_per_request = true;
    o.pause = 50ms;
    o.request_timeout = 3 * kHeaderTimeout;

    // The baseline: the same clients with no slow sender.
    loadgen::Load baseline(o);
    auto baseline_start = Clock::now();
    baseline.start();
    ASSERT_TRUE(baseline.wait_ok(200, 30s)) << baseline.failures() << " failures";
    loadgen::Stats base = baseline.stop();
    const double baseline_ms = static_cast<double>(ms_since(baseline_start));
    ASSERT_EQ(base.failed(), 0u) << base.summary();
    const std::vector<uint32_t> base_latencies = latencies_of(baseline.records());
    const double base_max_ms = loadgen::percentile_ms(base_latencies, 1.0);

    std::vector<SlowSender> slow(kSlow);
    for (SlowSender& s : slow) {
        s.client = std::make_unique<RawClient>();
        ASSERT_TRUE(s.client->connect(port_));
        s.connected = Clock::now();
    }
    loadgen::Load normal(o);
    normal.start();
    const auto start = Clock::now();
    int open = kSlow;
    // Rounds until every slow sender is closed, or well past the time they
    // all should have been (so a late cut is measured, not just "open").
    while (open > 0 && harness::since(start) < 4 * kHeaderTimeout) {
        for (SlowSender& s : slow) {
            if (s.closed) continue;
            pollfd p{s.client->fd(), POLLIN, 0};
            if (::poll(&p, 1, 0) > 0) {
                read_slow_sender(s);
                if (s.closed) --open;
                continue;
            }
            if (s.sent < head.size() - 2 &&
                ::send(s.client->fd(), head.data() + s.sent, 1, MSG_NOSIGNAL) == 1) {
                ++s.sent;
            }
        }
        std::this_thread::sleep_for(250ms);
    }
    const double slow_phase_ms = static_cast<double>(ms_since(start));
    loadgen::Stats st = normal.stop();
    const std::vector<uint32_t> latencies = latencies_of(normal.records());

    long long min_cut = 1LL << 30, max_cut = 0;
    std::map<int, int> statuses;
    for (const SlowSender& s : slow) {
        if (!s.closed) continue;
        min_cut = std::min<long long>(min_cut, s.cut.count());
        max_cut = std::max<long long>(max_cut, s.cut.count());
        ++statuses[status_of(s)];
    }
    // A normal request as slow as this waited behind something: longer than
    // anything the baseline saw (twice over), and half a header_timeout.
    const double slow_request_ms =
        std::max(2 * base_max_ms, static_cast<double>(kHeaderTimeout.count()) / 2);
    const auto waited =
        static_cast<size_t>(std::count_if(latencies.begin(), latencies.end(), [&](uint32_t us) {
            return us / 1000.0 > slow_request_ms;
        }));
    std::string status_text;
    for (auto [k, v] : statuses) status_text += " " + std::to_string(k) + "x" + std::to_string(v);
    std::printf(
        "[ info     ] baseline: %s in %.0f ms, p50 %.2f ms, max %.2f ms; with %d slow senders: "
        "%d cut by the proxy between %lld and %lld ms (statuses%s); normal clients: %s in %.0f "
        "ms, p50 %.2f ms, p99 %.2f ms, %zu slower than %.0f ms\n",
        base.summary().c_str(), baseline_ms, loadgen::percentile_ms(base_latencies, 0.5),
        base_max_ms, kSlow, kSlow - open, min_cut, max_cut, status_text.c_str(),
        st.summary().c_str(), slow_phase_ms, loadgen::percentile_ms(latencies, 0.5),
        loadgen::percentile_ms(latencies, 0.99), waited, slow_request_ms);

    EXPECT_EQ(open, 0) << "slow senders the proxy never closed";
    // Not before header_timeout (less a timer's granularity); at most one
    // header_timeout late, the slack of a loaded machine and of our rounds.
    EXPECT_GE(min_cut, kHeaderTimeout.count() * 95 / 100);
    EXPECT_LE(max_cut, 2 * kHeaderTimeout.count());
    // Closed bare, or after exactly a 408 answer.
    for (const SlowSender& s : slow) {
        if (!s.closed) continue;
        EXPECT_TRUE(s.received.empty() || status_of(s) == 408) << s.received.substr(0, 80);
    }
    EXPECT_EQ(st.failed(), 0u) << st.summary();
    // Throughput and waiting, against the baseline: a worker blocked by the
    // slow senders stalls every client it serves for up to header_timeout.
    const double base_rate = static_cast<double>(base.ok()) / baseline_ms;
    const double rate = static_cast<double>(st.ok()) / slow_phase_ms;
    EXPECT_GE(rate, base_rate / 5) << "normal clients were served " << base_rate / rate
                                   << " times slower than without slow senders";
    EXPECT_LE(waited, st.ok() / 100) << "normal clients waited behind the slow ones";
    expect_healthy();
}

// --- Pipelining floods ------------------------------------------------------------------

TEST_F(Hostile, PipelinedFloodIsAnsweredInOrderWithBoundedMemory) {
    start();
    harness::WorkerMemory memory(*proxy_);
    const uint64_t rss_before = memory.resident();
    // 1000 small requests in one write, each naming its own body size.
    {
        std::string flood;
        for (int i = 0; i < 1000; ++i) flood += get("/bytes/" + std::to_string(100 + i % 97));
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        auto start = Clock::now();
        ASSERT_TRUE(c.send(flood, 10s));
        int in_order = 0;
        for (int i = 0; i < 1000; ++i) {
            auto r = c.read_response(5s);
            if (!r) break;
            if (r->status != 200 || r->body.size() != static_cast<size_t>(100 + i % 97)) break;
            ++in_order;
        }
        std::printf(
            "[ info     ] 1000 pipelined requests (%zu bytes): %d answered in order in "
            "%lld ms\n",
            flood.size(), in_order, ms_since(start));
        EXPECT_EQ(in_order, 1000);
    }
    // 200 requests for 256 KiB each (50 MiB of answers) that the client does
    // not read until the workers' memory settled: backpressure, not buffering.
    {
        std::string flood;
        for (int i = 0; i < 200; ++i) flood += get("/bytes/262144");
        RawClient c;
        ASSERT_TRUE(c.connect(port_));
        ASSERT_TRUE(c.send(flood, 10s));
        ASSERT_TRUE(origin_.wait_requests(1, 10s)) << "nothing was forwarded";
        const uint64_t rss_held = memory.settled_resident(10s);
        int in_order = 0;
        const std::string expected = harness::pattern_bytes(262144);
        for (int i = 0; i < 200; ++i) {
            auto r = c.read_response(5s);
            if (!r || r->status != 200 || r->body != expected) break;
            ++in_order;
        }
        std::printf(
            "[ info     ] 200 pipelined 256 KiB answers not read until settled: worker RSS "
            "%.1f MiB -> %.1f MiB; %d answered in order\n",
            rss_before / double(kMiB), rss_held / double(kMiB), in_order);
        EXPECT_EQ(in_order, 200);
        // ASan's shadow memory and quarantine hide what this measures.
        if (!harness::sanitized_build()) {
            EXPECT_LT(rss_held, 64 * kMiB);
            EXPECT_LT(rss_held - std::min(rss_held, rss_before), 16 * kMiB);
        }
    }
    memory.expect_same_workers();
    expect_healthy();
}

// --- Clients that never read --------------------------------------------------------------

// A client socket whose receive buffer is `bytes`, set before connect so the
// window it advertises is small from the first segment. Setting SO_RCVBUF
// also turns receive autotuning off for the socket (SOCK_RCVBUF_LOCK), so it
// stays small. -1 on failure (with ADD_FAILURE).
int connect_with_small_receive_buffer(uint16_t port, int bytes) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval connect_timeout{5, 0};  // bounds a blocking connect on Linux
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof connect_timeout) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ADD_FAILURE() << "small-buffer client: " << std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

int receive_buffer_of(int fd) {
    int bytes = 0;
    socklen_t length = sizeof bytes;
    ::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, &length);
    return bytes;
}

// Reads one whole response from `fd` within `timeout`; nullopt otherwise.
std::optional<HttpResponse> read_whole_response(int fd, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string in;
    char buffer[65536];
    while (Clock::now() < deadline) {
        size_t consumed = 0;
        bool need_more = false;
        if (auto r = harness::parse_response(in, false, consumed, need_more)) return r;
        if (!need_more) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) return std::nullopt;
        in.append(buffer, static_cast<size_t>(n));
    }
    return std::nullopt;
}

// 100 clients with a 4 KiB receive buffer ask for 8 MiB each and never read:
// the proxy stops reading from the origin instead of buffering the bodies,
// so the workers hold a bounded amount per client (two buffers of
// buffer_size at most, as memory_bound_test.cpp measures), not the 800 MiB
// on their way; and a client that reads at last gets its whole body.
TEST_F(Hostile, ClientsThatNeverReadStayBounded) {
    if (harness::sanitized_build()) GTEST_SKIP() << "RSS bounds are not measurable under ASan";
    start();
    constexpr int kClients = 100;
    constexpr int kReceiveBuffer = 4096;
    constexpr size_t kBody = 8 << 20;
    constexpr uint64_t kPerClientBound = 2 * 64 * 1024 + 32 * 1024;  // buffer_size = 64k
    harness::WorkerMemory memory(*proxy_);
    const uint64_t rss_before = memory.resident();
    std::vector<int> clients;
    struct CloseAll {
        std::vector<int>& fds;
        ~CloseAll() {
            for (int fd : fds) ::close(fd);
        }
    } close_all{clients};
    const std::string request = get("/bytes/" + std::to_string(kBody));
    for (int i = 0; i < kClients; ++i) {
        int fd = connect_with_small_receive_buffer(port_, kReceiveBuffer);
        ASSERT_GE(fd, 0);
        clients.push_back(fd);
        // The kernel doubles the value for its bookkeeping; autotuning would
        // grow it to megabytes.
        ASSERT_LE(receive_buffer_of(fd), 2 * kReceiveBuffer + 4096);
        harness::send_all(fd, request);
    }
    ASSERT_TRUE(origin_.wait_requests(kClients, 10s)) << origin_.request_count();
    const uint64_t rss_held = memory.settled_resident(15s);
    const double per_client =
        (static_cast<double>(rss_held) - static_cast<double>(rss_before)) / kClients;
    std::printf(
        "[ info     ] %d clients with a %d-byte receive buffer not reading %zu MiB each: worker "
        "RSS %.1f MiB -> %.1f MiB, %.1f KiB per client (bound %.0f KiB)\n",
        kClients, kReceiveBuffer, kBody >> 20, rss_before / double(kMiB), rss_held / double(kMiB),
        per_client / 1024, kPerClientBound / 1024.0);
    EXPECT_LE(per_client, static_cast<double>(kPerClientBound));
    EXPECT_TRUE(memory.expect_same_workers());
    // The bodies were held back, not dropped: one client reads its whole
    // body (with a normal receive buffer now, so it takes no time).
    const int normal_buffer = 1 << 20;
    ::setsockopt(clients.front(), SOL_SOCKET, SO_RCVBUF, &normal_buffer, sizeof normal_buffer);
    auto r = read_whole_response(clients.front(), 30s);
    ASSERT_TRUE(r) << "the client that read at last got no complete answer";
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(harness::sha256_hex(r->body), harness::sha256_hex(harness::pattern_bytes(kBody)));
    for (int fd : clients) ::close(fd);
    clients.clear();
    expect_healthy();
}

}  // namespace
