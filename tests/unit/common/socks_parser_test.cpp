// Unit tests for common/socks_parser: one named test per rule of RFC 1928,
// RFC 1929 and SOCKS4/4a, incremental (byte at a time) input, and byte-exact
// reply encodings.
#include "common/socks_parser.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace common::socks {
namespace {

using namespace std::string_literals;

// Feeds `message` one byte at a time, as a session would on a slow client:
// every strict prefix must need more, and the whole must give `whole`.
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

SocketAddress v4(const char* host, uint16_t port) {
    return *SocketAddress::from_numeric(host, port);
}

// SOCKS5 request bytes for a domain destination.
std::string domain_request(const std::string& name, uint16_t port = 443, uint8_t cmd = 1) {
    std::string s = "\x05"s + static_cast<char>(cmd) + "\x00\x03"s;
    s.push_back(static_cast<char>(name.size()));
    s += name;
    s.push_back(static_cast<char>(port >> 8));
    s.push_back(static_cast<char>(port & 0xff));
    return s;
}

// SOCKS4 request bytes: VN CD PORT IP USERID NUL [HOST NUL].
std::string socks4_request(uint8_t cd, uint16_t port, const std::string& ip,
                           const std::string& user, const std::string* host = nullptr) {
    std::string s = "\x04"s + static_cast<char>(cd);
    s.push_back(static_cast<char>(port >> 8));
    s.push_back(static_cast<char>(port & 0xff));
    s += ip + user + '\0';
    if (host) s += *host + '\0';
    return s;
}

// --- protocol detection -------------------------------------------------------

TEST(SocksDetect, NeedsFirstByte) {
    EXPECT_EQ(detect_version("").status, ParseStatus::kNeedMore);
}

TEST(SocksDetect, TellsSocks4AndSocks5Apart) {
    const auto r4 = detect_version("\x04\x01"s);
    ASSERT_EQ(r4.status, ParseStatus::kComplete);
    EXPECT_EQ(r4.message, Version::kSocks4);
    EXPECT_EQ(r4.consumed, 0u);
    const auto r5 = detect_version("\x05"s);
    ASSERT_EQ(r5.status, ParseStatus::kComplete);
    EXPECT_EQ(r5.message, Version::kSocks5);
    EXPECT_EQ(r5.consumed, 0u);
}

TEST(SocksDetect, RejectsOtherFirstBytes) {
    EXPECT_EQ(error_of(detect_version("GET / HTTP/1.1\r\n")), ParseError::kUnknownProtocol);
    EXPECT_EQ(error_of(detect_version("\x16\x03\x01"s)), ParseError::kUnknownProtocol);
    EXPECT_EQ(error_of(detect_version("\x00"s)), ParseError::kUnknownProtocol);
    EXPECT_EQ(error_of(detect_version("\x06"s)), ParseError::kUnknownProtocol);
}

// --- SOCKS5 greeting ----------------------------------------------------------

TEST(Socks5Greeting, ParsesNoAuthOnly) {
    const std::string m = "\x05\x01\x00"s;  // the result's views point into it
    const auto r = parse_greeting(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 3u);
    EXPECT_TRUE(r.message.offers_no_auth);
    EXPECT_FALSE(r.message.offers_username_password);
    EXPECT_EQ(r.message.methods, "\x00"s);
}

TEST(Socks5Greeting, ParsesSeveralMethods) {
    const auto r = parse_greeting("\x05\x03\x00\x01\x02"s);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 5u);
    EXPECT_TRUE(r.message.offers_no_auth);
    EXPECT_TRUE(r.message.offers_username_password);
    EXPECT_EQ(r.message.methods.size(), 3u);
}

TEST(Socks5Greeting, ReportsUnknownMethodsOnly) {
    const auto r = parse_greeting("\x05\x02\x01\x80"s);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_FALSE(r.message.offers_no_auth);
    EXPECT_FALSE(r.message.offers_username_password);
}

TEST(Socks5Greeting, AcceptsAllMethodsListed) {
    std::string g = "\x05\xff"s;
    for (int i = 0; i < 255; ++i) g.push_back(static_cast<char>(i));
    const auto r = parse_greeting(g);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 257u);
}

TEST(Socks5Greeting, LeavesPipelinedBytes) {
    const std::string g = "\x05\x01\x02\x01\x01u\x01p"s;
    const auto r = parse_greeting(g);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 3u);
    EXPECT_EQ(parse_credentials(std::string_view(g).substr(r.consumed)).status,
              ParseStatus::kComplete);
}

TEST(Socks5Greeting, NeedsMoreByteAtATime) {
    expect_needs_more_until_whole("\x05\x02\x00\x02"s,
                                  [](std::string_view s) { return parse_greeting(s); });
}

TEST(Socks5Greeting, RejectsZeroMethods) {
    EXPECT_EQ(error_of(parse_greeting("\x05\x00"s)), ParseError::kNoMethods);
}

TEST(Socks5Greeting, RejectsBadVersion) {
    EXPECT_EQ(error_of(parse_greeting("\x04\x01\x00"s)), ParseError::kBadVersion);
    EXPECT_EQ(error_of(parse_greeting("\x00"s)), ParseError::kBadVersion);
}

TEST(Socks5Greeting, ChoosesMethod) {
    const auto both = parse_greeting("\x05\x02\x00\x02"s).message;
    EXPECT_EQ(choose_method(both, false), kMethodNoAuth);
    EXPECT_EQ(choose_method(both, true), kMethodUsernamePassword);
    const auto none = parse_greeting("\x05\x01\x00"s).message;
    EXPECT_EQ(choose_method(none, true), kMethodNoAcceptable);
    const auto pass = parse_greeting("\x05\x01\x02"s).message;
    EXPECT_EQ(choose_method(pass, false), kMethodNoAcceptable);
}

// --- RFC 1929 username/password -----------------------------------------------

TEST(Socks5Credentials, ParsesUserAndPassword) {
    const std::string m =
        "\x01\x05"
        "alice"
        "\x06"
        "s3cr\x00t"s;
    const auto r = parse_credentials(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, m.size());
    EXPECT_EQ(r.message.username, "alice");
    EXPECT_EQ(r.message.password, "s3cr\x00t"s);
}

TEST(Socks5Credentials, ParsesMaximumLengths) {
    const std::string m = "\x01\xff"s + std::string(255, 'u') + "\xff"s + std::string(255, 'p');
    const auto r = parse_credentials(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 2u + 255u + 1u + 255u);
    EXPECT_EQ(r.message.username.size(), 255u);
    EXPECT_EQ(r.message.password.size(), 255u);
}

TEST(Socks5Credentials, NeedsMoreByteAtATime) {
    expect_needs_more_until_whole(
        "\x01\x03"
        "bob"
        "\x02"
        "pw"s,
        [](std::string_view s) { return parse_credentials(s); });
}

TEST(Socks5Credentials, RejectsBadVersion) {
    EXPECT_EQ(error_of(parse_credentials("\x05\x01u\x01p"s)), ParseError::kBadAuthVersion);
}

TEST(Socks5Credentials, RejectsEmptyUsername) {
    EXPECT_EQ(error_of(parse_credentials("\x01\x00"s)), ParseError::kEmptyUsername);
}

TEST(Socks5Credentials, RejectsEmptyPassword) {
    EXPECT_EQ(error_of(parse_credentials("\x01\x01u\x00"s)), ParseError::kEmptyPassword);
}

// --- SOCKS5 request -----------------------------------------------------------

TEST(Socks5Request, ParsesIpv4Connect) {
    const std::string m = "\x05\x01\x00\x01\xc0\x00\x02\x01\x01\xbb"s;
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 10u);
    EXPECT_EQ(r.message.command, Command::kConnect);
    EXPECT_FALSE(r.message.destination.is_name());
    EXPECT_EQ(r.message.destination.port, 443);
    EXPECT_EQ(r.message.destination.address, v4("192.0.2.1", 443));
    EXPECT_EQ(r.message.destination.address.length, sizeof(sockaddr_in));
}

TEST(Socks5Request, ParsesIpv6Connect) {
    const std::string m =
        "\x05\x01\x00\x04"s + "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s + "\x00\x50"s;
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 22u);
    const Destination& d = r.message.destination;
    EXPECT_FALSE(d.is_name());
    EXPECT_EQ(d.port, 80);
    EXPECT_EQ(d.address, *SocketAddress::from_numeric("2001:db8::1", 80));
    EXPECT_EQ(d.address.length, sizeof(sockaddr_in6));
    EXPECT_EQ(d.address.to_string(), "[2001:db8::1]:80");
}

TEST(Socks5Request, ParsesDomainConnect) {
    const std::string m = domain_request("example.com", 443);
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, m.size());
    const Destination& d = r.message.destination;
    EXPECT_TRUE(d.is_name());
    EXPECT_EQ(d.host, "example.com");
    EXPECT_EQ(d.port, 443);
    EXPECT_EQ(d.address.family(), AF_UNSPEC);
    EXPECT_GE(d.host.data(), m.data());
    EXPECT_LE(d.host.data() + d.host.size(), m.data() + m.size());
}

TEST(Socks5Request, AcceptsAllHostNameCharacters) {
    const std::string name = "Az09-._.example.";
    const std::string m = domain_request(name);  // the result's views point into it
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.message.destination.host, name);
}

TEST(Socks5Request, AcceptsLongestDomain) {
    const std::string name(255, 'a');
    const std::string m = domain_request(name);
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 4u + 1u + 255u + 2u);
    EXPECT_EQ(r.message.destination.host.size(), 255u);
}

TEST(Socks5Request, ReportsBindAndUdpAssociate) {
    const auto bind = parse_request(domain_request("a", 1, 2));
    ASSERT_EQ(bind.status, ParseStatus::kComplete);
    EXPECT_EQ(bind.message.command, Command::kBind);
    const auto udp = parse_request(domain_request("a", 1, 3));
    ASSERT_EQ(udp.status, ParseStatus::kComplete);
    EXPECT_EQ(udp.message.command, Command::kUdpAssociate);
}

TEST(Socks5Request, AcceptsHighestPort) {
    const auto r = parse_request("\x05\x01\x00\x01\x7f\x00\x00\x01\xff\xff"s);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.message.destination.port, 65535);
    EXPECT_EQ(r.message.destination.address.port(), 65535);
}

TEST(Socks5Request, LeavesPipelinedBytes) {
    const std::string m = domain_request("example.com") + "GET / HTTP/1.1\r\n";
    const auto r = parse_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, domain_request("example.com").size());
}

TEST(Socks5Request, NeedsMoreByteAtATimeForEachAddressType) {
    const auto parse = [](std::string_view s) { return parse_request(s); };
    expect_needs_more_until_whole("\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x16"s, parse);
    expect_needs_more_until_whole("\x05\x01\x00\x04"s + std::string(15, '\0') + "\x01\x00\x16"s,
                                  parse);
    expect_needs_more_until_whole(domain_request("proxy.example.org"), parse);
}

TEST(Socks5Request, ByteAtATimeGivesSameResultAsWhole) {
    const std::string m = domain_request("host_1.example", 8080, 1);
    const auto whole = parse_request(m);
    ASSERT_EQ(whole.status, ParseStatus::kComplete);
    std::string buffer;
    Result<Request> r;
    for (char c : m) {
        ASSERT_NE(r.status, ParseStatus::kComplete);
        buffer.push_back(c);
        r = parse_request(buffer);
    }
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, whole.consumed);
    EXPECT_EQ(r.message.command, whole.message.command);
    EXPECT_EQ(r.message.destination.host, whole.message.destination.host);
    EXPECT_EQ(r.message.destination.port, whole.message.destination.port);
}

TEST(Socks5Request, RejectsBadVersion) {
    EXPECT_EQ(error_of(parse_request("\x04\x01\x00\x01"s)), ParseError::kBadVersion);
}

TEST(Socks5Request, RejectsUnknownCommandWithRep07) {
    for (char cmd : {'\x00', '\x04', '\xff'}) {
        const auto r = parse_request("\x05"s + cmd + "\x00\x01\x01\x02\x03\x04\x00\x50"s);
        EXPECT_EQ(error_of(r), ParseError::kUnknownCommand);
        EXPECT_EQ(reply_code(r.error), kRepCommandNotSupported);
    }
    // Judged as soon as the byte arrives.
    EXPECT_EQ(error_of(parse_request("\x05\x09"s)), ParseError::kUnknownCommand);
}

TEST(Socks5Request, RejectsNonZeroReserved) {
    const auto r = parse_request("\x05\x01\x01\x01\x01\x02\x03\x04\x00\x50"s);
    EXPECT_EQ(error_of(r), ParseError::kBadReserved);
    EXPECT_EQ(reply_code(r.error), kRepGeneralFailure);
}

TEST(Socks5Request, RejectsUnknownAddressTypeWithRep08) {
    for (char atyp : {'\x00', '\x02', '\x05', '\xff'}) {
        const auto r = parse_request("\x05\x01\x00"s + atyp);
        EXPECT_EQ(error_of(r), ParseError::kUnknownAddressType);
        EXPECT_EQ(reply_code(r.error), kRepAddressTypeNotSupported);
    }
}

TEST(Socks5Request, RejectsZeroLengthDomain) {
    EXPECT_EQ(error_of(parse_request("\x05\x01\x00\x03\x00\x00\x50"s)), ParseError::kEmptyHost);
}

TEST(Socks5Request, RejectsNulInsideDomain) {
    EXPECT_EQ(error_of(parse_request(domain_request("evil.com\0.good.com"s))),
              ParseError::kNulInHost);
    EXPECT_EQ(error_of(parse_request(domain_request("\0"s))), ParseError::kNulInHost);
}

TEST(Socks5Request, RejectsBadCharactersInDomain) {
    for (const std::string name :
         {"a b", "a/b", "a:80", "%2e", "a@b", "[::1]", "a\r\nb", "caf\xc3\xa9", "a\x7f", "a\tb"}) {
        EXPECT_EQ(error_of(parse_request(domain_request(name))), ParseError::kBadHostChar) << name;
    }
}

TEST(Socks5Request, RejectsBadDomainBeforeItEnds) {
    // The bad byte decides at once; the rest of the name never has to come.
    EXPECT_EQ(error_of(parse_request("\x05\x01\x00\x03\x20"
                                     "ab/"s)),
              ParseError::kBadHostChar);
    EXPECT_EQ(error_of(parse_request("\x05\x01\x00\x03\x20"
                                     "a\0"s)),
              ParseError::kNulInHost);
}

TEST(Socks5Request, RejectsPortZero) {
    EXPECT_EQ(error_of(parse_request("\x05\x01\x00\x01\x01\x02\x03\x04\x00\x00"s)),
              ParseError::kZeroPort);
    EXPECT_EQ(error_of(parse_request(domain_request("example.com", 0))), ParseError::kZeroPort);
    EXPECT_EQ(error_of(parse_request("\x05\x01\x00\x04"s + std::string(18, '\0'))),
              ParseError::kZeroPort);
}

// --- SOCKS4 / SOCKS4a ---------------------------------------------------------

TEST(Socks4Request, ParsesConnect) {
    const std::string m = socks4_request(1, 80, "\xc0\x00\x02\x07"s, "fred");
    const auto r = parse_socks4_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, m.size());
    EXPECT_EQ(r.message.command, Command::kConnect);
    EXPECT_EQ(r.message.user_id, "fred");
    EXPECT_FALSE(r.message.destination.is_name());
    EXPECT_EQ(r.message.destination.port, 80);
    EXPECT_EQ(r.message.destination.address, v4("192.0.2.7", 80));
}

TEST(Socks4Request, ParsesEmptyUserId) {
    const std::string m = socks4_request(1, 443, "\x0a\x00\x00\x01"s, "");
    const auto r = parse_socks4_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 9u);
    EXPECT_TRUE(r.message.user_id.empty());
}

TEST(Socks4Request, ReportsBind) {
    const auto r = parse_socks4_request(socks4_request(2, 21, "\x0a\x00\x00\x01"s, ""));
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.message.command, Command::kBind);
}

TEST(Socks4Request, ParsesSocks4a) {
    const std::string host = "www.example.com";
    const std::string m = socks4_request(1, 443, "\x00\x00\x00\x01"s, "u", &host);
    const auto r = parse_socks4_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, m.size());
    EXPECT_TRUE(r.message.destination.is_name());
    EXPECT_EQ(r.message.destination.host, host);
    EXPECT_EQ(r.message.destination.port, 443);
    EXPECT_EQ(r.message.destination.address.family(), AF_UNSPEC);
    EXPECT_EQ(r.message.user_id, "u");
}

TEST(Socks4Request, TreatsZeroAddressAsSocks4NotSocks4a) {
    // 0.0.0.0 is not the 4a marker: an address, for the ACL to refuse.
    const std::string m = socks4_request(1, 80, std::string(4, '\0'), "") + "host"s + '\0';
    const auto r = parse_socks4_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, 9u);
    EXPECT_FALSE(r.message.destination.is_name());
    EXPECT_EQ(r.message.destination.address, v4("0.0.0.0", 80));
}

TEST(Socks4Request, AcceptsLongestFields) {
    const std::string host(255, 'h');
    const std::string m = socks4_request(1, 80, "\x00\x00\x00\xff"s, std::string(255, 'u'), &host);
    EXPECT_EQ(m.size(), kMaxMessageSize);
    const auto r = parse_socks4_request(m);
    ASSERT_EQ(r.status, ParseStatus::kComplete);
    EXPECT_EQ(r.consumed, kMaxMessageSize);
    EXPECT_EQ(r.message.user_id.size(), 255u);
    EXPECT_EQ(r.message.destination.host.size(), 255u);
}

TEST(Socks4Request, NeedsMoreByteAtATime) {
    const auto parse = [](std::string_view s) { return parse_socks4_request(s); };
    expect_needs_more_until_whole(socks4_request(1, 80, "\x01\x02\x03\x04"s, "user"), parse);
    const std::string host = "a.b";
    expect_needs_more_until_whole(socks4_request(1, 80, "\x00\x00\x00\x09"s, "user", &host), parse);
}

TEST(Socks4Request, RejectsBadVersion) {
    EXPECT_EQ(error_of(parse_socks4_request("\x05\x01\x00\x50\x01\x02\x03\x04\x00"s)),
              ParseError::kBadVersion);
}

TEST(Socks4Request, RejectsUnknownCommand) {
    EXPECT_EQ(error_of(parse_socks4_request(socks4_request(3, 80, "\x01\x02\x03\x04"s, ""))),
              ParseError::kUnknownCommand);
    EXPECT_EQ(error_of(parse_socks4_request("\x04\x00"s)), ParseError::kUnknownCommand);
}

TEST(Socks4Request, RejectsPortZero) {
    EXPECT_EQ(error_of(parse_socks4_request(socks4_request(1, 0, "\x01\x02\x03\x04"s, ""))),
              ParseError::kZeroPort);
}

TEST(Socks4Request, RejectsOversizeUserId) {
    const std::string m = socks4_request(1, 80, "\x01\x02\x03\x04"s, std::string(256, 'u'));
    EXPECT_EQ(error_of(parse_socks4_request(m)), ParseError::kUserIdTooLong);
    // Known as soon as byte 256 of the id is not the NUL.
    EXPECT_EQ(error_of(parse_socks4_request(m.substr(0, 8 + 256))), ParseError::kUserIdTooLong);
    EXPECT_EQ(parse_socks4_request(m.substr(0, 8 + 255)).status, ParseStatus::kNeedMore);
}

TEST(Socks4Request, RejectsOversizeHostname) {
    const std::string host(256, 'h');
    const std::string m = socks4_request(1, 80, "\x00\x00\x00\x01"s, "", &host);
    EXPECT_EQ(error_of(parse_socks4_request(m)), ParseError::kHostTooLong);
    EXPECT_EQ(error_of(parse_socks4_request(m.substr(0, 9 + 256))), ParseError::kHostTooLong);
}

TEST(Socks4Request, RejectsEmptyHostname) {
    const std::string host;
    EXPECT_EQ(error_of(parse_socks4_request(socks4_request(1, 80, "\x00\x00\x00\x01"s, "", &host))),
              ParseError::kEmptyHost);
}

TEST(Socks4Request, RejectsBadHostnameCharacters) {
    for (const std::string host : {"a b", "a/b", "h:1", "\xff"}) {
        const std::string m = socks4_request(1, 80, "\x00\x00\x00\x01"s, "", &host);
        EXPECT_EQ(error_of(parse_socks4_request(m)), ParseError::kBadHostChar) << host;
    }
}

TEST(Socks4Request, NeverNeedsMorePastMaximumSize) {
    const std::string junk(kMaxMessageSize, 'x');
    EXPECT_EQ(parse_socks4_request(socks4_request(1, 80, "\x00\x00\x00\x01"s, "") + junk).status,
              ParseStatus::kError);
}

// --- error texts and REP codes ------------------------------------------------

TEST(SocksErrors, EveryErrorHasText) {
    for (int e = 0; e <= static_cast<int>(ParseError::kZeroPort); ++e) {
        const char* text = describe(static_cast<ParseError>(e));
        ASSERT_NE(text, nullptr);
        EXPECT_GT(std::string(text).size(), 0u);
    }
    EXPECT_STREQ(describe(ParseError::kUnknownAddressType), "unknown address type");
}

TEST(SocksErrors, ReplyCodeForErrors) {
    EXPECT_EQ(reply_code(ParseError::kNone), kRepSucceeded);
    EXPECT_EQ(reply_code(ParseError::kUnknownCommand), 0x07);
    EXPECT_EQ(reply_code(ParseError::kUnknownAddressType), 0x08);
    EXPECT_EQ(reply_code(ParseError::kBadHostChar), 0x01);
    EXPECT_EQ(reply_code(ParseError::kZeroPort), 0x01);
}

TEST(SocksErrors, ReplyCodeForErrno) {
    EXPECT_EQ(reply_code_for_errno(ECONNREFUSED), kRepConnectionRefused);
    EXPECT_EQ(reply_code_for_errno(ENETUNREACH), kRepNetworkUnreachable);
    EXPECT_EQ(reply_code_for_errno(EHOSTUNREACH), kRepHostUnreachable);
    EXPECT_EQ(reply_code_for_errno(ETIMEDOUT), kRepHostUnreachable);
    EXPECT_EQ(reply_code_for_errno(EACCES), kRepNotAllowed);
    EXPECT_EQ(reply_code_for_errno(EIO), kRepGeneralFailure);
}

TEST(SocksErrors, RepConstantsMatchRfc1928) {
    EXPECT_EQ(kRepSucceeded, 0x00);
    EXPECT_EQ(kRepGeneralFailure, 0x01);
    EXPECT_EQ(kRepNotAllowed, 0x02);
    EXPECT_EQ(kRepNetworkUnreachable, 0x03);
    EXPECT_EQ(kRepHostUnreachable, 0x04);
    EXPECT_EQ(kRepConnectionRefused, 0x05);
    EXPECT_EQ(kRepTtlExpired, 0x06);
    EXPECT_EQ(kRepCommandNotSupported, 0x07);
    EXPECT_EQ(kRepAddressTypeNotSupported, 0x08);
}

// --- reply encoding -----------------------------------------------------------

TEST(SocksReply, EncodesMethodSelection) {
    std::string out;
    encode_method_selection(kMethodNoAuth, out);
    EXPECT_EQ(out, "\x05\x00"s);
    out.clear();
    encode_method_selection(kMethodUsernamePassword, out);
    EXPECT_EQ(out, "\x05\x02"s);
    out.clear();
    encode_method_selection(kMethodNoAcceptable, out);
    EXPECT_EQ(out, "\x05\xff"s);
}

TEST(SocksReply, EncodesAuthStatus) {
    std::string out;
    encode_auth_status(true, out);
    EXPECT_EQ(out, "\x01\x00"s);
    out.clear();
    encode_auth_status(false, out);
    EXPECT_EQ(out, "\x01\x01"s);
}

TEST(SocksReply, EncodesIpv4Reply) {
    std::string out;
    encode_reply(kRepSucceeded, v4("198.51.100.9", 40000), out);
    EXPECT_EQ(out, "\x05\x00\x00\x01\xc6\x33\x64\x09\x9c\x40"s);
}

TEST(SocksReply, EncodesIpv6Reply) {
    std::string out;
    encode_reply(kRepSucceeded, *SocketAddress::from_numeric("2001:db8::2", 443), out);
    EXPECT_EQ(out, "\x05\x00\x00\x04\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x02\x01\xbb"s);
}

TEST(SocksReply, EncodesFailureWithZeroAddress) {
    std::string out;
    encode_reply(kRepConnectionRefused, out);
    EXPECT_EQ(out, "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00"s);
    out.clear();
    encode_reply(kRepHostUnreachable, SocketAddress(), out);
    EXPECT_EQ(out, "\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00"s);
}

TEST(SocksReply, AppendsToExistingOutput) {
    std::string out = "x";
    encode_method_selection(kMethodNoAuth, out);
    encode_reply(kRepCommandNotSupported, out);
    EXPECT_EQ(out, "x\x05\x00\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00"s);
}

TEST(SocksReply, EncodesSocks4Granted) {
    std::string out;
    encode_socks4_reply(true, v4("10.1.2.3", 8080), out);
    EXPECT_EQ(out, "\x00\x5a\x1f\x90\x0a\x01\x02\x03"s);
}

TEST(SocksReply, EncodesSocks4Rejected) {
    std::string out;
    encode_socks4_reply(false, out);
    EXPECT_EQ(out, "\x00\x5b\x00\x00\x00\x00\x00\x00"s);
}

TEST(SocksReply, EncodesSocks4WithIpv6BoundAsZeros) {
    std::string out;
    encode_socks4_reply(true, *SocketAddress::from_numeric("::1", 80), out);
    EXPECT_EQ(out, "\x00\x5a\x00\x00\x00\x00\x00\x00"s);
}

}  // namespace
}  // namespace common::socks
