#include "common/uri.h"

#include <cctype>

#include "common/address.h"

namespace common {

namespace {

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// One trailing dot ("127.1.") makes the name absolute and changes nothing
// of what it means, so the label before it is the last one.
bool last_label_numeric(std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    size_t dot = host.rfind('.');
    std::string_view label = dot == std::string_view::npos ? host : host.substr(dot + 1);
    if (label.empty()) return false;
    if (label.size() > 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')) return true;
    for (char c : label) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Splits "host[:port]" or "[v6][:port]" into the target. `port_required`
// is true for CONNECT, where the port is not implied by a scheme.
bool parse_host_and_port(std::string_view authority, uint16_t default_port, bool port_required,
                         ProxyTarget& out, std::string& error) {
    out.ipv6_literal = false;
    std::string_view host = authority;
    std::string_view port_text;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "unterminated IPv6 literal";
            return false;
        }
        host = authority.substr(1, close - 1);
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                error = "junk after IPv6 literal";
                return false;
            }
            port_text = rest.substr(1);
            has_port = true;
        }
        if (host.find(':') == std::string_view::npos || !SocketAddress::from_numeric(host, 0)) {
            error = "invalid IPv6 literal";
            return false;
        }
        out.ipv6_literal = true;
    } else {
        size_t colon = authority.find(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            port_text = authority.substr(colon + 1);
            has_port = true;
        }
        if (!valid_host_name(host, error)) return false;
    }
    if (has_port) {
        auto port = parse_port(port_text);
        if (!port) {
            error = "port must be a number from 1 to 65535";
            return false;
        }
        out.port = *port;
    } else if (port_required) {
        error = "missing port";
        return false;
    } else {
        out.port = default_port;
    }
    out.host = lowercase(host);
    return true;
}

}  // namespace

std::string ProxyTarget::host_header(uint16_t default_port) const {
    std::string text = ipv6_literal ? "[" + host + "]" : host;
    if (port != default_port) text += ":" + std::to_string(port);
    return text;
}

std::string ProxyTarget::authority() const {
    return (ipv6_literal ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool valid_host_name(std::string_view host, std::string& error) {
    if (host.empty() || host.size() > 253) {
        error = host.empty() ? "empty host" : "host name too long";
        return false;
    }
    for (char c : host) {
        if (!is_name_char(c)) {
            error = "invalid character in host name";
            return false;
        }
    }
    if (SocketAddress::from_numeric(host, 0)) return true;  // canonical dotted quad
    if (last_label_numeric(host)) {
        error = "ambiguous numeric host \"" + std::string(host) + "\"";
        return false;
    }
    if (host.front() == '.' || host.front() == '-' || host.find("..") != std::string_view::npos) {
        error = "malformed host name";
        return false;
    }
    return true;
}

bool parse_absolute_target(std::string_view target, ProxyTarget& out, std::string& error) {
    constexpr std::string_view kHttp = "http://";
    if (target.size() < kHttp.size() || lowercase(target.substr(0, kHttp.size())) != kHttp) {
        if (lowercase(target.substr(0, 8)) == "https://") {
            error = "https:// targets must use CONNECT";
        } else if (!target.empty() && target.front() == '/') {
            error = "origin-form request to a proxy (use an absolute URI)";
        } else {
            error = "request target is not an absolute http:// URI";
        }
        return false;
    }
    std::string_view rest = target.substr(kHttp.size());
    size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (authority.find('@') != std::string_view::npos) {
        error = "userinfo in request target";
        return false;
    }
    if (path.find('#') != std::string_view::npos) {
        error = "fragment in request target";
        return false;
    }
    if (!parse_host_and_port(authority, 80, false, out, error)) return false;
    out.path = path;
    return true;
}

bool parse_authority_target(std::string_view target, ProxyTarget& out, std::string& error) {
    if (target.find_first_of("/@?#") != std::string_view::npos) {
        error = "CONNECT target must be host:port";
        return false;
    }
    return parse_host_and_port(target, 0, true, out, error);
}

}  // namespace common
