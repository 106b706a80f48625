// Proxy-Authorization "Basic" credentials and the user field's session
// parameters, see credentials.h for the contract.
#include "common/credentials.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>

namespace common::accounts {

namespace {

constexpr std::string_view kSessionParameter = "-session-";
constexpr std::string_view kTtlParameter = "-ttl-";
constexpr size_t kMaxTtlDigits = 6;

// Sets `error` and gives the empty optional every parser here returns then.
std::nullopt_t fail(std::string& error, std::string_view message) {
    error = message;
    return std::nullopt;
}

bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_session_id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// ASCII-only: a locale must not decide what "Basic" matches.
bool equals_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// The value of a digit of the standard base64 alphabet (RFC 4648 §4); -1 for
// anything else, the URL-safe '-' and '_' and '=' included.
int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (is_digit(c)) return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Decodes canonical base64 only: a non-empty multiple of 4 characters, '='
// only as the last one or two, and zero pad bits (RFC 4648 §3.5). Every byte
// string then has exactly one encoding, so nothing a client sends decodes to
// credentials that a different token would also give.
std::optional<std::string> decode_base64(std::string_view text) {
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    size_t padding = 0;
    if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        const size_t digits = i + 4 == text.size() ? 4 - padding : 4;
        uint32_t group = 0;
        for (size_t j = 0; j < 4; ++j) {
            const int value = j < digits ? base64_value(text[i + j]) : 0;
            if (value < 0) return std::nullopt;
            group = group << 6 | static_cast<uint32_t>(value);
        }
        out.push_back(static_cast<char>(group >> 16));
        if (digits >= 3) out.push_back(static_cast<char>(group >> 8 & 0xff));
        if (digits == 4) out.push_back(static_cast<char>(group & 0xff));
        // The bits of the last digit that no output byte holds must be zero.
        if (digits == 2 && (group & 0xffff) != 0) return std::nullopt;
        if (digits == 3 && (group & 0xff) != 0) return std::nullopt;
    }
    return out;
}

// The token68 of "Basic <token68>", or an error. A tab gets its own message:
// it is the one separator a hand-written header is likely to get wrong.
std::optional<std::string_view> basic_token(std::string_view value, std::string& error) {
    if (value.empty()) return fail(error, "empty credentials");
    const size_t scheme_end = value.find_first_of(" \t");
    if (!equals_ignoring_case(value.substr(0, scheme_end), "Basic")) {
        return fail(error, "credentials are not Basic");
    }
    if (scheme_end == std::string_view::npos) return fail(error, "no credentials after \"Basic\"");
    std::string_view rest = value.substr(scheme_end);
    // `value` ends in something other than OWS, so there is a token.
    const size_t token_start = rest.find_first_not_of(' ');
    if (token_start == 0 || rest[token_start] == '\t') {
        return fail(error, "tab after \"Basic\" (use a space)");
    }
    return rest.substr(token_start);
}

// Judges the decoded "user-id:password". Control characters are refused
// before the parts are measured: they are the likelier sign of a broken client.
std::optional<Credentials> split_user_password(std::string_view decoded, std::string& error) {
    const size_t colon = decoded.find(':');
    if (colon == std::string_view::npos) {
        return fail(error, "credentials have no ':' after the user name");
    }
    for (unsigned char c : decoded) {
        if (is_control(c)) return fail(error, "control character in credentials");
    }
    const std::string_view user = decoded.substr(0, colon);
    const std::string_view password = decoded.substr(colon + 1);
    if (user.empty()) return fail(error, "empty user name");
    if (user.size() > kMaxUserLength) return fail(error, "user name longer than 255 bytes");
    if (password.empty()) return fail(error, "empty password");
    if (password.size() > kMaxPasswordLength) return fail(error, "password longer than 255 bytes");
    return Credentials{std::string(user), std::string(password)};
}

// What is wrong with the name part (VCHAR without ':'), "" when nothing.
std::string_view name_problem(std::string_view name) {
    if (name.empty()) return "empty user name";
    for (unsigned char c : name) {
        if (c == ' ') return "space in user name";
        if (is_control(c)) return "control character in user name";
        if (c > 0x7e) return "non-ASCII byte in user name";
        if (c == ':') return "':' in user name";
    }
    return {};
}

// What is wrong with the text after a parameter's value, "" when there is
// none. A repeated parameter is named; anything else is `otherwise`.
std::string_view trailing_problem(std::string_view rest, std::string_view otherwise) {
    if (rest.starts_with(kSessionParameter)) return "second -session- parameter";
    if (rest.starts_with(kTtlParameter)) return "second -ttl- parameter";
    return rest.empty() ? std::string_view() : otherwise;
}

// DURATION: 1-6 digits without a leading zero and a unit, nothing after it.
// "0s" is a number, only out of range; "05m" is not a number.
std::optional<std::chrono::seconds> parse_ttl(std::string_view text, std::string& error) {
    constexpr std::string_view kNotANumber = "ttl must be a number with s, m or h";
    size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits])) ++digits;
    if (digits == 0 || (text[0] == '0' && digits > 1)) return fail(error, kNotANumber);
    if (digits == text.size()) return fail(error, kNotANumber);
    int64_t unit = 0;
    switch (text[digits]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        default:
            return fail(error, kNotANumber);
    }
    const std::string_view problem =
        trailing_problem(text.substr(digits + 1), "unexpected text after the ttl");
    if (!problem.empty()) return fail(error, problem);
    if (digits > kMaxTtlDigits) return fail(error, "ttl must be between 1s and 24h");
    int64_t count = 0;
    for (size_t i = 0; i < digits; ++i) count = count * 10 + (text[i] - '0');
    const std::chrono::seconds ttl{count * unit};
    if (ttl < std::chrono::seconds{1} || ttl > kMaxTtl) {
        return fail(error, "ttl must be between 1s and 24h");
    }
    return ttl;
}

}  // namespace

std::optional<Credentials> parse_basic_credentials(std::string_view field_value,
                                                   std::string& error) {
    const auto token = basic_token(trim_ows(field_value), error);
    if (!token) return std::nullopt;
    const auto decoded = decode_base64(*token);
    if (!decoded) return fail(error, "credentials are not valid base64");
    return split_user_password(*decoded, error);
}

// A parser of one grammar rule after the other, longer than most functions
// here because the order of its checks is the order of the error messages.
std::optional<UserField> parse_user_field(std::string_view field, std::string& error) {
    const size_t session = field.find(kSessionParameter);
    const size_t ttl = field.find(kTtlParameter);
    UserField out;
    out.name = field.substr(0, std::min(session, ttl));
    if (const std::string_view problem = name_problem(out.name); !problem.empty()) {
        return fail(error, problem);
    }
    if (session == std::string_view::npos && ttl == std::string_view::npos) return out;
    if (ttl < session) {
        return fail(error, "\"-ttl-\" without a session: use NAME-session-ID-ttl-DURATION");
    }
    constexpr std::string_view kBadId = "session ID must be 1-64 letters, digits or '_'";
    std::string_view rest = field.substr(session + kSessionParameter.size());
    size_t id_length = 0;
    while (id_length < rest.size() && is_session_id_char(rest[id_length])) ++id_length;
    out.session_id = rest.substr(0, id_length);
    if (out.session_id.empty() || out.session_id.size() > kMaxSessionIdLength) {
        return fail(error, kBadId);
    }
    rest.remove_prefix(id_length);
    if (!rest.starts_with(kTtlParameter)) {
        const std::string_view problem = trailing_problem(rest, kBadId);
        if (!problem.empty()) return fail(error, problem);
        return out;
    }
    const auto duration = parse_ttl(rest.substr(kTtlParameter.size()), error);
    if (!duration) return std::nullopt;
    out.ttl = *duration;
    return out;
}

std::string encode_basic_token(std::string_view user, std::string_view password) {
    const std::string plain = std::string(user) + ":" + std::string(password);
    std::string token(4 * ((plain.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
    const int length =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(token.data()),
                        reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
    token.resize(static_cast<size_t>(length));
    return token;
}

}  // namespace common::accounts
