// Strict, pure parsing of the PROXY protocol header (haproxy's
// proxy-protocol.txt, versions 1 and 2) that a load balancer puts in front of
// a client's bytes to tell the client's real address.
//
// Bytes in, result out, the contract of common/socks_parser.h: parse() takes
// everything buffered so far every time more arrives and answers kNeedMore,
// kMalformed (with the reason) or kDone (with the header's length in
// `consumed`; the bytes after it are the client's and are not looked at).
// Nothing here does I/O or allocates.
//
// Fields are judged in byte order, so a prefix of a header either needs more
// or fails exactly as the whole would, and the answer never depends on how
// the bytes were split. Every header is bounded: with kMaxHeaderSize bytes
// buffered, parse() never answers kNeedMore.
//
// Reject, never repair. Version 1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n"
// with single spaces, addresses of the named family, decimal ports 0..65535
// without leading zeros, at most 107 bytes with the CRLF; "PROXY UNKNOWN"
// may be followed by anything printable up to the CRLF, which the spec says
// to ignore. Version 2: the 12-byte signature, version 2, command LOCAL or
// PROXY, and one of the families the spec defines; every TLV after the
// address block must fit in it (their contents are skipped), and at most
// kMaxV2TlvBytes of them are taken.
//
// What a header means for the connection:
//   - PROXY over TCP/IPv4 or TCP/IPv6 (v1 TCP4/TCP6, v2 0x11/0x21): `source`
//     and `destination` are the client's connection as the balancer saw it.
//   - v1 UNKNOWN, v2 LOCAL (any defined family, whose block is skipped) and
//     v2 PROXY with AF_UNSPEC: no addresses; the socket's own are kept (a
//     balancer's health check, or a connection the balancer cannot
//     describe), as the spec requires.
//   - v2 PROXY over UDP or over a unix socket is refused (kUnsupportedFamily)
//     rather than treated as AF_UNSPEC, which the spec would allow: such a
//     connection cannot reach a TCP listener as itself, and keeping the
//     socket's address would let it pass allow_clients as the balancer.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "common/address.h"

namespace common::proxy_protocol {

// The longest version 1 header, CRLF included (the spec's bound).
inline constexpr size_t kMaxV1Size = 107;
// The fixed part of a version 2 header: signature, version and command,
// family and protocol, length.
inline constexpr size_t kV2FixedSize = 16;
// TLV bytes taken after a version 2 address block. Balancers send a few
// dozen (ALPN, authority, a unique ID, a CRC); the spec allows 64 KiB, which
// a worker would have to buffer per connection before it knows anything.
inline constexpr size_t kMaxV2TlvBytes = 1024;
// The longest header parse() can answer kDone for: a LOCAL command with a
// unix socket's address block (216 bytes) and the most TLVs. With this many
// bytes buffered the answer is never kNeedMore.
inline constexpr size_t kMaxHeaderSize = kV2FixedSize + 216 + kMaxV2TlvBytes;

enum class Status { kNeedMore, kMalformed, kDone };

// LOCAL: the balancer speaks for itself (a health check); PROXY: for a client.
enum class Command { kLocal, kProxy };

// Every way a header can be refused; describe() gives the text for the log.
enum class Error {
    kNone,
    kNotProxyProtocol,   // neither "PROXY " nor the version 2 signature
    kBadCharacter,       // v1: a byte that is not printable ASCII before the CRLF
    kBareCr,             // v1: CR not followed by LF
    kBareLf,             // v1: LF without CR before it
    kTooLong,            // v1: no CRLF within 107 bytes
    kBadProtocol,        // v1: not TCP4, TCP6 or UNKNOWN
    kBadSyntax,          // v1: fields missing, extra, or not separated by one space
    kBadAddress,         // v1: not an address of the named family
    kBadPort,            // v1: not a decimal 0..65535 without leading zeros
    kBadVersion,         // v2: version is not 2
    kBadCommand,         // v2: command is neither LOCAL nor PROXY
    kBadFamily,          // v2: family/protocol byte the spec does not define
    kUnsupportedFamily,  // v2: PROXY over UDP or a unix socket (see above)
    kShortAddress,       // v2: length smaller than the family's address block
    kTlvTooLong,         // v2: more than kMaxV2TlvBytes after the address block
    kBadTlv,             // v2: a TLV that runs past the end of the header
};

// Short, human-readable cause for logs (static storage, never null).
const char* describe(Error error);

struct Result {
    Status status = Status::kNeedMore;
    Error error = Error::kNone;  // set with kMalformed only
    int version = 0;             // 1 or 2 with kDone
    size_t consumed = 0;         // the header's length with kDone, else 0
    Command command = Command::kLocal;
    // Both set, or neither (keep the socket's own addresses).
    std::optional<SocketAddress> source;
    std::optional<SocketAddress> destination;
};

// Parses the header at the start of `bytes` (everything received so far).
Result parse(std::string_view bytes);

}  // namespace common::proxy_protocol
