// The users file: the accounts proxyd accepts, in the htpasswd format that
// `htpasswd -B` and `mkpasswd` write ("NAME:HASH" per line).
//
// parse_users_file() is pure (text in, users or an error out);
// load_users_file() reads the file and hands its text over. Both are strict:
// a line outside the grammar fails the whole file with FILE:LINE and the
// cause, so an operator finds out at reload rather than when a user cannot
// log in. Only hashes that libxcrypt verifies slowly are accepted. Messages
// never repeat a hash (a "hash" may be a plain-text password) and print a
// user name only when it is printable ASCII.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace common::accounts {

inline constexpr size_t kMaxUserNameLength = 64;  // in the users file
inline constexpr size_t kMaxUsers = 1'000'000;
inline constexpr size_t kMaxUsersFileSize = 64 * 1024 * 1024;

enum class HashKind { kBcrypt, kYescrypt, kSha512Crypt };

struct UserEntry {
    std::string name;
    std::string hash;  // the whole crypt(3) string, for crypt_r() to verify
    HashKind kind;
};

struct UsersFile {
    std::vector<UserEntry> users;  // in file order
};

// Parses the text of a users file. Lines end with '\n' (the last may lack
// it); empty lines and lines whose first byte is '#' are skipped. Every other
// line is NAME ':' HASH with
//  - NAME: 1..64 bytes of VCHAR (0x21-0x7E) other than ':', containing neither
//    "-session-" nor "-ttl-" (they start user-name parameters, so such a user
//    could never log in), unique in the file;
//  - exactly one ':' ("NAME:HASH:comment" is refused);
//  - HASH one of
//      bcrypt         "$2a$" | "$2b$" | "$2y$", cost "04".."31", "$", 53 of [./A-Za-z0-9]
//      SHA-512-crypt  "$6$" ["rounds=" N "$"] SALT "$" 86 of [./A-Za-z0-9], N 1000..999999999
//                     without a leading zero, SALT 1..16 of [./A-Za-z0-9]
//      yescrypt       "$y$" PARAMS "$" SALT "$" 43 of [./A-Za-z0-9], PARAMS and SALT
//                     non-empty [./A-Za-z0-9]
//    Anything else (MD5 "$apr1$" / "$1$", "{SHA}", DES crypt, plain text,
//    "$5$", "$gy$", empty) is an unsupported hash.
// A '\r' anywhere, comments included, is an error (a CRLF file), and so is a
// text over kMaxUsersFileSize bytes or with more than kMaxUsers users (the
// size binds first for most files: a bcrypt line is about 70 bytes, so 64 MiB
// holds some 950,000 of them). An empty file (or one of comments only) is
// valid and has no users.
//
// On failure returns nullopt and sets `error` to "FILE:LINE: message" (FILE
// is `file_name` as given), or "FILE: larger than 64 MiB". The messages, in
// the order a line is checked:
//   "carriage return (the file has CRLF line ends)"
//   "a line of white space (empty lines must be empty)"
//   "'#' starts a comment only in the first column"
//   "no ':' between the user name and the hash"
//   "empty user name", "space before the user name", "space between the user
//   name and ':'", "space in user name", "byte 0xNN in user name (only
//   printable ASCII is allowed)", "user name longer than 64 bytes (N)"
//   "user name \"NAME\" contains \"-session-\", which starts a user-name
//   parameter: this user could never log in" (and the same for "-ttl-")
//   "user \"NAME\": second ':' (\"NAME:HASH:comment\" is not supported)"
//   "user \"NAME\": malformed bcrypt hash (expected ...)", the same for
//   SHA-512-crypt and yescrypt, "user \"NAME\": bcrypt cost must be 04 to 31",
//   "user \"NAME\": SHA-512-crypt rounds must be 1000 to 999999999"
//   "user \"NAME\": KIND is an unsupported password hash (use htpasswd -B, or
//   mkpasswd -m yescrypt or sha512crypt)", KIND e.g. "Apache MD5 (\"$apr1$\")",
//   "an empty hash", "plain text or an unknown hash"
//   "duplicate user \"NAME\" (first on line N)", "more than 1000000 users"
// NAME is printed only once it is known to be 1..64 bytes of VCHAR.
std::optional<UsersFile> parse_users_file(std::string_view text, std::string_view file_name,
                                          std::string& error);

// Reads and parses `path`. Errors name the path: "PATH: cannot read: No such
// file or directory" (the strerror() text), or parse_users_file()'s with
// FILE = `path`. Stops reading a little past kMaxUsersFileSize bytes.
std::optional<UsersFile> load_users_file(const std::string& path, std::string& error);

}  // namespace common::accounts
