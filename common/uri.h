// Request targets a forward proxy accepts (RFC 9112 §3.2): absolute-form
// "http://host[:port]/path?query" and, for CONNECT, authority-form
// "host:port". Pure parsing; nothing is resolved.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace common {

struct ProxyTarget {
    std::string host;  // lowercased; IPv6 without brackets
    uint16_t port = 0;
    bool ipv6_literal = false;
    // Path and query as received: "/p?q", or "" or "?q" when the path is
    // empty (append_origin_form() in worker/http_forwarding.h sends those
    // as RFC 9112 §3.2 says).
    std::string_view path;

    // "host[:port]" for the Host header: brackets for IPv6, port only when
    // it is not the scheme's default.
    std::string host_header(uint16_t default_port) const;
    // "host:port" (brackets for IPv6) for logs and pool keys.
    std::string authority() const;
};

// Parses an absolute-form target with scheme http. Userinfo, fragments,
// empty hosts, bad ports and hosts that are not plain DNS names or IP
// literals are refused with a reason in `error`. `https://` targets are
// refused too (a client must use CONNECT for TLS).
bool parse_absolute_target(std::string_view target, ProxyTarget& out, std::string& error);

// Parses a CONNECT authority-form target "host:port" (port 1-65535).
bool parse_authority_target(std::string_view target, ProxyTarget& out, std::string& error);

// Host validation shared by both forms, and by SOCKS: letters, digits,
// hyphens, underscores and dots (a DNS name), or a canonical IPv4 literal.
// A name whose last label is numeric ("127.1", "2130706433", "0x7f.1", also
// with a trailing dot: "127.0.0.1.") is refused, because resolvers disagree
// on what it means.
bool valid_host_name(std::string_view host, std::string& error);

}  // namespace common
