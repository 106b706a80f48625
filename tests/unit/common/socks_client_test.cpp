// Unit tests for common/socks_client: byte-exact client messages (RFC 1928,
// RFC 1929), each answer parser whole, byte by byte and with bytes after it,
// every malformed field, and the reply texts.
#include "common/socks_client.h"

#include <gtest/gtest.h>

#include <string>

namespace common::socks {
namespace {

using namespace std::string_literals;

// Every strict prefix of `message` must need more.
template <typename Parse>
void expect_needs_more_until_whole(const std::string& message, Parse parse) {
    for (size_t n = 0; n < message.size(); ++n) {
        EXPECT_EQ(parse(std::string_view(message).substr(0, n)).status, ParseStatus::kNeedMore)
            << "prefix of " << n << " bytes";
    }
}

template <typename M>
ParseError error_of(const Result<M>& r) {
    EXPECT_EQ(r.status, ParseStatus::kError);
    EXPECT_EQ(r.consumed, 0u);
    return r.error;
}

// --- greeting and method selection --------------------------------------------

TEST(SocksClientGreeting, OffersNoAuthAloneOrWithPassword) {
    EXPECT_EQ(build_greeting(false), "\x05\x01\x00"s);
    EXPECT_EQ(build_greeting(true), "\x05\x02\x00\x02"s);
}

TEST(SocksClientGreeting, GreetingParsesOnTheServerSide) {
    const std::string greeting = build_greeting(true);
    const auto r = parse_greeting(greeting);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, greeting.size());
    EXPECT_TRUE(r.message.offers_no_auth);
    EXPECT_TRUE(r.message.offers_username_password);
}

TEST(SocksClientMethod, ReturnsTheChosenMethod) {
    expect_needs_more_until_whole("\x05\x02"s, parse_method_selection);
    for (uint8_t method : {kMethodNoAuth, kMethodUsernamePassword, kMethodNoAcceptable,
                           static_cast<uint8_t>(0x80)}) {
        const auto r = parse_method_selection("\x05"s + static_cast<char>(method) + "tail");
        ASSERT_EQ(r.status, ParseStatus::kComplete);
        EXPECT_EQ(r.consumed, 2u);
        EXPECT_EQ(r.message, method);
    }
}

TEST(SocksClientMethod, RejectsOtherVersionsAtOnce) {
    EXPECT_EQ(error_of(parse_method_selection("\x04"s)), ParseError::kBadVersion);
    EXPECT_EQ(error_of(parse_method_selection("\x01\x00"s)), ParseError::kBadVersion);
    EXPECT_EQ(error_of(parse_method_selection("HTTP/1.1 400"s)), ParseError::kBadVersion);
}

// --- RFC 1929 -----------------------------------------------------------------

TEST(SocksClientPassword, RequestIsByteExact) {
    EXPECT_EQ(build_password_request("alice", "p:w"), "\x01\x05"s + "alice" + "\x03" + "p:w");
}

TEST(SocksClientPassword, RequestParsesOnTheServerSide) {
    const std::string user(255, 'u');
    const std::string password = "\x01\xff:@ \x7f"s;
    const auto request = build_password_request(user, password);
    ASSERT_TRUE(request);
    const auto r = parse_credentials(*request);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, request->size());
    EXPECT_EQ(r.message.username, user);
    EXPECT_EQ(r.message.password, password);
}

TEST(SocksClientPassword, RefusesFieldsTheProtocolCannotCarry) {
    EXPECT_FALSE(build_password_request("", "p"));
    EXPECT_FALSE(build_password_request("u", ""));
    EXPECT_FALSE(build_password_request(std::string(256, 'u'), "p"));
    EXPECT_FALSE(build_password_request("u", std::string(256, 'p')));
}

TEST(SocksClientPassword, ReplySuccessOnlyForStatusZero) {
    expect_needs_more_until_whole("\x01\x00"s, parse_password_reply);
    const auto ok = parse_password_reply("\x01\x00"s);
    ASSERT_EQ(ok.status, ParseStatus::kComplete);
    EXPECT_EQ(ok.consumed, 2u);
    EXPECT_TRUE(ok.message);
    for (char status : {'\x01', '\x02', '\xff'}) {
        const auto refused = parse_password_reply("\x01"s + status);
        ASSERT_EQ(refused.status, ParseStatus::kComplete);
        EXPECT_FALSE(refused.message);
    }
}

TEST(SocksClientPassword, ReplyVersionMustBeOne) {
    EXPECT_EQ(error_of(parse_password_reply("\x05\x00"s)), ParseError::kBadAuthVersion);
    EXPECT_EQ(error_of(parse_password_reply("\x00"s)), ParseError::kBadAuthVersion);
}

// --- CONNECT ------------------------------------------------------------------

TEST(SocksClientConnect, NameIsAtyp3) {
    EXPECT_EQ(build_connect_request("example.com", 443, false),
              "\x05\x01\x00\x03\x0b"s + "example.com" + "\x01\xbb");
}

TEST(SocksClientConnect, Ipv4LiteralIsAtyp1) {
    EXPECT_EQ(build_connect_request("192.0.2.7", 80, true),
              "\x05\x01\x00\x01\xc0\x00\x02\x07\x00\x50"s);
}

TEST(SocksClientConnect, Ipv6LiteralIsAtyp4) {
    EXPECT_EQ(build_connect_request("2001:db8::1", 65535, true),
              "\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
              "\xff\xff"s);
}

TEST(SocksClientConnect, RequestParsesOnTheServerSide) {
    const std::string name(255, 'a');
    const auto request = build_connect_request(name, 8080, false);
    ASSERT_TRUE(request);
    const auto r = parse_request(*request);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, request->size());
    EXPECT_EQ(r.message.command, Command::kConnect);
    EXPECT_EQ(r.message.destination.host, name);
    EXPECT_EQ(r.message.destination.port, 8080);
}

TEST(SocksClientConnect, RefusesWhatCannotBeSent) {
    EXPECT_FALSE(build_connect_request("", 80, false));
    EXPECT_FALSE(build_connect_request(std::string(256, 'a'), 80, false));
    EXPECT_FALSE(build_connect_request("example.com", 0, false));
    EXPECT_FALSE(build_connect_request("example.com", 80, true));
    EXPECT_FALSE(build_connect_request("[::1]", 80, true));  // brackets are not the literal
}

TEST(SocksClientReply, Ipv4ReplyIsTenBytesAndLeavesTheTunnelsBytes) {
    const std::string reply = "\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90"s;
    expect_needs_more_until_whole(reply, parse_connect_reply);
    const auto r = parse_connect_reply(reply + "HTTP/1.1 200 OK\r\n");
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 10u);
    EXPECT_EQ(r.message.rep, kRepSucceeded);
}

TEST(SocksClientReply, Ipv6ReplyIsTwentyTwoBytes) {
    const std::string reply = "\x05\x05\x00\x04"s + std::string(16, '\0') + "\x00\x00"s;
    expect_needs_more_until_whole(reply, parse_connect_reply);
    const auto r = parse_connect_reply(reply + "x");
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 22u);
    EXPECT_EQ(r.message.rep, kRepConnectionRefused);
}

TEST(SocksClientReply, NameReplyLengthFollowsItsLengthByte) {
    const std::string reply = "\x05\x04\x00\x03\x09"s + "localhost" + "\x00\x50"s;
    expect_needs_more_until_whole(reply, parse_connect_reply);
    const auto r = parse_connect_reply(reply);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, reply.size());
    EXPECT_EQ(r.message.rep, kRepHostUnreachable);
    // BND.ADDR is not judged: an empty name is only a length byte of 0.
    const auto empty = parse_connect_reply("\x05\x00\x00\x03\x00\x00\x00"s);
    ASSERT_EQ(empty.status, ParseStatus::kComplete);
    EXPECT_EQ(empty.consumed, 7u);
}

TEST(SocksClientReply, LongestReplyNeedsNothingMore) {
    const std::string reply = "\x05\x00\x00\x03\xff"s + std::string(255, 'n') + "\x00\x01"s;
    ASSERT_EQ(reply.size(), kMaxConnectReplySize);
    const auto r = parse_connect_reply(reply);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, kMaxConnectReplySize);
}

TEST(SocksClientReply, MalformedFieldsFailAsSoonAsTheyArrive) {
    EXPECT_EQ(error_of(parse_connect_reply("\x04"s)), ParseError::kBadVersion);
    EXPECT_EQ(error_of(parse_connect_reply("\x00\x5a"s)), ParseError::kBadVersion);
    EXPECT_EQ(error_of(parse_connect_reply("\x05\x00\x01"s)), ParseError::kBadReserved);
    EXPECT_EQ(error_of(parse_connect_reply("\x05\x00\x00\x00"s)), ParseError::kUnknownAddressType);
    EXPECT_EQ(error_of(parse_connect_reply("\x05\x00\x00\x02"s)), ParseError::kUnknownAddressType);
    EXPECT_EQ(error_of(parse_connect_reply("\x05\x00\x00\x05"s)), ParseError::kUnknownAddressType);
}

TEST(SocksClientReply, ServerEncodedRepliesParseBack) {
    for (const char* host : {"192.0.2.1", "2001:db8::2"}) {
        std::string reply;
        encode_reply(kRepTtlExpired, *SocketAddress::from_numeric(host, 1080), reply);
        const auto r = parse_connect_reply(reply);
        ASSERT_EQ(r.status, ParseStatus::kComplete) << host;
        EXPECT_EQ(r.consumed, reply.size());
        EXPECT_EQ(r.message.rep, kRepTtlExpired);
    }
}

TEST(SocksClientReply, Descriptions) {
    EXPECT_EQ(describe_socks_reply(0), "succeeded");
    EXPECT_EQ(describe_socks_reply(1), "general failure");
    EXPECT_EQ(describe_socks_reply(2), "connection not allowed by ruleset");
    EXPECT_EQ(describe_socks_reply(3), "network unreachable");
    EXPECT_EQ(describe_socks_reply(4), "host unreachable");
    EXPECT_EQ(describe_socks_reply(5), "connection refused");
    EXPECT_EQ(describe_socks_reply(6), "TTL expired");
    EXPECT_EQ(describe_socks_reply(7), "command not supported");
    EXPECT_EQ(describe_socks_reply(8), "address type not supported");
    EXPECT_EQ(describe_socks_reply(9), "unassigned reply 9");
    EXPECT_EQ(describe_socks_reply(255), "unassigned reply 255");
}

}  // namespace
}  // namespace common::socks
