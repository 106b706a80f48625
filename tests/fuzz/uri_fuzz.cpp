// libFuzzer target for common/uri: the request targets a forward proxy
// accepts, whose host decides where proxyd connects and whether the
// private-destination check sees an address or a name to resolve.
//
// The input is used as-is (so seeds are plain targets) as an absolute-form
// target, a CONNECT authority and a bare host name. Besides memory errors it
// checks:
//   - a parsed target's parts are well formed: a lower-case host, a port,
//     a path that is the tail of the input and holds no fragment;
//   - a parsed target written back (as a request would carry it: the Host
//     field form, the authority form) parses back to the same parts;
//   - a host accepted as a name is not an address in disguise: inet_aton(3),
//     which reads "127.1", "2130706433" and "0x7f.1" as 127.0.0.1, refuses
//     it, so the name goes to DNS and its answers meet the private check;
//     a host accepted as an address is in the one spelling proxyd prints.
#include <arpa/inet.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/address.h"
#include "common/uri.h"

namespace {

using common::ProxyTarget;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool inside(std::string_view outer, std::string_view part) {
    return part.empty() || (part.data() >= outer.data() &&
                            part.data() + part.size() <= outer.data() + outer.size());
}

bool is_lower(std::string_view text) {
    for (char c : text) {
        if (std::isupper(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

// A host proxyd accepted: an IPv6 literal, the canonical text of an IPv4
// address, or a name that no numeric-address parser reads as one.
void check_host(const ProxyTarget& target) {
    check(!target.host.empty() && is_lower(target.host));
    auto numeric = common::SocketAddress::from_numeric(target.host, target.port);
    if (target.ipv6_literal) {
        check(numeric && numeric->family() == AF_INET6);
        return;
    }
    std::string error;
    check(common::valid_host_name(target.host, error));
    check(target.host.find(':') == std::string::npos);
    in_addr parsed{};
    const bool aton = inet_aton(target.host.c_str(), &parsed) == 1;
    if (numeric) {
        check(numeric->family() == AF_INET && numeric->host_string() == target.host);
        check(aton);
    } else {
        check(!aton);
    }
}

void check_same(const ProxyTarget& a, const ProxyTarget& b) {
    check(a.host == b.host && a.port == b.port && a.ipv6_literal == b.ipv6_literal);
}

void fuzz_absolute(std::string_view input) {
    ProxyTarget target;
    std::string error;
    if (!common::parse_absolute_target(input, target, error)) {
        check(!error.empty());
        return;
    }
    check(target.port != 0);
    check(inside(input, target.path));
    check(input.substr(input.size() - target.path.size()) == target.path);
    check(target.path.empty() || target.path.front() == '/' || target.path.front() == '?');
    check(target.path.find('#') == std::string_view::npos);
    check_host(target);

    // As the upstream request names it: Host field, then the path.
    const std::string path(target.path);
    const std::string rewritten = "http://" + target.host_header(80) + path;
    ProxyTarget again;
    check(common::parse_absolute_target(rewritten, again, error));
    check_same(target, again);
    check(again.path == path);

    // As logs and the upstream pool name it.
    check(common::parse_authority_target(target.authority(), again, error));
    check_same(target, again);
}

void fuzz_authority(std::string_view input) {
    ProxyTarget target;
    std::string error;
    if (!common::parse_authority_target(input, target, error)) {
        check(!error.empty());
        return;
    }
    check(target.port != 0 && target.path.empty());
    check_host(target);
    ProxyTarget again;
    check(common::parse_authority_target(target.authority(), again, error));
    check_same(target, again);
    check(common::parse_absolute_target("http://" + target.authority() + "/", again, error));
    check_same(target, again);
}

// SOCKS hands a domain name straight to valid_host_name().
void fuzz_host_name(std::string_view input) {
    std::string error;
    if (!common::valid_host_name(input, error)) return;
    ProxyTarget target;
    target.host = std::string(input);
    for (char& c : target.host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    target.port = 80;
    check_host(target);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    fuzz_absolute(input);
    fuzz_authority(input);
    fuzz_host_name(input);
    return 0;
}
