// Strict, pure SOCKS parsing and reply encoding: SOCKS5 (RFC 1928) with
// username/password authentication (RFC 1929), and SOCKS4 / SOCKS4a.
//
// Bytes in, result out, the contract of common/http_parser.h: each parse
// function takes the whole buffered prefix of one message every time more
// bytes arrive and returns kComplete (with the message length in `consumed`),
// kNeedMore or kError. Nothing here does I/O or allocates while parsing;
// views in a result point into the caller's buffer and are valid as long as
// it is. Bytes after a complete message (a client that sends greeting,
// authentication and request without waiting) are left for the next call.
//
// Fields are judged in byte order, each as soon as it has arrived, so a prefix
// of a message either needs more or fails with exactly the error the whole
// message would. Every message is bounded: with kMaxMessageSize bytes or more
// buffered, a parse function never answers kNeedMore.
//
// Reject, never repair: a field outside its grammar is an error, never
// guessed at. The reply encoders append to a std::string (they may allocate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/address.h"

namespace common::socks {

enum class ParseStatus { kComplete, kNeedMore, kError };

// Every way a message can be refused. describe() gives the text for the log;
// reply_code() the SOCKS5 REP a request error is answered with.
enum class ParseError {
    kNone,
    kUnknownProtocol,     // first byte is neither 4 nor 5
    kBadVersion,          // VER is not 5 (SOCKS5) / VN is not 4 (SOCKS4)
    kNoMethods,           // greeting with NMETHODS = 0
    kBadAuthVersion,      // RFC 1929 sub-negotiation VER is not 1
    kEmptyUsername,       // RFC 1929 ULEN = 0
    kEmptyPassword,       // RFC 1929 PLEN = 0
    kUnknownCommand,      // CMD not 1..3 (SOCKS5) / CD not 1..2 (SOCKS4): REP 0x07
    kBadReserved,         // SOCKS5 request RSV is not 0
    kUnknownAddressType,  // ATYP not 1, 3 or 4: REP 0x08
    kEmptyHost,           // zero-length domain / empty SOCKS4a hostname
    kNulInHost,           // NUL byte inside a SOCKS5 domain
    kBadHostChar,         // host name byte other than letter, digit, '-', '.', '_'
    kHostTooLong,         // SOCKS4a hostname over kMaxHostLength before its NUL
    kUserIdTooLong,       // SOCKS4 USERID over kMaxUserIdLength before its NUL
    kZeroPort,            // destination port 0
};

// Short, human-readable cause for logs (static storage, never null).
const char* describe(ParseError error);

// Wire constants both sides use (RFC 1928, RFC 1929): this parser of
// clients' messages and socks_client.h's, of a parent's answers.
inline constexpr uint8_t kVersion4 = 0x04;
inline constexpr uint8_t kVersion5 = 0x05;
inline constexpr uint8_t kAuthVersion = 0x01;  // RFC 1929 sub-negotiation
inline constexpr uint8_t kCommandConnect = 0x01;
inline constexpr uint8_t kAtypIpv4 = 0x01;
inline constexpr uint8_t kAtypDomain = 0x03;
inline constexpr uint8_t kAtypIpv6 = 0x04;

// SOCKS5 reply codes (RFC 1928 §6).
inline constexpr uint8_t kRepSucceeded = 0x00;
inline constexpr uint8_t kRepGeneralFailure = 0x01;
inline constexpr uint8_t kRepNotAllowed = 0x02;  // connection not allowed by ruleset
inline constexpr uint8_t kRepNetworkUnreachable = 0x03;
inline constexpr uint8_t kRepHostUnreachable = 0x04;
inline constexpr uint8_t kRepConnectionRefused = 0x05;
inline constexpr uint8_t kRepTtlExpired = 0x06;
inline constexpr uint8_t kRepCommandNotSupported = 0x07;
inline constexpr uint8_t kRepAddressTypeNotSupported = 0x08;

// SOCKS5 authentication methods (RFC 1928 §3).
inline constexpr uint8_t kMethodNoAuth = 0x00;
inline constexpr uint8_t kMethodUsernamePassword = 0x02;
inline constexpr uint8_t kMethodNoAcceptable = 0xFF;

// SOCKS4 reply codes (CD of the reply).
inline constexpr uint8_t kSocks4Granted = 0x5A;
inline constexpr uint8_t kSocks4Rejected = 0x5B;

inline constexpr size_t kMaxUserIdLength = 255;  // SOCKS4 USERID, NUL excluded
inline constexpr size_t kMaxHostLength = 255;    // SOCKS4a HOSTNAME, NUL excluded
// Longest message of any kind: a SOCKS4a request with both fields at the limit.
inline constexpr size_t kMaxMessageSize = 8 + (kMaxUserIdLength + 1) + (kMaxHostLength + 1);

// The REP a SOCKS5 request refused for `error` is answered with: 0x07 for an
// unknown command, 0x08 for an unknown address type, 0x01 for anything else
// (kSucceeded for kNone). Greeting and authentication errors have no REP:
// the caller answers 05 FF / 01 01 or closes.
uint8_t reply_code(ParseError error);

// The REP for a failed connect() or getsockopt(SO_ERROR) errno: refused 0x05,
// network unreachable 0x03, host unreachable or timed out 0x04, EACCES/EPERM
// 0x02, anything else 0x01.
uint8_t reply_code_for_errno(int error);

// What every parse function returns. `message` and `consumed` are meaningful
// only when status is kComplete; `error` is kNone unless status is kError.
template <typename Message>
struct Result {
    ParseStatus status = ParseStatus::kNeedMore;
    size_t consumed = 0;  // bytes of the message, <= input.size()
    ParseError error = ParseError::kNone;
    Message message{};
};

// The three ways a parse ends, for the parsers of both sides
// (socks_parser.cpp, socks_client.cpp).
template <typename M>
Result<M> need_more() {
    return {};
}

template <typename M>
Result<M> fail(ParseError error) {
    Result<M> r;
    r.status = ParseStatus::kError;
    r.error = error;
    return r;
}

template <typename M>
Result<M> complete(size_t consumed, const M& message) {
    return {ParseStatus::kComplete, consumed, ParseError::kNone, message};
}

enum class Version { kSocks4, kSocks5 };

// Which protocol a connection speaks, from its first byte. Consumes nothing
// (consumed stays 0): the byte is the version field of the first message.
// kNeedMore on empty input, kError kUnknownProtocol for a byte other than 4/5.
Result<Version> detect_version(std::string_view input);

// --- SOCKS5 -------------------------------------------------------------------

// VER=5 NMETHODS METHODS... (RFC 1928 §3).
struct Greeting {
    std::string_view methods;               // the NMETHODS method bytes, in order (non-empty)
    bool offers_no_auth = false;            // 0x00 is among them
    bool offers_username_password = false;  // 0x02 is among them
};

// Errors: kBadVersion, kNoMethods.
Result<Greeting> parse_greeting(std::string_view input);

// The method to select for `greeting`: username/password when
// `require_password`, else no-auth; kMethodNoAcceptable when it is not offered.
uint8_t choose_method(const Greeting& greeting, bool require_password);

// VER=1 ULEN UNAME PLEN PASSWD (RFC 1929 §2). Both views are 1..255 bytes of
// any value; comparing them is the caller's business.
struct Credentials {
    std::string_view username;
    std::string_view password;
};

// Errors: kBadAuthVersion, kEmptyUsername, kEmptyPassword.
Result<Credentials> parse_credentials(std::string_view input);

enum class Command : uint8_t {
    kConnect = 1,
    kBind = 2,
    kUdpAssociate = 3,  // SOCKS5 only
};

// Where a request wants to go: an address literal or a host name to resolve,
// both with a port 1..65535.
struct Destination {
    // IPv4/IPv6 literal with port set; family AF_UNSPEC (0) when a name.
    SocketAddress address;
    // A host name: 1..255 bytes, only letters, digits, '-', '.', '_' (so no
    // NUL, space, '%', ':' or '/'). Empty when an address.
    std::string_view host;
    uint16_t port = 0;

    bool is_name() const { return !host.empty(); }
};

// VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT (RFC 1928 §4). BIND and UDP
// ASSOCIATE are reported; answering them (with kRepCommandNotSupported) is
// the caller's choice.
struct Request {
    Command command = Command::kConnect;
    Destination destination;
};

// Errors: kBadVersion, kUnknownCommand (REP 0x07), kBadReserved,
// kUnknownAddressType (REP 0x08), kEmptyHost, kNulInHost, kBadHostChar,
// kZeroPort.
Result<Request> parse_request(std::string_view input);

// Appends the method selection reply `05 METHOD`.
void encode_method_selection(uint8_t method, std::string& out);
// Appends the RFC 1929 status reply: `01 00` on success, `01 01` on failure.
void encode_auth_status(bool success, std::string& out);
// Appends `05 REP 00 ATYP BND.ADDR BND.PORT` (10 bytes for IPv4, 22 for
// IPv6). A `bound` that is neither AF_INET nor AF_INET6 is sent as 0.0.0.0:0.
void encode_reply(uint8_t rep, const SocketAddress& bound, std::string& out);
// The same with 0.0.0.0:0, for failures.
void encode_reply(uint8_t rep, std::string& out);

// --- SOCKS4 / SOCKS4a ---------------------------------------------------------

// VN=4 CD DSTPORT DSTIP USERID NUL [HOSTNAME NUL]. DSTIP 0.0.0.x with x != 0
// marks SOCKS4a: the destination is then the HOSTNAME, validated like a SOCKS5
// domain. DSTIP 0.0.0.0 is an (IPv4) address, for the ACL to judge.
struct Socks4Request {
    Command command = Command::kConnect;  // kConnect or kBind
    Destination destination;              // a name for SOCKS4a, else IPv4
    std::string_view user_id;             // 0..255 bytes, no NUL; may be empty
};

// Errors: kBadVersion, kUnknownCommand, kZeroPort, kUserIdTooLong, and for
// SOCKS4a kEmptyHost, kBadHostChar, kHostTooLong. Every error is answered
// with kSocks4Rejected.
Result<Socks4Request> parse_socks4_request(std::string_view input);

// Appends the 8-byte reply `00 5A|5B DSTPORT DSTIP`, with the bound address
// when it is IPv4 and zeros otherwise.
void encode_socks4_reply(bool granted, const SocketAddress& bound, std::string& out);
// The same with port and address zero.
void encode_socks4_reply(bool granted, std::string& out);

}  // namespace common::socks
