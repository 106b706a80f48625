// The users file, see users_file.h for the contract.
//
// Each line is judged on its own (parse_line) and then against the lines
// before it (duplicates, the user limit). A line without ':' is refused as
// such; otherwise its checks run left to right, the name, then the hash, so
// the message is about the first thing that is wrong.
#include "common/users_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace common::accounts {

namespace {

constexpr std::string_view kUnsupportedHash =
    " is an unsupported password hash (use htpasswd -B, or mkpasswd -m yescrypt or sha512crypt)";
constexpr size_t kBcryptLength = 60;
constexpr size_t kBcryptDigestLength = 53;  // salt and hash, after "$2y$NN$"
constexpr size_t kSha512DigestLength = 86;
constexpr size_t kSha512MaxSaltLength = 16;
constexpr size_t kYescryptDigestLength = 43;
constexpr uint64_t kSha512MinRounds = 1000;
constexpr uint64_t kSha512MaxRounds = 999'999'999;

bool is_vchar(unsigned char c) {
    return c >= 0x21 && c <= 0x7e;
}

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// The crypt(3) alphabet ("./0-9A-Za-z") of salts and digests.
bool is_crypt_char(char c) {
    return c == '.' || c == '/' || is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

bool all_crypt_chars(std::string_view s) {
    for (char c : s) {
        if (!is_crypt_char(c)) return false;
    }
    return true;
}

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// Cuts `s` at the first `separator`: the part before it is returned and
// removed with the separator. Without a separator, all of `s` is returned.
std::string_view take_until(std::string_view& s, char separator) {
    const size_t at = s.find(separator);
    const std::string_view part = s.substr(0, at);
    s.remove_prefix(at == std::string_view::npos ? s.size() : at + 1);
    return part;
}

// Each check_*() judges a hash that starts with its scheme's prefix and
// returns what is wrong with it, "" when nothing.

// "$2a$" | "$2b$" | "$2y$", two-digit cost 04..31, "$", 53 digest characters.
std::string check_bcrypt(std::string_view hash) {
    constexpr std::string_view malformed =
        "malformed bcrypt hash (expected \"$2a$\", \"$2b$\" or \"$2y$\", a two-digit cost, \"$\" "
        "and 53 characters of [./A-Za-z0-9])";
    if (hash.size() < 7 || !is_digit(hash[4]) || !is_digit(hash[5]) || hash[6] != '$') {
        return std::string(malformed);
    }
    const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
    if (cost < 4 || cost > 31) return "bcrypt cost must be 04 to 31";
    const std::string_view digest = hash.substr(7);
    if (hash.size() != kBcryptLength || !all_crypt_chars(digest)) return std::string(malformed);
    static_assert(kBcryptLength == 7 + kBcryptDigestLength);
    return {};
}

// "rounds=N" of SHA-512-crypt; false unless N is 1000..999999999 written
// without a leading zero (crypt would clamp other values, we refuse them).
bool sha512_rounds_ok(std::string_view digits) {
    if (digits.empty() || digits.size() > 9 || digits[0] == '0') return false;
    uint64_t rounds = 0;
    for (char c : digits) {
        if (!is_digit(c)) return false;
        rounds = rounds * 10 + static_cast<uint64_t>(c - '0');
    }
    return rounds >= kSha512MinRounds && rounds <= kSha512MaxRounds;
}

// "$6$" ["rounds=N$"] SALT "$" DIGEST.
std::string check_sha512crypt(std::string_view hash) {
    constexpr std::string_view malformed =
        "malformed SHA-512-crypt hash (expected \"$6$\", optionally \"rounds=N$\", a salt of 1 to "
        "16 characters, \"$\" and 86 characters of [./A-Za-z0-9])";
    std::string_view rest = hash.substr(3);
    if (rest.starts_with("rounds=")) {
        rest.remove_prefix(7);
        if (!sha512_rounds_ok(take_until(rest, '$'))) {
            return "SHA-512-crypt rounds must be 1000 to 999999999";
        }
    }
    if (rest.find('$') == std::string_view::npos) return std::string(malformed);
    const std::string_view salt = take_until(rest, '$');
    if (salt.empty() || salt.size() > kSha512MaxSaltLength || !all_crypt_chars(salt)) {
        return std::string(malformed);
    }
    if (rest.size() != kSha512DigestLength || !all_crypt_chars(rest)) return std::string(malformed);
    return {};
}

// "$y$" PARAMS "$" SALT "$" DIGEST.
std::string check_yescrypt(std::string_view hash) {
    std::string_view rest = hash.substr(3);
    const std::string_view params = take_until(rest, '$');
    const std::string_view salt = take_until(rest, '$');
    if (params.empty() || !all_crypt_chars(params) || salt.empty() || !all_crypt_chars(salt) ||
        rest.size() != kYescryptDigestLength || !all_crypt_chars(rest)) {
        return "malformed yescrypt hash (expected \"$y$\", parameters, \"$\", a salt, \"$\" and "
               "43 characters of [./A-Za-z0-9])";
    }
    return {};
}

// Names a hash this parser does not take, for the message: by its prefix,
// never by its text (it may be a plain-text password).
std::string unsupported_kind(std::string_view hash) {
    struct Known {
        std::string_view prefix;
        std::string_view name;
    };
    static constexpr Known kKnown[] = {
        {"$apr1$", "Apache MD5 (\"$apr1$\")"},  {"$1$", "MD5-crypt (\"$1$\")"},
        {"{SHA}", "SHA-1 (\"{SHA}\")"},         {"$5$", "SHA-256-crypt (\"$5$\")"},
        {"$gy$", "GOST yescrypt (\"$gy$\")"},   {"$7$", "scrypt (\"$7$\")"},
        {"$sha1$", "SHA-1-crypt (\"$sha1$\")"}, {"$md5", "SunMD5 (\"$md5\")"},
    };
    if (hash.empty()) return "an empty hash";
    for (const Known& known : kKnown) {
        if (hash.starts_with(known.prefix)) return std::string(known.name);
    }
    if (hash.size() == 13 && all_crypt_chars(hash)) return "DES crypt";
    if (hash.size() == 20 && hash[0] == '_' && all_crypt_chars(hash.substr(1))) {
        return "BSDi DES crypt (\"_\")";
    }
    if (hash[0] == '$') return "an unknown \"$\" scheme";
    return "plain text or an unknown hash";
}

// What is wrong with a hash, "" when nothing; its kind in `kind`.
std::string check_hash(std::string_view hash, HashKind& kind) {
    if (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
        kind = HashKind::kBcrypt;
        return check_bcrypt(hash);
    }
    if (hash.starts_with("$6$")) {
        kind = HashKind::kSha512Crypt;
        return check_sha512crypt(hash);
    }
    if (hash.starts_with("$y$")) {
        kind = HashKind::kYescrypt;
        return check_yescrypt(hash);
    }
    return unsupported_kind(hash) + std::string(kUnsupportedHash);
}

// What is wrong with a NAME, "" when nothing. A name that is not VCHAR is
// never printed: it could hold terminal escapes, or be a line of garbage.
std::string check_name(std::string_view name) {
    if (name.empty()) return "empty user name";
    for (size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c == ' ') {
            if (i == 0) return "space before the user name";
            return i + 1 == name.size() ? "space between the user name and ':'"
                                        : "space in user name";
        }
        if (!is_vchar(c)) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02X", c);
            return "byte " + std::string(hex) + " in user name (only printable ASCII is allowed)";
        }
    }
    // Not printed either: the message stays short whatever the line holds.
    if (name.size() > kMaxUserNameLength) {
        return "user name longer than 64 bytes (" + std::to_string(name.size()) + ")";
    }
    const std::string why = ", which starts a user-name parameter: this user could never log in";
    if (name.find("-session-") != std::string_view::npos) {
        return "user name " + quoted(name) + " contains \"-session-\"" + why;
    }
    if (name.find("-ttl-") != std::string_view::npos) {
        return "user name " + quoted(name) + " contains \"-ttl-\"" + why;
    }
    return {};
}

// Parses one "NAME:HASH" line into `entry`; returns what is wrong, "" when
// nothing.
std::string parse_line(std::string_view line, UserEntry& entry) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
        const size_t text = line.find_first_not_of(" \t");
        if (text == std::string_view::npos) {
            return "a line of white space (empty lines must be empty)";
        }
        if (line[text] == '#') return "'#' starts a comment only in the first column";
        return "no ':' between the user name and the hash";
    }
    const std::string_view name = line.substr(0, colon);
    if (std::string problem = check_name(name); !problem.empty()) return problem;
    const std::string_view hash = line.substr(colon + 1);
    std::string problem = hash.find(':') == std::string_view::npos
                              ? check_hash(hash, entry.kind)
                              : "second ':' (\"NAME:HASH:comment\" is not supported)";
    if (!problem.empty()) return "user " + quoted(name) + ": " + problem;
    entry.name = name;
    entry.hash = hash;
    return {};
}

std::string located(std::string_view file_name, size_t line, std::string_view message) {
    return std::string(file_name) + ":" + std::to_string(line) + ": " + std::string(message);
}

}  // namespace

// Walks the lines; a loop over the text, the only long function here.
std::optional<UsersFile> parse_users_file(std::string_view text, std::string_view file_name,
                                          std::string& error) {
    if (text.size() > kMaxUsersFileSize) {
        error = std::string(file_name) + ": larger than 64 MiB";
        return std::nullopt;
    }
    UsersFile file;
    // Where each name was first seen; the views point into `text`.
    std::unordered_map<std::string_view, size_t> first_line;
    // Sized once: growing it a million users at a time costs more than the parsing.
    const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
    first_line.reserve(std::min(lines, kMaxUsers + 1));
    std::string_view rest = text;
    for (size_t number = 1; !rest.empty(); ++number) {
        const std::string_view line = take_until(rest, '\n');
        if (line.find('\r') != std::string_view::npos) {
            error = located(file_name, number, "carriage return (the file has CRLF line ends)");
            return std::nullopt;
        }
        if (line.empty() || line[0] == '#') continue;
        UserEntry entry;
        if (std::string problem = parse_line(line, entry); !problem.empty()) {
            error = located(file_name, number, problem);
            return std::nullopt;
        }
        const std::string_view name = line.substr(0, entry.name.size());
        if (const auto [it, added] = first_line.emplace(name, number); !added) {
            error = located(file_name, number,
                            "duplicate user " + quoted(name) + " (first on line " +
                                std::to_string(it->second) + ")");
            return std::nullopt;
        }
        if (file.users.size() == kMaxUsers) {
            error = located(file_name, number, "more than 1000000 users");
            return std::nullopt;
        }
        file.users.push_back(std::move(entry));
    }
    return file;
}

std::optional<UsersFile> load_users_file(const std::string& path, std::string& error) {
    const auto cannot_read = [&] {
        error = path + ": cannot read: " + std::strerror(errno);
        return std::nullopt;
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cannot_read();
    // One byte over the limit is enough for the parser to refuse the file.
    std::string text;
    char buffer[65536];
    while (text.size() <= kMaxUsersFileSize) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            return cannot_read();
        }
        text.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd);
    return parse_users_file(text, path, error);
}

}  // namespace common::accounts
