// Strict, pure HTTP/1.1 message parser (RFC 9112).
//
// Bytes in, result out: no libevent, no I/O, no allocation. The head parsers
// take the whole buffered prefix of a message each time more bytes arrive
// (heads are bounded by max_header_size, so rescanning is cheap) and return
// kComplete, kNeedMore or kError. Views in the result point into the caller's
// buffer and are valid as long as it is.
//
// Reject, never repair: anything RFC 9112 allows a recipient to reject and
// that a lenient peer might read differently (the request smuggling notes of
// §11.2) is an error here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace common::http {

enum class ParseStatus { kComplete, kNeedMore, kError };

// Every way a message can be refused. status_for() maps each to the status a
// proxy answers with; describe() gives the short text for the error body.
enum class ParseError {
    kNone,
    kBadRequestLine,             // 400: request-line grammar
    kBadMethod,                  // 400: method is not a token
    kBadTarget,                  // 400: request-target has a forbidden byte
    kTargetTooLong,              // 414: request-target over the limit
    kBadVersion,                 // 400: not HTTP-version syntax
    kUnsupportedVersion,         // 505: HTTP/2+ or HTTP/0.x in an HTTP/1 message
    kBadStatusLine,              // 502 (response): status-line grammar
    kBadHeaderName,              // 400: field-name is not a token
    kWhitespaceBeforeColon,      // 400: RFC 9112 §5.1
    kBadHeaderValue,             // 400: CTL/NUL/bare CR in a field value
    kObsFold,                    // 400: obsolete line folding, RFC 9112 §5.2
    kBareLineFeed,               // 400: LF without CR as a line terminator
    kHeadersTooLarge,            // 431: head over max_header_size
    kTooManyHeaders,             // 431: more fields than max_headers
    kBadContentLength,           // 400: not 1*DIGIT, overflow, or differing repeats
    kLengthAndChunked,           // 400: Content-Length with Transfer-Encoding, §6.3
    kUnsupportedTransferCoding,  // 501: any coding other than a final chunked
    kChunkedNotFinal,            // 400: TE without a single final chunked, or in HTTP/1.0
    kMissingHost,                // 400: HTTP/1.1 request without Host, §3.2
    kDuplicateHost,              // 400: more than one Host field
    kBadChunkSize,               // 400: chunk-size grammar or overflow
    kBadChunkExtension,          // 400: chunk-ext grammar
    kBadChunkTerminator,         // 400: data not followed by CRLF
    kChunkLineTooLong,           // 400: chunk-size line over the limit
    kTrailersTooLarge,           // 431: trailer section over max_header_size
    kBadTrailer,                 // 400: trailer field syntax
};

// HTTP status a proxy uses when it refuses a request for this reason.
int status_for(ParseError error);
// Short, human-readable cause for error bodies and logs (static storage).
const char* describe(ParseError error);

struct Limits {
    size_t max_header_size = 32 * 1024;   // request/status line + fields + CRLFs
    size_t max_target_length = 8 * 1024;  // request-target; over it: 414
    size_t max_headers = 100;             // field lines; over it: 431
};

constexpr size_t kMaxHeaders = 256;  // hard ceiling for Limits::max_headers

struct Header {
    std::string_view name;   // as received (case preserved)
    std::string_view value;  // leading and trailing OWS removed
};

struct RequestHead {
    std::string_view method;
    std::string_view target;
    int version_minor = 1;  // HTTP/1.<minor>; only 0 and 1 are accepted
    std::array<Header, kMaxHeaders> headers;
    size_t header_count = 0;
    size_t head_length = 0;  // bytes through the blank line
};

struct ResponseHead {
    int version_minor = 1;
    int status = 0;  // 100..599
    std::string_view reason;
    std::array<Header, kMaxHeaders> headers;
    size_t header_count = 0;
    size_t head_length = 0;
};

struct ParseResult {
    ParseStatus status = ParseStatus::kNeedMore;
    ParseError error = ParseError::kNone;
};

// Parses a request head from the start of `buffer`. kNeedMore when the blank
// line has not arrived yet and the limits are not exceeded yet.
ParseResult parse_request_head(std::string_view buffer, const Limits& limits, RequestHead& out);
// Parses a response (status-line) head. Same contract.
ParseResult parse_response_head(std::string_view buffer, const Limits& limits, ResponseHead& out);

// How the body of a message is delimited (RFC 9112 §6.3).
enum class BodyKind {
    kNone,           // no body
    kContentLength,  // exactly `length` bytes
    kChunked,        // chunked coding, see ChunkedDecoder
    kUntilClose,     // response only: read until the connection closes
};

struct BodyFraming {
    BodyKind kind = BodyKind::kNone;
    uint64_t length = 0;
    ParseError error = ParseError::kNone;  // kNone unless framing is invalid
    // kNone with a valid Content-Length of `length` that describes the
    // representation, not this message (a response to HEAD, a 304).
    bool length_declared = false;
};

// Body framing of a parsed request, or an error for every ambiguous case:
// CL+TE, differing Content-Length values, a coding other than a final chunked,
// Transfer-Encoding in an HTTP/1.0 message. Also checks the Host rules.
BodyFraming request_body_framing(const RequestHead& head);
// Body framing of a response to a request with `request_method`: HEAD, 1xx,
// 204, 304 and 2xx-to-CONNECT have no body. The Content-Length of a response
// to HEAD and of a 304 is validated like any other (it is passed on). Only
// the chunked coding is accepted: a body re-framed by a proxy cannot keep
// another coding's name, so any other is kUnsupportedTransferCoding.
BodyFraming response_body_framing(const ResponseHead& head, std::string_view request_method);

// Case-insensitive ASCII comparison for field names and tokens.
bool iequals(std::string_view a, std::string_view b);
// A token (RFC 9110 §5.6.2): one or more tchar.
bool is_token(std::string_view s);
// True when a comma-separated field value lists `token` (case-insensitive).
bool list_contains_token(std::string_view field_value, std::string_view token);

// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//
// The caller alternates two calls, so that chunk data never has to be made
// contiguous or copied by the decoder:
//   - while data_remaining() > 0, the next bytes of input are chunk data: the
//     caller moves up to that many and reports them with consume_data();
//   - otherwise it calls parse_framing() on the contiguous bytes it has; the
//     decoder consumes the chunk-size line, the CRLF after data, or the
//     last-chunk and trailer section, and says how many bytes it used.
class ChunkedDecoder {
  public:
    explicit ChunkedDecoder(const Limits& limits = Limits()) : limits_(limits) {}

    struct Step {
        ParseStatus status;  // kComplete: body finished; kNeedMore: call again
        size_t consumed;     // framing bytes used from the front of the input
        ParseError error;
    };

    // Consumes framing from the front of `input`. Returns kComplete once the
    // last-chunk and trailers are consumed, kError on malformed framing, and
    // kNeedMore otherwise (either data_remaining() became > 0 or more input
    // is needed). A framing line longer than the limit is an error even when
    // incomplete.
    Step parse_framing(std::string_view input);

    uint64_t data_remaining() const { return data_remaining_; }
    void consume_data(uint64_t n) { data_remaining_ -= n; }
    bool done() const { return state_ == State::kDone; }

  private:
    enum class State { kSize, kDataEnd, kTrailers, kDone, kError };
    // Each takes one framing unit from the front of `input`: sets `used` to
    // its length, or leaves it 0 when the unit is not complete yet.
    ParseError take_size_line(std::string_view input, size_t& used);
    ParseError take_data_end(std::string_view input, size_t& used);
    ParseError take_trailer_line(std::string_view input, size_t& used);

    Limits limits_;
    State state_ = State::kSize;
    ParseError error_ = ParseError::kNone;  // sticky once state_ is kError
    uint64_t data_remaining_ = 0;
    size_t trailer_bytes_ = 0;
    size_t trailer_count_ = 0;
};

}  // namespace common::http
