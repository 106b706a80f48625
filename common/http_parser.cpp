// Strict HTTP/1.1 parser, see http_parser.h for the contract.
//
// Everything works on std::string_view slices of the caller's buffer. Lines
// are split on LF only; the byte before each LF must be CR, and any CR left
// inside a line is then rejected by the grammar of whatever the line holds
// (a CR is neither tchar, nor VCHAR, nor OWS). That single rule covers both
// bare LF and bare CR without a special case in every element parser.
#include "common/http_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace common::http {

namespace {

// A chunk-size line, extensions included, longer than this is refused even
// before its end arrives, so a peer cannot make us buffer without bound.
constexpr size_t kMaxChunkLine = 4096;
// Chunk sizes above 2^62 are refused: no real body is that large, and the
// margin keeps every sum a caller makes with them far from uint64 overflow.
constexpr uint64_t kMaxChunkSize = uint64_t{1} << 62;
constexpr size_t kMaxChunkSizeDigits = 16;

// tchar from RFC 9110 §5.6.2.
bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}
bool is_vchar(unsigned char c) {
    return c >= 0x21 && c <= 0x7E;
}
bool is_obs_text(unsigned char c) {
    return c >= 0x80;
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Field values, reason phrases: HTAB / SP / VCHAR / obs-text.
bool is_field_byte(unsigned char c) {
    return is_ows(c) || is_vchar(c) || is_obs_text(c);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

enum class LineStatus { kLine, kPartial, kBareLf };

struct Line {
    LineStatus status;
    std::string_view text;  // kLine: without CRLF; kPartial: all that is there
    size_t next;            // kLine: offset just past the LF
};

// Splits the line starting at `pos`. A partial line keeps a trailing CR, if
// any, so that callers can tell an almost-blank line from a field line.
Line read_line(std::string_view buf, size_t pos) {
    const std::string_view rest = buf.substr(pos);
    const size_t lf = rest.find('\n');
    if (lf == std::string_view::npos) return {LineStatus::kPartial, rest, 0};
    if (lf == 0 || rest[lf - 1] != '\r') return {LineStatus::kBareLf, {}, 0};
    return {LineStatus::kLine, rest.substr(0, lf - 1), pos + lf + 1};
}

ParseResult fail(ParseError error) {
    return {ParseStatus::kError, error};
}
ParseResult complete() {
    return {ParseStatus::kComplete, ParseError::kNone};
}

// No blank line yet: more may come, unless the head already fills the limit
// (a complete head must end within max_header_size bytes).
ParseResult incomplete(std::string_view buffer, const Limits& limits) {
    if (buffer.size() >= limits.max_header_size) return fail(ParseError::kHeadersTooLarge);
    return {ParseStatus::kNeedMore, ParseError::kNone};
}

size_t max_fields(const Limits& limits) {
    return std::min(limits.max_headers, kMaxHeaders);
}

// HTTP-version = "HTTP/" DIGIT "." DIGIT; only 1.0 and 1.1 are spoken here.
ParseError parse_version(std::string_view s, int& minor, ParseError syntax_error) {
    if (s.size() != 8 || s.substr(0, 5) != "HTTP/" || !is_digit(s[5]) || s[6] != '.' ||
        !is_digit(s[7])) {
        return syntax_error;
    }
    if (s[5] != '1' || (s[7] != '0' && s[7] != '1')) return ParseError::kUnsupportedVersion;
    minor = s[7] - '0';
    return ParseError::kNone;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5).
ParseError parse_field_line(std::string_view line, Header& out) {
    if (!line.empty() && is_ows(line.front())) return ParseError::kObsFold;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return ParseError::kBadHeaderName;
    const std::string_view name = line.substr(0, colon);
    // §5.1: no whitespace is allowed between the field name and colon.
    if (is_ows(name.back())) return ParseError::kWhitespaceBeforeColon;
    if (!is_token(name)) return ParseError::kBadHeaderName;
    const std::string_view value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value) {
        if (!is_field_byte(c)) return ParseError::kBadHeaderValue;
    }
    out = {name, value};
    return ParseError::kNone;
}

// Parses field lines from `pos` up to and including the blank line. `buffer`
// is the whole input, `view` its first max_header_size bytes.
ParseResult parse_fields(std::string_view buffer, std::string_view view, size_t pos,
                         const Limits& limits, std::array<Header, kMaxHeaders>& headers,
                         size_t& count, size_t& head_length) {
    const size_t max = max_fields(limits);
    for (;;) {
        const Line line = read_line(view, pos);
        if (line.status == LineStatus::kBareLf) return fail(ParseError::kBareLineFeed);
        if (line.status == LineStatus::kPartial) {
            // Anything but "" or "\r" here is the start of one more field.
            const bool more_fields = !line.text.empty() && line.text != "\r";
            if (count == max && more_fields) return fail(ParseError::kTooManyHeaders);
            return incomplete(buffer, limits);
        }
        if (line.text.empty()) {
            head_length = line.next;
            return complete();
        }
        if (count == max) return fail(ParseError::kTooManyHeaders);
        if (ParseError e = parse_field_line(line.text, headers[count]); e != ParseError::kNone) {
            return fail(e);
        }
        ++count;
        pos = line.next;
    }
}

// Skips the empty lines (CRLF only) a server may ignore before a start line
// (RFC 9112 §2.2) and returns the start line, complete or not.
Line read_start_line(std::string_view view) {
    Line line = read_line(view, 0);
    while (line.status == LineStatus::kLine && line.text.empty()) line = read_line(view, line.next);
    return line;
}

// On a request-line that has not ended yet, the target can already be known
// to be too long: 414 without waiting for the rest of it. So it is when the
// line fills the whole head limit (`fills_head`) with a target that has not
// ended: the line cannot end within the limit, and the target is what runs
// on (nginx answers a request line longer than its buffers with 414 too).
bool partial_target_too_long(std::string_view partial, bool fills_head, const Limits& limits) {
    const size_t sp = partial.find(' ');
    if (sp == std::string_view::npos) return false;
    const std::string_view rest = partial.substr(sp + 1);
    const size_t target_end = rest.find(' ');
    if (target_end == std::string_view::npos && fills_head) return true;
    return std::min(target_end, rest.size()) > limits.max_target_length;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
ParseError parse_request_line(std::string_view line, const Limits& limits, RequestHead& out) {
    const size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return ParseError::kBadRequestLine;
    const std::string_view method = line.substr(0, sp1);
    if (!is_token(method)) return ParseError::kBadMethod;
    const std::string_view rest = line.substr(sp1 + 1);
    const size_t sp2 = rest.find(' ');
    if (sp2 == std::string_view::npos || sp2 == 0) return ParseError::kBadRequestLine;
    const std::string_view target = rest.substr(0, sp2);
    if (target.size() > limits.max_target_length) return ParseError::kTargetTooLong;
    for (unsigned char c : target) {
        if (!is_vchar(c)) return ParseError::kBadTarget;
    }
    const std::string_view version = rest.substr(sp2 + 1);
    if (version.find(' ') != std::string_view::npos) return ParseError::kBadRequestLine;
    if (ParseError e = parse_version(version, out.version_minor, ParseError::kBadVersion);
        e != ParseError::kNone) {
        return e;
    }
    out.method = method;
    out.target = target;
    return ParseError::kNone;
}

// status-line = HTTP-version SP status-code SP [ reason-phrase ] (§4).
ParseError parse_status_line(std::string_view line, ResponseHead& out) {
    constexpr size_t kReasonStart = 13;  // "HTTP/1.1 200 "
    if (line.size() < kReasonStart || line[8] != ' ' || line[12] != ' ') {
        return ParseError::kBadStatusLine;
    }
    if (ParseError e =
            parse_version(line.substr(0, 8), out.version_minor, ParseError::kBadStatusLine);
        e != ParseError::kNone) {
        return e;
    }
    if (!is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11])) {
        return ParseError::kBadStatusLine;
    }
    const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 100 || status > 599) return ParseError::kBadStatusLine;
    const std::string_view reason = line.substr(kReasonStart);
    for (unsigned char c : reason) {
        if (!is_field_byte(c)) return ParseError::kBadStatusLine;
    }
    out.status = status;
    out.reason = reason;
    return ParseError::kNone;
}

// --- body framing -----------------------------------------------------------

// What all Transfer-Encoding field lines of a message say, taken as one list.
struct TransferCodings {
    bool present = false;
    bool malformed = false;  // empty element, non-token, chunked twice or with params
    bool chunked_final = false;
    bool other = false;  // some coding other than chunked
    size_t chunked = 0;  // how many times chunked appears
};

// One list element: transfer-coding = token *( OWS ";" OWS transfer-parameter ).
// Parameters of other codings are passed through unread; chunked has none,
// and §7.1 forbids applying it more than once.
void add_coding(std::string_view element, TransferCodings& tc) {
    const size_t semi = element.find(';');
    const std::string_view name = trim_ows(element.substr(0, semi));
    if (!is_token(name)) {
        tc.malformed = true;
    } else if (!iequals(name, "chunked")) {
        tc.other = true;
        tc.chunked_final = false;
    } else {
        if (semi != std::string_view::npos || ++tc.chunked > 1) tc.malformed = true;
        tc.chunked_final = true;
    }
}

TransferCodings read_transfer_codings(const std::array<Header, kMaxHeaders>& headers,
                                      size_t count) {
    TransferCodings tc;
    for (size_t i = 0; i < count; ++i) {
        if (!iequals(headers[i].name, "Transfer-Encoding")) continue;
        tc.present = true;
        std::string_view value = headers[i].value;
        for (;;) {
            const size_t comma = value.find(',');
            const std::string_view element = trim_ows(value.substr(0, comma));
            if (element.empty()) {
                tc.malformed = true;
            } else {
                add_coding(element, tc);
            }
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
        }
    }
    return tc;
}

// Content-Length = 1*DIGIT, at most 2^63 - 1. Repeated field lines must be
// byte-identical; a comma list ("5, 5") is refused rather than merged.
ParseError read_content_length(const std::array<Header, kMaxHeaders>& headers, size_t count,
                               bool& present, uint64_t& length) {
    constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
    std::string_view first;
    present = false;
    for (size_t i = 0; i < count; ++i) {
        if (!iequals(headers[i].name, "Content-Length")) continue;
        const std::string_view value = headers[i].value;
        if (present && value != first) return ParseError::kBadContentLength;
        if (present) continue;
        if (value.empty()) return ParseError::kBadContentLength;
        uint64_t n = 0;
        for (char c : value) {
            if (!is_digit(c)) return ParseError::kBadContentLength;
            const uint64_t digit = static_cast<uint64_t>(c - '0');
            if (n > (kMax - digit) / 10) return ParseError::kBadContentLength;
            n = n * 10 + digit;
        }
        present = true;
        first = value;
        length = n;
    }
    return ParseError::kNone;
}

// RFC 9110 §7.2: an HTTP/1.1 request carries exactly one Host.
ParseError check_host(const RequestHead& head) {
    size_t hosts = 0;
    for (size_t i = 0; i < head.header_count; ++i) {
        if (iequals(head.headers[i].name, "Host")) ++hosts;
    }
    if (hosts > 1) return ParseError::kDuplicateHost;
    if (hosts == 0 && head.version_minor == 1) return ParseError::kMissingHost;
    return ParseError::kNone;
}

BodyFraming framing_error(ParseError error) {
    return {BodyKind::kNone, 0, error};
}

// Shared by requests and responses: the checks that make TE framing
// ambiguous. §6.1: TE in an HTTP/1.0 message means faulty framing; §6.3:
// CL with TE is a smuggling attempt, refused rather than resolved.
ParseError check_transfer_encoding(const TransferCodings& tc, bool has_length, int version_minor) {
    if (has_length) return ParseError::kLengthAndChunked;
    if (version_minor == 0 || tc.malformed) return ParseError::kChunkedNotFinal;
    return ParseError::kNone;
}

}  // namespace

// --- heads ------------------------------------------------------------------

ParseResult parse_request_head(std::string_view buffer, const Limits& limits, RequestHead& out) {
    out.header_count = 0;
    out.head_length = 0;
    const std::string_view view = buffer.substr(0, limits.max_header_size);
    const Line line = read_start_line(view);
    if (line.status == LineStatus::kBareLf) return fail(ParseError::kBareLineFeed);
    if (line.status == LineStatus::kPartial) {
        const bool fills_head = buffer.size() >= limits.max_header_size;
        if (partial_target_too_long(line.text, fills_head, limits)) {
            return fail(ParseError::kTargetTooLong);
        }
        return incomplete(buffer, limits);
    }
    if (ParseError e = parse_request_line(line.text, limits, out); e != ParseError::kNone) {
        return fail(e);
    }
    return parse_fields(buffer, view, line.next, limits, out.headers, out.header_count,
                        out.head_length);
}

ParseResult parse_response_head(std::string_view buffer, const Limits& limits, ResponseHead& out) {
    out.header_count = 0;
    out.head_length = 0;
    const std::string_view view = buffer.substr(0, limits.max_header_size);
    const Line line = read_line(view, 0);
    if (line.status == LineStatus::kBareLf) return fail(ParseError::kBareLineFeed);
    if (line.status == LineStatus::kPartial) return incomplete(buffer, limits);
    if (ParseError e = parse_status_line(line.text, out); e != ParseError::kNone) return fail(e);
    return parse_fields(buffer, view, line.next, limits, out.headers, out.header_count,
                        out.head_length);
}

// --- framing ----------------------------------------------------------------

// RFC 9112 §6.3 for requests: chunked must be the final (and, here, only)
// coding, any other coding is not implemented, and without TE or CL there is
// no body (requests are never delimited by close).
BodyFraming request_body_framing(const RequestHead& head) {
    if (ParseError e = check_host(head); e != ParseError::kNone) return framing_error(e);
    bool has_length = false;
    uint64_t length = 0;
    const ParseError cl_error =
        read_content_length(head.headers, head.header_count, has_length, length);
    const TransferCodings tc = read_transfer_codings(head.headers, head.header_count);
    if (tc.present) {
        const bool any_length = has_length || cl_error != ParseError::kNone;
        if (ParseError e = check_transfer_encoding(tc, any_length, head.version_minor);
            e != ParseError::kNone) {
            return framing_error(e);
        }
        if (!tc.chunked_final) return framing_error(ParseError::kChunkedNotFinal);
        if (tc.other) return framing_error(ParseError::kUnsupportedTransferCoding);
        return {BodyKind::kChunked, 0, ParseError::kNone};
    }
    if (cl_error != ParseError::kNone) return framing_error(cl_error);
    if (has_length) return {BodyKind::kContentLength, length, ParseError::kNone};
    return {BodyKind::kNone, 0, ParseError::kNone};
}

// RFC 9112 §6.3 for responses. 1xx, 204 and a 2xx to CONNECT have no
// content and their framing fields are dropped unread. A response to HEAD
// and a 304 have no content either, but their Content-Length is passed on,
// so it must be valid. Any transfer coding other than a single chunked is
// refused when there is a body, as nginx does: the proxy decodes chunked
// and frames the body anew, so "gzip, chunked" would reach the client as
// gzip data without its name, and a coding without chunked cannot be told
// to an HTTP/1.0 client.
BodyFraming response_body_framing(const ResponseHead& head, std::string_view request_method) {
    const int s = head.status;
    const bool no_content =
        (s >= 100 && s < 200) || s == 204 || (request_method == "CONNECT" && s >= 200 && s < 300);
    if (no_content) return {BodyKind::kNone, 0, ParseError::kNone};
    bool has_length = false;
    uint64_t length = 0;
    const ParseError cl_error =
        read_content_length(head.headers, head.header_count, has_length, length);
    const TransferCodings tc = read_transfer_codings(head.headers, head.header_count);
    if (tc.present) {
        const bool any_length = has_length || cl_error != ParseError::kNone;
        if (ParseError e = check_transfer_encoding(tc, any_length, head.version_minor);
            e != ParseError::kNone) {
            return framing_error(e);
        }
    }
    if (cl_error != ParseError::kNone) return framing_error(cl_error);
    if (request_method == "HEAD" || s == 304) {
        BodyFraming framing{BodyKind::kNone, length, ParseError::kNone};
        framing.length_declared = has_length;
        return framing;
    }
    if (tc.present) {
        if (tc.other || !tc.chunked_final) {
            return framing_error(ParseError::kUnsupportedTransferCoding);
        }
        return {BodyKind::kChunked, 0, ParseError::kNone};
    }
    if (has_length) return {BodyKind::kContentLength, length, ParseError::kNone};
    return {BodyKind::kUntilClose, 0, ParseError::kNone};
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(c); });
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

bool list_contains_token(std::string_view field_value, std::string_view token) {
    for (;;) {
        const size_t comma = field_value.find(',');
        if (iequals(trim_ows(field_value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) return false;
        field_value.remove_prefix(comma + 1);
    }
}

// --- errors -----------------------------------------------------------------

// kNone is not a refusal; 500 makes a caller bug visible instead of a 200.
int status_for(ParseError error) {
    switch (error) {
        case ParseError::kTargetTooLong:
            return 414;
        case ParseError::kHeadersTooLarge:
        case ParseError::kTooManyHeaders:
        case ParseError::kTrailersTooLarge:
            return 431;
        case ParseError::kUnsupportedTransferCoding:
            return 501;
        case ParseError::kUnsupportedVersion:
            return 505;
        case ParseError::kBadStatusLine:
            return 502;
        case ParseError::kNone:
            return 500;
        default:
            return 400;
    }
}

const char* describe(ParseError error) {
    switch (error) {
        case ParseError::kNone:
            return "no error";
        case ParseError::kBadRequestLine:
            return "malformed request line";
        case ParseError::kBadMethod:
            return "invalid method";
        case ParseError::kBadTarget:
            return "invalid byte in request target";
        case ParseError::kTargetTooLong:
            return "request target too long";
        case ParseError::kBadVersion:
            return "malformed http version";
        case ParseError::kUnsupportedVersion:
            return "http version not supported";
        case ParseError::kBadStatusLine:
            return "malformed status line";
        case ParseError::kBadHeaderName:
            return "invalid header field name";
        case ParseError::kWhitespaceBeforeColon:
            return "whitespace before colon in header field";
        case ParseError::kBadHeaderValue:
            return "invalid byte in header field value";
        case ParseError::kObsFold:
            return "obsolete line folding in header";
        case ParseError::kBareLineFeed:
            return "line feed without carriage return";
        case ParseError::kHeadersTooLarge:
            return "header section too large";
        case ParseError::kTooManyHeaders:
            return "too many header fields";
        case ParseError::kBadContentLength:
            return "invalid content-length";
        case ParseError::kLengthAndChunked:
            return "content-length with transfer-encoding";
        case ParseError::kUnsupportedTransferCoding:
            return "unsupported transfer coding";
        // Also used for TE in an HTTP/1.0 message and for a malformed TE list.
        case ParseError::kChunkedNotFinal:
            return "invalid transfer-encoding (chunked must be final, once, http/1.1 only)";
        case ParseError::kMissingHost:
            return "missing host header";
        case ParseError::kDuplicateHost:
            return "duplicate host header";
        case ParseError::kBadChunkSize:
            return "invalid chunk size";
        case ParseError::kBadChunkExtension:
            return "invalid chunk extension";
        case ParseError::kBadChunkTerminator:
            return "chunk data not followed by crlf";
        case ParseError::kChunkLineTooLong:
            return "chunk size line too long";
        case ParseError::kTrailersTooLarge:
            return "trailer section too large";
        case ParseError::kBadTrailer:
            return "invalid trailer field";
    }
    return "unknown error";
}

// --- chunked ----------------------------------------------------------------

namespace {

// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4).
// Returns the length of the quoted string at the front of `s`, or 0.
size_t quoted_string_length(std::string_view s) {
    if (s.empty() || s[0] != '"') return 0;
    for (size_t i = 1; i < s.size(); ++i) {
        const unsigned char c = s[i];
        if (c == '"') return i + 1;
        if (c == '\\') {
            if (++i == s.size() || !is_field_byte(s[i])) return 0;
        } else if (!is_field_byte(c)) {
            return 0;
        }
    }
    return 0;
}

size_t token_length(std::string_view s) {
    size_t n = 0;
    while (n < s.size() && is_tchar(s[n])) ++n;
    return n;
}

std::string_view skip_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    return s;
}

// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), validated
// and then ignored. `s` is what follows the chunk-size digits.
bool valid_chunk_ext(std::string_view s) {
    while (!s.empty()) {
        s = skip_ows(s);
        if (s.empty() || s[0] != ';') return false;  // BWS alone is not an extension
        s = skip_ows(s.substr(1));
        const size_t name = token_length(s);
        if (name == 0) return false;
        s.remove_prefix(name);
        const std::string_view after = skip_ows(s);
        if (after.empty() || after[0] != '=') continue;
        s = skip_ows(after.substr(1));
        const size_t value = !s.empty() && s[0] == '"' ? quoted_string_length(s) : token_length(s);
        if (value == 0) return false;
        s.remove_prefix(value);
    }
    return true;
}

// chunk-size = 1*HEXDIG, at most 16 digits and kMaxChunkSize.
ParseError parse_chunk_size(std::string_view line, uint64_t& size) {
    size_t digits = 0;
    size = 0;
    for (; digits < line.size(); ++digits) {
        const char c = to_lower(line[digits]);
        int v;
        if (is_digit(c))
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
            break;
        if (digits == kMaxChunkSizeDigits) return ParseError::kBadChunkSize;
        size = size * 16 + static_cast<uint64_t>(v);
    }
    if (digits == 0 || size > kMaxChunkSize) return ParseError::kBadChunkSize;
    const std::string_view ext = line.substr(digits);
    if (!ext.empty() && !is_ows(ext[0]) && ext[0] != ';') return ParseError::kBadChunkSize;
    if (!valid_chunk_ext(ext)) return ParseError::kBadChunkExtension;
    return ParseError::kNone;
}

}  // namespace

// The only long function of the decoder: one unit per turn, stopping when
// the input runs out, chunk data is next, or the body ends.
ChunkedDecoder::Step ChunkedDecoder::parse_framing(std::string_view input) {
    size_t pos = 0;
    while (data_remaining_ == 0) {
        size_t used = 0;
        ParseError e = ParseError::kNone;
        const std::string_view rest = input.substr(pos);
        switch (state_) {
            case State::kSize:
                e = take_size_line(rest, used);
                break;
            case State::kDataEnd:
                e = take_data_end(rest, used);
                break;
            case State::kTrailers:
                e = take_trailer_line(rest, used);
                break;
            case State::kDone:
                return {ParseStatus::kComplete, pos, ParseError::kNone};
            case State::kError:
                return {ParseStatus::kError, pos, error_};
        }
        if (e != ParseError::kNone) {
            state_ = State::kError;
            error_ = e;
            return {ParseStatus::kError, pos, e};
        }
        if (used == 0) break;
        pos += used;
    }
    return {ParseStatus::kNeedMore, pos, ParseError::kNone};
}

ParseError ChunkedDecoder::take_size_line(std::string_view input, size_t& used) {
    const size_t lf = input.substr(0, kMaxChunkLine).find('\n');
    if (lf == std::string_view::npos) {
        return input.size() >= kMaxChunkLine ? ParseError::kChunkLineTooLong : ParseError::kNone;
    }
    if (lf == 0 || input[lf - 1] != '\r') return ParseError::kBareLineFeed;
    uint64_t size = 0;
    if (ParseError e = parse_chunk_size(input.substr(0, lf - 1), size); e != ParseError::kNone) {
        return e;
    }
    used = lf + 1;
    data_remaining_ = size;
    state_ = size == 0 ? State::kTrailers : State::kDataEnd;
    return ParseError::kNone;
}

ParseError ChunkedDecoder::take_data_end(std::string_view input, size_t& used) {
    if (input.empty()) return ParseError::kNone;
    if (input[0] != '\r') return ParseError::kBadChunkTerminator;
    if (input.size() < 2) return ParseError::kNone;
    if (input[1] != '\n') return ParseError::kBadChunkTerminator;
    used = 2;
    state_ = State::kSize;
    return ParseError::kNone;
}

// trailer-section = *( field-line CRLF ) CRLF, bounded like a header section.
ParseError ChunkedDecoder::take_trailer_line(std::string_view input, size_t& used) {
    const size_t budget =
        limits_.max_header_size - std::min(trailer_bytes_, limits_.max_header_size);
    const size_t lf = input.find('\n');
    if (lf == std::string_view::npos) {
        return input.size() >= budget ? ParseError::kTrailersTooLarge : ParseError::kNone;
    }
    if (lf + 1 > budget) return ParseError::kTrailersTooLarge;
    if (lf == 0 || input[lf - 1] != '\r') return ParseError::kBareLineFeed;
    const std::string_view line = input.substr(0, lf - 1);
    if (!line.empty()) {
        if (trailer_count_ == max_fields(limits_)) return ParseError::kTrailersTooLarge;
        Header ignored;
        if (parse_field_line(line, ignored) != ParseError::kNone) return ParseError::kBadTrailer;
        ++trailer_count_;
    } else {
        state_ = State::kDone;
    }
    trailer_bytes_ += lf + 1;
    used = lf + 1;
    return ParseError::kNone;
}

}  // namespace common::http
