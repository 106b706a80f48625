#include "common/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace common::proxy_protocol {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                   '\n', 'Q',  'U',  'I',  'T',  '\n'};
constexpr std::string_view kV2SignatureView(kV2Signature, sizeof(kV2Signature));

Result need_more() {
    return Result{};
}

Result malformed(Error error) {
    Result result;
    result.status = Status::kMalformed;
    result.error = error;
    return result;
}

// A finished header that keeps the socket's addresses.
Result done(int version, size_t consumed, Command command) {
    Result result;
    result.status = Status::kDone;
    result.version = version;
    result.consumed = consumed;
    result.command = command;
    return result;
}

// --- version 1 ---------------------------------------------------------------

// Pops the text before the next single space; false when there is no space
// or the field is empty (two spaces in a row, a leading space).
bool next_field(std::string_view& rest, std::string_view& field) {
    size_t space = rest.find(' ');
    if (space == 0 || space == std::string_view::npos) return false;
    field = rest.substr(0, space);
    rest.remove_prefix(space + 1);
    return true;
}

// "0".."65535": digits only, no leading zero unless the port is 0.
std::optional<uint16_t> parse_v1_port(std::string_view text) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return std::nullopt;
    return static_cast<uint16_t>(value);
}

// A textual address of `family` (inet_pton's grammar: canonical dotted quad
// for IPv4, no zone for IPv6), copied to the stack for the NUL inet_pton needs.
std::optional<SocketAddress> parse_v1_address(int family, std::string_view text, uint16_t port) {
    char buffer[INET6_ADDRSTRLEN];
    if (text.size() >= sizeof(buffer)) return std::nullopt;
    std::memcpy(buffer, text.data(), text.size());
    buffer[text.size()] = '\0';
    SocketAddress address;
    if (family == AF_INET) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
        if (inet_pton(AF_INET, buffer, &v4->sin_addr) != 1) return std::nullopt;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        address.length = sizeof(sockaddr_in);
    } else {
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
        if (inet_pton(AF_INET6, buffer, &v6->sin6_addr) != 1) return std::nullopt;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        address.length = sizeof(sockaddr_in6);
    }
    return address;
}

// The fields after "PROXY TCP4 " or "PROXY TCP6 ": "SRC DST SPORT DPORT",
// the line without its CRLF.
Result parse_v1_tcp(int family, std::string_view rest, size_t consumed) {
    std::string_view src, dst, sport;
    if (!next_field(rest, src) || !next_field(rest, dst) || !next_field(rest, sport) ||
        rest.empty() || rest.find(' ') != std::string_view::npos) {
        return malformed(Error::kBadSyntax);
    }
    std::optional<uint16_t> source_port = parse_v1_port(sport);
    std::optional<uint16_t> destination_port = parse_v1_port(rest);
    if (!source_port || !destination_port) return malformed(Error::kBadPort);
    Result result = done(1, consumed, Command::kProxy);
    result.source = parse_v1_address(family, src, *source_port);
    result.destination = parse_v1_address(family, dst, *destination_port);
    if (!result.source || !result.destination) return malformed(Error::kBadAddress);
    return result;
}

// The line between "PROXY " and the CRLF, now that it is complete.
Result parse_v1_line(std::string_view line, size_t consumed) {
    std::string_view protocol;
    std::string_view rest;
    size_t space = line.find(' ');
    protocol = line.substr(0, space);
    if (space != std::string_view::npos) rest = line.substr(space + 1);
    if (protocol == "UNKNOWN") {
        // The spec: the receiver ignores whatever follows, up to the CRLF.
        return done(1, consumed, Command::kProxy);
    }
    if (protocol != "TCP4" && protocol != "TCP6") return malformed(Error::kBadProtocol);
    if (space == std::string_view::npos) return malformed(Error::kBadSyntax);
    return parse_v1_tcp(protocol == "TCP4" ? AF_INET : AF_INET6, rest, consumed);
}

// Scans byte by byte for the CRLF, refusing at the first byte that cannot
// belong to a header, so a prefix fails exactly as the whole would.
Result parse_v1(std::string_view bytes) {
    size_t limit = std::min(bytes.size(), kMaxV1Size);
    for (size_t i = 0; i < limit; ++i) {
        char c = bytes[i];
        if (i < kV1Prefix.size()) {
            if (c != kV1Prefix[i]) return malformed(Error::kNotProxyProtocol);
            continue;
        }
        if (c == '\r') {
            if (i + 2 > kMaxV1Size) return malformed(Error::kTooLong);
            if (i + 1 == bytes.size()) return need_more();
            if (bytes[i + 1] != '\n') return malformed(Error::kBareCr);
            return parse_v1_line(bytes.substr(kV1Prefix.size(), i - kV1Prefix.size()), i + 2);
        }
        if (c == '\n') return malformed(Error::kBareLf);
        if (c < 0x20 || c > 0x7e) return malformed(Error::kBadCharacter);
    }
    return bytes.size() >= kMaxV1Size ? malformed(Error::kTooLong) : need_more();
}

// --- version 2 ---------------------------------------------------------------

constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;

// The family/protocol bytes the spec defines, and their address blocks.
constexpr uint8_t kUnspec = 0x00;
constexpr uint8_t kTcp4 = 0x11;
constexpr uint8_t kUdp4 = 0x12;
constexpr uint8_t kTcp6 = 0x21;
constexpr uint8_t kUdp6 = 0x22;
constexpr uint8_t kUnixStream = 0x31;
constexpr uint8_t kUnixDgram = 0x32;

// The address block's size for a defined family byte; -1 for any other.
int v2_address_size(uint8_t family) {
    switch (family) {
        case kUnspec:
            return 0;
        case kTcp4:
        case kUdp4:
            return 12;
        case kTcp6:
        case kUdp6:
            return 36;
        case kUnixStream:
        case kUnixDgram:
            return 216;
        default:
            return -1;
    }
}

uint8_t byte_at(std::string_view bytes, size_t i) {
    return static_cast<uint8_t>(bytes[i]);
}

uint16_t be16(std::string_view bytes, size_t i) {
    return static_cast<uint16_t>(byte_at(bytes, i) << 8 | byte_at(bytes, i + 1));
}

// Every TLV (type, 16-bit length, value) lies inside `tlvs`, and they fill
// it exactly: a stray byte at the end is a TLV cut short.
bool tlvs_well_formed(std::string_view tlvs) {
    size_t at = 0;
    while (at < tlvs.size()) {
        if (tlvs.size() - at < 3) return false;
        size_t length = be16(tlvs, at + 1);
        if (tlvs.size() - at - 3 < length) return false;
        at += 3 + length;
    }
    return true;
}

// Source and destination of a TCP4/TCP6 address block: addresses first,
// then ports, all in network order.
void read_v2_addresses(uint8_t family, std::string_view block, Result& result) {
    SocketAddress source;
    SocketAddress destination;
    if (family == kTcp4) {
        auto* src = reinterpret_cast<sockaddr_in*>(&source.storage);
        auto* dst = reinterpret_cast<sockaddr_in*>(&destination.storage);
        src->sin_family = dst->sin_family = AF_INET;
        std::memcpy(&src->sin_addr, block.data(), 4);
        std::memcpy(&dst->sin_addr, block.data() + 4, 4);
        std::memcpy(&src->sin_port, block.data() + 8, 2);
        std::memcpy(&dst->sin_port, block.data() + 10, 2);
        source.length = destination.length = sizeof(sockaddr_in);
    } else {
        auto* src = reinterpret_cast<sockaddr_in6*>(&source.storage);
        auto* dst = reinterpret_cast<sockaddr_in6*>(&destination.storage);
        src->sin6_family = dst->sin6_family = AF_INET6;
        std::memcpy(&src->sin6_addr, block.data(), 16);
        std::memcpy(&dst->sin6_addr, block.data() + 16, 16);
        std::memcpy(&src->sin6_port, block.data() + 32, 2);
        std::memcpy(&dst->sin6_port, block.data() + 34, 2);
        source.length = destination.length = sizeof(sockaddr_in6);
    }
    result.source = source;
    result.destination = destination;
}

// The 16 fixed bytes, judged as far as they have arrived: signature, then
// version, command, family, and the length against the family's block.
// kDone here means "the fixed part is acceptable", with no meaning in
// `consumed`.
Result check_v2_fixed(std::string_view bytes) {
    size_t signature = std::min(bytes.size(), sizeof(kV2Signature));
    if (bytes.substr(0, signature) != kV2SignatureView.substr(0, signature)) {
        return malformed(Error::kNotProxyProtocol);
    }
    if (bytes.size() <= 12) return need_more();
    if ((byte_at(bytes, 12) >> 4) != 2) return malformed(Error::kBadVersion);
    uint8_t command = byte_at(bytes, 12) & 0x0f;
    if (command != kCommandLocal && command != kCommandProxy) return malformed(Error::kBadCommand);
    if (bytes.size() <= 13) return need_more();
    uint8_t family = byte_at(bytes, 13);
    int address_size = v2_address_size(family);
    if (address_size < 0) return malformed(Error::kBadFamily);
    if (command == kCommandProxy && family != kUnspec && family != kTcp4 && family != kTcp6) {
        return malformed(Error::kUnsupportedFamily);
    }
    if (bytes.size() < kV2FixedSize) return need_more();
    size_t length = be16(bytes, 14);
    if (length < static_cast<size_t>(address_size)) return malformed(Error::kShortAddress);
    if (length - static_cast<size_t>(address_size) > kMaxV2TlvBytes) {
        return malformed(Error::kTlvTooLong);
    }
    return done(2, 0, Command::kLocal);
}

Result parse_v2(std::string_view bytes) {
    Result fixed = check_v2_fixed(bytes);
    if (fixed.status != Status::kDone) return fixed;
    size_t total = kV2FixedSize + be16(bytes, 14);
    if (bytes.size() < total) return need_more();
    uint8_t family = byte_at(bytes, 13);
    auto address_size = static_cast<size_t>(v2_address_size(family));
    std::string_view block = bytes.substr(kV2FixedSize, total - kV2FixedSize);
    if (!tlvs_well_formed(block.substr(address_size))) return malformed(Error::kBadTlv);
    // LOCAL: the spec has the receiver ignore the block whatever its family.
    if ((byte_at(bytes, 12) & 0x0f) == kCommandLocal) return done(2, total, Command::kLocal);
    Result result = done(2, total, Command::kProxy);
    if (family == kTcp4 || family == kTcp6) read_v2_addresses(family, block, result);
    return result;
}

}  // namespace

const char* describe(Error error) {
    switch (error) {
        case Error::kNone:
            return "no error";
        case Error::kNotProxyProtocol:
            return "not a PROXY protocol header";
        case Error::kBadCharacter:
            return "v1: a byte that is not printable ASCII";
        case Error::kBareCr:
            return "v1: CR not followed by LF";
        case Error::kBareLf:
            return "v1: LF without CR";
        case Error::kTooLong:
            return "v1: no CRLF within 107 bytes";
        case Error::kBadProtocol:
            return "v1: protocol is not TCP4, TCP6 or UNKNOWN";
        case Error::kBadSyntax:
            return "v1: fields missing, extra or not separated by single spaces";
        case Error::kBadAddress:
            return "v1: address is not one of the named family";
        case Error::kBadPort:
            return "v1: port is not a decimal 0..65535 without leading zeros";
        case Error::kBadVersion:
            return "v2: version is not 2";
        case Error::kBadCommand:
            return "v2: command is neither LOCAL nor PROXY";
        case Error::kBadFamily:
            return "v2: undefined address family or protocol";
        case Error::kUnsupportedFamily:
            return "v2: PROXY over UDP or a unix socket";
        case Error::kShortAddress:
            return "v2: length shorter than the address block";
        case Error::kTlvTooLong:
            return "v2: more than 1024 bytes of TLVs";
        case Error::kBadTlv:
            return "v2: a TLV runs past the end of the header";
    }
    return "unknown error";
}

Result parse(std::string_view bytes) {
    if (bytes.empty()) return need_more();
    if (bytes[0] == '\r') return parse_v2(bytes);
    return parse_v1(bytes);
}

}  // namespace common::proxy_protocol
