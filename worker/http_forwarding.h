// How proxyd rewrites HTTP heads as they cross it (RFC 9110 §7.6): the
// request line becomes origin-form, Host is regenerated from the target,
// hop-by-hop fields and every field named by Connection are removed (never
// the framing fields or Host), the body framing is regenerated, and Via is
// appended. Pure functions over the parser's views; the output is appended
// to a caller's string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_parser.h"
#include "common/uri.h"

namespace worker {

// The received-by pseudonym in our Via entries and the name in our
// Proxy-Status fields when [proxy] name is not set; a request that already
// carries our pseudonym has looped back to us.
inline constexpr std::string_view kDefaultPseudonym = "proxyd";

// How a body is framed on the outgoing side of the proxy. kNoneButLength:
// no body, but the head declares the representation's length (HEAD, 304).
enum class OutgoingBody { kNone, kNoneButLength, kLength, kChunked, kUntilClose };

struct ConnectionInfo {
    bool close = false;       // Connection: close
    bool keep_alive = false;  // Connection: keep-alive (HTTP/1.0)
};

template <typename Head>
ConnectionInfo connection_info(const Head& head) {
    ConnectionInfo info;
    for (size_t i = 0; i < head.header_count; ++i) {
        const auto& h = head.headers[i];
        if (!common::http::iequals(h.name, "connection")) continue;
        info.close |= common::http::list_contains_token(h.value, "close");
        info.keep_alive |= common::http::list_contains_token(h.value, "keep-alive");
    }
    return info;
}

// True when a Via field of `head` names our pseudonym.
bool has_our_via(const common::http::RequestHead& head,
                 std::string_view pseudonym = kDefaultPseudonym);

// True when the client may send another request on this connection after
// this one (HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive").
bool client_wants_keep_alive(const common::http::RequestHead& head);

// The current time as an IMF-fixdate (RFC 9110 §5.6.7), for Date fields;
// formatted at most once a second.
std::string_view http_date_now();

// Appends the request-target to send upstream for an absolute-form target
// whose path (and query) is `path`, as received.
void append_origin_form(std::string_view method, std::string_view path, std::string& out);

// Appends the request head to send upstream.
void build_upstream_request(const common::http::RequestHead& head,
                            const common::ProxyTarget& target,
                            const common::http::BodyFraming& framing, std::string& out,
                            std::string_view pseudonym = kDefaultPseudonym);

// For an HTTP parent proxy: appends the request line of `origin_head` (a
// head build_upstream_request() made) in absolute form,
// "GET http://AUTHORITY/path HTTP/1.1\r\n" ("OPTIONS *" becomes
// "OPTIONS http://AUTHORITY", RFC 9112 §3.2.4), and returns where the rest
// of `origin_head` (its field lines) starts.
size_t append_absolute_request_line(std::string_view origin_head, std::string_view authority,
                                    std::string& out);

// Appends the response head to send to the client. `body` and `length`
// describe the body as the client will receive it; `keep_alive` decides the
// Connection field; `client_minor` is the client's HTTP minor version.
void build_client_response(const common::http::ResponseHead& head, OutgoingBody body,
                           uint64_t length, bool keep_alive, int client_minor, std::string& out,
                           std::string_view pseudonym = kDefaultPseudonym);

// An interim (1xx) response relayed to an HTTP/1.1 client.
void build_interim_response(const common::http::ResponseHead& head, std::string& out);

// A complete response made by the proxy itself: a Date, a short plain-text
// body naming the cause, and a Proxy-Status field (RFC 9209) with the
// error type and the detail when `error_type` is given. `extra_fields` are
// whole field lines ("Name: value\r\n") added as they are.
std::string build_error_response(int status, std::string_view detail, bool close,
                                 std::string_view error_type,
                                 std::string_view pseudonym = kDefaultPseudonym,
                                 std::string_view extra_fields = {});

const char* reason_phrase(int status);

// Chunked coding of one piece of data on the outgoing side: the size line.
void append_chunk_header(std::string& out, uint64_t size);

}  // namespace worker
