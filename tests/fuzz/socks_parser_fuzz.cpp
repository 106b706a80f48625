// libFuzzer target for common/socks_parser.
//
// The input is used as-is (so seeds are plain SOCKS messages) by every parse
// function, whole, split in two, and fed a byte at a time; then as a session
// would use it: detect the version and parse greeting, credentials and
// request one after the other. Besides memory errors it checks the contract:
// consumed never exceeds the input, views lie inside the message, a prefix
// never contradicts the whole, nothing needs more past kMaxMessageSize, every
// parsed destination is well formed, and a reply encoded from a parsed
// address parses back (a SOCKS5 reply has the shape of a request).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/socks_parser.h"

namespace {

using namespace common::socks;
using common::SocketAddress;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

uint32_t mix(std::string_view data) {
    uint32_t h = 2166136261u;
    for (unsigned char c : data) h = (h ^ c) * 16777619u;
    return h;
}

bool inside(std::string_view outer, std::string_view part) {
    return part.empty() || (part.data() >= outer.data() &&
                            part.data() + part.size() <= outer.data() + outer.size());
}

bool is_host_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

bool same_address(const SocketAddress& a, const SocketAddress& b) {
    if (a.family() != b.family()) return false;
    return a.family() == AF_UNSPEC || a == b;
}

// --- per-message checks and equality -------------------------------------------

void check_message(std::string_view, const Version&) {}
bool same(const Version& a, const Version& b) {
    return a == b;
}

void check_message(std::string_view msg, const Greeting& g) {
    check(!g.methods.empty() && inside(msg, g.methods));
    check(g.offers_no_auth == (g.methods.find('\x00') != std::string_view::npos));
    check(g.offers_username_password == (g.methods.find('\x02') != std::string_view::npos));
    const uint8_t m = choose_method(g, (msg.size() & 1) != 0);
    check(m == kMethodNoAuth || m == kMethodUsernamePassword || m == kMethodNoAcceptable);
}
bool same(const Greeting& a, const Greeting& b) {
    return a.methods == b.methods && a.offers_no_auth == b.offers_no_auth &&
           a.offers_username_password == b.offers_username_password;
}

void check_message(std::string_view msg, const Credentials& c) {
    check(!c.username.empty() && c.username.size() <= 255 && inside(msg, c.username));
    check(!c.password.empty() && c.password.size() <= 255 && inside(msg, c.password));
}
bool same(const Credentials& a, const Credentials& b) {
    return a.username == b.username && a.password == b.password;
}

void check_destination(std::string_view msg, const Destination& d) {
    check(d.port != 0);
    if (d.is_name()) {
        check(d.address.family() == AF_UNSPEC && d.address.length == 0);
        check(d.host.size() <= 255 && inside(msg, d.host));
        check(std::all_of(d.host.begin(), d.host.end(),
                          [](char c) { return is_host_char(static_cast<unsigned char>(c)); }));
        return;
    }
    check(d.address.family() == AF_INET || d.address.family() == AF_INET6);
    check(d.address.length ==
          (d.address.family() == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
    check(d.address.port() == d.port);
}
bool same(const Destination& a, const Destination& b) {
    return a.host == b.host && a.port == b.port && same_address(a.address, b.address);
}

void check_message(std::string_view msg, const Request& r) {
    const auto c = static_cast<int>(r.command);
    check(c >= 1 && c <= 3);
    check_destination(msg, r.destination);
}
bool same(const Request& a, const Request& b) {
    return a.command == b.command && same(a.destination, b.destination);
}

void check_message(std::string_view msg, const Socks4Request& r) {
    check(r.command == Command::kConnect || r.command == Command::kBind);
    check(r.user_id.size() <= kMaxUserIdLength && inside(msg, r.user_id));
    check(r.user_id.find('\0') == std::string_view::npos);
    check_destination(msg, r.destination);
    if (!r.destination.is_name()) check(r.destination.address.family() == AF_INET);
}
bool same(const Socks4Request& a, const Socks4Request& b) {
    return a.command == b.command && a.user_id == b.user_id && same(a.destination, b.destination);
}

template <typename M>
void check_result(std::string_view input, const Result<M>& r) {
    check(r.consumed <= input.size());
    check((r.status == ParseStatus::kError) == (r.error != ParseError::kNone));
    check(describe(r.error) != nullptr);
    const uint8_t rep = reply_code(r.error);
    check(rep == kRepSucceeded || rep == kRepGeneralFailure || rep == kRepCommandNotSupported ||
          rep == kRepAddressTypeNotSupported);
    if (input.size() >= kMaxMessageSize) check(r.status != ParseStatus::kNeedMore);
    if (r.status != ParseStatus::kComplete) {
        check(r.consumed == 0);
        return;
    }
    check(r.consumed <= kMaxMessageSize);
    check_message(input.substr(0, r.consumed), r.message);
}

// A prefix may need more; otherwise it must agree with the whole.
template <typename M>
void check_prefix(const Result<M>& part, size_t split, const Result<M>& whole) {
    if (part.status == ParseStatus::kComplete) {
        check(whole.status == ParseStatus::kComplete && whole.consumed == part.consumed);
        check(same(whole.message, part.message));
    }
    if (part.status == ParseStatus::kError) {
        check(whole.status == ParseStatus::kError && whole.error == part.error);
    }
    // detect_version() consumes nothing but still needs its one byte.
    if (whole.status == ParseStatus::kComplete && std::max<size_t>(whole.consumed, 1) <= split) {
        check(part.status == ParseStatus::kComplete);
    }
}

// Runs `parse` on the whole input, one split, and every prefix a byte at a
// time up to the point where the answer is decided.
template <typename Parse>
auto fuzz_parser(std::string_view input, size_t split, Parse parse) {
    const auto whole = parse(input);
    check_result(input, whole);
    const auto half = parse(input.substr(0, split));
    check_result(input.substr(0, split), half);
    check_prefix(half, split, whole);
    const size_t last = std::min(input.size(), kMaxMessageSize);
    for (size_t n = 0; n <= last; ++n) {
        const auto part = parse(input.substr(0, n));
        check_prefix(part, n, whole);
        if (part.status != ParseStatus::kNeedMore) break;
        check(n < kMaxMessageSize);
    }
    return whole;
}

// A SOCKS5 reply is a request with REP in place of CMD: an address reply with
// a REP that is also a command must parse back to the same address.
void check_reply_round_trip(const Destination& d, uint8_t rep) {
    std::string reply;
    encode_reply(rep, d.address, reply);
    check(reply.size() == (d.address.family() == AF_INET6 ? 22u : 10u));
    check(static_cast<uint8_t>(reply[1]) == rep);
    if (d.is_name() || rep < 1 || rep > 3) return;
    const auto back = parse_request(reply);
    check(back.status == ParseStatus::kComplete && back.consumed == reply.size());
    check(static_cast<uint8_t>(back.message.command) == rep);
    check(same_address(back.message.destination.address, d.address));

    std::string v4;
    encode_socks4_reply(rep == 1, d.address, v4);
    check(v4.size() == 8 && v4[0] == 0);
    if (d.address.family() == AF_INET) {
        check(v4.substr(2, 2) == reply.substr(8, 2) && v4.substr(4, 4) == reply.substr(4, 4));
    }
}

// The input as one connection: version byte, then the messages in order.
void fuzz_session(std::string_view input) {
    const auto version = detect_version(input);
    if (version.status != ParseStatus::kComplete) return;
    if (version.message == Version::kSocks4) {
        const auto r = parse_socks4_request(input);
        if (r.status == ParseStatus::kComplete) check_reply_round_trip(r.message.destination, 1);
        return;
    }
    const auto greeting = parse_greeting(input);
    if (greeting.status != ParseStatus::kComplete) return;
    std::string_view rest = input.substr(greeting.consumed);
    if (greeting.message.offers_username_password) {
        const auto credentials = parse_credentials(rest);
        check_result(rest, credentials);
        if (credentials.status != ParseStatus::kComplete) return;
        rest.remove_prefix(credentials.consumed);
    }
    const auto request = parse_request(rest);
    check_result(rest, request);
    if (request.status == ParseStatus::kComplete) {
        const Destination& d = request.message.destination;
        check_reply_round_trip(d, static_cast<uint8_t>(request.message.command));
        check_reply_round_trip(d, static_cast<uint8_t>(d.port & 0xff));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    const size_t split = size == 0 ? 0 : mix(buf) % (size + 1);
    fuzz_parser(buf, split, [](std::string_view s) { return detect_version(s); });
    fuzz_parser(buf, split, [](std::string_view s) { return parse_greeting(s); });
    fuzz_parser(buf, split, [](std::string_view s) { return parse_credentials(s); });
    const auto request =
        fuzz_parser(buf, split, [](std::string_view s) { return parse_request(s); });
    if (request.status == ParseStatus::kComplete) {
        check_reply_round_trip(request.message.destination, 1);
    }
    fuzz_parser(buf, split, [](std::string_view s) { return parse_socks4_request(s); });
    fuzz_session(buf);
    return 0;
}
