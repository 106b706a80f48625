// The client side of SOCKS5 (RFC 1928) with username/password
// authentication (RFC 1929): what proxyd sends to a SOCKS5 parent proxy and
// how it reads the answers. Pure: no I/O; worker/parent_handshake.cpp does
// the talking.
//
// The parsers keep the contract of common/socks_parser.h (its Result,
// ParseStatus and ParseError): each takes the whole buffered prefix of one
// answer every time more bytes arrive and returns kComplete with the
// answer's length in `consumed`, kNeedMore, or kError. Bytes after a
// complete answer are not the parser's: after the CONNECT reply they are the
// first bytes of the tunnel. Fields are judged in byte order, so a prefix
// fails with exactly the error the whole answer would.
//
// Strict on what the protocol fixes (versions, the reserved byte, the
// address type), silent on what proxyd does not use (the chosen method's
// value, BND.ADDR and BND.PORT are not judged: the caller decides what an
// unexpected method means, and the bound address is never used).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/socks_parser.h"

namespace common::socks {

// Longest CONNECT reply: 05 REP 00 03 LEN, 255 name bytes, BND.PORT.
inline constexpr size_t kMaxConnectReplySize = 4 + 1 + 255 + 2;

// `05 01 00` (no authentication), or `05 02 00 02` when we have credentials
// to offer as well.
std::string build_greeting(bool with_credentials);

// The server's method selection `05 METHOD`: the chosen method (any value,
// kMethodNoAcceptable included). Error: kBadVersion.
Result<uint8_t> parse_method_selection(std::string_view input);

// `01 ULEN UNAME PLEN PASSWD` (RFC 1929 §2). nullopt when either field is
// empty or longer than 255 bytes, which the protocol cannot carry.
std::optional<std::string> build_password_request(std::string_view user, std::string_view password);

// The RFC 1929 status reply `01 STATUS`: true for STATUS 0 (success), false
// for any other. Error: kBadAuthVersion when VER is not 1. Some servers
// answer with 05 there (a confusion with the SOCKS version); that is refused
// like any other wrong version, since RFC 1929 fixes the byte.
Result<bool> parse_password_reply(std::string_view input);

// `05 01 00 ATYP DST.ADDR DST.PORT`: ATYP 01 or 04 for an IPv4 or IPv6
// literal (`host` without brackets) when `is_ip_literal`, else 03 with the
// name (the parent resolves it). nullopt for port 0, a name that is empty or
// over 255 bytes, or an `is_ip_literal` host that is not one.
std::optional<std::string> build_connect_request(std::string_view host, uint16_t port,
                                                 bool is_ip_literal);

// The server's reply to CONNECT: `05 REP 00 ATYP BND.ADDR BND.PORT`, whose
// length depends on ATYP (01: 4 address bytes, 04: 16, 03: a length byte and
// that many). `rep` is kRepSucceeded when the tunnel is open. Errors:
// kBadVersion, kBadReserved, kUnknownAddressType.
struct ConnectReply {
    uint8_t rep = kRepGeneralFailure;
};
Result<ConnectReply> parse_connect_reply(std::string_view input);

// RFC 1928 §6's text for a REP: "succeeded", "general failure", "connection
// not allowed by ruleset", ..., "address type not supported", and
// "unassigned reply N" (decimal) for the others.
std::string describe_socks_reply(uint8_t rep);

}  // namespace common::socks
