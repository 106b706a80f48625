// Socket addresses, host:port endpoints, CIDR ranges and port ranges.
//
// Everything here is pure parsing and classification; nothing resolves names
// or touches sockets, so it is shared by the config loader, the ACL checks in
// the worker and the tests.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace common {

// An IPv4 or IPv6 socket address, stored by value.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    int family() const { return storage.ss_family; }
    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
    uint16_t port() const;
    void set_port(uint16_t port);
    // "127.0.0.1:3128" or "[::1]:3128".
    std::string to_string() const;
    // The address without the port: "127.0.0.1" or "::1".
    std::string host_string() const;

    static SocketAddress from(const sockaddr* sa, socklen_t len);
    // Numeric IPv4 or IPv6 literal (no brackets), the whole view, with a port;
    // nullopt otherwise (also for a view with a NUL in it).
    static std::optional<SocketAddress> from_numeric(std::string_view host, uint16_t port);
};

bool operator==(const SocketAddress& a, const SocketAddress& b);

// host and port split from "host:port", "[v6]:port"; the host keeps no
// brackets. The host may be a name; nothing is resolved.
struct HostPort {
    std::string host;
    uint16_t port = 0;
};

// Parses "host:port" or "[v6]:port". Port must be 1..65535 (or 0 when
// `allow_port_zero`, for "pick an ephemeral port"), all digits. Returns
// nullopt and sets `error` on failure.
std::optional<HostPort> parse_host_port(std::string_view text, std::string& error,
                                        bool allow_port_zero = false);

// Parses a decimal port 1..65535 (no sign, no spaces).
std::optional<uint16_t> parse_port(std::string_view text);

// An address range: 10.0.0.0/8, ::1/128, or a single address.
struct Cidr {
    int family = AF_INET;
    uint8_t bytes[16]{};  // network address, 4 or 16 significant bytes
    int prefix = 0;

    bool contains(const SocketAddress& address) const;
    std::string to_string() const;
};

// Parses "a.b.c.d[/n]" or "v6[/n]". Host bits must be zero ("10.1.0.0/8" is
// an error: reject, don't repair).
std::optional<Cidr> parse_cidr(std::string_view text, std::string& error);

struct PortRange {
    uint16_t first = 0;
    uint16_t last = 0;
};

// Parses "443" or "1-65535".
std::optional<PortRange> parse_port_range(std::string_view text, std::string& error);

bool port_allowed(const std::vector<PortRange>& ranges, uint16_t port);
bool address_allowed(const std::vector<Cidr>& ranges, const SocketAddress& address);

// True for every address a forward proxy must not dial on behalf of a client
// when private destinations are denied: unspecified, loopback, RFC 1918,
// CGNAT, link-local, multicast, broadcast, reserved, documentation, ULA,
// site-local, and IPv6 forms that carry such an IPv4 address: IPv4-mapped,
// IPv4-translated, NAT64 (64:ff9b::/96), 6to4, Teredo (server or client).
// IPv4-compatible (::/96) and local-use NAT64 (64:ff9b:1::/48) addresses are
// refused whatever they carry. address.cpp tells what is checked of each.
bool is_private_destination(const SocketAddress& address);

}  // namespace common
