// libFuzzer target for the forwarding round trip: the invariant against
// request smuggling.
//
// The input is a client request (so seeds are plain HTTP requests). It goes
// the way worker/http_exchange.cpp takes it: parse_request_head(), then
// request_body_framing() and parse_absolute_target(), refused on any error;
// what passes is rewritten by build_upstream_request(). The upstream head is
// parsed again with the same parser, and must mean what the client's meant:
//   - one complete head, exactly the bytes built (nothing left over that an
//     origin could read as a second request);
//   - the same method, the origin-form of the client's target, HTTP/1.1;
//   - the same body framing: kind and length;
//   - one Host, naming the target's host and port; one framing field at
//     most, never Content-Length beside Transfer-Encoding;
//   - no hop-by-hop field, no field the client's Connection named, no
//     Proxy-Authorization / Proxy-Authenticate / Proxy-Connection;
//   - every other client field, in order and byte for byte; then our Via.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/http_parser.h"
#include "common/uri.h"
#include "worker/http_forwarding.h"

namespace {

namespace http = common::http;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

// Fields that end at the proxy (RFC 9110 §7.6.1), the proxy's own, and those
// the proxy regenerates (Host, framing); listed here independently of
// http_forwarding.cpp.
bool is_hop_by_hop(std::string_view name) {
    static constexpr std::string_view kNames[] = {
        "connection",         "proxy-connection", "keep-alive",          "te",   "trailer",
        "transfer-encoding",  "upgrade",          "proxy-authorization", "host", "content-length",
        "proxy-authenticate",
    };
    for (std::string_view n : kNames) {
        if (http::iequals(name, n)) return true;
    }
    return false;
}

bool named_in_connection(const http::RequestHead& head, std::string_view name) {
    for (size_t i = 0; i < head.header_count; ++i) {
        const http::Header& h = head.headers[i];
        if (http::iequals(h.name, "connection") && http::list_contains_token(h.value, name)) {
            return true;
        }
    }
    return false;
}

size_t count_fields(const http::RequestHead& head, std::string_view name) {
    size_t n = 0;
    for (size_t i = 0; i < head.header_count; ++i) n += http::iequals(head.headers[i].name, name);
    return n;
}

const http::Header* find_field(const http::RequestHead& head, std::string_view name) {
    for (size_t i = 0; i < head.header_count; ++i) {
        if (http::iequals(head.headers[i].name, name)) return &head.headers[i];
    }
    return nullptr;
}

// The fields the client sent that must reach the origin unchanged.
std::vector<http::Header> end_to_end_fields(const http::RequestHead& client) {
    std::vector<http::Header> fields;
    for (size_t i = 0; i < client.header_count; ++i) {
        const http::Header& h = client.headers[i];
        if (!is_hop_by_hop(h.name) && !named_in_connection(client, h.name)) fields.push_back(h);
    }
    return fields;
}

void check_framing(const http::BodyFraming& client, const http::RequestHead& upstream) {
    const http::BodyFraming framing = http::request_body_framing(upstream);
    check(framing.error == http::ParseError::kNone);
    check(framing.kind == client.kind && framing.length == client.length);
    const size_t lengths = count_fields(upstream, "content-length");
    const size_t codings = count_fields(upstream, "transfer-encoding");
    check(lengths + codings <= 1);
    check((lengths == 1) == (client.kind == http::BodyKind::kContentLength));
    check((codings == 1) == (client.kind == http::BodyKind::kChunked));
}

// Host names the target; read back as an authority it gives the same place.
void check_host(const common::ProxyTarget& target, const http::RequestHead& upstream) {
    check(count_fields(upstream, "host") == 1);
    const http::Header* host = find_field(upstream, "host");
    check(host->value == target.host_header(80));
    common::ProxyTarget again;
    std::string error;
    check(common::parse_absolute_target("http://" + std::string(host->value) + "/", again, error));
    check(again.host == target.host && again.port == target.port);
}

// The upstream fields are Host, the client's end-to-end fields in order,
// the framing field and Via, and nothing else.
void check_fields(const http::RequestHead& client, const http::RequestHead& upstream) {
    const std::vector<http::Header> expected = end_to_end_fields(client);
    size_t next = 0;
    for (size_t i = 0; i < upstream.header_count; ++i) {
        const http::Header& h = upstream.headers[i];
        check(!(http::iequals(h.name, "connection") || http::iequals(h.name, "keep-alive") ||
                http::iequals(h.name, "te") || http::iequals(h.name, "trailer") ||
                http::iequals(h.name, "upgrade") || http::iequals(h.name, "proxy-connection") ||
                http::iequals(h.name, "proxy-authorization") ||
                http::iequals(h.name, "proxy-authenticate")));
        if (http::iequals(h.name, "host") || http::iequals(h.name, "content-length") ||
            http::iequals(h.name, "transfer-encoding")) {
            continue;
        }
        if (i + 1 == upstream.header_count) break;  // our Via, checked below
        check(!named_in_connection(client, h.name));
        check(next < expected.size());
        check(h.name == expected[next].name && h.value == expected[next].value);
        ++next;
    }
    check(next == expected.size());
    const http::Header& via = upstream.headers[upstream.header_count - 1];
    check(http::iequals(via.name, "via"));
    check(via.value == (client.version_minor == 0 ? "1.0 proxyd" : "1.1 proxyd"));
}

void check_upstream(const http::RequestHead& client, const common::ProxyTarget& target,
                    const http::BodyFraming& framing, const std::string& sent) {
    http::Limits limits;  // what a strict origin with room for our additions accepts
    limits.max_header_size = sent.size();
    limits.max_target_length = sent.size();
    limits.max_headers = http::kMaxHeaders;
    static http::RequestHead upstream;
    const http::ParseResult r = http::parse_request_head(sent, limits, upstream);
    check(r.status == http::ParseStatus::kComplete);
    check(upstream.head_length == sent.size());

    check(upstream.method == client.method && upstream.version_minor == 1);
    std::string origin_form;
    worker::append_origin_form(client.method, target.path, origin_form);
    check(upstream.target == origin_form);
    check(origin_form.front() == '/' || (origin_form == "*" && client.method == "OPTIONS"));

    check_framing(framing, upstream);
    check_host(target, upstream);
    check_fields(client, upstream);
    check(worker::has_our_via(upstream));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    static http::RequestHead client;
    if (http::parse_request_head(input, http::Limits(), client).status !=
        http::ParseStatus::kComplete) {
        return 0;
    }
    if (client.method == "CONNECT") return 0;  // a tunnel: nothing is rewritten
    const http::BodyFraming framing = http::request_body_framing(client);
    if (framing.error != http::ParseError::kNone) return 0;
    common::ProxyTarget target;
    std::string error;
    if (!common::parse_absolute_target(client.target, target, error)) return 0;
    std::string sent;
    worker::build_upstream_request(client, target, framing, sent);
    check_upstream(client, target, framing, sent);
    return 0;
}
