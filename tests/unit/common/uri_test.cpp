// Unit tests for common/uri: the absolute-form targets of forwarded requests
// and the authority-form targets of CONNECT, with every refusal reason.
#include "common/uri.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace common {
namespace {

ProxyTarget absolute(std::string_view target) {
    ProxyTarget out;
    std::string error;
    EXPECT_TRUE(parse_absolute_target(target, out, error)) << target << ": " << error;
    return out;
}

std::string absolute_error(std::string_view target) {
    ProxyTarget out;
    std::string error;
    EXPECT_FALSE(parse_absolute_target(target, out, error)) << target;
    return error;
}

ProxyTarget authority(std::string_view target) {
    ProxyTarget out;
    std::string error;
    EXPECT_TRUE(parse_authority_target(target, out, error)) << target << ": " << error;
    return out;
}

std::string authority_error(std::string_view target) {
    ProxyTarget out;
    std::string error;
    EXPECT_FALSE(parse_authority_target(target, out, error)) << target;
    return error;
}

// --- absolute-form --------------------------------------------------------

TEST(UriAbsolute, HostOnly) {
    ProxyTarget t = absolute("http://example.com");
    EXPECT_EQ(t.host, "example.com");
    EXPECT_EQ(t.port, 80);
    EXPECT_FALSE(t.ipv6_literal);
    EXPECT_EQ(t.path, "");  // sent as "/" (or "*" for OPTIONS): append_origin_form()
    EXPECT_EQ(t.host_header(80), "example.com");
    EXPECT_EQ(t.authority(), "example.com:80");
}

TEST(UriAbsolute, PortPathAndQuery) {
    ProxyTarget t = absolute("http://example.com:8080/p?q=1&r");
    EXPECT_EQ(t.host, "example.com");
    EXPECT_EQ(t.port, 8080);
    EXPECT_EQ(t.path, "/p?q=1&r");
    EXPECT_EQ(t.host_header(80), "example.com:8080");
    EXPECT_EQ(t.authority(), "example.com:8080");
}

TEST(UriAbsolute, ExplicitDefaultPortIsLeftOutOfHost) {
    ProxyTarget t = absolute("http://example.com:80/x");
    EXPECT_EQ(t.port, 80);
    EXPECT_EQ(t.host_header(80), "example.com");
}

TEST(UriAbsolute, Ipv6Literal) {
    ProxyTarget t = absolute("http://[::1]:8080/");
    EXPECT_EQ(t.host, "::1");
    EXPECT_TRUE(t.ipv6_literal);
    EXPECT_EQ(t.port, 8080);
    EXPECT_EQ(t.path, "/");
    EXPECT_EQ(t.host_header(80), "[::1]:8080");
    EXPECT_EQ(t.authority(), "[::1]:8080");
    ProxyTarget d = absolute("http://[2001:DB8::1]/a");
    EXPECT_EQ(d.host, "2001:db8::1");
    EXPECT_EQ(d.port, 80);
    EXPECT_EQ(d.host_header(80), "[2001:db8::1]");
}

TEST(UriAbsolute, Ipv4Literal) {
    ProxyTarget t = absolute("http://93.184.216.34/");
    EXPECT_EQ(t.host, "93.184.216.34");
    EXPECT_FALSE(t.ipv6_literal);
}

TEST(UriAbsolute, SchemeAndHostLowercasedPathKept) {
    ProxyTarget t = absolute("HTTP://Example.COM/Some/Path?Q=A");
    EXPECT_EQ(t.host, "example.com");
    EXPECT_EQ(t.path, "/Some/Path?Q=A");
    EXPECT_EQ(absolute("hTtP://x.org").host, "x.org");
}

TEST(UriAbsolute, NamesWithUnderscoreAndTrailingDot) {
    EXPECT_EQ(absolute("http://_srv.example.com/").host, "_srv.example.com");
    EXPECT_EQ(absolute("http://example.com./").host, "example.com.");
    EXPECT_EQ(absolute("http://localhost/").host, "localhost");
}

TEST(UriAbsolute, PathViewPointsIntoTarget) {
    std::string target = "http://a.example/x/y";
    ProxyTarget t = absolute(target);
    EXPECT_EQ(t.path.data(), target.data() + 16);
}

TEST(UriAbsolute, HttpsRefusedWithConnectHint) {
    EXPECT_EQ(absolute_error("https://example.com/"), "https:// targets must use CONNECT");
    EXPECT_EQ(absolute_error("HTTPS://example.com/"), "https:// targets must use CONNECT");
}

TEST(UriAbsolute, OriginFormRefused) {
    EXPECT_EQ(absolute_error("/index.html"),
              "origin-form request to a proxy (use an absolute URI)");
    EXPECT_EQ(absolute_error("/"), "origin-form request to a proxy (use an absolute URI)");
}

TEST(UriAbsolute, OtherSchemesRefused) {
    for (const char* t : {"ftp://example.com/", "example.com:80", "*", "", "http:/x", "http:"}) {
        EXPECT_EQ(absolute_error(t), "request target is not an absolute http:// URI") << t;
    }
}

TEST(UriAbsolute, UserinfoRefused) {
    EXPECT_EQ(absolute_error("http://user:pw@example.com/"), "userinfo in request target");
    EXPECT_EQ(absolute_error("http://user@example.com"), "userinfo in request target");
}

TEST(UriAbsolute, FragmentRefused) {
    EXPECT_EQ(absolute_error("http://example.com/a#frag"), "fragment in request target");
    EXPECT_EQ(absolute_error("http://example.com#frag"), "fragment in request target");
    EXPECT_EQ(absolute_error("http://example.com/?q#f"), "fragment in request target");
}

// RFC 9112 §3.2.1: the path is empty; the request goes upstream as "/?q=1".
TEST(UriAbsolute, QueryWithoutPathIsKeptForTheOriginForm) {
    ProxyTarget t = absolute("http://example.com:81?q=1");
    EXPECT_EQ(t.port, 81);
    EXPECT_EQ(t.path, "?q=1");
}

TEST(UriAbsolute, BadPort) {
    for (const char* t :
         {"http://example.com:0/", "http://example.com:65536/", "http://example.com:/",
          "http://example.com:8o/", "http://example.com:-1/", "http://[::1]:0/", "http://a:1:2/"}) {
        EXPECT_EQ(absolute_error(t), "port must be a number from 1 to 65535") << t;
    }
}

TEST(UriAbsolute, EmptyHost) {
    EXPECT_EQ(absolute_error("http://"), "empty host");
    EXPECT_EQ(absolute_error("http:///path"), "empty host");
    EXPECT_EQ(absolute_error("http://:8080/"), "empty host");
}

TEST(UriAbsolute, AmbiguousNumericHostsRefused) {
    EXPECT_EQ(absolute_error("http://127.1/"), "ambiguous numeric host \"127.1\"");
    EXPECT_EQ(absolute_error("http://0x7f000001/"), "ambiguous numeric host \"0x7f000001\"");
    EXPECT_EQ(absolute_error("http://0X7F000001/"), "ambiguous numeric host \"0X7F000001\"");
    EXPECT_EQ(absolute_error("http://2130706433/"), "ambiguous numeric host \"2130706433\"");
    EXPECT_EQ(absolute_error("http://017.0.0.1/"), "ambiguous numeric host \"017.0.0.1\"");
    EXPECT_EQ(absolute_error("http://0x7f.1/"), "ambiguous numeric host \"0x7f.1\"");
    EXPECT_EQ(absolute_error("http://example.123/"), "ambiguous numeric host \"example.123\"");
}

TEST(UriAbsolute, MalformedHostNames) {
    EXPECT_EQ(absolute_error("http://.example.com/"), "malformed host name");
    EXPECT_EQ(absolute_error("http://-example.com/"), "malformed host name");
    EXPECT_EQ(absolute_error("http://a..b/"), "malformed host name");
    EXPECT_EQ(absolute_error("http://exa%6dple.com/"), "invalid character in host name");
    EXPECT_EQ(absolute_error("http://exa mple.com/"), "invalid character in host name");
    EXPECT_EQ(absolute_error("http://" + std::string(254, 'a') + "/"), "host name too long");
}

TEST(UriAbsolute, BadIpv6Literals) {
    EXPECT_EQ(absolute_error("http://[::1/"), "unterminated IPv6 literal");
    EXPECT_EQ(absolute_error("http://[::1]x/"), "junk after IPv6 literal");
    EXPECT_EQ(absolute_error("http://[1.2.3.4]/"), "invalid IPv6 literal");
    EXPECT_EQ(absolute_error("http://[]/"), "invalid IPv6 literal");
    EXPECT_EQ(absolute_error("http://[fe80::1%25eth0]/"), "invalid IPv6 literal");
}

// An IPv4 address, a NUL, then a ':' once passed as an IPv6 literal (the
// uri fuzz target's find); what follows the NUL is part of the host.
TEST(UriAbsolute, NulInsideIpv6LiteralRefused) {
    using namespace std::string_view_literals;
    EXPECT_EQ(absolute_error("http://[7.0.0.1\0\x01\xff:\xff\0"
                             "2]/"sv),
              "invalid IPv6 literal");
    EXPECT_EQ(absolute_error("http://[::1\0:1]/"sv), "invalid IPv6 literal");
}

TEST(UriAbsolute, ReusedTargetForgetsIpv6Literal) {
    ProxyTarget t;
    std::string error;
    ASSERT_TRUE(parse_absolute_target("http://[::1]/", t, error));
    ASSERT_TRUE(parse_absolute_target("http://example.com/", t, error));
    EXPECT_FALSE(t.ipv6_literal);
    EXPECT_EQ(t.host_header(80), "example.com");
}

// --- authority-form (CONNECT) --------------------------------------------

TEST(UriAuthority, HostAndPort) {
    ProxyTarget t = authority("Example.com:443");
    EXPECT_EQ(t.host, "example.com");
    EXPECT_EQ(t.port, 443);
    EXPECT_FALSE(t.ipv6_literal);
    EXPECT_EQ(t.authority(), "example.com:443");
    EXPECT_EQ(t.host_header(443), "example.com");
    EXPECT_EQ(t.host_header(80), "example.com:443");
}

TEST(UriAuthority, Ipv6) {
    ProxyTarget t = authority("[::1]:443");
    EXPECT_EQ(t.host, "::1");
    EXPECT_TRUE(t.ipv6_literal);
    EXPECT_EQ(t.port, 443);
    EXPECT_EQ(t.authority(), "[::1]:443");
}

TEST(UriAuthority, MissingPort) {
    EXPECT_EQ(authority_error("example.com"), "missing port");
    EXPECT_EQ(authority_error("[::1]"), "missing port");
}

TEST(UriAuthority, BadPort) {
    EXPECT_EQ(authority_error("example.com:0"), "port must be a number from 1 to 65535");
    EXPECT_EQ(authority_error("example.com:65536"), "port must be a number from 1 to 65535");
    EXPECT_EQ(authority_error("example.com:"), "port must be a number from 1 to 65535");
    EXPECT_EQ(authority_error("example.com:https"), "port must be a number from 1 to 65535");
}

TEST(UriAuthority, PathOrUserinfoRefused) {
    for (const char* t : {"example.com:443/", "example.com:443/path", "user@example.com:443",
                          "example.com:443?q", "example.com:443#f", "http://example.com:443"}) {
        EXPECT_EQ(authority_error(t), "CONNECT target must be host:port") << t;
    }
}

TEST(UriAuthority, HostRules) {
    EXPECT_EQ(authority_error(":443"), "empty host");
    EXPECT_EQ(authority_error("127.1:443"), "ambiguous numeric host \"127.1\"");
    EXPECT_EQ(authority_error("2130706433:443"), "ambiguous numeric host \"2130706433\"");
    EXPECT_EQ(authority_error("[1.2.3.4]:443"), "invalid IPv6 literal");
    EXPECT_EQ(authority_error("::1:443"), "empty host");
}

// --- valid_host_name ------------------------------------------------------

TEST(UriHostName, Valid) {
    std::string error;
    for (const char* host :
         {"example.com", "a", "x-y.example", "127.0.0.1", "255.255.255.255", "a1.b2.c3d"}) {
        EXPECT_TRUE(valid_host_name(host, error)) << host << ": " << error;
    }
    EXPECT_TRUE(valid_host_name(std::string(253, 'a'), error));
}

// A trailing dot makes a name absolute, not a different name: a numeric
// spelling of an IPv4 address with one is as ambiguous as without.
TEST(UriHostName, NumericHostsWithTrailingDotRefused) {
    for (const char* host : {"127.0.0.1.", "127.1.", "2130706433.", "0x7f.1.", "0x7f000001.",
                             "0177.0.0.1.", "127.000.000.001.", "example.123."}) {
        std::string error;
        EXPECT_FALSE(valid_host_name(host, error)) << host;
        EXPECT_EQ(error, "ambiguous numeric host \"" + std::string(host) + "\"");
    }
    EXPECT_EQ(absolute_error("http://127.1./"), "ambiguous numeric host \"127.1.\"");
    EXPECT_EQ(authority_error("127.0.0.1.:443"), "ambiguous numeric host \"127.0.0.1.\"");
    std::string error;
    EXPECT_TRUE(valid_host_name("example.com.", error)) << error;
    EXPECT_TRUE(valid_host_name("localhost.", error)) << error;
    EXPECT_FALSE(valid_host_name(".", error));
}

}  // namespace
}  // namespace common
