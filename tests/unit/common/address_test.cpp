// Unit tests for common/address: host:port, ports, CIDR ranges and their
// matching, port ranges, numeric addresses, and the private-destination
// classification a forward proxy relies on to refuse SSRF targets.
#include "common/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace common {
namespace {

SocketAddress numeric(const char* host, uint16_t port = 0) {
    std::optional<SocketAddress> address = SocketAddress::from_numeric(host, port);
    EXPECT_TRUE(address.has_value()) << host;
    return address.value_or(SocketAddress{});
}

Cidr cidr(const char* text) {
    std::string error;
    std::optional<Cidr> parsed = parse_cidr(text, error);
    EXPECT_TRUE(parsed.has_value()) << text << ": " << error;
    return parsed.value_or(Cidr{});
}

std::string host_port_error(std::string_view text, bool allow_zero = false) {
    std::string error;
    EXPECT_FALSE(parse_host_port(text, error, allow_zero).has_value()) << text;
    return error;
}

// --- parse_host_port ------------------------------------------------------

TEST(AddressHostPort, NameAndPort) {
    std::string error;
    auto hp = parse_host_port("example.com:8080", error);
    ASSERT_TRUE(hp) << error;
    EXPECT_EQ(hp->host, "example.com");
    EXPECT_EQ(hp->port, 8080);
}

TEST(AddressHostPort, Ipv4AndBracketedIpv6) {
    std::string error;
    auto v4 = parse_host_port("127.0.0.1:3128", error);
    ASSERT_TRUE(v4) << error;
    EXPECT_EQ(v4->host, "127.0.0.1");
    EXPECT_EQ(v4->port, 3128);
    auto v6 = parse_host_port("[::1]:65535", error);
    ASSERT_TRUE(v6) << error;
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->port, 65535);
}

TEST(AddressHostPort, PortZeroOnlyWhenAllowed) {
    EXPECT_EQ(host_port_error("127.0.0.1:0"), "port must be a number from 1 to 65535");
    std::string error;
    auto hp = parse_host_port("127.0.0.1:0", error, /*allow_port_zero=*/true);
    ASSERT_TRUE(hp) << error;
    EXPECT_EQ(hp->port, 0);
    hp = parse_host_port("[::]:0", error, true);
    ASSERT_TRUE(hp) << error;
    EXPECT_EQ(hp->host, "::");
    EXPECT_EQ(hp->port, 0);
}

TEST(AddressHostPort, Errors) {
    EXPECT_EQ(host_port_error("127.0.0.1"), "expected host:port");
    EXPECT_EQ(host_port_error("::1:3128"), "an IPv6 address needs brackets: [addr]:port");
    EXPECT_EQ(host_port_error("[::1]"), "malformed [IPv6] address");
    EXPECT_EQ(host_port_error("[]:80"), "malformed [IPv6] address");
    EXPECT_EQ(host_port_error("[::1:80"), "malformed [IPv6] address");
    EXPECT_EQ(host_port_error("[1.2.3.4]:80"), "\"1.2.3.4\" is not an IPv6 address");
    EXPECT_EQ(host_port_error("[nope]:80"), "\"nope\" is not an IPv6 address");
    EXPECT_EQ(host_port_error(":80"), "empty host");
    EXPECT_EQ(host_port_error("a b:80"), "invalid character in host");
    EXPECT_EQ(host_port_error("a/b:80"), "invalid character in host");
    EXPECT_EQ(host_port_error("user@host:80"), "invalid character in host");
    EXPECT_EQ(host_port_error("host:"), "port must be a number from 1 to 65535");
    EXPECT_EQ(host_port_error("host:65536"), "port must be a number from 1 to 65535");
    EXPECT_EQ(host_port_error("host:80x"), "port must be a number from 1 to 65535");
    EXPECT_EQ(host_port_error("host:-1"), "port must be a number from 1 to 65535");
}

// --- parse_port -----------------------------------------------------------

TEST(AddressPort, Valid) {
    EXPECT_EQ(parse_port("1"), 1);
    EXPECT_EQ(parse_port("80"), 80);
    EXPECT_EQ(parse_port("65535"), 65535);
}

TEST(AddressPort, Invalid) {
    for (const char* bad : {"", "0", "65536", "99999", "100000", "+80", "-80", " 80", "80 ", "8o",
                            "0x50", "123456"}) {
        EXPECT_FALSE(parse_port(bad).has_value()) << '"' << bad << '"';
    }
}

// --- SocketAddress --------------------------------------------------------

TEST(AddressSocketAddress, FromNumericAndToString) {
    SocketAddress v4 = numeric("127.0.0.1", 3128);
    EXPECT_EQ(v4.family(), AF_INET);
    EXPECT_EQ(v4.length, sizeof(sockaddr_in));
    EXPECT_EQ(v4.port(), 3128);
    EXPECT_EQ(v4.to_string(), "127.0.0.1:3128");
    EXPECT_EQ(v4.host_string(), "127.0.0.1");

    SocketAddress v6 = numeric("::1", 3128);
    EXPECT_EQ(v6.family(), AF_INET6);
    EXPECT_EQ(v6.length, sizeof(sockaddr_in6));
    EXPECT_EQ(v6.to_string(), "[::1]:3128");
    EXPECT_EQ(v6.host_string(), "::1");

    EXPECT_EQ(numeric("2001:DB8:0:0::1", 80).to_string(), "[2001:db8::1]:80");
}

TEST(AddressSocketAddress, SetPortAndEquality) {
    SocketAddress a = numeric("10.0.0.1", 1);
    a.set_port(8080);
    EXPECT_EQ(a.port(), 8080);
    EXPECT_EQ(a.to_string(), "10.0.0.1:8080");
    EXPECT_TRUE(a == numeric("10.0.0.1", 8080));
    EXPECT_FALSE(a == numeric("10.0.0.1", 8081));
    EXPECT_FALSE(a == numeric("10.0.0.2", 8080));
    EXPECT_FALSE(numeric("::1", 80) == numeric("127.0.0.1", 80));
    EXPECT_TRUE(numeric("::1", 80) == numeric("0::1", 80));
}

TEST(AddressSocketAddress, FromCopiesSockaddr) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    ASSERT_EQ(inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr), 1);
    SocketAddress a = SocketAddress::from(reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
    EXPECT_EQ(a.length, sizeof(sin));
    EXPECT_EQ(a.to_string(), "192.0.2.7:443");
}

TEST(AddressSocketAddress, FromNumericRejectsNonCanonicalForms) {
    for (const char* bad :
         {"127.1", "0x7f000001", "2130706433", "017.0.0.1", "127.0.0.1.", "127.0.0.256",
          "localhost", "", "[::1]", "::1%lo", " 127.0.0.1", "1.2.3.4:80"}) {
        EXPECT_FALSE(SocketAddress::from_numeric(bad, 0).has_value()) << '"' << bad << '"';
    }
}

// The whole view is the address: inet_pton would stop at a NUL. Found by
// the uri fuzz target ("[7.0.0.1\0...:...]" passed as an IPv6 literal).
TEST(AddressSocketAddress, FromNumericRejectsEmbeddedNul) {
    using namespace std::string_view_literals;
    for (std::string_view bad : {"7.0.0.1\0"sv, "7.0.0.1\0:1"sv, "::1\0junk"sv, "\0"sv}) {
        EXPECT_FALSE(SocketAddress::from_numeric(bad, 0).has_value()) << bad.size();
    }
    std::string error;
    EXPECT_FALSE(parse_cidr("10.0.0.1\0x/32"sv, error).has_value());
}

// --- CIDR -----------------------------------------------------------------

TEST(AddressCidr, Parse) {
    Cidr c = cidr("10.0.0.0/8");
    EXPECT_EQ(c.family, AF_INET);
    EXPECT_EQ(c.prefix, 8);
    EXPECT_EQ(c.to_string(), "10.0.0.0/8");
    EXPECT_EQ(cidr("192.168.1.1").to_string(), "192.168.1.1/32");
    EXPECT_EQ(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
    EXPECT_EQ(cidr("::1").to_string(), "::1/128");
    EXPECT_EQ(cidr("fe80::/10").to_string(), "fe80::/10");
    EXPECT_EQ(cidr("::/0").to_string(), "::/0");
    EXPECT_EQ(cidr("172.16.0.0/12").prefix, 12);
    EXPECT_EQ(cidr("::1").family, AF_INET6);
}

TEST(AddressCidr, HostBitsSet) {
    std::string error;
    EXPECT_FALSE(parse_cidr("10.1.0.0/8", error));
    EXPECT_EQ(error, "\"10.1.0.0/8\" has host bits set");
    EXPECT_FALSE(parse_cidr("172.17.0.0/12", error));
    EXPECT_EQ(error, "\"172.17.0.0/12\" has host bits set");
    EXPECT_FALSE(parse_cidr("::1/127", error));
    EXPECT_EQ(error, "\"::1/127\" has host bits set");
    EXPECT_FALSE(parse_cidr("fe80::1/10", error));
}

TEST(AddressCidr, BadPrefix) {
    std::string error;
    for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                            "10.0.0.0/0008", "::/129", "::/1280"}) {
        error.clear();
        EXPECT_FALSE(parse_cidr(bad, error)) << bad;
        EXPECT_EQ(error, "bad prefix length in \"" + std::string(bad) + "\"");
    }
}

TEST(AddressCidr, NotAnAddress) {
    std::string error;
    EXPECT_FALSE(parse_cidr("localhost/8", error));
    EXPECT_EQ(error, "\"localhost/8\" is not an IP address or CIDR range");
    EXPECT_FALSE(parse_cidr("10/8", error));
    EXPECT_EQ(error, "\"10/8\" is not an IP address or CIDR range");
    EXPECT_FALSE(parse_cidr("", error));
}

TEST(AddressCidr, Contains) {
    Cidr ten = cidr("10.0.0.0/8");
    EXPECT_TRUE(ten.contains(numeric("10.0.0.0")));
    EXPECT_TRUE(ten.contains(numeric("10.255.255.255")));
    EXPECT_FALSE(ten.contains(numeric("11.0.0.0")));
    EXPECT_FALSE(ten.contains(numeric("9.255.255.255")));
    Cidr odd = cidr("172.16.0.0/12");
    EXPECT_TRUE(odd.contains(numeric("172.31.255.255")));
    EXPECT_FALSE(odd.contains(numeric("172.32.0.0")));
    EXPECT_FALSE(odd.contains(numeric("172.15.255.255")));
    Cidr one = cidr("192.0.2.7");
    EXPECT_TRUE(one.contains(numeric("192.0.2.7", 5555)));
    EXPECT_FALSE(one.contains(numeric("192.0.2.8")));
    EXPECT_TRUE(cidr("0.0.0.0/0").contains(numeric("8.8.8.8")));
    Cidr v6 = cidr("2001:db8::/32");
    EXPECT_TRUE(v6.contains(numeric("2001:db8:ffff::1")));
    EXPECT_FALSE(v6.contains(numeric("2001:db9::1")));
    EXPECT_TRUE(cidr("::1").contains(numeric("::1")));
    EXPECT_FALSE(cidr("::1").contains(numeric("::2")));
}

TEST(AddressCidr, Ipv4RangeMatchesIpv4MappedClient) {
    // A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d.
    EXPECT_TRUE(cidr("127.0.0.0/8").contains(numeric("::ffff:127.0.0.1")));
    EXPECT_TRUE(cidr("10.0.0.0/8").contains(numeric("::ffff:10.9.8.7")));
    EXPECT_FALSE(cidr("10.0.0.0/8").contains(numeric("::ffff:11.0.0.1")));
    // Only the mapped form: v4-compatible and other IPv6 addresses don't match.
    EXPECT_FALSE(cidr("127.0.0.0/8").contains(numeric("::127.0.0.1")));
    EXPECT_FALSE(cidr("0.0.0.0/0").contains(numeric("::1")));
    // An IPv6 range never matches an IPv4 address.
    EXPECT_FALSE(cidr("::/0").contains(numeric("127.0.0.1")));
}

// --- port ranges ----------------------------------------------------------

TEST(AddressPortRange, Parse) {
    std::string error;
    auto single = parse_port_range("443", error);
    ASSERT_TRUE(single) << error;
    EXPECT_EQ(single->first, 443);
    EXPECT_EQ(single->last, 443);
    auto all = parse_port_range("1-65535", error);
    ASSERT_TRUE(all) << error;
    EXPECT_EQ(all->first, 1);
    EXPECT_EQ(all->last, 65535);
    auto same = parse_port_range("8080-8080", error);
    ASSERT_TRUE(same) << error;
    EXPECT_EQ(same->first, 8080);
    EXPECT_EQ(same->last, 8080);
}

TEST(AddressPortRange, Errors) {
    for (const char* bad :
         {"0", "70000", "9-3", "0-10", "1-70000", "", "-", "1-", "-5", "a-b", "1-2-3", " 443"}) {
        std::string error;
        EXPECT_FALSE(parse_port_range(bad, error)) << '"' << bad << '"';
        EXPECT_EQ(error, "\"" + std::string(bad) + "\" is not a port or port range (1-65535)");
    }
}

TEST(AddressPortRange, PortAllowed) {
    std::vector<PortRange> ranges{{443, 443}, {8000, 8080}};
    EXPECT_TRUE(port_allowed(ranges, 443));
    EXPECT_FALSE(port_allowed(ranges, 442));
    EXPECT_FALSE(port_allowed(ranges, 444));
    EXPECT_TRUE(port_allowed(ranges, 8000));
    EXPECT_TRUE(port_allowed(ranges, 8042));
    EXPECT_TRUE(port_allowed(ranges, 8080));
    EXPECT_FALSE(port_allowed(ranges, 7999));
    EXPECT_FALSE(port_allowed(ranges, 8081));
    EXPECT_FALSE(port_allowed({}, 443));
    EXPECT_TRUE(port_allowed({{1, 65535}}, 65535));
}

TEST(AddressAcl, AddressAllowed) {
    std::vector<Cidr> ranges{cidr("127.0.0.0/8"), cidr("::1")};
    EXPECT_TRUE(address_allowed(ranges, numeric("127.0.0.1")));
    EXPECT_TRUE(address_allowed(ranges, numeric("127.255.0.9")));
    EXPECT_TRUE(address_allowed(ranges, numeric("::1")));
    EXPECT_TRUE(address_allowed(ranges, numeric("::ffff:127.0.0.1")));
    EXPECT_FALSE(address_allowed(ranges, numeric("10.0.0.1")));
    EXPECT_FALSE(address_allowed(ranges, numeric("::2")));
    EXPECT_FALSE(address_allowed(ranges, numeric("::ffff:10.0.0.1")));
    EXPECT_FALSE(address_allowed({}, numeric("127.0.0.1")));
}

// --- is_private_destination -----------------------------------------------

TEST(AddressPrivate, Ipv4Ranges) {
    for (const char* host : {
             "0.0.0.0",      "0.1.2.3",          // this network
             "10.0.0.1",     "10.255.255.255",   // RFC 1918
             "100.64.0.1",   "100.127.255.255",  // CGNAT
             "127.0.0.1",    "127.255.255.254",  // loopback
             "169.254.1.1",  "169.254.169.254",  // link-local, cloud metadata
             "172.16.0.1",   "172.31.255.255",   // RFC 1918
             "192.0.0.1",    "192.0.0.255",      // IETF protocol assignments
             "192.0.2.1",                        // TEST-NET-1
             "192.88.99.1",                      // 6to4 relay anycast
             "192.168.0.1",  "192.168.255.255",  // RFC 1918
             "198.18.0.1",   "198.19.255.255",   // benchmarking
             "198.51.100.1",                     // TEST-NET-2
             "203.0.113.1",                      // TEST-NET-3
             "224.0.0.1",    "239.255.255.250",  // multicast
             "240.0.0.1",    "255.255.255.255",  // reserved, broadcast
         }) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressPrivate, Ipv4PublicNeighbours) {
    for (const char* host :
         {"8.8.8.8",         "1.1.1.1",         "1.0.0.0",        "9.255.255.255",
          "11.0.0.0",        "100.63.255.255",  "100.128.0.0",    "126.255.255.255",
          "128.0.0.0",       "169.253.255.255", "169.255.0.0",    "172.15.255.255",
          "172.32.0.0",      "192.0.1.1",       "192.0.3.1",      "192.88.98.1",
          "192.167.255.255", "192.169.0.0",     "198.17.255.255", "198.20.0.0",
          "198.51.99.1",     "203.0.112.1",     "223.255.255.255"}) {
        EXPECT_FALSE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressPrivate, Ipv6Ranges) {
    for (const char* host : {
             "::",                // unspecified
             "::1",               // loopback
             "::ffff:127.0.0.1",  // IPv4-mapped loopback
             "::ffff:10.0.0.1",   // IPv4-mapped RFC 1918
             "::ffff:169.254.169.254",
             "::ffff:0.0.0.0",
             "::127.0.0.1",          // IPv4-compatible (deprecated)
             "64:ff9b::7f00:1",      // NAT64 of 127.0.0.1
             "64:ff9b::a00:1",       // NAT64 of 10.0.0.1
             "64:ff9b:1::1",         // local-use NAT64
             "2002:7f00:1::",        // 6to4 of 127.0.0.1
             "2002:a00:1::1",        // 6to4 of 10.0.0.1
             "2002:c0a8:101::",      // 6to4 of 192.168.1.1
             "100::1",               // discard-only
             "2001::1",              // Teredo
             "2001:0:4136:e378::1",  // Teredo
             "2001:2::1",            // benchmarking
             "2001:10::1",           // ORCHID
             "2001:db8::1",          // documentation
             "fc00::1",
             "fd12:3456::1",
             "fdff:ffff::1",  // unique local
             "fe80::1",
             "febf::1",  // link-local
             "fec0::1",  // site-local
             "ff02::1",
             "ff0e::1",  // multicast
         }) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressPrivate, PublicDestinations) {
    for (const char* host :
         {"8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1", "2001:db9::1", "2001:1::1"}) {
        EXPECT_FALSE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressPrivate, UnknownFamilyIsPrivate) {
    SocketAddress none;  // AF_UNSPEC
    EXPECT_TRUE(is_private_destination(none));
}

// --- IPv6 forms that carry an IPv4 address -----------------------------------
//
// Each form is judged by the IPv4 address a translator or tunnel would reach,
// so a private IPv4 address cannot be reached by spelling it in IPv6.

TEST(AddressEmbeddedIpv4, TranslatedFormJudgesItsIpv4) {
    // ::ffff:0:a.b.c.d, RFC 2765 (SIIT).
    for (const char* host :
         {"::ffff:0:127.0.0.1", "::ffff:0:7f00:1", "::ffff:0:10.0.0.1", "::ffff:0:192.168.1.1",
          "::ffff:0:169.254.169.254", "0:0:0:0:ffff:0:a9fe:a9fe", "::ffff:0:0.0.0.0"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
    EXPECT_FALSE(is_private_destination(numeric("::ffff:0:8.8.8.8")));
}

TEST(AddressEmbeddedIpv4, MappedFormJudgesItsIpv4) {
    for (const char* host : {"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:172.16.0.1",
                             "::ffff:100.64.0.1", "0:0:0:0:0:ffff:c0a8:1"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
    EXPECT_FALSE(is_private_destination(numeric("::ffff:1.1.1.1")));
}

TEST(AddressEmbeddedIpv4, CompatibleFormIsRefusedWhole) {
    // ::a.b.c.d is deprecated (RFC 4291) and Linux's sit0 still tunnels it:
    // refused whatever it embeds.
    for (const char* host : {"::127.0.0.1", "::10.0.0.1", "::8.8.8.8", "::1.1.1.1"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressEmbeddedIpv4, Nat64WellKnownPrefixJudgesItsIpv4) {
    // 64:ff9b::/96, RFC 6052: the IPv4 address is the last 32 bits.
    for (const char* host :
         {"64:ff9b::127.0.0.1", "64:ff9b::10.1.2.3", "64:ff9b::c0a8:101",
          "64:ff9b::169.254.169.254", "64:ff9b::100.64.0.1", "64:ff9b::224.0.0.1"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
    for (const char* host : {"64:ff9b::8.8.8.8", "64:ff9b::1.1.1.1"}) {
        EXPECT_FALSE(is_private_destination(numeric(host))) << host;
    }
    // Outside the /96 the prefix is no NAT64 address: an ordinary address.
    EXPECT_FALSE(is_private_destination(numeric("64:ff9b:0:1::7f00:1")));
}

TEST(AddressEmbeddedIpv4, Nat64LocalUsePrefixIsRefusedWhole) {
    // 64:ff9b:1::/48, RFC 8215: not globally reachable, and where the IPv4
    // address sits depends on the prefix length the operator chose.
    for (const char* host : {"64:ff9b:1::8.8.8.8", "64:ff9b:1::127.0.0.1",
                             "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1:0:808:808::"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
    EXPECT_FALSE(is_private_destination(numeric("64:ff9b:2::8.8.8.8")));
}

TEST(AddressEmbeddedIpv4, SixToFourJudgesItsIpv4) {
    // 2002:AABB:CCDD::/48, RFC 3056: the IPv4 address is bits 16-47.
    for (const char* host : {"2002:7f00:1::", "2002:7f00:1:ffff::1", "2002:a00:1::1",
                             "2002:ac10:1::", "2002:a9fe:a9fe::", "2002:6440:1::",
                             "2002:c058:6301::" /* 6to4 relay anycast itself */, "2002::"}) {
        EXPECT_TRUE(is_private_destination(numeric(host))) << host;
    }
    for (const char* host : {"2002:808:808::1", "2002:101:101:1::1"}) {
        EXPECT_FALSE(is_private_destination(numeric(host))) << host;
    }
}

TEST(AddressEmbeddedIpv4, TeredoJudgesServerAndClient) {
    // 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, RFC 4380: the server's IPv4 is
    // bits 32-63, the client's the last 32 bits inverted. A private one of
    // either refuses.
    // Client 127.0.0.1 (inverted: 80ff:fffe), public server 65.54.227.120.
    EXPECT_TRUE(is_private_destination(numeric("2001:0:4136:e378:8000:63bf:80ff:fffe")));
    // Client 10.0.0.1 (f5ff:fffe), client 192.168.1.1 (3f57:fefe).
    EXPECT_TRUE(is_private_destination(numeric("2001:0:4136:e378:8000:63bf:f5ff:fffe")));
    EXPECT_TRUE(is_private_destination(numeric("2001:0:4136:e378:8000:63bf:3f57:fefe")));
    // Server 127.0.0.1 or 10.0.0.1, public client 8.8.8.8 (f7f7:f7f7).
    EXPECT_TRUE(is_private_destination(numeric("2001:0:7f00:1:8000:63bf:f7f7:f7f7")));
    EXPECT_TRUE(is_private_destination(numeric("2001:0:a00:1:8000:63bf:f7f7:f7f7")));
    // Both public: a Teredo host on the Internet.
    EXPECT_FALSE(is_private_destination(numeric("2001:0:4136:e378:8000:63bf:f7f7:f7f7")));
    // Not inverted, the client 8.8.8.8 would read 247.247.247.247 (reserved).
    EXPECT_TRUE(is_private_destination(numeric("2001:0:4136:e378:8000:63bf:808:808")));
}

TEST(AddressEmbeddedIpv4, OtherIpv6IsNotReadAsIpv4) {
    // An interface identifier that happens to hold the bytes of 127.0.0.1,
    // and an ISATAP identifier (RFC 5214: ::5efe:a.b.c.d under any prefix,
    // where a private IPv4 address is the usual case and is reached only from
    // the same ISATAP link), are ordinary global addresses.
    for (const char* host : {"2606:4700::7f00:1", "2606:4700::5efe:10.0.0.1",
                             "2606:4700::200:5efe:127.0.0.1", "2001:4860::ffff:0:7f00:1"}) {
        EXPECT_FALSE(is_private_destination(numeric(host))) << host;
    }
}

}  // namespace
}  // namespace common
