// libFuzzer target for common/address: the parsing and classification that
// decide the private-destination check.
//
// The input is used twice: as text (so seeds are plain addresses, CIDRs,
// host:port pairs and port ranges) for every parser, and its first bytes as
// a raw IPv4 and IPv6 address, so the classifier sees every bit pattern and
// not only what inet_pton lets through. Besides memory errors it checks:
//   - an address is the same address, and classified private the same way,
//     whatever its spelling: the text proxyd prints, the full uncompressed
//     IPv6 form in either case, the dotted IPv4 tail of an IPv6 address;
//   - an IPv4 address carried in IPv6 (mapped, translated, NAT64, 6to4,
//     Teredo server or client) classifies like the IPv4 address itself, and
//     an IPv4-compatible ::a.b.c.d is always refused;
//   - the spellings of an IPv4 address other than the dotted quad (decimal,
//     hex, octal, short forms, a trailing dot), which inet_aton(3) and some
//     resolvers read as that address, are never accepted as a host name;
//   - a CIDR, a host:port and a port range written back as text parse back
//     to the same value, and Cidr::contains agrees with a bit-by-bit match.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "common/address.h"
#include "common/uri.h"

namespace {

using common::SocketAddress;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

SocketAddress v4_from_bytes(const uint8_t* bytes) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, bytes, 4);
    return SocketAddress::from(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
}

SocketAddress v6_from_bytes(const uint8_t* bytes) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    std::memcpy(sin6.sin6_addr.s6_addr, bytes, 16);
    return SocketAddress::from(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
}

// The network-order address bytes, 4 or 16 of them.
const uint8_t* bytes_of(const SocketAddress& address) {
    if (address.family() == AF_INET) {
        return reinterpret_cast<const uint8_t*>(
            &reinterpret_cast<const sockaddr_in*>(address.get())->sin_addr);
    }
    return reinterpret_cast<const sockaddr_in6*>(address.get())->sin6_addr.s6_addr;
}

// "0000:0000:...:0001" or its upper-case form: eight full groups.
std::string full_v6(const uint8_t* b, bool upper) {
    std::string text;
    char group[8];
    for (int i = 0; i < 16; i += 2) {
        std::snprintf(group, sizeof(group), upper ? "%02X%02X" : "%02x%02x", b[i], b[i + 1]);
        if (i > 0) text.push_back(':');
        text.append(group);
    }
    return text;
}

// The first 96 bits in full groups, then the last 32 as a dotted quad.
std::string dotted_tail_v6(const uint8_t* b) {
    std::string text = full_v6(b, false).substr(0, 30);
    char quad[20];
    std::snprintf(quad, sizeof(quad), "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
    return text + quad;
}

// Every byte of an accepted text is part of the address: an IPv4 address
// has one spelling, an IPv6 one only hex digits, colons and a dotted tail.
bool every_byte_is_address(const std::string& text, const SocketAddress& address) {
    if (address.family() == AF_INET) return address.host_string() == text;
    return text.find_first_not_of("0123456789abcdefABCDEF:.") == std::string::npos;
}

// The spelling parses to the very same address and class as `address`.
void check_same_address(const std::string& spelling, const SocketAddress& address) {
    auto again = SocketAddress::from_numeric(spelling, address.port());
    check(again.has_value() && *again == address);
    check(common::is_private_destination(*again) == common::is_private_destination(address));
}

void check_spellings(const SocketAddress& address) {
    check_same_address(address.host_string(), address);
    if (address.family() == AF_INET6) {
        check_same_address(full_v6(bytes_of(address), false), address);
        check_same_address(full_v6(bytes_of(address), true), address);
        check_same_address(dotted_tail_v6(bytes_of(address)), address);
    }
}

bool classify_v6(std::initializer_list<uint8_t> prefix, const uint8_t* v4, size_t at) {
    uint8_t b[16] = {};
    std::memcpy(b, prefix.begin(), prefix.size());
    std::memcpy(b + at, v4, 4);
    return common::is_private_destination(v6_from_bytes(b));
}

// Every IPv6 form that carries an IPv4 address classifies like it.
void check_embeddings(const uint8_t* v4) {
    const bool expected = common::is_private_destination(v4_from_bytes(v4));
    check(classify_v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, v4, 12) == expected);
    check(classify_v6({0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, v4, 12) == expected);
    check(classify_v6({0x00, 0x64, 0xff, 0x9b}, v4, 12) == expected);
    check(classify_v6({0x20, 0x02}, v4, 2) == expected);
    // Teredo: the server (bits 32-63) and the client (the last 32 bits,
    // inverted); each carries the address beside a global 8.8.8.8.
    uint8_t teredo[16] = {0x20, 0x01, 0, 0, 8, 8, 8, 8};
    for (int i = 0; i < 4; ++i) teredo[12 + i] = static_cast<uint8_t>(~v4[i]);
    check(common::is_private_destination(v6_from_bytes(teredo)) == expected);
    std::memcpy(teredo + 4, v4, 4);
    for (int i = 0; i < 4; ++i) teredo[12 + i] = static_cast<uint8_t>(~8);
    check(common::is_private_destination(v6_from_bytes(teredo)) == expected);
    // IPv4-compatible ::a.b.c.d is refused whatever it carries.
    check(classify_v6({}, v4, 12));
}

// Spellings of an IPv4 address that are not the dotted quad. inet_aton(3)
// reads each as the address (checked here, so the list stays honest); none
// may pass as a host name.
void check_numeric_names(const uint8_t* v4) {
    const uint32_t value = (uint32_t{v4[0]} << 24) | (uint32_t{v4[1]} << 16) |
                           (uint32_t{v4[2]} << 8) | uint32_t{v4[3]};
    char text[6][48];
    std::snprintf(text[0], sizeof(text[0]), "%u", value);
    std::snprintf(text[1], sizeof(text[1]), "0x%x", value);
    std::snprintf(text[2], sizeof(text[2]), "0%o", value);
    std::snprintf(text[3], sizeof(text[3]), "%u.%u", v4[0], value & 0xffffff);
    std::snprintf(text[4], sizeof(text[4]), "0x%x.%u.0%o.%u", v4[0], v4[1], v4[2], v4[3]);
    std::snprintf(text[5], sizeof(text[5]), "%u.%u.%u.%u.", v4[0], v4[1], v4[2], v4[3]);
    for (const char* spelling : text) {
        in_addr parsed{};
        if (std::string_view(spelling).back() != '.') {
            check(inet_aton(spelling, &parsed) == 1 && ntohl(parsed.s_addr) == value);
        }
        std::string error;
        check(!common::valid_host_name(spelling, error));
    }
    // The dotted quad itself is accepted, and means the address.
    const SocketAddress address = v4_from_bytes(v4);
    std::string error;
    check(common::valid_host_name(address.host_string(), error));
}

// Bit-by-bit prefix match, independent of address.cpp.
bool reference_contains(const common::Cidr& cidr, const uint8_t* bytes) {
    for (int bit = 0; bit < cidr.prefix; ++bit) {
        const int mask = 0x80 >> (bit % 8);
        if ((cidr.bytes[bit / 8] & mask) != (bytes[bit / 8] & mask)) return false;
    }
    return true;
}

void check_cidr(const std::string& text, const uint8_t* raw) {
    std::string error;
    auto cidr = common::parse_cidr(text, error);
    if (!cidr) return;
    const int max_prefix = cidr->family == AF_INET ? 32 : 128;
    check(cidr->prefix >= 0 && cidr->prefix <= max_prefix);
    auto again = common::parse_cidr(cidr->to_string(), error);
    check(again && again->family == cidr->family && again->prefix == cidr->prefix);
    check(std::memcmp(again->bytes, cidr->bytes, 16) == 0);
    const SocketAddress network =
        cidr->family == AF_INET ? v4_from_bytes(cidr->bytes) : v6_from_bytes(cidr->bytes);
    check(cidr->contains(network));
    const SocketAddress other = cidr->family == AF_INET ? v4_from_bytes(raw) : v6_from_bytes(raw);
    check(cidr->contains(other) == reference_contains(*cidr, raw));
    if (cidr->family == AF_INET) {  // a dual-stack socket's view of the client
        uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        std::memcpy(mapped + 12, raw, 4);
        check(cidr->contains(v6_from_bytes(mapped)) == reference_contains(*cidr, raw));
    }
}

void check_host_port(const std::string& text) {
    std::string error;
    for (bool allow_zero : {false, true}) {
        auto parsed = common::parse_host_port(text, error, allow_zero);
        if (!parsed) continue;
        check(!parsed->host.empty() && (parsed->port != 0 || allow_zero));
        const bool v6 = parsed->host.find(':') != std::string::npos;
        const std::string written =
            (v6 ? "[" + parsed->host + "]" : parsed->host) + ":" + std::to_string(parsed->port);
        auto again = common::parse_host_port(written, error, allow_zero);
        check(again && again->host == parsed->host && again->port == parsed->port);
    }
}

void check_port_range(const std::string& text) {
    std::string error;
    auto range = common::parse_port_range(text, error);
    if (!range) return;
    check(range->first >= 1 && range->first <= range->last);
    check(common::port_allowed({*range}, range->first) &&
          common::port_allowed({*range}, range->last));
    const std::string written = std::to_string(range->first) + "-" + std::to_string(range->last);
    auto again = common::parse_port_range(written, error);
    check(again && again->first == range->first && again->last == range->last);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    uint8_t raw[16] = {};
    std::memcpy(raw, data, size < 16 ? size : 16);

    if (auto address = SocketAddress::from_numeric(text, 3128)) {
        check(address->port() == 3128);
        check(every_byte_is_address(text, *address));
        check_spellings(*address);
        if (address->family() == AF_INET) {
            check_embeddings(bytes_of(*address));
            check_numeric_names(bytes_of(*address));
        }
    }
    check_spellings(v4_from_bytes(raw));
    check_spellings(v6_from_bytes(raw));
    check_embeddings(raw);
    check_numeric_names(raw);
    check_cidr(text, raw);
    check_host_port(text);
    check_port_range(text);
    return 0;
}
