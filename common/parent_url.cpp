#include "common/parent_url.h"

#include <cctype>

#include "common/uri.h"

namespace common {

namespace {

constexpr size_t kMaxCredential = 255;

struct SchemeRule {
    std::string_view prefix;
    ParentScheme scheme;
    uint16_t default_port;
};

constexpr SchemeRule kSchemes[] = {
    {"http://", ParentScheme::kHttp, 80},
    {"https://", ParentScheme::kHttps, 443},
    {"socks5://", ParentScheme::kSocks5, 1080},
};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// RFC 3986 userinfo characters other than ':' (unreserved, sub-delims) and
// percent-encodings of any printable byte.
bool userinfo_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos;
}

// The password may hold ':' as it is (RFC 3986 userinfo); the user name
// ends at the first one.
std::optional<std::string> decode_credential(std::string_view text, const char* what,
                                             std::string& error) {
    const bool password = std::string_view(what) == "password";
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%') {
            int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
            int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
            if (high < 0 || low < 0) {
                error = std::string("malformed percent-encoding in the ") + what;
                return std::nullopt;
            }
            c = static_cast<char>(high * 16 + low);
            i += 2;
            if (c < 0x20 || c > 0x7e) {
                error = std::string("the ") + what + " holds a control or non-ASCII byte";
                return std::nullopt;
            }
        } else if (!userinfo_char(c) && !(password && c == ':')) {
            error = std::string("the ") + what + " holds a character that must be percent-encoded";
            return std::nullopt;
        }
        out.push_back(c);
    }
    if (out.empty() || out.size() > kMaxCredential) {
        error = std::string("the ") + what + " must be 1 to 255 bytes";
        return std::nullopt;
    }
    return out;
}

std::string lowercase_prefix(std::string_view text, size_t size) {
    std::string out(text.substr(0, size));
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

std::optional<ParentUrl> parse_parent_url(std::string_view text, std::string& error) {
    ParentUrl url;
    const SchemeRule* rule = nullptr;
    for (const SchemeRule& candidate : kSchemes) {
        if (lowercase_prefix(text, candidate.prefix.size()) == candidate.prefix) rule = &candidate;
    }
    if (rule == nullptr) {
        error = "a parent URL starts with http://, https:// or socks5://";
        return std::nullopt;
    }
    url.scheme = rule->scheme;
    std::string_view rest = text.substr(rule->prefix.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#") != std::string_view::npos) {
        error = "a parent URL has no path, query or fragment";
        return std::nullopt;
    }
    // The last '@' ends the userinfo: '@' is not a host character.
    if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        size_t colon = userinfo.find(':');
        auto user = decode_credential(userinfo.substr(0, colon), "user name", error);
        if (!user) return std::nullopt;
        if (colon == std::string_view::npos) {
            error = "the parent URL names a user without a password (user:password@)";
            return std::nullopt;
        }
        auto password = decode_credential(userinfo.substr(colon + 1), "password", error);
        if (!password) return std::nullopt;
        if (user->find(':') != std::string::npos) {
            error = "the user name holds a ':'";
            return std::nullopt;
        }
        url.credentials.emplace(std::move(*user), std::move(*password));
    }
    // The host and port follow the rules of a request target's authority.
    ProxyTarget target;
    std::string authority(rest);
    size_t host_end = !rest.empty() && rest.front() == '[' ? rest.find(']') : 0;
    bool has_port =
        host_end != std::string_view::npos && rest.find(':', host_end) != std::string_view::npos;
    if (!has_port) authority += ":" + std::to_string(rule->default_port);
    if (!parse_authority_target(authority, target, error)) {
        error = "bad parent address \"" + std::string(rest) + "\": " + error;
        return std::nullopt;
    }
    url.host = std::move(target.host);
    url.port = target.port;
    url.ipv6_literal = target.ipv6_literal;
    return url;
}

}  // namespace common
