// libFuzzer target for common/parent_url: the [parent NAME] url, whose
// credentials go to the parent on the wire (Proxy-Authorization, RFC 1929)
// and whose host proxyd dials. Besides memory errors it checks:
//   - a parsed URL's parts are in range: a lower-case host that request
//     targets would accept too, a port, credentials of 1 to 255 printable
//     bytes, a user name without ':';
//   - the URL written back, every credential byte percent-encoded, parses
//     back to the same parts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/parent_url.h"
#include "common/uri.h"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool printable(std::string_view text) {
    for (char c : text) {
        if (c < 0x20 || c > 0x7e) return false;
    }
    return true;
}

std::string percent_encoded(std::string_view text) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
    return out;
}

const char* scheme_prefix(common::ParentScheme scheme) {
    switch (scheme) {
        case common::ParentScheme::kHttps:
            return "https://";
        case common::ParentScheme::kSocks5:
            return "socks5://";
        case common::ParentScheme::kHttp:
            break;
    }
    return "http://";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string error;
    auto url = common::parse_parent_url(text, error);
    if (!url) {
        check(!error.empty());
        return 0;
    }
    check(url->port != 0);
    std::string host_error;
    check(url->ipv6_literal || common::valid_host_name(url->host, host_error));
    for (char c : url->host) check(!(c >= 'A' && c <= 'Z'));
    if (url->credentials) {
        const auto& [user, password] = *url->credentials;
        check(!user.empty() && user.size() <= 255 && printable(user));
        check(!password.empty() && password.size() <= 255 && printable(password));
        check(user.find(':') == std::string::npos);
    }
    std::string written = scheme_prefix(url->scheme);
    if (url->credentials) {
        written += percent_encoded(url->credentials->first) + ":" +
                   percent_encoded(url->credentials->second) + "@";
    }
    written +=
        (url->ipv6_literal ? "[" + url->host + "]" : url->host) + ":" + std::to_string(url->port);
    auto again = common::parse_parent_url(written, error);
    check(again.has_value());
    check(again->scheme == url->scheme && again->host == url->host && again->port == url->port &&
          again->ipv6_literal == url->ipv6_literal && again->credentials == url->credentials);
    return 0;
}
