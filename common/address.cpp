#include "common/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace common {

namespace {

bool all_digits(std::string_view text) {
    if (text.empty()) return false;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
    }
    return true;
}

// The address bytes of an AF_INET/AF_INET6 SocketAddress, network order.
const uint8_t* address_bytes(const SocketAddress& address) {
    if (address.family() == AF_INET) {
        return reinterpret_cast<const uint8_t*>(
            &reinterpret_cast<const sockaddr_in*>(address.get())->sin_addr);
    }
    return reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_addr.s6_addr;
}

bool prefix_matches(const uint8_t* address, const uint8_t* network, int prefix) {
    int full = prefix / 8;
    if (std::memcmp(address, network, full) != 0) return false;
    int rest = prefix % 8;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (address[full] & mask) == (network[full] & mask);
}

struct Range {
    uint8_t bytes[16];
    int prefix;
};

bool in_ranges(const uint8_t* address, const Range* ranges, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        if (prefix_matches(address, ranges[i].bytes, ranges[i].prefix)) return true;
    }
    return false;
}

// IPv4 ranges that are not globally reachable unicast (IANA special-purpose
// registry): a forward proxy must never dial them for a client.
bool is_private_v4(const uint8_t* a) {
    static const Range kRanges[] = {
        {{0}, 8},              // "this network", incl. 0.0.0.0
        {{10}, 8},             // RFC 1918
        {{100, 64}, 10},       // CGNAT, RFC 6598
        {{127}, 8},            // loopback
        {{169, 254}, 16},      // link-local
        {{172, 16}, 12},       // RFC 1918
        {{192, 0, 0}, 24},     // IETF protocol assignments
        {{192, 0, 2}, 24},     // TEST-NET-1
        {{192, 88, 99}, 24},   // 6to4 relay anycast
        {{192, 168}, 16},      // RFC 1918
        {{198, 18}, 15},       // benchmarking
        {{198, 51, 100}, 24},  // TEST-NET-2
        {{203, 0, 113}, 24},   // TEST-NET-3
        {{224}, 4},            // multicast
        {{240}, 4},            // reserved, incl. 255.255.255.255
    };
    return in_ranges(a, kRanges, sizeof(kRanges) / sizeof(kRanges[0]));
}

// IPv6 forms that carry an IPv4 address, and what is checked of each: a
// translator or tunnel on the path would take the connection to that IPv4
// address, so a private one is as private as itself.
//
//   ::ffff:0:0/96      IPv4-mapped (RFC 4291): the host dials the IPv4 address
//   ::ffff:0:0:0/96    IPv4-translated (RFC 2765, SIIT): the last 32 bits
//   64:ff9b::/96       NAT64 well-known prefix (RFC 6052): the last 32 bits
//   2002::/16          6to4 (RFC 3056): bits 16-47
//   2001::/32          Teredo (RFC 4380): the server, bits 32-63, and the
//                      client, the last 32 bits inverted; either private refuses
//
// Refused whole, in the ranges above: ::/96 (IPv4-compatible, deprecated, and
// Linux's sit0 still tunnels it) and 64:ff9b:1::/48 (local-use NAT64, RFC
// 8215: not globally reachable, and where its IPv4 address sits depends on
// the prefix length each network chose). Not read as IPv4: ISATAP interface
// identifiers (::5efe:a.b.c.d under any prefix, RFC 5214), whose IPv4 address
// is reached only from the same ISATAP link and is private as a rule, and
// prefixes a network picks for itself (NAT64 network-specific prefixes, 6rd),
// which no address shows.
bool is_private_v6(const uint8_t* a) {
    static const Range kRanges[] = {
        {{0}, 96},                             // ::/96: unspecified, loopback, v4-compatible
        {{0x00, 0x64, 0xff, 0x9b, 0, 1}, 48},  // local-use NAT64
        {{0x01, 0x00}, 64},                    // discard-only
        {{0x20, 0x01, 0x00, 0x02, 0, 0}, 48},  // benchmarking
        {{0x20, 0x01, 0x00, 0x10}, 28},        // ORCHID
        {{0x20, 0x01, 0x0d, 0xb8}, 32},        // documentation
        {{0xfc}, 7},                           // unique local
        {{0xfe, 0x80}, 10},                    // link-local
        {{0xfe, 0xc0}, 10},                    // site-local (deprecated)
        {{0xff}, 8},                           // multicast
    };
    if (in_ranges(a, kRanges, sizeof(kRanges) / sizeof(kRanges[0]))) return true;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t kTranslated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const uint8_t kNat64[12] = {0x00, 0x64, 0xff, 0x9b};
    if (std::memcmp(a, kMapped, 12) == 0 || std::memcmp(a, kTranslated, 12) == 0 ||
        std::memcmp(a, kNat64, 12) == 0) {
        return is_private_v4(a + 12);
    }
    if (a[0] == 0x20 && a[1] == 0x02) return is_private_v4(a + 2);  // 6to4
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {   // Teredo
        uint8_t client[4];
        for (int i = 0; i < 4; ++i) client[i] = static_cast<uint8_t>(~a[12 + i]);
        return is_private_v4(a + 4) || is_private_v4(client);
    }
    return false;
}

}  // namespace

uint16_t SocketAddress::port() const {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(get())->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(get())->sin6_port);
    return 0;
}

void SocketAddress::set_port(uint16_t port) {
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(get())->sin_port = htons(port);
    if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(get())->sin6_port = htons(port);
}

std::string SocketAddress::host_string() const {
    char text[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET || family() == AF_INET6) {
        inet_ntop(family(), address_bytes(*this), text, sizeof(text));
    }
    return text;
}

std::string SocketAddress::to_string() const {
    std::string host = host_string();
    if (family() == AF_INET6) host = "[" + host + "]";
    return host + ":" + std::to_string(port());
}

SocketAddress SocketAddress::from(const sockaddr* sa, socklen_t len) {
    SocketAddress address;
    if (len > sizeof(address.storage)) len = sizeof(address.storage);
    std::memcpy(&address.storage, sa, len);
    address.length = len;
    return address;
}

std::optional<SocketAddress> SocketAddress::from_numeric(std::string_view host, uint16_t port) {
    // inet_pton reads up to a NUL: "7.0.0.1\0:junk" would pass as 7.0.0.1,
    // and as an IPv6 literal to a caller that checked the view for a ':'.
    if (host.find('\0') != std::string_view::npos) return std::nullopt;
    std::string text(host);
    SocketAddress address;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    // inet_pton accepts only canonical dotted-quad for AF_INET: no octal, hex
    // or short forms, which is what makes "127.1" a name and not loopback.
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        address.length = sizeof(sockaddr_in);
        return address;
    }
    if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        address.length = sizeof(sockaddr_in6);
        return address;
    }
    return std::nullopt;
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
    if (a.family() != b.family() || a.port() != b.port()) return false;
    size_t n = a.family() == AF_INET ? 4 : 16;
    return std::memcmp(address_bytes(a), address_bytes(b), n) == 0;
}

std::optional<uint16_t> parse_port(std::string_view text) {
    if (!all_digits(text) || text.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
    if (value == 0 || value > 65535) return std::nullopt;
    return static_cast<uint16_t>(value);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& error,
                                        bool allow_port_zero) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        error = "expected host:port";
        return std::nullopt;
    }
    std::string_view host = text.substr(0, colon);
    std::string_view port_text = text.substr(colon + 1);
    if (!host.empty() && host.front() == '[') {
        if (host.size() < 3 || host.back() != ']') {
            error = "malformed [IPv6] address";
            return std::nullopt;
        }
        host = host.substr(1, host.size() - 2);
        if (!SocketAddress::from_numeric(host, 0) || host.find(':') == std::string_view::npos) {
            error = "\"" + std::string(host) + "\" is not an IPv6 address";
            return std::nullopt;
        }
    } else if (host.find(':') != std::string_view::npos) {
        error = "an IPv6 address needs brackets: [addr]:port";
        return std::nullopt;
    }
    if (host.empty()) {
        error = "empty host";
        return std::nullopt;
    }
    for (char c : host) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '@') {
            error = "invalid character in host";
            return std::nullopt;
        }
    }
    HostPort result{std::string(host), 0};
    if (allow_port_zero && port_text == "0") return result;
    auto port = parse_port(port_text);
    if (!port) {
        error = "port must be a number from 1 to 65535";
        return std::nullopt;
    }
    result.port = *port;
    return result;
}

bool Cidr::contains(const SocketAddress& address) const {
    const uint8_t* bytes_of = address_bytes(address);
    if (address.family() == family) return prefix_matches(bytes_of, bytes, prefix);
    // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET && address.family() == AF_INET6 &&
        std::memcmp(bytes_of, kMapped, 12) == 0) {
        return prefix_matches(bytes_of + 12, bytes, prefix);
    }
    return false;
}

std::string Cidr::to_string() const {
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, bytes, text, sizeof(text));
    return std::string(text) + "/" + std::to_string(prefix);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
    std::string_view host = text;
    std::string_view prefix_text;
    size_t slash = text.find('/');
    if (slash != std::string_view::npos) {
        host = text.substr(0, slash);
        prefix_text = text.substr(slash + 1);
    }
    auto address = SocketAddress::from_numeric(host, 0);
    if (!address) {
        error = "\"" + std::string(text) + "\" is not an IP address or CIDR range";
        return std::nullopt;
    }
    Cidr cidr;
    cidr.family = address->family();
    int max_prefix = cidr.family == AF_INET ? 32 : 128;
    std::memcpy(cidr.bytes, address_bytes(*address), max_prefix / 8);
    cidr.prefix = max_prefix;
    if (slash != std::string_view::npos) {
        if (!all_digits(prefix_text) || prefix_text.size() > 3 ||
            std::stoi(std::string(prefix_text)) > max_prefix) {
            error = "bad prefix length in \"" + std::string(text) + "\"";
            return std::nullopt;
        }
        cidr.prefix = std::stoi(std::string(prefix_text));
    }
    uint8_t network[16] = {};
    std::memcpy(network, cidr.bytes, sizeof(network));
    for (int bit = cidr.prefix; bit < max_prefix; ++bit) network[bit / 8] &= ~(0x80 >> (bit % 8));
    if (std::memcmp(network, cidr.bytes, max_prefix / 8) != 0) {
        error = "\"" + std::string(text) + "\" has host bits set";
        return std::nullopt;
    }
    return cidr;
}

std::optional<PortRange> parse_port_range(std::string_view text, std::string& error) {
    size_t dash = text.find('-');
    auto first = parse_port(text.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : parse_port(text.substr(dash + 1));
    if (!first || !last || *first > *last) {
        error = "\"" + std::string(text) + "\" is not a port or port range (1-65535)";
        return std::nullopt;
    }
    return PortRange{*first, *last};
}

bool port_allowed(const std::vector<PortRange>& ranges, uint16_t port) {
    for (const PortRange& range : ranges) {
        if (port >= range.first && port <= range.last) return true;
    }
    return false;
}

bool address_allowed(const std::vector<Cidr>& ranges, const SocketAddress& address) {
    for (const Cidr& range : ranges) {
        if (range.contains(address)) return true;
    }
    return false;
}

bool is_private_destination(const SocketAddress& address) {
    if (address.family() == AF_INET) return is_private_v4(address_bytes(address));
    if (address.family() == AF_INET6) return is_private_v6(address_bytes(address));
    return true;
}

}  // namespace common
