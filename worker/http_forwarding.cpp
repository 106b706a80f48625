#include "worker/http_forwarding.h"

#include <array>
#include <cstdio>
#include <ctime>

namespace worker {

namespace {

using common::http::Header;
using common::http::iequals;

// Hop-by-hop fields (RFC 9110 §7.6.1) plus the fields the proxy regenerates
// itself (Host, framing). Proxy-Authorization is ours to consume, not to
// pass on.
bool is_dropped_always(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
        "host",
    };
    for (std::string_view n : kNames) {
        if (iequals(name, n)) return true;
    }
    return false;
}

// A field named in Connection is hop-by-hop too. The names checked by
// is_dropped_always() are decided there, so Connection can never strip a
// framing field or Host from the message. The Connection values are
// collected once (there are few, usually none), so each field line is
// checked against them instead of rescanning the whole head.
template <typename Head>
void append_end_to_end_fields(const Head& head, std::string& out) {
    std::array<std::string_view, common::http::kMaxHeaders> connection;
    size_t connection_count = 0;
    for (size_t i = 0; i < head.header_count; ++i) {
        if (iequals(head.headers[i].name, "connection")) {
            connection[connection_count++] = head.headers[i].value;
        }
    }
    auto listed_in_connection = [&](std::string_view name) {
        for (size_t i = 0; i < connection_count; ++i) {
            if (common::http::list_contains_token(connection[i], name)) return true;
        }
        return false;
    };
    for (size_t i = 0; i < head.header_count; ++i) {
        const Header& h = head.headers[i];
        if (is_dropped_always(h.name) || listed_in_connection(h.name)) continue;
        out.append(h.name).append(": ").append(h.value).append("\r\n");
    }
}

void append_via(std::string& out, int received_minor, std::string_view pseudonym) {
    out.append(received_minor == 0 ? "Via: 1.0 " : "Via: 1.1 ").append(pseudonym).append("\r\n");
}

bool has_field(const common::http::ResponseHead& head, std::string_view name) {
    for (size_t i = 0; i < head.header_count; ++i) {
        if (iequals(head.headers[i].name, name)) return true;
    }
    return false;
}

// RFC 8941 §3.3.3 sf-string: printable ASCII, with '"' and '\' escaped.
// Anything else (there should be nothing else in a detail) becomes '?'.
void append_sf_string(std::string& out, std::string_view text) {
    out.push_back('"');
    for (char c : text) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c >= 0x20 && c <= 0x7e ? c : '?');
    }
    out.push_back('"');
}

}  // namespace

std::string_view http_date_now() {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static time_t cached = -1;
    static char text[32];
    time_t now = time(nullptr);
    if (now != cached) {
        tm t{};
        gmtime_r(&now, &t);
        snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[t.tm_wday],
                 t.tm_mday, kMonths[t.tm_mon], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
        cached = now;
    }
    return text;
}

bool has_our_via(const common::http::RequestHead& head, std::string_view pseudonym) {
    for (size_t i = 0; i < head.header_count; ++i) {
        const Header& h = head.headers[i];
        if (!iequals(h.name, "via")) continue;
        // Each element is "protocol received-by [comment]".
        std::string_view rest = h.value;
        while (!rest.empty()) {
            size_t comma = rest.find(',');
            std::string_view element = rest.substr(0, comma);
            size_t space = element.find_first_not_of(" \t");
            element = space == std::string_view::npos ? "" : element.substr(space);
            size_t by = element.find(' ');
            if (by != std::string_view::npos) {
                std::string_view received_by = element.substr(by + 1);
                received_by = received_by.substr(0, received_by.find_first_of(" \t"));
                if (iequals(received_by, pseudonym)) return true;
            }
            if (comma == std::string_view::npos) break;
            rest = rest.substr(comma + 1);
        }
    }
    return false;
}

bool client_wants_keep_alive(const common::http::RequestHead& head) {
    ConnectionInfo info = connection_info(head);
    if (info.close) return false;
    return head.version_minor >= 1 || info.keep_alive;
}

// RFC 9112 §3.2.1: an empty path is sent as "/" ("?q" as "/?q"); §3.2.4:
// OPTIONS to an absolute URI with neither path nor query asks about the
// server as a whole, which the origin is asked as "*".
void append_origin_form(std::string_view method, std::string_view path, std::string& out) {
    if (path.empty() && method == "OPTIONS") {
        out.push_back('*');
        return;
    }
    if (path.empty() || path.front() != '/') out.push_back('/');
    out.append(path);
}

void build_upstream_request(const common::http::RequestHead& head,
                            const common::ProxyTarget& target,
                            const common::http::BodyFraming& framing, std::string& out,
                            std::string_view pseudonym) {
    out.append(head.method).append(" ");
    append_origin_form(head.method, target.path, out);
    out.append(" HTTP/1.1\r\n");
    out.append("Host: ").append(target.host_header(80)).append("\r\n");
    append_end_to_end_fields(head, out);
    if (framing.kind == common::http::BodyKind::kContentLength) {
        out.append("Content-Length: ").append(std::to_string(framing.length)).append("\r\n");
    } else if (framing.kind == common::http::BodyKind::kChunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    append_via(out, head.version_minor, pseudonym);
    out.append("\r\n");
}

size_t append_absolute_request_line(std::string_view origin_head, std::string_view authority,
                                    std::string& out) {
    size_t line_end = origin_head.find("\r\n");
    size_t method_end = origin_head.find(' ');
    constexpr std::string_view kVersion = " HTTP/1.1";
    std::string_view target =
        origin_head.substr(method_end + 1, line_end - kVersion.size() - method_end - 1);
    out.append(origin_head.substr(0, method_end)).append(" http://").append(authority);
    if (target != "*") out.append(target);
    out.append(kVersion).append("\r\n");
    return line_end + 2;
}

void build_client_response(const common::http::ResponseHead& head, OutgoingBody body,
                           uint64_t length, bool keep_alive, int client_minor, std::string& out,
                           std::string_view pseudonym) {
    out.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ");
    out.append(head.reason).append("\r\n");
    append_end_to_end_fields(head, out);
    // A bodiless response to HEAD or a 304 still tells the size of the
    // representation: the length the parser validated, never the raw field.
    if (body == OutgoingBody::kLength || body == OutgoingBody::kNoneButLength) {
        out.append("Content-Length: ").append(std::to_string(length)).append("\r\n");
    } else if (body == OutgoingBody::kChunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
    // RFC 9110 §6.6.1: a recipient with a clock adds the Date an origin left out.
    if (!has_field(head, "date")) out.append("Date: ").append(http_date_now()).append("\r\n");
    append_via(out, head.version_minor, pseudonym);
    if (!keep_alive) {
        out.append("Connection: close\r\n");
    } else if (client_minor == 0) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
}

void build_interim_response(const common::http::ResponseHead& head, std::string& out) {
    out.append("HTTP/1.1 ").append(std::to_string(head.status)).append(" ");
    out.append(head.reason).append("\r\n");
    append_end_to_end_fields(head, out);
    out.append("\r\n");
}

std::string build_error_response(int status, std::string_view detail, bool close,
                                 std::string_view error_type, std::string_view pseudonym,
                                 std::string_view extra_fields) {
    std::string body(pseudonym);
    body.append(": ");
    body.append(detail).append("\n");
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    out.append("Date: ").append(http_date_now()).append("\r\n");
    out.append("Content-Type: text/plain; charset=utf-8\r\n");
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    if (!error_type.empty()) {
        out.append("Proxy-Status: ").append(pseudonym).append("; error=").append(error_type);
        if (!detail.empty()) {
            out.append("; details=");
            append_sf_string(out, detail);
        }
        out.append("\r\n");
    }
    out.append(extra_fields);
    if (close) out.append("Connection: close\r\n");
    out.append("\r\n").append(body);
    return out;
}

const char* reason_phrase(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 405:
            return "Method Not Allowed";
        case 407:
            return "Proxy Authentication Required";
        case 408:
            return "Request Timeout";
        case 414:
            return "URI Too Long";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        case 508:
            return "Loop Detected";
        default:
            return "Error";
    }
}

void append_chunk_header(std::string& out, uint64_t size) {
    char line[32];
    int n = snprintf(line, sizeof(line), "%llx\r\n", static_cast<unsigned long long>(size));
    out.append(line, static_cast<size_t>(n));
}

}  // namespace worker
