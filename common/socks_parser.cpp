// SOCKS4/4a and SOCKS5 parsing and replies, see socks_parser.h for the
// contract.
//
// Each parser walks its message with a Reader that hands out fields in order
// and says "not yet" instead of reading past the end; a parser returns
// kNeedMore the moment a field is missing, and judges every field (and the
// arrived part of a variable-length one) before asking for the next. That
// ordering is what makes a prefix fail with the same error as the whole.
#include "common/socks_parser.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

namespace common::socks {

namespace {

// Hands out the fields of a message from the front of `input`. Every take
// returns false, and moves nothing, when the input ends first.
class Reader {
  public:
    explicit Reader(std::string_view input) : input_(input) {}

    bool byte(uint8_t& out) {
        if (pos_ >= input_.size()) return false;
        out = static_cast<uint8_t>(input_[pos_++]);
        return true;
    }
    bool bytes(size_t n, std::string_view& out) {
        if (input_.size() - pos_ < n) return false;
        out = input_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    bool port(uint16_t& out) {
        std::string_view two;
        if (!bytes(2, two)) return false;
        out =
            static_cast<uint16_t>(static_cast<uint8_t>(two[0]) << 8 | static_cast<uint8_t>(two[1]));
        return true;
    }
    // At most `n` of the bytes not taken yet, without taking them.
    std::string_view peek(size_t n) const { return input_.substr(pos_, n); }
    size_t pos() const { return pos_; }

  private:
    std::string_view input_;
    size_t pos_ = 0;
};

// The outcome of one step that may need more input, fail, or succeed.
struct Step {
    ParseStatus status;
    ParseError error;
};
constexpr Step kStepDone{ParseStatus::kComplete, ParseError::kNone};
constexpr Step kStepNeedMore{ParseStatus::kNeedMore, ParseError::kNone};
Step step_error(ParseError e) {
    return {ParseStatus::kError, e};
}

template <typename M>
Result<M> from_step(Step s) {
    return s.status == ParseStatus::kError ? fail<M>(s.error) : need_more<M>();
}

bool is_host_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// Judges the bytes of a host name that have arrived; the first bad byte
// decides the error.
ParseError check_host_chars(std::string_view part) {
    for (unsigned char c : part) {
        if (c == 0) return ParseError::kNulInHost;
        if (!is_host_char(c)) return ParseError::kBadHostChar;
    }
    return ParseError::kNone;
}

SocketAddress ipv4_address(std::string_view four, uint16_t port) {
    SocketAddress address;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, four.data(), 4);
    address.length = sizeof(sockaddr_in);
    return address;
}

SocketAddress ipv6_address(std::string_view sixteen, uint16_t port) {
    SocketAddress address;
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    std::memcpy(&v6->sin6_addr, sixteen.data(), 16);
    address.length = sizeof(sockaddr_in6);
    return address;
}

// DST.PORT, which must not be 0.
Step take_port(Reader& in, uint16_t& port) {
    if (!in.port(port)) return kStepNeedMore;
    return port == 0 ? step_error(ParseError::kZeroPort) : kStepDone;
}

// ATYP 3: a length byte >= 1, then that many host name bytes.
Step take_domain(Reader& in, std::string_view& host) {
    uint8_t length = 0;
    if (!in.byte(length)) return kStepNeedMore;
    if (length == 0) return step_error(ParseError::kEmptyHost);
    if (ParseError e = check_host_chars(in.peek(length)); e != ParseError::kNone) {
        return step_error(e);
    }
    return in.bytes(length, host) ? kStepDone : kStepNeedMore;
}

// DST.ADDR and DST.PORT of a SOCKS5 request, after ATYP.
Step take_destination(Reader& in, uint8_t atyp, Destination& out) {
    std::string_view raw;
    if (atyp == kAtypDomain) {
        if (Step s = take_domain(in, out.host); s.status != ParseStatus::kComplete) return s;
        return take_port(in, out.port);
    }
    const size_t size = atyp == kAtypIpv4 ? 4 : 16;
    if (!in.bytes(size, raw)) return kStepNeedMore;
    if (Step s = take_port(in, out.port); s.status != ParseStatus::kComplete) return s;
    out.address = size == 4 ? ipv4_address(raw, out.port) : ipv6_address(raw, out.port);
    return kStepDone;
}

// A NUL-terminated SOCKS4 string of at most `max` bytes. `text` excludes the
// NUL; the NUL is taken too. Over `max` bytes without a NUL is `too_long`,
// even before the NUL could arrive.
Step take_c_string(Reader& in, size_t max, ParseError too_long, std::string_view& text) {
    const std::string_view window = in.peek(max + 1);
    const size_t nul = window.find('\0');
    if (nul == std::string_view::npos) {
        return window.size() > max ? step_error(too_long) : kStepNeedMore;
    }
    std::string_view terminator;
    in.bytes(nul, text);
    in.bytes(1, terminator);
    return kStepDone;
}

// The SOCKS4a HOSTNAME: non-empty, NUL-terminated, host name bytes only.
Step take_socks4a_host(Reader& in, std::string_view& host) {
    // Judge the bytes that are there before waiting for the NUL.
    const std::string_view window = in.peek(kMaxHostLength + 1);
    const std::string_view arrived = window.substr(0, window.find('\0'));
    if (arrived.empty() && !window.empty()) return step_error(ParseError::kEmptyHost);
    if (ParseError e = check_host_chars(arrived.substr(0, kMaxHostLength));
        e != ParseError::kNone) {
        return step_error(e);
    }
    return take_c_string(in, kMaxHostLength, ParseError::kHostTooLong, host);
}

void append_port(uint16_t port, std::string& out) {
    out.push_back(static_cast<char>(port >> 8));
    out.push_back(static_cast<char>(port & 0xff));
}

void append_bytes(const void* data, size_t n, std::string& out) {
    out.append(static_cast<const char*>(data), n);
}

}  // namespace

const char* describe(ParseError error) {
    switch (error) {
        case ParseError::kNone:
            return "no error";
        case ParseError::kUnknownProtocol:
            return "not a SOCKS4 or SOCKS5 client";
        case ParseError::kBadVersion:
            return "wrong protocol version field";
        case ParseError::kNoMethods:
            return "greeting offers no authentication method";
        case ParseError::kBadAuthVersion:
            return "bad username/password sub-negotiation version";
        case ParseError::kEmptyUsername:
            return "empty username";
        case ParseError::kEmptyPassword:
            return "empty password";
        case ParseError::kUnknownCommand:
            return "unknown command";
        case ParseError::kBadReserved:
            return "reserved byte is not zero";
        case ParseError::kUnknownAddressType:
            return "unknown address type";
        case ParseError::kEmptyHost:
            return "empty host name";
        case ParseError::kNulInHost:
            return "NUL byte in host name";
        case ParseError::kBadHostChar:
            return "invalid character in host name";
        case ParseError::kHostTooLong:
            return "host name too long";
        case ParseError::kUserIdTooLong:
            return "user id too long";
        case ParseError::kZeroPort:
            return "destination port 0";
    }
    return "unknown error";
}

uint8_t reply_code(ParseError error) {
    switch (error) {
        case ParseError::kNone:
            return kRepSucceeded;
        case ParseError::kUnknownCommand:
            return kRepCommandNotSupported;
        case ParseError::kUnknownAddressType:
            return kRepAddressTypeNotSupported;
        default:
            return kRepGeneralFailure;
    }
}

uint8_t reply_code_for_errno(int error) {
    switch (error) {
        case ECONNREFUSED:
            return kRepConnectionRefused;
        case ENETUNREACH:
        case ENETDOWN:
            return kRepNetworkUnreachable;
        case EHOSTUNREACH:
        case EHOSTDOWN:
        case ETIMEDOUT:
            return kRepHostUnreachable;
        case EACCES:
        case EPERM:
            return kRepNotAllowed;
        default:
            return kRepGeneralFailure;
    }
}

Result<Version> detect_version(std::string_view input) {
    if (input.empty()) return need_more<Version>();
    const auto first = static_cast<uint8_t>(input[0]);
    if (first == kVersion4) return complete<Version>(0, Version::kSocks4);
    if (first == kVersion5) return complete<Version>(0, Version::kSocks5);
    return fail<Version>(ParseError::kUnknownProtocol);
}

Result<Greeting> parse_greeting(std::string_view input) {
    using R = Greeting;
    Reader in(input);
    uint8_t version = 0, count = 0;
    if (!in.byte(version)) return need_more<R>();
    if (version != kVersion5) return fail<R>(ParseError::kBadVersion);
    if (!in.byte(count)) return need_more<R>();
    if (count == 0) return fail<R>(ParseError::kNoMethods);
    Greeting g;
    if (!in.bytes(count, g.methods)) return need_more<R>();
    for (unsigned char m : g.methods) {
        g.offers_no_auth |= m == kMethodNoAuth;
        g.offers_username_password |= m == kMethodUsernamePassword;
    }
    return complete(in.pos(), g);
}

uint8_t choose_method(const Greeting& greeting, bool require_password) {
    if (require_password) {
        return greeting.offers_username_password ? kMethodUsernamePassword : kMethodNoAcceptable;
    }
    return greeting.offers_no_auth ? kMethodNoAuth : kMethodNoAcceptable;
}

Result<Credentials> parse_credentials(std::string_view input) {
    using R = Credentials;
    Reader in(input);
    uint8_t version = 0, ulen = 0, plen = 0;
    Credentials c;
    if (!in.byte(version)) return need_more<R>();
    if (version != kAuthVersion) return fail<R>(ParseError::kBadAuthVersion);
    if (!in.byte(ulen)) return need_more<R>();
    if (ulen == 0) return fail<R>(ParseError::kEmptyUsername);
    if (!in.bytes(ulen, c.username)) return need_more<R>();
    if (!in.byte(plen)) return need_more<R>();
    if (plen == 0) return fail<R>(ParseError::kEmptyPassword);
    if (!in.bytes(plen, c.password)) return need_more<R>();
    return complete(in.pos(), c);
}

Result<Request> parse_request(std::string_view input) {
    using R = Request;
    Reader in(input);
    uint8_t version = 0, command = 0, reserved = 0, atyp = 0;
    if (!in.byte(version)) return need_more<R>();
    if (version != kVersion5) return fail<R>(ParseError::kBadVersion);
    if (!in.byte(command)) return need_more<R>();
    if (command < 1 || command > 3) return fail<R>(ParseError::kUnknownCommand);
    if (!in.byte(reserved)) return need_more<R>();
    if (reserved != 0) return fail<R>(ParseError::kBadReserved);
    if (!in.byte(atyp)) return need_more<R>();
    if (atyp != kAtypIpv4 && atyp != kAtypDomain && atyp != kAtypIpv6) {
        return fail<R>(ParseError::kUnknownAddressType);
    }
    Request request;
    request.command = static_cast<Command>(command);
    if (Step s = take_destination(in, atyp, request.destination);
        s.status != ParseStatus::kComplete) {
        return from_step<R>(s);
    }
    return complete(in.pos(), request);
}

Result<Socks4Request> parse_socks4_request(std::string_view input) {
    using R = Socks4Request;
    Reader in(input);
    uint8_t version = 0, command = 0;
    Socks4Request request;
    Destination& dest = request.destination;
    std::string_view ip;
    if (!in.byte(version)) return need_more<R>();
    if (version != kVersion4) return fail<R>(ParseError::kBadVersion);
    if (!in.byte(command)) return need_more<R>();
    if (command != 1 && command != 2) return fail<R>(ParseError::kUnknownCommand);
    request.command = static_cast<Command>(command);
    if (Step s = take_port(in, dest.port); s.status != ParseStatus::kComplete) {
        return from_step<R>(s);
    }
    if (!in.bytes(4, ip)) return need_more<R>();
    if (Step s = take_c_string(in, kMaxUserIdLength, ParseError::kUserIdTooLong, request.user_id);
        s.status != ParseStatus::kComplete) {
        return from_step<R>(s);
    }
    const bool socks4a = ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
    if (!socks4a) {
        dest.address = ipv4_address(ip, dest.port);
        return complete(in.pos(), request);
    }
    if (Step s = take_socks4a_host(in, dest.host); s.status != ParseStatus::kComplete) {
        return from_step<R>(s);
    }
    return complete(in.pos(), request);
}

void encode_method_selection(uint8_t method, std::string& out) {
    out.push_back(static_cast<char>(kVersion5));
    out.push_back(static_cast<char>(method));
}

void encode_auth_status(bool success, std::string& out) {
    out.push_back(static_cast<char>(kAuthVersion));
    out.push_back(success ? 0x00 : 0x01);
}

void encode_reply(uint8_t rep, const SocketAddress& bound, std::string& out) {
    out.push_back(static_cast<char>(kVersion5));
    out.push_back(static_cast<char>(rep));
    out.push_back(0x00);
    if (bound.family() == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(bound.get());
        out.push_back(static_cast<char>(kAtypIpv4));
        append_bytes(&v4->sin_addr, 4, out);
    } else if (bound.family() == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(bound.get());
        out.push_back(static_cast<char>(kAtypIpv6));
        append_bytes(&v6->sin6_addr, 16, out);
    } else {
        out.push_back(static_cast<char>(kAtypIpv4));
        out.append(4, '\0');
        append_port(0, out);
        return;
    }
    append_port(bound.port(), out);
}

void encode_reply(uint8_t rep, std::string& out) {
    encode_reply(rep, SocketAddress(), out);
}

void encode_socks4_reply(bool granted, const SocketAddress& bound, std::string& out) {
    out.push_back(0x00);
    out.push_back(static_cast<char>(granted ? kSocks4Granted : kSocks4Rejected));
    if (bound.family() != AF_INET) {
        out.append(6, '\0');
        return;
    }
    append_port(bound.port(), out);
    append_bytes(&reinterpret_cast<const sockaddr_in*>(bound.get())->sin_addr, 4, out);
}

void encode_socks4_reply(bool granted, std::string& out) {
    encode_socks4_reply(granted, SocketAddress(), out);
}

}  // namespace common::socks
