// Unit tests for common/credentials: the Basic field as real clients send
// it, every error of parse_basic_credentials() and parse_user_field(), and
// the edges of each limit (255-byte user and password, 64-character session
// ID, 1s..24h ttl).
#include "common/credentials.h"

#include <gtest/gtest.h>

#include <string>

namespace common::accounts {
namespace {

using namespace std::string_literals;
using std::chrono::seconds;

// Standard base64 with padding, written independently of the parser's
// decoder so the two check each other.
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
        for (size_t j = 0; j < 4; ++j) {
            out += j <= n ? kAlphabet[group >> (18 - 6 * j) & 63] : '=';
        }
    }
    return out;
}

std::string basic(std::string_view user_password) {
    return "Basic " + base64(user_password);
}

// Parses `value`, expecting success.
Credentials parsed(std::string_view value) {
    std::string error;
    const auto c = parse_basic_credentials(value, error);
    EXPECT_TRUE(c.has_value()) << "\"" << value << "\": " << error;
    return c.value_or(Credentials{});
}

// Parses `value`, expecting failure; returns the message.
std::string error_for(std::string_view value) {
    std::string error;
    const auto c = parse_basic_credentials(value, error);
    EXPECT_FALSE(c.has_value()) << "\"" << value << "\" parsed as " << c->user << ":"
                                << c->password;
    EXPECT_FALSE(error.empty());
    return error;
}

UserField field_of(std::string_view field) {
    std::string error;
    const auto f = parse_user_field(field, error);
    EXPECT_TRUE(f.has_value()) << "\"" << field << "\": " << error;
    return f.value_or(UserField{});
}

std::string field_error(std::string_view field) {
    std::string error;
    const auto f = parse_user_field(field, error);
    EXPECT_FALSE(f.has_value()) << "\"" << field << "\" parsed";
    return error;
}

bool inside(std::string_view outer, std::string_view part) {
    return part.data() >= outer.data() && part.data() + part.size() <= outer.data() + outer.size();
}

// --- Basic: what clients send -------------------------------------------------

TEST(Credentials, WhatCurlSends) {
    // curl -v -x http://127.0.0.1:3128 -U alice:secret ...
    const Credentials c = parsed("Basic YWxpY2U6c2VjcmV0");
    EXPECT_EQ(c.user, "alice");
    EXPECT_EQ(c.password, "secret");
}

TEST(Credentials, SchemeIsCaseInsensitive) {
    EXPECT_EQ(parsed("basic YWxpY2U6c2VjcmV0").user, "alice");
    EXPECT_EQ(parsed("BASIC YWxpY2U6c2VjcmV0").user, "alice");
    EXPECT_EQ(parsed("bAsIc YWxpY2U6c2VjcmV0").password, "secret");
}

TEST(Credentials, SeveralSpacesAfterTheScheme) {
    EXPECT_EQ(parsed("Basic    YWxpY2U6c2VjcmV0").user, "alice");
}

TEST(Credentials, OwsAroundTheValueIsNotPartOfIt) {
    EXPECT_EQ(parsed("Basic YWxpY2U6c2VjcmV0 \t ").user, "alice");
    EXPECT_EQ(parsed(" \tBasic YWxpY2U6c2VjcmV0").user, "alice");
}

TEST(Credentials, PasswordKeepsEveryColonAfterTheFirst) {
    const Credentials c = parsed(basic("alice:se:cr:et:"));
    EXPECT_EQ(c.user, "alice");
    EXPECT_EQ(c.password, "se:cr:et:");
}

TEST(Credentials, UserFieldIsKeptWhole) {
    const Credentials c = parsed(basic("alice-session-abc_1-ttl-10m:secret"));
    EXPECT_EQ(c.user, "alice-session-abc_1-ttl-10m");
}

TEST(Credentials, Utf8AndSpacesArePlainBytes) {
    const Credentials c = parsed(basic("j\xC3\xB6rg:pass word \xE2\x82\xAC"));
    EXPECT_EQ(c.user, "j\xC3\xB6rg");
    EXPECT_EQ(c.password, "pass word \xE2\x82\xAC");
}

TEST(Credentials, EveryPaddingLength) {
    EXPECT_EQ(parsed("Basic " + base64("a:b")).password, "b");      // no '='
    EXPECT_EQ(parsed("Basic " + base64("a:bc")).password, "bc");    // "=="
    EXPECT_EQ(parsed("Basic " + base64("a:bcd")).password, "bcd");  // "="
    EXPECT_EQ(base64("a:bc"), "YTpiYw==");
    EXPECT_EQ(base64("a:bcd"), "YTpiY2Q=");
}

TEST(Credentials, PlusAndSlashAreTheAlphabet) {
    // "a:?~>>" encodes with both '+' and '/'.
    ASSERT_EQ(base64("a:?~>>"), "YTo/fj4+");
    EXPECT_EQ(parsed("Basic YTo/fj4+").password, "?~>>");
}

TEST(Credentials, LimitsAre255Bytes) {
    const std::string user(255, 'u'), password(255, 'p');
    const Credentials c = parsed(basic(user + ":" + password));
    EXPECT_EQ(c.user, user);
    EXPECT_EQ(c.password, password);
    EXPECT_EQ(error_for(basic(user + "u:" + password)), "user name longer than 255 bytes");
    EXPECT_EQ(error_for(basic(user + ":" + password + "p")), "password longer than 255 bytes");
}

// --- Basic: errors -------------------------------------------------------------

TEST(Credentials, EmptyValue) {
    EXPECT_EQ(error_for(""), "empty credentials");
    EXPECT_EQ(error_for("  \t "), "empty credentials");
}

TEST(Credentials, OtherSchemes) {
    EXPECT_EQ(error_for("Digest username=\"alice\", realm=\"proxy\", nonce=\"x\""),
              "credentials are not Basic");
    EXPECT_EQ(error_for("Bearer YWxpY2U6c2VjcmV0"), "credentials are not Basic");
    EXPECT_EQ(error_for("Negotiate YWxpY2U6c2VjcmV0"), "credentials are not Basic");
    EXPECT_EQ(error_for("BasicYWxpY2U6c2VjcmV0"), "credentials are not Basic");
    EXPECT_EQ(error_for("Basi YWxpY2U6c2VjcmV0"), "credentials are not Basic");
    EXPECT_EQ(error_for("YWxpY2U6c2VjcmV0"), "credentials are not Basic");
    EXPECT_EQ(error_for("B\xC3\xA1sic YWxpY2U6c2VjcmV0"), "credentials are not Basic");
}

TEST(Credentials, SchemeWithoutToken) {
    EXPECT_EQ(error_for("Basic"), "no credentials after \"Basic\"");
    EXPECT_EQ(error_for("Basic   "), "no credentials after \"Basic\"");
}

TEST(Credentials, TabsAreNotSeparators) {
    EXPECT_EQ(error_for("Basic\tYWxpY2U6c2VjcmV0"), "tab after \"Basic\" (use a space)");
    EXPECT_EQ(error_for("Basic \tYWxpY2U6c2VjcmV0"), "tab after \"Basic\" (use a space)");
    EXPECT_EQ(error_for("Basic YWxp\tY2U6c2VjcmV0"), "credentials are not valid base64");
}

TEST(Credentials, TrailingJunk) {
    EXPECT_EQ(error_for("Basic YWxpY2U6c2VjcmV0 junk"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YWxpY2U6c2VjcmV0, Basic YWxpY2U6c2VjcmV0"),
              "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YWxpY2U6c2VjcmV0\r\n"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YWxpY2U6c2VjcmV0\0"s), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic realm=\"proxy\""), "credentials are not valid base64");
}

TEST(Credentials, SpaceInsideToken) {
    EXPECT_EQ(error_for("Basic YWxp Y2U6c2VjcmV0"), "credentials are not valid base64");
}

TEST(Credentials, PaddingIsRequired) {
    // "a:bc" is YTpiYw== ; without its padding the length is not a multiple of 4.
    EXPECT_EQ(error_for("Basic YTpiYw"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTpiYw="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTpiY2Q"), "credentials are not valid base64");
}

TEST(Credentials, BadPadding) {
    EXPECT_EQ(error_for("Basic YTpiYw==="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTpiYw===="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTpi===="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTp=YmM="), "credentials are not valid base64");  // '=' inside
    EXPECT_EQ(error_for("Basic YT==YmM="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic Y==="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic ===="), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic ="), "credentials are not valid base64");
}

TEST(Credentials, NonZeroPadBitsAreRefused) {
    // "YTpiYw==" is canonical; "YTpiYx==" decodes to the same bytes in a lax
    // decoder (the low bits of 'x' are dropped). A token must have one spelling.
    EXPECT_EQ(parsed("Basic YTpiYw==").password, "bc");
    EXPECT_EQ(error_for("Basic YTpiYx=="), "credentials are not valid base64");
    EXPECT_EQ(parsed("Basic YTpiY2Q=").password, "bcd");
    EXPECT_EQ(error_for("Basic YTpiY2R="), "credentials are not valid base64");
}

TEST(Credentials, UrlSafeAlphabetIsRefused) {
    EXPECT_EQ(error_for("Basic YTo_fj4-"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTo_fj4+"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YTo/fj4-"), "credentials are not valid base64");
}

TEST(Credentials, OtherBytesInToken) {
    EXPECT_EQ(error_for("Basic YWxpY2U6c2VjcmV0.AAA"), "credentials are not valid base64");
    EXPECT_EQ(error_for("Basic YWxpY2U6c2Vj\xC3\xA9mV0"), "credentials are not valid base64");
}

TEST(Credentials, NoColon) {
    EXPECT_EQ(error_for(basic("alice")), "credentials have no ':' after the user name");
    EXPECT_EQ(error_for("Basic AA=="), "credentials have no ':' after the user name");
}

TEST(Credentials, EmptyParts) {
    EXPECT_EQ(error_for(basic(":secret")), "empty user name");
    EXPECT_EQ(error_for(basic("alice:")), "empty password");
    EXPECT_EQ(error_for(basic(":")), "empty user name");
}

TEST(Credentials, ControlCharacters) {
    EXPECT_EQ(error_for(basic("ali\x01"
                              "ce:secret")),
              "control character in credentials");
    EXPECT_EQ(error_for(basic("alice:sec\nret")), "control character in credentials");
    EXPECT_EQ(error_for(basic("alice:secret\0"s)), "control character in credentials");
    EXPECT_EQ(error_for(basic("alice:secret\x7f")), "control character in credentials");
    EXPECT_EQ(error_for(basic("alice:\tsecret")), "control character in credentials");
    // Before the emptiness checks: the client is broken, not just wrong.
    EXPECT_EQ(error_for(basic("\x1f:")), "control character in credentials");
}

TEST(Credentials, ErrorIsOnlySetOnFailure) {
    std::string error = "untouched";
    ASSERT_TRUE(parse_basic_credentials("Basic YWxpY2U6c2VjcmV0", error).has_value());
    EXPECT_EQ(error, "untouched");
}

// --- the user field --------------------------------------------------------------

TEST(UserField, NameAlone) {
    const std::string input = "alice";
    const UserField f = field_of(input);
    EXPECT_EQ(f.name, "alice");
    EXPECT_TRUE(f.session_id.empty());
    EXPECT_EQ(f.ttl, seconds(0));
    EXPECT_TRUE(inside(input, f.name));
}

TEST(UserField, NameMayHoldAnyVcharButColon) {
    EXPECT_EQ(field_of("a-b_c.d@example.com!#$%&'*+/=?^`{|}~\"()<>[]\\;,").name,
              "a-b_c.d@example.com!#$%&'*+/=?^`{|}~\"()<>[]\\;,");
    EXPECT_EQ(field_of("alice-session").name, "alice-session");
    EXPECT_EQ(field_of("alice-ttl").name, "alice-ttl");
    EXPECT_EQ(field_of("alice--session").name, "alice--session");
    EXPECT_EQ(field_of("-").name, "-");
}

TEST(UserField, Session) {
    const std::string input = "alice-session-abc_XYZ_019";
    const UserField f = field_of(input);
    EXPECT_EQ(f.name, "alice");
    EXPECT_EQ(f.session_id, "abc_XYZ_019");
    EXPECT_EQ(f.ttl, seconds(0));
    EXPECT_TRUE(inside(input, f.name));
    EXPECT_TRUE(inside(input, f.session_id));
}

TEST(UserField, SessionWithTtl) {
    const std::string input = "alice-session-s1-ttl-10m";
    const UserField f = field_of(input);
    EXPECT_EQ(f.name, "alice");
    EXPECT_EQ(f.session_id, "s1");
    EXPECT_EQ(f.ttl, seconds(600));
    EXPECT_TRUE(inside(input, f.session_id));
    EXPECT_EQ(field_of("alice-session-s1-ttl-30s").ttl, seconds(30));
    EXPECT_EQ(field_of("alice-session-s1-ttl-2h").ttl, seconds(7200));
}

TEST(UserField, ParametersStartAtTheFirstSession) {
    // The name ends at the first "-session-": what follows is the ID.
    const UserField f = field_of("a-b-session-x");
    EXPECT_EQ(f.name, "a-b");
    EXPECT_EQ(f.session_id, "x");
    EXPECT_EQ(field_of("alice--session-x").name, "alice-");
}

TEST(UserField, TtlBounds) {
    EXPECT_EQ(field_of("a-session-x-ttl-1s").ttl, seconds(1));
    EXPECT_EQ(field_of("a-session-x-ttl-86400s").ttl, seconds(86400));
    EXPECT_EQ(field_of("a-session-x-ttl-1440m").ttl, seconds(86400));
    EXPECT_EQ(field_of("a-session-x-ttl-24h").ttl, seconds(86400));
    const std::string range = "ttl must be between 1s and 24h";
    EXPECT_EQ(field_error("a-session-x-ttl-0s"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-0h"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-86401s"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-1441m"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-25h"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-999999h"), range);
    EXPECT_EQ(field_error("a-session-x-ttl-1000000s"), range);  // 7 digits
    EXPECT_EQ(field_error("a-session-x-ttl-99999999999999999999999h"), range);
}

TEST(UserField, TtlMustBeANumberWithAUnit) {
    const std::string number = "ttl must be a number with s, m or h";
    EXPECT_EQ(field_error("a-session-x-ttl-"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-10"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-m"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-10d"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-10M"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-010m"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-00s"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-+10m"), number);
    EXPECT_EQ(field_error("a-session-x-ttl--10m"), number);
    EXPECT_EQ(field_error("a-session-x-ttl- 10m"), number);
    EXPECT_EQ(field_error("a-session-x-ttl-1.5h"), number);
}

TEST(UserField, TextAfterTheTtl) {
    EXPECT_EQ(field_error("a-session-x-ttl-10mm"), "unexpected text after the ttl");
    EXPECT_EQ(field_error("a-session-x-ttl-10m "), "unexpected text after the ttl");
    EXPECT_EQ(field_error("a-session-x-ttl-10m-"), "unexpected text after the ttl");
    EXPECT_EQ(field_error("a-session-x-ttl-10m-ttl-5m"), "second -ttl- parameter");
    EXPECT_EQ(field_error("a-session-x-ttl-10m-session-y"), "second -session- parameter");
}

TEST(UserField, SessionIdCharset) {
    const std::string bad = "session ID must be 1-64 letters, digits or '_'";
    EXPECT_EQ(field_error("alice-session-"), bad);
    EXPECT_EQ(field_error("alice-session--ttl-5m"), bad);
    EXPECT_EQ(field_error("alice-session-a-b"), bad);
    EXPECT_EQ(field_error("alice-session-a.b"), bad);
    EXPECT_EQ(field_error("alice-session-a b"), bad);
    EXPECT_EQ(field_error("alice-session-\xC3\xA9"), bad);
    EXPECT_EQ(field_error("alice-session-a:b"), bad);
    EXPECT_EQ(field_error("alice-session-a\x01"), bad);
    EXPECT_EQ(field_error("alice-session-ttl-5m"), bad);  // "ttl" is the ID, "-5m" follows
}

TEST(UserField, SessionIdLength) {
    const std::string id(64, 'z');
    EXPECT_EQ(field_of("alice-session-" + id).session_id, id);
    EXPECT_EQ(field_of("alice-session-" + id + "-ttl-1h").session_id, id);
    EXPECT_EQ(field_error("alice-session-" + id + "z"),
              "session ID must be 1-64 letters, digits or '_'");
    EXPECT_EQ(field_error("alice-session-" + id + "z-ttl-1h"),
              "session ID must be 1-64 letters, digits or '_'");
}

TEST(UserField, SecondSession) {
    EXPECT_EQ(field_error("alice-session-a-session-b"), "second -session- parameter");
    EXPECT_EQ(field_error("alice-session-a-ttl-5m-session-b"), "second -session- parameter");
}

TEST(UserField, TtlWithoutSession) {
    const std::string without = "\"-ttl-\" without a session: use NAME-session-ID-ttl-DURATION";
    EXPECT_EQ(field_error("alice-ttl-5m"), without);
    EXPECT_EQ(field_error("alice-ttl-5m-session-x"), without);
    EXPECT_EQ(field_error("alice-ttl-"), without);
}

TEST(UserField, EmptyName) {
    EXPECT_EQ(field_error(""), "empty user name");
    EXPECT_EQ(field_error("-session-x"), "empty user name");
    EXPECT_EQ(field_error("-ttl-5m"), "empty user name");
    EXPECT_EQ(field_error("-session-x-ttl-5m"), "empty user name");
}

TEST(UserField, NameCharacters) {
    EXPECT_EQ(field_error("al ice"), "space in user name");
    EXPECT_EQ(field_error(" alice"), "space in user name");
    EXPECT_EQ(field_error("alice "), "space in user name");
    EXPECT_EQ(field_error("alice\t"), "control character in user name");
    EXPECT_EQ(field_error("ali\0ce"s), "control character in user name");
    EXPECT_EQ(field_error("alice\x7f"), "control character in user name");
    EXPECT_EQ(field_error("j\xC3\xB6rg"), "non-ASCII byte in user name");
    EXPECT_EQ(field_error("alice:x"), "':' in user name");
    EXPECT_EQ(field_error("al ice-session-x"), "space in user name");
}

TEST(UserField, ErrorIsOnlySetOnFailure) {
    std::string error = "untouched";
    ASSERT_TRUE(parse_user_field("alice-session-x-ttl-1m", error).has_value());
    EXPECT_EQ(error, "untouched");
}

}  // namespace
}  // namespace common::accounts
