// Strict, pure parsing of the credentials a client presents: the HTTP
// Proxy-Authorization "Basic" field (RFC 7617, RFC 9110 §11) and the user
// field with its session parameters ("NAME-session-ID-ttl-DURATION"), which
// SOCKS5 (RFC 1929) clients send as their username.
//
// Bytes in, result out: nothing here does I/O or keeps state. Reject, never
// repair: input outside the grammar is an error, never guessed at. Every error
// is a short lower-case English phrase meant for the client (the body of a
// 407, a log line); none of them repeats the password.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace common::accounts {

// RFC 1929 carries each of them in a length byte: the same limits for HTTP
// keep one set of credentials usable over both protocols.
inline constexpr size_t kMaxUserLength = 255;
inline constexpr size_t kMaxPasswordLength = 255;
inline constexpr size_t kMaxSessionIdLength = 64;
inline constexpr std::chrono::seconds kMaxTtl{24 * 60 * 60};

struct Credentials {
    std::string user;  // the whole user field, parameters included
    std::string password;
};

// Parses a Proxy-Authorization field value "Basic <token68>".
//
// The scheme is case-insensitive and followed by one or more SP (a tab is an
// error); OWS around the whole value is ignored (it is not part of a field
// value, RFC 9110 §5.5), anything else after the token is an error. The token
// is strict base64 (RFC 4648 §4: standard alphabet, '=' padding so that its
// length is a multiple of 4, zero pad bits), so the credentials re-encode to
// exactly the token that was sent. It decodes to "user-id:password", split at
// the FIRST ':' (a password may contain ':'); user-id is 1..kMaxUserLength
// bytes, the password 1..kMaxPasswordLength bytes (RFC 1929 cannot carry an
// empty one), and neither holds a control character (0x00-0x1F, 0x7F; RFC
// 7617 §2). Other bytes, UTF-8 included, are kept as they are.
//
// On failure returns nullopt and sets `error`, in this order of checks:
// "empty credentials", "credentials are not Basic", "no credentials after
// \"Basic\"", "tab after \"Basic\" (use a space)", "credentials are not valid
// base64", "credentials have no ':' after the user name", "control character
// in credentials", "empty user name", "user name longer than 255 bytes",
// "empty password", "password longer than 255 bytes".
std::optional<Credentials> parse_basic_credentials(std::string_view field_value,
                                                   std::string& error);

// base64("user:password") (RFC 7617), the token of a Basic credential: what
// proxyd sends a parent proxy, the inverse of parse_basic_credentials().
std::string encode_basic_token(std::string_view user, std::string_view password);

// The user field split into the account name and its parameters.
struct UserField {
    std::string_view name;        // the account name (a view into the input)
    std::string_view session_id;  // empty: none (a view into the input)
    std::chrono::seconds ttl{0};  // 0: none given
};

// Parses a user field, strictly (reject, don't repair):
//   field    = name [ "-session-" id [ "-ttl-" duration ] ]
//   name     = 1*VCHAR without ':' that contains neither "-session-" nor "-ttl-"
//   id       = 1*64( ALPHA / DIGIT / "_" )
//   duration = 1*6DIGIT without a leading zero, then "s", "m" or "h"; 1s..24h
// Parameters start at the FIRST "-session-" or "-ttl-": a name alone is
// accepted whenever it is non-empty VCHAR without ':' and contains neither.
// The views of the result point into `field`.
//
// On failure returns nullopt and sets `error` to one of: "empty user name",
// "space in user name", "control character in user name", "non-ASCII byte in
// user name", "':' in user name", "\"-ttl-\" without a session: use
// NAME-session-ID-ttl-DURATION", "session ID must be 1-64 letters, digits or
// '_'", "second -session- parameter", "second -ttl- parameter", "ttl must be a
// number with s, m or h", "ttl must be between 1s and 24h", "unexpected text
// after the ttl".
std::optional<UserField> parse_user_field(std::string_view field, std::string& error);

}  // namespace common::accounts
