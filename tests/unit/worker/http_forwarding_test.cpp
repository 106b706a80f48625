// Unit tests for worker/http_forwarding: real heads are parsed with the
// production parser, rewritten, and the exact bytes compared.
#include "worker/http_forwarding.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace worker {
namespace {

namespace http = common::http;

// Heads hold 256 fields each: keep them off the stack. `text` keeps the
// bytes the head's views point into.
struct Request {
    std::string text;
    std::unique_ptr<http::RequestHead> head = std::make_unique<http::RequestHead>();
};

std::unique_ptr<Request> request(std::string text) {
    auto r = std::make_unique<Request>();
    r->text = std::move(text);
    http::ParseResult result = http::parse_request_head(r->text, http::Limits(), *r->head);
    EXPECT_EQ(result.status, http::ParseStatus::kComplete) << http::describe(result.error) << "\n"
                                                           << r->text;
    return r;
}

struct Response {
    std::string text;
    std::unique_ptr<http::ResponseHead> head = std::make_unique<http::ResponseHead>();
};

std::unique_ptr<Response> response(std::string text) {
    auto r = std::make_unique<Response>();
    r->text = std::move(text);
    http::ParseResult result = http::parse_response_head(r->text, http::Limits(), *r->head);
    EXPECT_EQ(result.status, http::ParseStatus::kComplete) << http::describe(result.error) << "\n"
                                                           << r->text;
    return r;
}

// The upstream request for `text`, with the target and framing taken from
// the head as the session does.
std::string upstream_request(const std::string& text) {
    auto r = request(text);
    common::ProxyTarget target;
    std::string error;
    EXPECT_TRUE(common::parse_absolute_target(r->head->target, target, error)) << error;
    http::BodyFraming framing = http::request_body_framing(*r->head);
    EXPECT_EQ(framing.error, http::ParseError::kNone) << http::describe(framing.error);
    std::string out = "prefix|";  // appended to, never replaced
    build_upstream_request(*r->head, target, framing, out);
    EXPECT_EQ(out.rfind("prefix|", 0), 0u);
    return out.substr(7);
}

// Takes out the one Date line a response holds, so the rest compares byte
// for byte (the Date itself is tested on its own below).
std::string without_date(std::string out) {
    size_t at = out.find("\r\nDate: ");
    EXPECT_NE(at, std::string::npos) << out;
    if (at == std::string::npos) return out;
    out.erase(at + 2, out.find("\r\n", at + 2) - at);
    EXPECT_EQ(out.find("\r\nDate: "), std::string::npos) << "two Date fields";
    return out;
}

std::string client_response(const std::string& text, OutgoingBody body, uint64_t length,
                            bool keep_alive, int client_minor) {
    auto r = response(text);
    std::string out;
    build_client_response(*r->head, body, length, keep_alive, client_minor, out);
    return without_date(out);
}

std::string error_response(int status, std::string_view detail, bool close,
                           std::string_view error_type) {
    return without_date(build_error_response(status, detail, close, error_type));
}

// --- build_upstream_request -----------------------------------------------

TEST(ForwardingUpstream, OriginFormAndHostFromTarget) {
    EXPECT_EQ(upstream_request("GET http://Example.COM:8080/p?q=1 HTTP/1.1\r\n"
                               "Host: other.example\r\n"
                               "User-Agent: t/1\r\n"
                               "Accept: */*\r\n"
                               "\r\n"),
              "GET /p?q=1 HTTP/1.1\r\n"
              "Host: example.com:8080\r\n"
              "User-Agent: t/1\r\n"
              "Accept: */*\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

TEST(ForwardingUpstream, DefaultPortAndEmptyPath) {
    EXPECT_EQ(upstream_request("HEAD http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"),
              "HEAD / HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 proxyd\r\n\r\n");
}

// RFC 9112 §3.2.1: an empty path is sent as "/", also before a query.
TEST(ForwardingUpstream, QueryWithEmptyPathGetsSlash) {
    EXPECT_EQ(upstream_request("GET http://example.com?a=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
              "GET /?a=1 HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 proxyd\r\n\r\n");
}

// RFC 9112 §3.2.4: OPTIONS to a URI without path or query is asked as "*".
TEST(ForwardingUpstream, OptionsWithEmptyPathIsAsteriskForm) {
    EXPECT_EQ(upstream_request("OPTIONS http://example.com:8001 HTTP/1.1\r\nHost: x\r\n\r\n"),
              "OPTIONS * HTTP/1.1\r\nHost: example.com:8001\r\nVia: 1.1 proxyd\r\n\r\n");
    EXPECT_EQ(upstream_request("OPTIONS http://example.com/ HTTP/1.1\r\nHost: x\r\n\r\n"),
              "OPTIONS / HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 proxyd\r\n\r\n");
    EXPECT_EQ(upstream_request("OPTIONS http://example.com?q HTTP/1.1\r\nHost: x\r\n\r\n"),
              "OPTIONS /?q HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingUpstream, Ipv6HostHeader) {
    EXPECT_EQ(upstream_request("GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
              "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingUpstream, HopByHopFieldsDropped) {
    EXPECT_EQ(upstream_request("GET http://example.com/ HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Connection: keep-alive, X-Secret\r\n"
                               "Proxy-Connection: keep-alive\r\n"
                               "Keep-Alive: timeout=5\r\n"
                               "TE: trailers\r\n"
                               "Trailer: X-Checksum\r\n"
                               "Upgrade: websocket\r\n"
                               "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
                               "x-secret: 1\r\n"
                               "Accept: */*\r\n"
                               "\r\n"),
              "GET / HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "Accept: */*\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

TEST(ForwardingUpstream, FieldsListedInAnyConnectionFieldDropped) {
    EXPECT_EQ(upstream_request("GET http://example.com/ HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "X-A: 1\r\n"
                               "Connection: x-a\r\n"
                               "X-B: 2\r\n"
                               "Connection: X-C , close\r\n"
                               "X-C: 3\r\n"
                               "X-D: 4\r\n"
                               "\r\n"),
              "GET / HTTP/1.1\r\nHost: example.com\r\nX-B: 2\r\nX-D: 4\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingUpstream, ConnectionCannotStripFramingOrHost) {
    EXPECT_EQ(upstream_request("POST http://example.com/form HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Connection: Content-Length, Host, Transfer-Encoding\r\n"
                               "Content-Length: 5\r\n"
                               "\r\n"),
              "POST /form HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
    EXPECT_EQ(upstream_request("POST http://example.com/ HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Connection: transfer-encoding\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "\r\n"),
              "POST / HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "Transfer-Encoding: chunked\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

TEST(ForwardingUpstream, FramingRegenerated) {
    // Content-Length is rewritten in canonical form, after the other fields.
    EXPECT_EQ(upstream_request("PUT http://example.com/x HTTP/1.1\r\n"
                               "content-length: 0012\r\n"
                               "Host: example.com\r\n"
                               "X-After: y\r\n"
                               "\r\n"),
              "PUT /x HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "X-After: y\r\n"
              "Content-Length: 12\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
    EXPECT_EQ(upstream_request("POST http://example.com/ HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "transfer-encoding: CHUNKED\r\n"
                               "\r\n"),
              "POST / HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "Transfer-Encoding: chunked\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

TEST(ForwardingUpstream, Http10ClientGetsVia10AndHttp11Upstream) {
    EXPECT_EQ(upstream_request("GET http://example.com/ HTTP/1.0\r\nUser-Agent: old\r\n\r\n"),
              "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: old\r\nVia: 1.0 proxyd\r\n\r\n");
}

TEST(ForwardingUpstream, ExistingViaKeptAndOursAppended) {
    EXPECT_EQ(upstream_request("GET http://example.com/ HTTP/1.1\r\n"
                               "Host: example.com\r\n"
                               "Via: 1.0 squid\r\n"
                               "\r\n"),
              "GET / HTTP/1.1\r\n"
              "Host: example.com\r\n"
              "Via: 1.0 squid\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

// --- has_our_via ----------------------------------------------------------

bool our_via(const std::string& fields) {
    auto r = request("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n" + fields + "\r\n");
    return has_our_via(*r->head);
}

TEST(ForwardingVia, Ours) {
    EXPECT_TRUE(our_via("Via: 1.1 proxyd\r\n"));
    EXPECT_TRUE(our_via("Via: 1.0 other, 1.1 proxyd (comment)\r\n"));
    EXPECT_TRUE(our_via("Via: 1.0 other,1.1 proxyd\r\n"));
    EXPECT_TRUE(our_via("via: HTTP/1.1 PROXYD\r\n"));
    EXPECT_TRUE(our_via("Via: 1.0 a\r\nVia: 1.1 proxyd\r\n"));
}

TEST(ForwardingVia, NotOurs) {
    EXPECT_FALSE(our_via(""));
    EXPECT_FALSE(our_via("Via: 1.1 proxyd-other\r\n"));
    EXPECT_FALSE(our_via("Via: 1.1 other (proxyd)\r\n"));
    EXPECT_FALSE(our_via("Via: proxyd\r\n"));
    EXPECT_FALSE(our_via("Via: 1.1 myproxyd\r\n"));
    EXPECT_FALSE(our_via("X-Via: 1.1 proxyd\r\n"));
}

// --- client_wants_keep_alive ----------------------------------------------

bool keep_alive(const std::string& version, const std::string& fields) {
    auto r = request("GET http://example.com/ " + version + "\r\nHost: example.com\r\n" + fields +
                     "\r\n");
    return client_wants_keep_alive(*r->head);
}

TEST(ForwardingKeepAlive, Http11) {
    EXPECT_TRUE(keep_alive("HTTP/1.1", ""));
    EXPECT_TRUE(keep_alive("HTTP/1.1", "Connection: keep-alive\r\n"));
    EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: close\r\n"));
    EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: X-Foo, Close\r\n"));
    EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n"));
}

TEST(ForwardingKeepAlive, Http10) {
    EXPECT_FALSE(keep_alive("HTTP/1.0", ""));
    EXPECT_TRUE(keep_alive("HTTP/1.0", "Connection: keep-alive\r\n"));
    EXPECT_TRUE(keep_alive("HTTP/1.0", "Connection: Keep-Alive\r\n"));
    EXPECT_FALSE(keep_alive("HTTP/1.0", "Connection: keep-alive, close\r\n"));
    EXPECT_FALSE(keep_alive("HTTP/1.0", "Proxy-Connection: keep-alive\r\n"));
}

// --- build_client_response ------------------------------------------------

const std::string kOk =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/html\r\n"
    "Content-Length: 5\r\n"
    "Connection: keep-alive, X-Hop\r\n"
    "Keep-Alive: timeout=5\r\n"
    "X-Hop: 1\r\n"
    "Proxy-Authenticate: Basic\r\n"
    "ETag: \"x\"\r\n"
    "\r\n";

TEST(ForwardingClientResponse, LengthKeepAlive) {
    EXPECT_EQ(client_response(kOk, OutgoingBody::kLength, 5, true, 1),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/html\r\n"
              "ETag: \"x\"\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 proxyd\r\n"
              "\r\n");
}

TEST(ForwardingClientResponse, CloseWhenNotKeepAlive) {
    EXPECT_EQ(client_response(kOk, OutgoingBody::kLength, 5, false, 1),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/html\r\n"
              "ETag: \"x\"\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 proxyd\r\n"
              "Connection: close\r\n"
              "\r\n");
    EXPECT_EQ(client_response(kOk, OutgoingBody::kLength, 5, false, 0),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/html\r\n"
              "ETag: \"x\"\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 proxyd\r\n"
              "Connection: close\r\n"
              "\r\n");
}

TEST(ForwardingClientResponse, KeepAliveForHttp10Client) {
    EXPECT_EQ(client_response(kOk, OutgoingBody::kLength, 5, true, 0),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/html\r\n"
              "ETag: \"x\"\r\n"
              "Content-Length: 5\r\n"
              "Via: 1.1 proxyd\r\n"
              "Connection: keep-alive\r\n"
              "\r\n");
}

TEST(ForwardingClientResponse, Chunked) {
    EXPECT_EQ(client_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n",
                              OutgoingBody::kChunked, 0, true, 1),
              "HTTP/1.1 200 OK\r\nX: y\r\nTransfer-Encoding: chunked\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingClientResponse, ChunkedUpstreamSentWithLength) {
    // The session may dechunk and send a length it knows; the upstream's
    // Transfer-Encoding must not leak through.
    EXPECT_EQ(client_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                              OutgoingBody::kLength, 42, true, 1),
              "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingClientResponse, UntilCloseFromHttp10Upstream) {
    EXPECT_EQ(client_response("HTTP/1.0 200 OK\r\nServer: old\r\n\r\n", OutgoingBody::kUntilClose,
                              0, false, 1),
              "HTTP/1.1 200 OK\r\nServer: old\r\nVia: 1.0 proxyd\r\nConnection: close\r\n\r\n");
}

TEST(ForwardingClientResponse, BodilessKeepsContentLength) {
    // Response to HEAD: no body, but the representation's size is passed on
    // (the length the parser validated, not the field's text).
    EXPECT_EQ(client_response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
                              OutgoingBody::kNoneButLength, 1234, true, 1),
              "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nVia: 1.1 proxyd\r\n\r\n");
    EXPECT_EQ(
        client_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n",
                        OutgoingBody::kNoneButLength, 10, true, 1),
        "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 10\r\nVia: 1.1 "
        "proxyd\r\n\r\n");
}

TEST(ForwardingClientResponse, NoContentHasNoLength) {
    EXPECT_EQ(
        client_response("HTTP/1.1 204 No Content\r\nX: y\r\n\r\n", OutgoingBody::kNone, 0, true, 1),
        "HTTP/1.1 204 No Content\r\nX: y\r\nVia: 1.1 proxyd\r\n\r\n");
    EXPECT_EQ(client_response("HTTP/1.1 200 OK\r\n\r\n", OutgoingBody::kNone, 0, true, 1),
              "HTTP/1.1 200 OK\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingClientResponse, ReasonPhraseKept) {
    EXPECT_EQ(client_response("HTTP/1.1 404 Not Here\r\nContent-Length: 0\r\n\r\n",
                              OutgoingBody::kLength, 0, true, 1),
              "HTTP/1.1 404 Not Here\r\nContent-Length: 0\r\nVia: 1.1 proxyd\r\n\r\n");
}

TEST(ForwardingClientResponse, DateAddedOnlyWhenMissing) {
    auto dated = response("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n");
    std::string out;
    build_client_response(*dated->head, OutgoingBody::kLength, 0, true, 1, out);
    EXPECT_EQ(out,
              "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n"
              "Via: 1.1 proxyd\r\n\r\n");
    auto undated = response("HTTP/1.1 200 OK\r\n\r\n");
    out.clear();
    build_client_response(*undated->head, OutgoingBody::kLength, 0, true, 1, out);
    EXPECT_NE(out.find("\r\nDate: "), std::string::npos) << out;
}

// IMF-fixdate, RFC 9110 §5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT".
TEST(ForwardingDate, ImfFixdate) {
    std::string date(http_date_now());
    ASSERT_EQ(date.size(), 29u) << date;
    EXPECT_EQ(date.substr(3, 2), ", ");
    EXPECT_EQ(date.substr(25), " GMT");
    EXPECT_EQ(date[7], ' ');
    EXPECT_EQ(date[11], ' ');
    EXPECT_EQ(date[16], ' ');
    EXPECT_EQ(date[19], ':');
    EXPECT_EQ(date[22], ':');
}

TEST(ForwardingInterim, Continue) {
    auto r = response("HTTP/1.1 100 Continue\r\nX-Hop: 1\r\nConnection: X-Hop\r\nX-E: 2\r\n\r\n");
    std::string out;
    build_interim_response(*r->head, out);
    EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\nX-E: 2\r\n\r\n");
}

// --- build_error_response -------------------------------------------------

TEST(ForwardingError, WithProxyStatusAndClose) {
    const std::string body = "proxyd: CONNECT to port 25 is not allowed\n";
    EXPECT_EQ(error_response(403, "CONNECT to port 25 is not allowed", true, "http_request_denied"),
              "HTTP/1.1 403 Forbidden\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: " +
                  std::to_string(body.size()) +
                  "\r\n"
                  "Proxy-Status: proxyd; error=http_request_denied; "
                  "details=\"CONNECT to port 25 is not allowed\"\r\n"
                  "Connection: close\r\n"
                  "\r\n" +
                  body);
}

TEST(ForwardingError, WithoutTypeOrClose) {
    std::string out = error_response(502, "host not found", false, "");
    EXPECT_EQ(out,
              "HTTP/1.1 502 Bad Gateway\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 23\r\n"
              "\r\n"
              "proxyd: host not found\n");
}

// details is an RFC 8941 sf-string: quotes and backslashes escaped, and
// nothing outside printable ASCII.
TEST(ForwardingError, DetailsAreAStructuredFieldString) {
    std::string out = error_response(502, "a \"b\" c\\d\x01\xc3\xa9", false, "dns_error");
    EXPECT_NE(out.find("Proxy-Status: proxyd; error=dns_error; details=\"a \\\"b\\\" "
                       "c\\\\d???\"\r\n"),
              std::string::npos)
        << out;
}

TEST(ForwardingError, ContentLengthMatchesBody) {
    for (int status : {400, 403, 405, 407, 408, 414, 431, 500, 501, 502, 503, 504, 505, 508}) {
        std::string out = build_error_response(status, "some detail", true, "x");
        size_t end = out.find("\r\n\r\n");
        ASSERT_NE(end, std::string::npos);
        std::string body = out.substr(end + 4);
        EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
                  std::string::npos)
            << out;
        EXPECT_EQ(
            out.rfind("HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n",
                      0),
            0u);
    }
}

TEST(ForwardingError, ReasonPhrases) {
    EXPECT_STREQ(reason_phrase(200), "OK");
    EXPECT_STREQ(reason_phrase(400), "Bad Request");
    EXPECT_STREQ(reason_phrase(403), "Forbidden");
    EXPECT_STREQ(reason_phrase(405), "Method Not Allowed");
    EXPECT_STREQ(reason_phrase(407), "Proxy Authentication Required");
    EXPECT_STREQ(reason_phrase(408), "Request Timeout");
    EXPECT_STREQ(reason_phrase(414), "URI Too Long");
    EXPECT_STREQ(reason_phrase(431), "Request Header Fields Too Large");
    EXPECT_STREQ(reason_phrase(500), "Internal Server Error");
    EXPECT_STREQ(reason_phrase(501), "Not Implemented");
    EXPECT_STREQ(reason_phrase(502), "Bad Gateway");
    EXPECT_STREQ(reason_phrase(503), "Service Unavailable");
    EXPECT_STREQ(reason_phrase(504), "Gateway Timeout");
    EXPECT_STREQ(reason_phrase(505), "HTTP Version Not Supported");
    EXPECT_STREQ(reason_phrase(508), "Loop Detected");
    EXPECT_STREQ(reason_phrase(599), "Error");
}

// --- append_chunk_header --------------------------------------------------

TEST(ForwardingChunk, HexSizeLine) {
    std::string out = "x";
    append_chunk_header(out, 0);
    EXPECT_EQ(out, "x0\r\n");
    out.clear();
    append_chunk_header(out, 255);
    append_chunk_header(out, 4096);
    EXPECT_EQ(out, "ff\r\n1000\r\n");
    out.clear();
    append_chunk_header(out, UINT64_MAX);
    EXPECT_EQ(out, "ffffffffffffffff\r\n");
}

}  // namespace
}  // namespace worker
