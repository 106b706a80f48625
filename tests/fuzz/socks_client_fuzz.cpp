// libFuzzer target for common/socks_client (proxyd as a SOCKS5 client).
//
// The input is read as a parent's answers (so seeds are plain SOCKS5
// replies): each parser whole, split in two and a byte at a time, then in
// the order a handshake reads them. Then as fields for the client's own
// messages. Besides memory errors it checks the contract: consumed never
// exceeds the input, a prefix never contradicts the whole, nothing needs
// more past the longest answer, a CONNECT reply is exactly as long as its
// ATYP says; and every message the client builds is read back by the
// server-side parser (common/socks_parser.h) as what it was built from.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/socks_client.h"

namespace {

using namespace common::socks;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

uint32_t mix(std::string_view data) {
    uint32_t h = 2166136261u;
    for (unsigned char c : data) h = (h ^ c) * 16777619u;
    return h;
}

uint8_t at(std::string_view s, size_t i) {
    return static_cast<uint8_t>(s[i]);
}

bool is_host_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

template <typename M>
bool same(const M& a, const M& b) {
    return a == b;
}
bool same(const ConnectReply& a, const ConnectReply& b) {
    return a.rep == b.rep;
}

template <typename M>
void check_result(std::string_view input, const Result<M>& r) {
    check(r.consumed <= input.size());
    check((r.status == ParseStatus::kError) == (r.error != ParseError::kNone));
    if (input.size() >= kMaxConnectReplySize) check(r.status != ParseStatus::kNeedMore);
    if (r.status != ParseStatus::kComplete) check(r.consumed == 0);
}

// A prefix may need more; otherwise it must agree with the whole.
template <typename M>
void check_prefix(std::string_view prefix, const Result<M>& part, const Result<M>& whole) {
    check_result(prefix, part);
    if (part.status == ParseStatus::kComplete) {
        check(whole.status == ParseStatus::kComplete && whole.consumed == part.consumed);
        check(same(whole.message, part.message));
    }
    if (part.status == ParseStatus::kError) {
        check(whole.status == ParseStatus::kError && whole.error == part.error);
    }
    if (whole.status == ParseStatus::kComplete && whole.consumed <= prefix.size()) {
        check(part.status == ParseStatus::kComplete);
    }
}

// Runs `parse` on the whole input, one split, and every prefix a byte at a
// time up to the point where the answer is decided.
template <typename Parse>
auto fuzz_parser(std::string_view input, size_t split, Parse parse) {
    const auto whole = parse(input);
    check_result(input, whole);
    check_prefix(input.substr(0, split), parse(input.substr(0, split)), whole);
    const size_t last = std::min(input.size(), kMaxConnectReplySize);
    for (size_t n = 0; n <= last; ++n) {
        const auto part = parse(input.substr(0, n));
        check_prefix(input.substr(0, n), part, whole);
        if (part.status != ParseStatus::kNeedMore) break;
        check(n < kMaxConnectReplySize);
    }
    return whole;
}

void check_connect_reply(std::string_view input, const Result<ConnectReply>& r) {
    if (r.status != ParseStatus::kComplete) return;
    check(at(input, 0) == 5 && at(input, 2) == 0 && r.message.rep == at(input, 1));
    const uint8_t atyp = at(input, 3);
    const size_t length = atyp == 1 ? 10 : atyp == 4 ? 22 : 7 + static_cast<size_t>(at(input, 4));
    check((atyp == 1 || atyp == 3 || atyp == 4) && r.consumed == length);
    check(!describe_socks_reply(r.message.rep).empty());
}

// The answers as one handshake reads them: method, [status], reply.
void fuzz_handshake(std::string_view input) {
    const auto method = parse_method_selection(input);
    if (method.status != ParseStatus::kComplete) return;
    std::string_view rest = input.substr(method.consumed);
    if (method.message == kMethodUsernamePassword) {
        const auto status = parse_password_reply(rest);
        check_result(rest, status);
        if (status.status != ParseStatus::kComplete || !status.message) return;
        rest.remove_prefix(status.consumed);
    }
    const auto reply = parse_connect_reply(rest);
    check_result(rest, reply);
    check_connect_reply(rest, reply);
}

// The input split into a user and a password: what the server reads back.
void fuzz_password_request(std::string_view input, size_t split) {
    const std::string_view user = input.substr(0, split), password = input.substr(split);
    const auto request = build_password_request(user, password);
    const bool fits =
        !user.empty() && user.size() <= 255 && !password.empty() && password.size() <= 255;
    check(request.has_value() == fits);
    if (!request) return;
    const auto back = parse_credentials(*request);
    check(back.status == ParseStatus::kComplete && back.consumed == request->size());
    check(back.message.username == user && back.message.password == password);
}

// The input as a name, then as an address literal: the server reads back
// the same destination, or refuses a name only for its characters.
void fuzz_connect_request(std::string_view input, uint16_t port) {
    for (bool literal : {false, true}) {
        const auto request = build_connect_request(input, port, literal);
        if (!literal)
            check(request.has_value() == (port != 0 && !input.empty() && input.size() <= 255));
        if (!request) continue;
        check(at(*request, 0) == 5 && at(*request, 1) == 1 && at(*request, 2) == 0);
        const auto back = parse_request(*request);
        const bool valid_name =
            std::all_of(input.begin(), input.end(), [](char c) { return is_host_char(c); });
        if (!literal && !valid_name) {
            check(back.status == ParseStatus::kError);
            continue;
        }
        check(back.status == ParseStatus::kComplete && back.consumed == request->size());
        const Destination& d = back.message.destination;
        check(d.port == port);
        if (literal) {
            check(!d.is_name() && d.address.host_string() ==
                                      common::SocketAddress::from_numeric(input, 0)->host_string());
        } else {
            check(d.host == input);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view buf(reinterpret_cast<const char*>(data), size);
    const size_t split = size == 0 ? 0 : mix(buf) % (size + 1);
    fuzz_parser(buf, split, [](std::string_view s) { return parse_method_selection(s); });
    fuzz_parser(buf, split, [](std::string_view s) { return parse_password_reply(s); });
    const auto reply =
        fuzz_parser(buf, split, [](std::string_view s) { return parse_connect_reply(s); });
    check_connect_reply(buf, reply);
    fuzz_handshake(buf);
    fuzz_password_request(buf, split);
    fuzz_connect_request(buf, static_cast<uint16_t>(mix(buf) >> 16));
    check(build_greeting(split & 1).size() == ((split & 1) ? 4u : 3u));
    return 0;
}
