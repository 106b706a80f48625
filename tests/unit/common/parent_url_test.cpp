// Unit tests for common/parent_url: the URL of a parent proxy.
#include "common/parent_url.h"

#include <gtest/gtest.h>

namespace common {
namespace {

std::optional<ParentUrl> parse(std::string_view text) {
    std::string error;
    auto url = parse_parent_url(text, error);
    EXPECT_TRUE(url.has_value()) << text << ": " << error;
    return url;
}

std::string error_of(std::string_view text) {
    std::string error;
    EXPECT_FALSE(parse_parent_url(text, error).has_value()) << text;
    return error;
}

TEST(ParentUrl, SchemesAndTheirDefaultPorts) {
    auto http = parse("http://proxy.example");
    ASSERT_TRUE(http);
    EXPECT_EQ(http->scheme, ParentScheme::kHttp);
    EXPECT_EQ(http->host, "proxy.example");
    EXPECT_EQ(http->port, 80);
    EXPECT_FALSE(http->credentials);
    EXPECT_EQ(parse("HTTPS://Proxy.Example/")->port, 443);
    EXPECT_EQ(parse("HTTPS://Proxy.Example/")->host, "proxy.example");
    EXPECT_EQ(parse("socks5://10.0.0.1")->port, 1080);
    auto v6 = parse("socks5://[2001:db8::1]:1081");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "2001:db8::1");
    EXPECT_TRUE(v6->ipv6_literal);
    EXPECT_EQ(v6->port, 1081);
    EXPECT_EQ(parse("http://[::1]")->port, 80);
}

TEST(ParentUrl, CredentialsArePercentDecoded) {
    auto url = parse("http://al%69ce:p%3Ass%40w0rd!@127.0.0.1:3128");
    ASSERT_TRUE(url && url->credentials);
    EXPECT_EQ(url->credentials->first, "alice");
    EXPECT_EQ(url->credentials->second, "p:ss@w0rd!");
    EXPECT_EQ(url->port, 3128);
    // The last '@' ends the userinfo; a ':' in the password is allowed.
    EXPECT_EQ(parse("http://u:a:b@h:1")->credentials->second, "a:b");
}

TEST(ParentUrl, RefusesWhatCannotBeMeant) {
    EXPECT_EQ(error_of("ftp://h"), "a parent URL starts with http://, https:// or socks5://");
    EXPECT_EQ(error_of("socks4://h"), "a parent URL starts with http://, https:// or socks5://");
    EXPECT_EQ(error_of("http://h/path"), "a parent URL has no path, query or fragment");
    EXPECT_EQ(error_of("http://h?x"), "a parent URL has no path, query or fragment");
    EXPECT_EQ(error_of("http://user@h"),
              "the parent URL names a user without a password (user:password@)");
    EXPECT_EQ(error_of("http://:p@h"), "the user name must be 1 to 255 bytes");
    EXPECT_EQ(error_of("http://u:@h"), "the password must be 1 to 255 bytes");
    EXPECT_EQ(error_of("http://u%3a:p@h"), "the user name holds a ':'");
    EXPECT_EQ(error_of("http://u:p%0a@h"), "the password holds a control or non-ASCII byte");
    EXPECT_EQ(error_of("http://u:p%4@h"), "malformed percent-encoding in the password");
    EXPECT_EQ(error_of("http://u:p w@h"),
              "the password holds a character that must be percent-encoded");
    EXPECT_EQ(error_of("http://u:" + std::string(256, 'x') + "@h"),
              "the password must be 1 to 255 bytes");
    EXPECT_EQ(error_of("http://h:0"),
              "bad parent address \"h:0\": port must be a number from 1 "
              "to 65535");
    EXPECT_EQ(error_of("http://"), "bad parent address \"\": empty host");
    EXPECT_EQ(error_of("http://127.1"),
              "bad parent address \"127.1\": ambiguous numeric host "
              "\"127.1\"");
}

TEST(ParentUrl, ErrorsNeverRepeatThePassword) {
    for (const char* text : {"http://u:s3cret%zz@h", "http://u:s3cret@h:99999",
                             "http://u:s3cret@/x", "http://u:s3cret@h h"}) {
        std::string error;
        EXPECT_FALSE(parse_parent_url(text, error));
        EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
    }
}

}  // namespace
}  // namespace common
