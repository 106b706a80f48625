// Unit tests for common/http_parser: one named test per RFC 9112 rule, the
// request smuggling shapes, limits, and incremental (byte at a time) input.
#include "common/http_parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace common::http {
namespace {

// RequestHead/ResponseHead hold 256 headers each; keep them off the stack.
struct Parsed {
    ParseResult result;
    std::unique_ptr<RequestHead> head = std::make_unique<RequestHead>();
};

Parsed parse_request(std::string_view text, const Limits& limits = Limits()) {
    Parsed p;
    p.result = parse_request_head(text, limits, *p.head);
    return p;
}

ParseError request_error(std::string_view text, const Limits& limits = Limits()) {
    const Parsed p = parse_request(text, limits);
    EXPECT_EQ(p.result.status, ParseStatus::kError) << text;
    return p.result.error;
}

struct ParsedResponse {
    ParseResult result;
    std::unique_ptr<ResponseHead> head = std::make_unique<ResponseHead>();
};

ParsedResponse parse_response(std::string_view text, const Limits& limits = Limits()) {
    ParsedResponse p;
    p.result = parse_response_head(text, limits, *p.head);
    return p;
}

ParseError response_error(std::string_view text) {
    const ParsedResponse p = parse_response(text);
    EXPECT_EQ(p.result.status, ParseStatus::kError) << text;
    return p.result.error;
}

// Framing of a request head that must parse; `fields` are CRLF-terminated.
BodyFraming request_framing(std::string_view fields, std::string_view version = "HTTP/1.1") {
    static std::string text;  // views in the head point into it
    text = "POST / " + std::string(version) + "\r\n" + std::string(fields) + "\r\n";
    const Parsed p = parse_request(text);
    EXPECT_EQ(p.result.status, ParseStatus::kComplete) << text;
    return request_body_framing(*p.head);
}

BodyFraming response_framing(std::string_view status_and_fields, std::string_view method = "GET") {
    static std::string text;
    text = "HTTP/1.1 " + std::string(status_and_fields) + "\r\n";
    const ParsedResponse p = parse_response(text);
    EXPECT_EQ(p.result.status, ParseStatus::kComplete) << text;
    return response_body_framing(*p.head, method);
}

constexpr std::string_view kSimpleGet =
    "GET http://example.com/a?b=c HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Accept: */*\r\n"
    "\r\n";

// --- request line -------------------------------------------------------------

TEST(HttpRequestHead, ParsesSimpleGet) {
    const Parsed p = parse_request(kSimpleGet);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->method, "GET");
    EXPECT_EQ(p.head->target, "http://example.com/a?b=c");
    EXPECT_EQ(p.head->version_minor, 1);
    ASSERT_EQ(p.head->header_count, 2u);
    EXPECT_EQ(p.head->headers[0].name, "Host");
    EXPECT_EQ(p.head->headers[0].value, "example.com");
    EXPECT_EQ(p.head->headers[1].name, "Accept");
    EXPECT_EQ(p.head->head_length, kSimpleGet.size());
}

TEST(HttpRequestHead, ParsesHttp10WithoutFields) {
    const Parsed p = parse_request("GET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->version_minor, 0);
    EXPECT_EQ(p.head->header_count, 0u);
}

TEST(HttpRequestHead, ParsesConnectAuthorityForm) {
    const Parsed p =
        parse_request("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->method, "CONNECT");
    EXPECT_EQ(p.head->target, "example.com:443");
}

TEST(HttpRequestHead, NeedsMoreUntilBlankLine) {
    EXPECT_EQ(parse_request("").result.status, ParseStatus::kNeedMore);
    EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: a\r\n").result.status, ParseStatus::kNeedMore);
    EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r").result.status,
              ParseStatus::kNeedMore);
}

TEST(HttpRequestHead, AcceptsLeadingEmptyLines) {
    const std::string text = "\r\n\r\n" + std::string(kSimpleGet);
    const Parsed p = parse_request(text);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->method, "GET");
    EXPECT_EQ(p.head->head_length, text.size());
}

TEST(HttpRequestHead, RejectsLeadingBareLineFeed) {
    EXPECT_EQ(request_error("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBareLineFeed);
}

TEST(HttpRequestHead, RejectsDoubleSpaceInRequestLine) {
    EXPECT_EQ(request_error("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadRequestLine);
    EXPECT_EQ(request_error("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadRequestLine);
    EXPECT_EQ(request_error("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), ParseError::kBadRequestLine);
    EXPECT_EQ(request_error(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadRequestLine);
}

TEST(HttpRequestHead, RejectsMissingParts) {
    EXPECT_EQ(request_error("GET\r\n\r\n"), ParseError::kBadRequestLine);
    EXPECT_EQ(request_error("GET /\r\n\r\n"), ParseError::kBadRequestLine);
    EXPECT_EQ(request_error("GET / \r\n\r\n"), ParseError::kBadVersion);
}

TEST(HttpRequestHead, RejectsTabAsSeparator) {
    // The method runs up to the first SP, and HTAB is not a tchar.
    EXPECT_EQ(request_error("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadMethod);
    EXPECT_EQ(request_error("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadRequestLine);
}

TEST(HttpRequestHead, RejectsNonTokenMethod) {
    EXPECT_EQ(request_error("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadMethod);
    EXPECT_EQ(request_error("G\x80T / HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadMethod);
}

TEST(HttpRequestHead, AcceptsAllTcharsInMethod) {
    const Parsed p = parse_request("!#$%&'*+-.^_`|~09azAZ / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(p.result.status, ParseStatus::kComplete);
}

TEST(HttpRequestHead, RejectsControlAndNonAsciiInTarget) {
    EXPECT_EQ(request_error(std::string("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", 31)),
              ParseError::kBadTarget);
    EXPECT_EQ(request_error("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadTarget);
    EXPECT_EQ(request_error("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadTarget);
}

TEST(HttpRequestHead, RejectsBadVersionSyntax) {
    for (const char* v : {"HTTP/1", "HTTP/1.", "HTTP/11", "http/1.1", "HTTP/1.1.1", "HTTP/a.b",
                          "HTTPS/1.1", "HTTP/10.1"}) {
        const std::string text = std::string("GET / ") + v + "\r\nHost: a\r\n\r\n";
        EXPECT_EQ(request_error(text), ParseError::kBadVersion) << v;
    }
}

TEST(HttpRequestHead, RejectsUnsupportedVersion) {
    for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "HTTP/3.0"}) {
        const std::string text = std::string("GET / ") + v + "\r\nHost: a\r\n\r\n";
        EXPECT_EQ(request_error(text), ParseError::kUnsupportedVersion) << v;
    }
}

TEST(HttpRequestHead, RejectsBareLineFeedAfterRequestLine) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\nHost: a\r\n\r\n"), ParseError::kBareLineFeed);
}

TEST(HttpRequestHead, RejectsBareLineFeedInFields) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"), ParseError::kBareLineFeed);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\n\n"), ParseError::kBareLineFeed);
}

TEST(HttpRequestHead, RejectsBareCarriageReturn) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"),
              ParseError::kBadHeaderValue);
    EXPECT_EQ(request_error("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), ParseError::kBadTarget);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), ParseError::kBadVersion);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"), ParseError::kBadHeaderName);
}

// --- field lines --------------------------------------------------------------

TEST(HttpRequestHead, RejectsWhitespaceBeforeColon) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
              ParseError::kWhitespaceBeforeColon);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
              ParseError::kWhitespaceBeforeColon);
}

TEST(HttpRequestHead, RejectsObsFold) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n"),
              ParseError::kObsFold);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"),
              ParseError::kObsFold);
}

TEST(HttpRequestHead, RejectsFoldOnFirstFieldLine) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), ParseError::kObsFold);
}

TEST(HttpRequestHead, RejectsBadFieldNames) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\n: a\r\n\r\n"), ParseError::kBadHeaderName);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nNo colon\r\n\r\n"), ParseError::kBadHeaderName);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nA(b): c\r\n\r\n"), ParseError::kBadHeaderName);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nA b: c\r\n\r\n"), ParseError::kBadHeaderName);
}

TEST(HttpRequestHead, RejectsNulInValue) {
    const std::string text("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 30);
    EXPECT_EQ(request_error(text), ParseError::kBadHeaderValue);
}

TEST(HttpRequestHead, RejectsControlsInValue) {
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n"), ParseError::kBadHeaderValue);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n"), ParseError::kBadHeaderValue);
    EXPECT_EQ(request_error("GET / HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n"), ParseError::kBadHeaderValue);
}

TEST(HttpRequestHead, AcceptsObsTextAndTabsInValue) {
    const Parsed p = parse_request("GET / HTTP/1.1\r\nHost: a\r\nX: \xe9t\xe9\tb c\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->headers[1].value, "\xe9t\xe9\tb c");
}

TEST(HttpRequestHead, TrimsOwsAroundValue) {
    const Parsed p = parse_request("GET / HTTP/1.1\r\nHost:  \t a b \t\r\nEmpty:\r\nE2:  \r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->headers[0].value, "a b");
    EXPECT_EQ(p.head->headers[1].value, "");
    EXPECT_EQ(p.head->headers[2].value, "");
}

TEST(HttpRequestHead, KeepsColonsInValue) {
    const Parsed p = parse_request("GET / HTTP/1.1\r\nHost: a:80\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->headers[0].value, "a:80");
}

// --- limits -------------------------------------------------------------------

TEST(HttpRequestHead, RejectsLongTargetComplete) {
    Limits limits;
    limits.max_target_length = 10;
    EXPECT_EQ(request_error("GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", limits),
              ParseError::kTargetTooLong);
    EXPECT_EQ(parse_request("GET /012345678 HTTP/1.1\r\nHost: a\r\n\r\n", limits).result.status,
              ParseStatus::kComplete);
}

TEST(HttpRequestHead, RejectsLongTargetIncomplete) {
    Limits limits;
    limits.max_target_length = 10;
    EXPECT_EQ(parse_request("GET /012345678", limits).result.status, ParseStatus::kNeedMore);
    EXPECT_EQ(request_error("GET /0123456789", limits), ParseError::kTargetTooLong);
    EXPECT_EQ(status_for(ParseError::kTargetTooLong), 414);
}

// With the target limit equal to the head limit (the worker's case when
// max_header_size is under 8 KiB), a target that runs past the head limit is
// still the target's fault: 414, not 431.
TEST(HttpRequestHead, TargetFillingTheHeadLimitIsTooLong) {
    Limits limits;
    limits.max_header_size = 64;
    limits.max_target_length = 64;
    const std::string line = "GET /" + std::string(70, 'u');
    EXPECT_EQ(request_error(line, limits), ParseError::kTargetTooLong);
    // A request line that fills the limit before its target begins is not.
    EXPECT_EQ(request_error(std::string(70, 'G'), limits), ParseError::kHeadersTooLarge);
    // Nor is a target that ended: then the version or the fields fill it.
    EXPECT_EQ(request_error("GET /u HTTP/1.1" + std::string(60, 'x'), limits),
              ParseError::kHeadersTooLarge);
}

TEST(HttpRequestHead, RejectsOversizedHeadComplete) {
    Limits limits;
    limits.max_header_size = 64;
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(40, 'x') + "\r\n\r\n";
    ASSERT_GT(text.size(), 64u);
    EXPECT_EQ(request_error(text, limits), ParseError::kHeadersTooLarge);
    limits.max_header_size = text.size();
    EXPECT_EQ(parse_request(text, limits).result.status, ParseStatus::kComplete);
}

TEST(HttpRequestHead, RejectsOversizedHeadIncomplete) {
    Limits limits;
    limits.max_header_size = 64;
    const std::string text = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'x');
    EXPECT_EQ(request_error(text, limits), ParseError::kHeadersTooLarge);
    EXPECT_EQ(request_error(text.substr(0, 64), limits), ParseError::kHeadersTooLarge);
    EXPECT_EQ(parse_request(text.substr(0, 63), limits).result.status, ParseStatus::kNeedMore);
    EXPECT_EQ(status_for(ParseError::kHeadersTooLarge), 431);
}

TEST(HttpRequestHead, RejectsEndlessLeadingEmptyLines) {
    Limits limits;
    limits.max_header_size = 64;
    std::string text;
    for (int i = 0; i < 40; ++i) text += "\r\n";
    EXPECT_EQ(request_error(text, limits), ParseError::kHeadersTooLarge);
}

std::string request_with_fields(size_t n, bool finished) {
    std::string text = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (size_t i = 1; i < n; ++i) text += "X-" + std::to_string(i) + ": v\r\n";
    if (finished) text += "\r\n";
    return text;
}

TEST(HttpRequestHead, RejectsTooManyHeadersComplete) {
    Limits limits;
    limits.max_headers = 5;
    EXPECT_EQ(parse_request(request_with_fields(5, true), limits).result.status,
              ParseStatus::kComplete);
    EXPECT_EQ(request_error(request_with_fields(6, true), limits), ParseError::kTooManyHeaders);
}

TEST(HttpRequestHead, RejectsTooManyHeadersIncomplete) {
    Limits limits;
    limits.max_headers = 5;
    EXPECT_EQ(parse_request(request_with_fields(5, false), limits).result.status,
              ParseStatus::kNeedMore);
    EXPECT_EQ(request_error(request_with_fields(6, false), limits), ParseError::kTooManyHeaders);
    // The start of a sixth field is already one too many.
    EXPECT_EQ(request_error(request_with_fields(5, false) + "X", limits),
              ParseError::kTooManyHeaders);
    EXPECT_EQ(status_for(ParseError::kTooManyHeaders), 431);
}

TEST(HttpRequestHead, CapsMaxHeadersAtHardCeiling) {
    Limits limits;
    limits.max_headers = 100000;
    limits.max_header_size = 1 << 20;
    EXPECT_EQ(parse_request(request_with_fields(kMaxHeaders, true), limits).result.status,
              ParseStatus::kComplete);
    EXPECT_EQ(request_error(request_with_fields(kMaxHeaders + 1, true), limits),
              ParseError::kTooManyHeaders);
}

// --- incremental and pipelined input -------------------------------------------

TEST(HttpRequestHead, ByteAtATime) {
    const std::string text =
        "POST http://h/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX: y\r\n\r\n";
    for (size_t n = 0; n < text.size(); ++n) {
        EXPECT_EQ(parse_request(std::string_view(text).substr(0, n)).result.status,
                  ParseStatus::kNeedMore)
            << n;
    }
    const Parsed p = parse_request(text);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->head_length, text.size());
    EXPECT_EQ(p.head->header_count, 3u);
}

TEST(HttpRequestHead, PipelinedHeadStopsAtBlankLine) {
    const std::string text = std::string(kSimpleGet) + "abc" + std::string(kSimpleGet);
    const Parsed p = parse_request(text);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->head_length, kSimpleGet.size());
    EXPECT_EQ(p.head->header_count, 2u);
}

TEST(HttpRequestHead, PipelinedInputPastSizeLimitIsFine) {
    Limits limits;
    limits.max_header_size = kSimpleGet.size();
    const std::string text = std::string(kSimpleGet) + std::string(1000, 'x');
    const Parsed p = parse_request(text, limits);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->head_length, kSimpleGet.size());
}

// --- responses -----------------------------------------------------------------

TEST(HttpResponseHead, ParsesStatusLine) {
    const ParsedResponse p = parse_response("HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->status, 404);
    EXPECT_EQ(p.head->reason, "Not Found");
    EXPECT_EQ(p.head->version_minor, 1);
    EXPECT_EQ(p.head->header_count, 1u);
}

TEST(HttpResponseHead, AcceptsEmptyReason) {
    const ParsedResponse p = parse_response("HTTP/1.0 200 \r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->reason, "");
    EXPECT_EQ(p.head->version_minor, 0);
}

TEST(HttpResponseHead, AcceptsObsTextInReason) {
    EXPECT_EQ(parse_response("HTTP/1.1 200 \xc3\x89tat\tok\r\n\r\n").result.status,
              ParseStatus::kComplete);
}

TEST(HttpResponseHead, RejectsMissingSpaceAfterStatus) {
    EXPECT_EQ(response_error("HTTP/1.1 200\r\n\r\n"), ParseError::kBadStatusLine);
}

TEST(HttpResponseHead, RejectsBadStatusCode) {
    EXPECT_EQ(response_error("HTTP/1.1 099 X\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1 600 X\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1 20 X\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1 2000 X\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1 2x0 X\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1  200 X\r\n\r\n"), ParseError::kBadStatusLine);
}

TEST(HttpResponseHead, RejectsBadVersion) {
    EXPECT_EQ(response_error("HTTP/1 200 OK\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("ICY 200 OK\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/2.0 200 OK\r\n\r\n"), ParseError::kUnsupportedVersion);
    EXPECT_EQ(status_for(ParseError::kBadStatusLine), 502);
}

TEST(HttpResponseHead, RejectsControlInReason) {
    EXPECT_EQ(response_error("HTTP/1.1 200 O\x01K\r\n\r\n"), ParseError::kBadStatusLine);
    EXPECT_EQ(response_error("HTTP/1.1 200 O\rK\r\n\r\n"), ParseError::kBadStatusLine);
}

TEST(HttpResponseHead, RejectsBareLineFeed) {
    EXPECT_EQ(response_error("HTTP/1.1 200 OK\n\r\n"), ParseError::kBareLineFeed);
    EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nA: b\n\n"), ParseError::kBareLineFeed);
}

TEST(HttpResponseHead, RejectsLeadingEmptyLine) {
    // Only servers skip empty lines before a start line (§2.2).
    EXPECT_EQ(response_error("\r\nHTTP/1.1 200 OK\r\n\r\n"), ParseError::kBadStatusLine);
}

TEST(HttpResponseHead, ByteAtATime) {
    const std::string text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const size_t head = text.size() - 2;
    for (size_t n = 0; n < head; ++n) {
        EXPECT_EQ(parse_response(std::string_view(text).substr(0, n)).result.status,
                  ParseStatus::kNeedMore);
    }
    const ParsedResponse p = parse_response(text);
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(p.head->head_length, head);
}

TEST(HttpResponseHead, RejectsOversizedHead) {
    Limits limits;
    limits.max_header_size = 32;
    const std::string text = "HTTP/1.1 200 OK\r\nX: " + std::string(40, 'a');
    const ParsedResponse p = parse_response(text, limits);
    EXPECT_EQ(p.result.error, ParseError::kHeadersTooLarge);
}

// --- request framing -----------------------------------------------------------

TEST(HttpFraming, RequestWithoutBodyFields) {
    const BodyFraming f = request_framing("Host: a\r\n");
    EXPECT_EQ(f.error, ParseError::kNone);
    EXPECT_EQ(f.kind, BodyKind::kNone);
}

TEST(HttpFraming, RequestContentLength) {
    const BodyFraming f = request_framing("Host: a\r\nContent-Length: 42\r\n");
    EXPECT_EQ(f.error, ParseError::kNone);
    EXPECT_EQ(f.kind, BodyKind::kContentLength);
    EXPECT_EQ(f.length, 42u);
}

TEST(HttpFraming, RequestChunked) {
    const BodyFraming f = request_framing("Host: a\r\nTransfer-Encoding: chunked\r\n");
    EXPECT_EQ(f.error, ParseError::kNone);
    EXPECT_EQ(f.kind, BodyKind::kChunked);
}

TEST(HttpFraming, TransferEncodingIsCaseInsensitive) {
    EXPECT_EQ(request_framing("Host: a\r\ntransfer-encoding: ChUnKeD\r\n").kind,
              BodyKind::kChunked);
}

TEST(HttpFraming, TabIsValidOwsBeforeChunked) {
    const BodyFraming f = request_framing("Host: a\r\nTransfer-Encoding:\tchunked\r\n");
    EXPECT_EQ(f.error, ParseError::kNone);
    EXPECT_EQ(f.kind, BodyKind::kChunked);
}

TEST(HttpFraming, RejectsContentLengthWithTransferEncoding) {  // CL.TE
    EXPECT_EQ(
        request_framing("Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n").error,
        ParseError::kLengthAndChunked);
}

TEST(HttpFraming, RejectsTransferEncodingWithContentLength) {  // TE.CL
    EXPECT_EQ(
        request_framing("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n").error,
        ParseError::kLengthAndChunked);
}

TEST(HttpFraming, RejectsTransferEncodingWithInvalidContentLength) {
    EXPECT_EQ(
        request_framing("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: x\r\n").error,
        ParseError::kLengthAndChunked);
}

TEST(HttpFraming, RejectsChunkedThenIdentity) {  // TE.TE
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked, identity\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsChunkedNotFinalAcrossFieldLines) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                              "gzip\r\n")
                  .error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsWhitespaceBeforeColonInTransferEncoding) {
    EXPECT_EQ(request_error("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"),
              ParseError::kWhitespaceBeforeColon);
}

TEST(HttpFraming, RejectsLookalikeCoding) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: xchunked\r\n").error,
              ParseError::kChunkedNotFinal);
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked-false\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsOtherCodingBeforeChunked) {
    const BodyFraming f = request_framing("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n");
    EXPECT_EQ(f.error, ParseError::kUnsupportedTransferCoding);
    EXPECT_EQ(status_for(f.error), 501);
}

TEST(HttpFraming, RejectsChunkedTwice) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked, chunked\r\n").error,
              ParseError::kChunkedNotFinal);
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                              "chunked\r\n")
                  .error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsEmptyTransferCodingElements) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: ,chunked\r\n").error,
              ParseError::kChunkedNotFinal);
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked,\r\n").error,
              ParseError::kChunkedNotFinal);
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding:\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsChunkedWithParameters) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chunked;q=1\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsNonTokenCoding) {
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: \"chunked\"\r\n").error,
              ParseError::kChunkedNotFinal);
    EXPECT_EQ(request_framing("Host: a\r\nTransfer-Encoding: chun ked\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsTransferEncodingInHttp10) {
    const BodyFraming f = request_framing("Transfer-Encoding: chunked\r\n", "HTTP/1.0");
    EXPECT_EQ(f.error, ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsDifferingContentLengths) {
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, AcceptsIdenticalRepeatedContentLength) {
    const BodyFraming f = request_framing("Host: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n");
    EXPECT_EQ(f.error, ParseError::kNone);
    EXPECT_EQ(f.length, 5u);
}

TEST(HttpFraming, RejectsContentLengthList) {
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 5, 5\r\n").error,
              ParseError::kBadContentLength);
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 5,5\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, RejectsSignedContentLength) {
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: +5\r\n").error,
              ParseError::kBadContentLength);
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: -5\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, RejectsHexContentLength) {
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 0x5\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, RejectsMalformedContentLength) {
    for (const char* v : {"", "5 5", "5a", "1e3", "5.0"}) {
        const std::string fields = std::string("Host: a\r\nContent-Length: ") + v + "\r\n";
        EXPECT_EQ(request_framing(fields).error, ParseError::kBadContentLength) << v;
    }
}

TEST(HttpFraming, ContentLengthOverflow) {
    const BodyFraming max = request_framing("Host: a\r\nContent-Length: 9223372036854775807\r\n");
    EXPECT_EQ(max.error, ParseError::kNone);
    EXPECT_EQ(max.length, 9223372036854775807u);
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 9223372036854775808\r\n").error,
              ParseError::kBadContentLength);
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 99999999999999999999999\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, AcceptsLeadingZerosInContentLength) {
    EXPECT_EQ(request_framing("Host: a\r\nContent-Length: 007\r\n").length, 7u);
}

TEST(HttpFraming, RejectsMissingHost) {
    EXPECT_EQ(request_framing("Content-Length: 1\r\n").error, ParseError::kMissingHost);
}

TEST(HttpFraming, AllowsMissingHostInHttp10) {
    EXPECT_EQ(request_framing("", "HTTP/1.0").error, ParseError::kNone);
}

TEST(HttpFraming, RejectsDuplicateHost) {
    EXPECT_EQ(request_framing("Host: a\r\nhost: a\r\n").error, ParseError::kDuplicateHost);
    EXPECT_EQ(request_framing("Host: a\r\nHost: b\r\n", "HTTP/1.0").error,
              ParseError::kDuplicateHost);
}

TEST(HttpFraming, AcceptsEmptyHost) {
    EXPECT_EQ(request_framing("Host:\r\n").error, ParseError::kNone);
}

// --- response framing ----------------------------------------------------------

TEST(HttpFraming, ResponseToHeadHasNoBody) {
    const BodyFraming f = response_framing("200 OK\r\nContent-Length: 10\r\n", "HEAD");
    EXPECT_EQ(f.kind, BodyKind::kNone);
    EXPECT_EQ(f.error, ParseError::kNone);
}

TEST(HttpFraming, NoContentAndNotModifiedHaveNoBody) {
    EXPECT_EQ(response_framing("204 No Content\r\nContent-Length: 10\r\n").kind, BodyKind::kNone);
    EXPECT_EQ(response_framing("304 Not Modified\r\nTransfer-Encoding: chunked\r\n").kind,
              BodyKind::kNone);
}

TEST(HttpFraming, InformationalHasNoBody) {
    const BodyFraming f =
        response_framing("100 Continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n");
    EXPECT_EQ(f.kind, BodyKind::kNone);
    EXPECT_EQ(f.error, ParseError::kNone);
}

TEST(HttpFraming, SuccessfulConnectHasNoBody) {
    EXPECT_EQ(response_framing("200 Connection established\r\n", "CONNECT").kind, BodyKind::kNone);
    // A refused CONNECT carries an ordinary body.
    EXPECT_EQ(response_framing("403 Forbidden\r\nContent-Length: 3\r\n", "CONNECT").kind,
              BodyKind::kContentLength);
}

TEST(HttpFraming, ResponseUntilClose) {
    EXPECT_EQ(response_framing("200 OK\r\n").kind, BodyKind::kUntilClose);
}

TEST(HttpFraming, ResponseContentLength) {
    const BodyFraming f = response_framing("200 OK\r\nContent-Length: 123\r\n");
    EXPECT_EQ(f.kind, BodyKind::kContentLength);
    EXPECT_EQ(f.length, 123u);
}

TEST(HttpFraming, ResponseZeroContentLength) {
    const BodyFraming f = response_framing("200 OK\r\nContent-Length: 0\r\n");
    EXPECT_EQ(f.kind, BodyKind::kContentLength);
    EXPECT_EQ(f.length, 0u);
}

TEST(HttpFraming, ResponseChunked) {
    EXPECT_EQ(response_framing("200 OK\r\nTransfer-Encoding: chunked\r\n").kind,
              BodyKind::kChunked);
}

// The proxy re-frames bodies: a coding other than chunked would reach the
// client without its name, so it is refused (as nginx does).
TEST(HttpFraming, ResponseCodingsOtherThanChunkedAreRefused) {
    for (const char* te : {"gzip, chunked", "gzip", "chunked, gzip", "identity", "x-custom"}) {
        const BodyFraming f =
            response_framing(std::string("200 OK\r\nTransfer-Encoding: ") + te + "\r\n");
        EXPECT_EQ(f.error, ParseError::kUnsupportedTransferCoding) << te;
    }
}

// A response to HEAD and a 304 pass their Content-Length on: it is checked.
TEST(HttpFraming, BodilessResponseLengthIsValidated) {
    const BodyFraming head = response_framing("200 OK\r\nContent-Length: 42\r\n", "HEAD");
    EXPECT_EQ(head.kind, BodyKind::kNone);
    EXPECT_TRUE(head.length_declared);
    EXPECT_EQ(head.length, 42u);
    const BodyFraming none = response_framing("304 Not Modified\r\n");
    EXPECT_EQ(none.kind, BodyKind::kNone);
    EXPECT_FALSE(none.length_declared);
    for (const char* fields :
         {"Content-Length: 1, 2\r\n", "Content-Length: 5\r\nContent-Length: 6\r\n",
          "Content-Length: -1\r\n", "Content-Length: 0x10\r\n",
          "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"}) {
        EXPECT_NE(response_framing(std::string("200 OK\r\n") + fields, "HEAD").error,
                  ParseError::kNone)
            << fields;
        EXPECT_NE(response_framing(std::string("304 Not Modified\r\n") + fields).error,
                  ParseError::kNone)
            << fields;
    }
    // No content at all: the fields are dropped unread.
    EXPECT_EQ(response_framing("204 No Content\r\nContent-Length: x\r\n").error, ParseError::kNone);
}

TEST(HttpFraming, RejectsResponseWithLengthAndChunked) {
    EXPECT_EQ(
        response_framing("200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n").error,
        ParseError::kLengthAndChunked);
}

TEST(HttpFraming, RejectsResponseWithBadContentLength) {
    EXPECT_EQ(response_framing("200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n").error,
              ParseError::kBadContentLength);
}

TEST(HttpFraming, RejectsResponseWithChunkedTwice) {
    EXPECT_EQ(response_framing("200 OK\r\nTransfer-Encoding: chunked, chunked\r\n").error,
              ParseError::kChunkedNotFinal);
}

TEST(HttpFraming, RejectsTransferEncodingInHttp10Response) {
    const ParsedResponse p =
        parse_response("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    ASSERT_EQ(p.result.status, ParseStatus::kComplete);
    EXPECT_EQ(response_body_framing(*p.head, "GET").error, ParseError::kChunkedNotFinal);
}

// --- helpers and error table -----------------------------------------------------

TEST(HttpHelpers, Iequals) {
    EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
    EXPECT_FALSE(iequals("Content-Length", "Content-Lengt"));
    EXPECT_FALSE(iequals("a", "b"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("\xc9", "\xe9"));  // ASCII only
}

TEST(HttpHelpers, ListContainsToken) {
    EXPECT_TRUE(list_contains_token("keep-alive, Upgrade", "upgrade"));
    EXPECT_TRUE(list_contains_token(" close ", "close"));
    EXPECT_TRUE(list_contains_token("a,\tclose\t,b", "close"));
    EXPECT_FALSE(list_contains_token("closed", "close"));
    EXPECT_FALSE(list_contains_token("", "close"));
    EXPECT_FALSE(list_contains_token("a b close", "close"));
}

TEST(HttpErrors, StatusForEveryError) {
    EXPECT_EQ(status_for(ParseError::kBadRequestLine), 400);
    EXPECT_EQ(status_for(ParseError::kBadHeaderValue), 400);
    EXPECT_EQ(status_for(ParseError::kLengthAndChunked), 400);
    EXPECT_EQ(status_for(ParseError::kChunkedNotFinal), 400);
    EXPECT_EQ(status_for(ParseError::kBadChunkSize), 400);
    EXPECT_EQ(status_for(ParseError::kChunkLineTooLong), 400);
    EXPECT_EQ(status_for(ParseError::kTrailersTooLarge), 431);
    EXPECT_EQ(status_for(ParseError::kUnsupportedVersion), 505);
    EXPECT_EQ(status_for(ParseError::kUnsupportedTransferCoding), 501);
}

TEST(HttpErrors, DescribeEveryError) {
    EXPECT_STREQ(describe(ParseError::kBadRequestLine), "malformed request line");
    EXPECT_STREQ(describe(ParseError::kWhitespaceBeforeColon),
                 "whitespace before colon in header field");
    for (int e = 0; e <= static_cast<int>(ParseError::kBadTrailer); ++e) {
        const std::string text = describe(static_cast<ParseError>(e));
        EXPECT_FALSE(text.empty());
        EXPECT_NE(text, "unknown error") << e;
    }
}

// --- chunked -------------------------------------------------------------------

// Simulates the caller: keeps unconsumed bytes, feeds `input` in pieces of
// `step` bytes, moves chunk data out, and reports how it all ended.
struct Decoded {
    ParseStatus status = ParseStatus::kNeedMore;
    ParseError error = ParseError::kNone;
    std::string data;
    size_t leftover = 0;  // bytes after the body (pipelined data)
};

Decoded decode(std::string_view input, size_t step, const Limits& limits = Limits()) {
    ChunkedDecoder decoder(limits);
    Decoded out;
    std::string pending;
    for (size_t fed = 0; fed < input.size() || fed == 0;) {
        const size_t n = std::min(step, input.size() - fed);
        pending.append(input.substr(fed, n));
        fed += n;
        for (;;) {
            if (decoder.data_remaining() > 0) {
                const size_t take = std::min<uint64_t>(decoder.data_remaining(), pending.size());
                if (take == 0) break;
                out.data.append(pending, 0, take);
                pending.erase(0, take);
                decoder.consume_data(take);
                continue;
            }
            const ChunkedDecoder::Step s = decoder.parse_framing(pending);
            EXPECT_LE(s.consumed, pending.size());
            pending.erase(0, s.consumed);
            out.status = s.status;
            out.error = s.error;
            if (s.status != ParseStatus::kNeedMore) {
                out.leftover = pending.size() + (input.size() - fed);
                return out;
            }
            if (decoder.data_remaining() == 0) break;
        }
        if (n == 0) break;
    }
    return out;
}

// Decodes whole and byte at a time; both must agree.
Decoded decode_both(std::string_view input, const Limits& limits = Limits()) {
    const Decoded whole = decode(input, input.size() + 1, limits);
    const Decoded bytes = decode(input, 1, limits);
    EXPECT_EQ(whole.status, bytes.status);
    EXPECT_EQ(whole.error, bytes.error);
    EXPECT_EQ(whole.data, bytes.data);
    EXPECT_EQ(whole.leftover, bytes.leftover);
    return whole;
}

TEST(Chunked, DecodesSimpleBody) {
    const Decoded d = decode_both("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "hello world");
    EXPECT_EQ(d.leftover, 0u);
}

TEST(Chunked, ByteAtATime) {
    const std::string body = "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n";
    const Decoded d = decode(body, 1);
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "0123456789abcdefghij");
}

TEST(Chunked, ConsumesOnlyCompleteUnits) {
    ChunkedDecoder decoder;
    ChunkedDecoder::Step s = decoder.parse_framing("1");
    EXPECT_EQ(s.status, ParseStatus::kNeedMore);
    EXPECT_EQ(s.consumed, 0u);
    s = decoder.parse_framing("1f\r");
    EXPECT_EQ(s.consumed, 0u);
    s = decoder.parse_framing("1f\r\nabc");
    EXPECT_EQ(s.status, ParseStatus::kNeedMore);
    EXPECT_EQ(s.consumed, 4u);
    EXPECT_EQ(decoder.data_remaining(), 31u);
}

TEST(Chunked, StopsAtEndOfBodyWithPipelinedData) {
    const Decoded d = decode_both("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "abc");
    EXPECT_EQ(d.leftover, 16u);
}

TEST(Chunked, IncompleteBodyNeedsMore) {
    EXPECT_EQ(decode_both("3\r\nabc\r\n").status, ParseStatus::kNeedMore);
    EXPECT_EQ(decode_both("3\r\nab").status, ParseStatus::kNeedMore);
    EXPECT_EQ(decode_both("0\r\n").status, ParseStatus::kNeedMore);
    EXPECT_EQ(decode_both("0\r\nX: y\r\n").status, ParseStatus::kNeedMore);
}

TEST(Chunked, EmptyBody) {
    const Decoded d = decode_both("0\r\n\r\n");
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "");
}

TEST(Chunked, AcceptsUpperAndLowerHexAndLeadingZeros) {
    const Decoded d = decode_both("0000B\r\nhello world\r\n00\r\n\r\n");
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "hello world");
}

TEST(Chunked, AcceptsExtensions) {
    const Decoded d = decode_both(
        "3;a\r\nabc\r\n"
        "2 ; b = c ;d=\"q \\\" \\\\ s\"\r\nde\r\n"
        "1;e=\"\"\r\nf\r\n"
        "0;last\r\n\r\n");
    EXPECT_EQ(d.error, ParseError::kNone);
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "abcdef");
}

TEST(Chunked, RejectsBadExtensions) {
    for (const char* line :
         {"3;\r\n", "3;=x\r\n", "3;a=\r\n", "3;a=\"x\r\n", "3;a=b c\r\n", "3;a=\"x\"y\r\n",
          "3 \r\n", "3;a \r\n", "3;a=b;\r\n", "3;a@b\r\n", "3;a=\"\x01\"\r\n"}) {
        EXPECT_EQ(decode_both(line).error, ParseError::kBadChunkExtension) << line;
    }
}

TEST(Chunked, RejectsBadChunkSize) {
    for (const char* line :
         {"\r\n", "x\r\n", "-1\r\n", "+1\r\n", "0x5\r\n", "5x\r\n", " 5\r\n", "5\r\r\n"}) {
        EXPECT_EQ(decode_both(line).error, ParseError::kBadChunkSize) << line;
    }
}

TEST(Chunked, RejectsOverflowingSize) {
    EXPECT_EQ(decode_both("10000000000000000\r\n").error, ParseError::kBadChunkSize);
    EXPECT_EQ(decode_both("FFFFFFFFFFFFFFFF\r\n").error, ParseError::kBadChunkSize);
    EXPECT_EQ(decode_both("4000000000000001\r\n").error, ParseError::kBadChunkSize);
    EXPECT_EQ(decode_both("00000000000000001\r\n").error, ParseError::kBadChunkSize);
}

TEST(Chunked, AcceptsLargestSize) {
    ChunkedDecoder decoder;
    const ChunkedDecoder::Step s = decoder.parse_framing("4000000000000000\r\n");
    EXPECT_EQ(s.status, ParseStatus::kNeedMore);
    EXPECT_EQ(decoder.data_remaining(), uint64_t{1} << 62);
}

TEST(Chunked, RejectsMissingDataTerminator) {
    EXPECT_EQ(decode_both("3\r\nabcd\r\n0\r\n\r\n").error, ParseError::kBadChunkTerminator);
    EXPECT_EQ(decode_both("3\r\nabc\rx0\r\n\r\n").error, ParseError::kBadChunkTerminator);
    EXPECT_EQ(decode_both("3\r\nabc\n0\r\n\r\n").error, ParseError::kBadChunkTerminator);
}

TEST(Chunked, RejectsBareLineFeed) {
    EXPECT_EQ(decode_both("3\nabc\r\n0\r\n\r\n").error, ParseError::kBareLineFeed);
    EXPECT_EQ(decode_both("0\r\n\n").error, ParseError::kBareLineFeed);
    EXPECT_EQ(decode_both("0\r\nX: y\n\r\n").error, ParseError::kBareLineFeed);
}

TEST(Chunked, RejectsLongSizeLine) {
    const std::string ext = "1;a=" + std::string(5000, 'b');
    EXPECT_EQ(decode_both(ext).error, ParseError::kChunkLineTooLong);
    EXPECT_EQ(decode_both(ext + "\r\n").error, ParseError::kChunkLineTooLong);
    // Exactly at the limit (4096 bytes with the CRLF) is fine.
    const std::string fits = "1;a=" + std::string(4096 - 6, 'b') + "\r\nx\r\n0\r\n\r\n";
    EXPECT_EQ(decode_both(fits).status, ParseStatus::kComplete);
}

TEST(Chunked, AcceptsTrailers) {
    const Decoded d = decode_both("2\r\nhi\r\n0\r\nExpires: never\r\nX-Sum:\t abc \r\n\r\nrest");
    EXPECT_EQ(d.status, ParseStatus::kComplete);
    EXPECT_EQ(d.data, "hi");
    EXPECT_EQ(d.leftover, 4u);
}

TEST(Chunked, RejectsBadTrailers) {
    for (const char* body : {"0\r\nX : y\r\n\r\n", "0\r\n y\r\n\r\n", "0\r\nNo colon\r\n\r\n",
                             "0\r\nX: a\x01\r\n\r\n", "0\r\nX: a\rb\r\n\r\n"}) {
        EXPECT_EQ(decode_both(body).error, ParseError::kBadTrailer) << body;
    }
}

TEST(Chunked, RejectsTrailersTooLarge) {
    Limits limits;
    limits.max_header_size = 64;
    const std::string big = "0\r\nX: " + std::string(80, 'a') + "\r\n\r\n";
    EXPECT_EQ(decode_both(big, limits).error, ParseError::kTrailersTooLarge);
    EXPECT_EQ(decode_both(big.substr(0, 70), limits).error, ParseError::kTrailersTooLarge);
    std::string many = "0\r\n";
    for (int i = 0; i < 10; ++i) many += "X: 1234567\r\n";
    EXPECT_EQ(decode_both(many + "\r\n", limits).error, ParseError::kTrailersTooLarge);
}

TEST(Chunked, RejectsTooManyTrailers) {
    Limits limits;
    limits.max_headers = 2;
    EXPECT_EQ(decode_both("0\r\nA: 1\r\nB: 2\r\n\r\n", limits).status, ParseStatus::kComplete);
    EXPECT_EQ(decode_both("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits).error,
              ParseError::kTrailersTooLarge);
}

TEST(Chunked, ErrorIsSticky) {
    ChunkedDecoder decoder;
    EXPECT_EQ(decoder.parse_framing("z\r\n").status, ParseStatus::kError);
    const ChunkedDecoder::Step s = decoder.parse_framing("0\r\n\r\n");
    EXPECT_EQ(s.status, ParseStatus::kError);
    EXPECT_EQ(s.error, ParseError::kBadChunkSize);
    EXPECT_EQ(s.consumed, 0u);
}

TEST(Chunked, DoneStaysDone) {
    ChunkedDecoder decoder;
    EXPECT_EQ(decoder.parse_framing("0\r\n\r\n").status, ParseStatus::kComplete);
    EXPECT_TRUE(decoder.done());
    const ChunkedDecoder::Step s = decoder.parse_framing("5\r\n");
    EXPECT_EQ(s.status, ParseStatus::kComplete);
    EXPECT_EQ(s.consumed, 0u);
}

TEST(Chunked, RoundTripsEverySplit) {
    const std::string body =
        "4;x=y\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\n";
    for (size_t step = 1; step <= body.size(); ++step) {
        const Decoded d = decode(body, step);
        EXPECT_EQ(d.status, ParseStatus::kComplete) << step;
        EXPECT_EQ(d.data, "Wikipedia in\r\n\r\nchunks.") << step;
    }
}

}  // namespace
}  // namespace common::http
