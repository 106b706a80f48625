// The URL of a parent proxy in [parent NAME] url:
//
//   scheme "://" [ user [ ":" password ] "@" ] host [ ":" port ] [ "/" ]
//
// with scheme http, https or socks5 (a SOCKS5 parent always receives the
// destination's name: it resolves, as curl's socks5h:// means). User and
// password are percent-decoded (RFC 3986 §2.1), so "%40" is an '@' in a
// password; each is 1 to 255 bytes (RFC 1929's limit, which HTTP Basic
// shares here) of printable ASCII, and a user name holds no ':' (Basic
// could not carry it). The host is a DNS name or an IP literal, checked as
// request targets are (common/uri.h). Ports default to the scheme's: 80,
// 443, 1080. Nothing else (a path, a query, a fragment) is accepted. Pure
// parsing; nothing is resolved.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/config.h"

namespace common {

struct ParentUrl {
    ParentScheme scheme = ParentScheme::kHttp;
    std::string host;  // lowercased; IPv6 without brackets
    uint16_t port = 0;
    bool ipv6_literal = false;
    std::optional<std::pair<std::string, std::string>> credentials;  // decoded
};

// The URL parsed, or nullopt with the reason in `error` (which never
// repeats the password).
std::optional<ParentUrl> parse_parent_url(std::string_view text, std::string& error);

}  // namespace common
