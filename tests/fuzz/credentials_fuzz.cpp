// libFuzzer target for common/credentials and common/users_file. The input
// goes to all three parsers as it is, and once more base64-encoded behind
// "Basic " so the decoded-credentials checks are reached by every input, not
// only by the rare valid token. check() traps on any broken contract:
// parse_user_field()'s views lie inside the input, the name is non-empty
// VCHAR without ':', "-session-" or "-ttl-", the session ID is 1-64 of
// [A-Za-z0-9_], the ttl is 1s..24h with a session and 0 without; Basic
// credentials that parse re-encode to the token that was sent, and a Basic
// token of any bytes parses exactly when the bytes are valid credentials; a
// users file never yields an invalid or duplicate name or a hash of another
// kind than its HashKind says; every failure sets a printable error.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/credentials.h"
#include "common/users_file.h"

namespace {

using namespace common::accounts;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool inside(std::string_view outer, std::string_view part) {
    return part.data() >= outer.data() && part.data() + part.size() <= outer.data() + outer.size();
}

bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

bool is_vchar(unsigned char c) {
    return c >= 0x21 && c <= 0x7e;
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_crypt_char(char c) {
    return c == '.' || c == '/' || is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool all_of(std::string_view s, bool (*pred)(char)) {
    for (char c : s) {
        if (!pred(c)) return false;
    }
    return true;
}

bool is_session_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_';
}

// A name as both the user field and the users file want it, apart from
// the length (255 there, 64 here).
bool plain_name(std::string_view name) {
    if (name.empty() || contains(name, "-session-") || contains(name, "-ttl-")) return false;
    for (unsigned char c : name) {
        if (!is_vchar(c) || c == ':') return false;
    }
    return true;
}

// Standard padded base64, independent of the parser's decoder.
std::string base64(std::string_view bytes) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < bytes.size(); i += 3) {
        const size_t n = std::min<size_t>(3, bytes.size() - i);
        uint32_t group = 0;
        for (size_t j = 0; j < 3; ++j) {
            group = group << 8 | (j < n ? static_cast<unsigned char>(bytes[i + j]) : 0u);
        }
        for (size_t j = 0; j < 4; ++j) out += j <= n ? kAlphabet[group >> (18 - 6 * j) & 63] : '=';
    }
    return out;
}

// Errors are short phrases for a 407 body or a log line: printable ASCII,
// whatever the input held.
void check_error(const std::string& error) {
    check(!error.empty() && error.size() < 300);
    for (unsigned char c : error) check(c >= 0x20 && c <= 0x7e);
}

// --- the user field ------------------------------------------------------------

void fuzz_user_field(std::string_view field) {
    std::string error;
    const auto f = parse_user_field(field, error);
    check(f.has_value() == error.empty());
    if (!f) {
        check_error(error);
        // A name alone is always accepted: so this cannot have been one.
        check(!plain_name(field));
        return;
    }
    check(inside(field, f->name) && f->name.data() == field.data());
    check(plain_name(f->name));
    check(f->session_id.size() <= kMaxSessionIdLength && all_of(f->session_id, is_session_char));
    if (f->session_id.empty()) {
        check(f->ttl.count() == 0);
        check(f->name.size() == field.size());
    } else {
        check(inside(field, f->session_id));
        check(f->ttl.count() == 0 || (f->ttl.count() >= 1 && f->ttl <= kMaxTtl));
        // Nothing of the input is lost: it is NAME-session-ID[-ttl-...].
        const std::string prefix = std::string(f->name) + "-session-" + std::string(f->session_id);
        check(field.substr(0, prefix.size()) == prefix);
        check(f->session_id.data() == field.data() + f->name.size() + 9);
        check(field.size() == prefix.size() ? f->ttl.count() == 0 : f->ttl.count() > 0);
    }
}

// --- Basic ---------------------------------------------------------------------

// Whether `decoded` are credentials, by the rules of the header.
bool valid_credentials(std::string_view decoded) {
    const size_t colon = decoded.find(':');
    if (colon == std::string_view::npos) return false;
    for (unsigned char c : decoded) {
        if (is_control(c)) return false;
    }
    const size_t password = decoded.size() - colon - 1;
    return colon >= 1 && colon <= kMaxUserLength && password >= 1 && password <= kMaxPasswordLength;
}

void check_credentials(const Credentials& c) {
    check(!c.user.empty() && c.user.size() <= kMaxUserLength);
    check(!c.password.empty() && c.password.size() <= kMaxPasswordLength);
    check(!contains(c.user, ":"));
    for (unsigned char ch : c.user + c.password) check(!is_control(ch));
}

void fuzz_basic(std::string_view value) {
    std::string error;
    const auto c = parse_basic_credentials(value, error);
    check(c.has_value() == error.empty());
    if (!c) return check_error(error);
    check_credentials(*c);
    // Canonical base64: the token is the only spelling of these credentials.
    std::string_view token = value;
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    token = token.substr(token.rfind(' ') + 1);
    check(token == base64(c->user + ":" + c->password));
    fuzz_user_field(c->user);
}

// Any bytes behind "Basic ": they parse exactly when they are credentials,
// and then to themselves.
void fuzz_basic_of(std::string_view decoded) {
    std::string error;
    const auto c = parse_basic_credentials("bAsIc  " + base64(decoded), error);
    check(c.has_value() == valid_credentials(decoded));
    if (!c) return check_error(error);
    check(c->user + ":" + c->password == decoded);
    fuzz_user_field(c->user);
}

// --- users file ----------------------------------------------------------------

bool bcrypt_ok(std::string_view h) {
    if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
    if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
    if (!is_digit(h[4]) || !is_digit(h[5])) return false;
    const int cost = (h[4] - '0') * 10 + (h[5] - '0');
    return cost >= 4 && cost <= 31 && all_of(h.substr(7), is_crypt_char);
}

bool sha512_ok(std::string_view h) {
    if (!h.starts_with("$6$")) return false;
    h.remove_prefix(3);
    if (h.starts_with("rounds=")) {
        h.remove_prefix(7);
        const size_t end = h.find('$');
        if (end == std::string_view::npos || end == 0 || end > 9 || h[0] == '0') return false;
        if (!all_of(h.substr(0, end), is_digit)) return false;
        if (std::stoul(std::string(h.substr(0, end))) < 1000) return false;
        h.remove_prefix(end + 1);
    }
    const size_t end = h.find('$');
    if (end == std::string_view::npos || end == 0 || end > 16) return false;
    return h.size() == end + 1 + 86 && all_of(h.substr(0, end), is_crypt_char) &&
           all_of(h.substr(end + 1), is_crypt_char);
}

bool yescrypt_ok(std::string_view h) {
    if (!h.starts_with("$y$")) return false;
    h.remove_prefix(3);
    const size_t a = h.find('$');
    if (a == std::string_view::npos || a == 0) return false;
    const size_t b = h.find('$', a + 1);
    if (b == std::string_view::npos || b == a + 1) return false;
    return h.size() == b + 1 + 43 && all_of(h.substr(0, a), is_crypt_char) &&
           all_of(h.substr(a + 1, b - a - 1), is_crypt_char) &&
           all_of(h.substr(b + 1), is_crypt_char);
}

bool hash_ok(const UserEntry& u) {
    switch (u.kind) {
        case HashKind::kBcrypt:
            return bcrypt_ok(u.hash);
        case HashKind::kSha512Crypt:
            return sha512_ok(u.hash);
        case HashKind::kYescrypt:
            return yescrypt_ok(u.hash);
    }
    return false;
}

void fuzz_users_file(std::string_view text) {
    std::string error;
    const auto file = parse_users_file(text, "f", error);
    check(file.has_value() == error.empty());
    if (!file) {
        check(error.starts_with("f:"));
        return check_error(error);
    }
    check(!contains(text, "\r"));
    std::set<std::string_view> names;
    for (const UserEntry& u : file->users) {
        check(plain_name(u.name) && u.name.size() <= kMaxUserNameLength);
        check(names.insert(u.name).second);
        check(hash_ok(u));
        // The line is in the text as it was.
        check(contains(text, u.name + ":" + u.hash));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    fuzz_user_field(input);
    fuzz_basic(input);
    fuzz_basic_of(input);
    fuzz_users_file(input);
    return 0;
}
