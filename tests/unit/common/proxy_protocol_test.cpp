// Unit tests for common/proxy_protocol: versions 1 and 2, every command and
// family, each refusal, and headers cut at every byte (a prefix must need
// more, never end early or fail where the whole does not).
#include "common/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace common::proxy_protocol {
namespace {

using namespace std::string_literals;

const std::string kSignature = "\r\n\r\n\x00\r\nQUIT\n"s;

SocketAddress address(const char* host, uint16_t port) {
    return *SocketAddress::from_numeric(host, port);
}

// A version 2 header: signature, version/command byte, family byte, the
// 16-bit length of `body`, then `body` (address block and TLVs).
std::string v2(uint8_t version_command, uint8_t family, const std::string& body) {
    std::string s = kSignature;
    s.push_back(static_cast<char>(version_command));
    s.push_back(static_cast<char>(family));
    s.push_back(static_cast<char>(body.size() >> 8));
    s.push_back(static_cast<char>(body.size() & 0xff));
    return s + body;
}

// The TCP4 block for 192.0.2.1:51000 -> 198.51.100.7:3128.
std::string tcp4_block() {
    return "\xc0\x00\x02\x01"s + "\xc6\x33\x64\x07"s + "\xc7\x38"s + "\x0c\x38"s;
}

// The TCP6 block for [2001:db8::1]:443 -> [2001:db8::2]:80.
std::string tcp6_block() {
    std::string src = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x01"s;
    std::string dst = "\x20\x01\x0d\xb8"s + std::string(11, '\0') + "\x02"s;
    return src + dst + "\x01\xbb"s + "\x00\x50"s;
}

std::string tlv(uint8_t type, const std::string& value) {
    std::string s(1, static_cast<char>(type));
    s.push_back(static_cast<char>(value.size() >> 8));
    s.push_back(static_cast<char>(value.size() & 0xff));
    return s + value;
}

// Every strict prefix of `header` needs more.
void expect_prefixes_need_more(const std::string& header) {
    for (size_t n = 0; n < header.size(); ++n) {
        Result r = parse(std::string_view(header).substr(0, n));
        EXPECT_EQ(r.status, Status::kNeedMore) << "prefix of " << n << " bytes";
        EXPECT_EQ(r.consumed, 0u);
    }
}

// `header` is refused with `error`, and no prefix is accepted or refused
// otherwise.
void expect_malformed(const std::string& header, Error error) {
    Result whole = parse(header);
    ASSERT_EQ(whole.status, Status::kMalformed) << describe(whole.error);
    EXPECT_EQ(whole.error, error) << describe(whole.error);
    EXPECT_EQ(whole.consumed, 0u);
    for (size_t n = 0; n < header.size(); ++n) {
        Result part = parse(std::string_view(header).substr(0, n));
        if (part.status == Status::kNeedMore) continue;
        EXPECT_EQ(part.status, Status::kMalformed) << "prefix of " << n << " bytes";
        EXPECT_EQ(part.error, error) << "prefix of " << n << " bytes";
    }
}

Error v1_error(const std::string& line) {
    Result r = parse(line);
    EXPECT_EQ(r.status, Status::kMalformed) << line;
    return r.error;
}

// --- version 1 ---------------------------------------------------------------

TEST(ProxyProtocolV1, Tcp4) {
    const std::string header = "PROXY TCP4 192.0.2.1 198.51.100.7 51000 3128\r\n";
    expect_prefixes_need_more(header);
    Result r = parse(header + "GET / HTTP/1.1\r\n");
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.version, 1);
    EXPECT_EQ(r.consumed, header.size());
    EXPECT_EQ(r.command, Command::kProxy);
    ASSERT_TRUE(r.source && r.destination);
    EXPECT_EQ(*r.source, address("192.0.2.1", 51000));
    EXPECT_EQ(*r.destination, address("198.51.100.7", 3128));
}

TEST(ProxyProtocolV1, Tcp6) {
    const std::string header = "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.9 0 65535\r\n";
    expect_prefixes_need_more(header);
    Result r = parse(header);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source && r.destination);
    EXPECT_EQ(*r.source, address("2001:db8::1", 0));
    EXPECT_EQ(*r.destination, address("::ffff:192.0.2.9", 65535));
}

TEST(ProxyProtocolV1, UnknownKeepsTheSocketAddress) {
    for (const std::string header :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN whatever the balancer wrote 1 2\r\n"}) {
        expect_prefixes_need_more(header);
        Result r = parse(header + "rest");
        ASSERT_EQ(r.status, Status::kDone) << header;
        EXPECT_EQ(r.consumed, header.size());
        EXPECT_FALSE(r.source);
        EXPECT_FALSE(r.destination);
    }
}

TEST(ProxyProtocolV1, LongestHeaderIs107Bytes) {
    const std::string address_text = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string longest =
        "PROXY UNKNOWN " + address_text + " " + address_text + " 65535 65535\r\n";
    ASSERT_EQ(longest.size(), kMaxV1Size);
    Result r = parse(longest);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, kMaxV1Size);
    const std::string tcp6 = "PROXY TCP6 " + address_text + " " + address_text + " 65535 65535\r\n";
    EXPECT_EQ(parse(tcp6).status, Status::kDone);
    // One byte more: the CR would sit where the LF must be at the latest.
    expect_malformed("PROXY UNKNOWN " + address_text + " " + address_text + " 65535 655355\r\n",
                     Error::kTooLong);
}

TEST(ProxyProtocolV1, NoCrlfWithin107BytesIsRefused) {
    expect_malformed("PROXY UNKNOWN " + std::string(200, 'x'), Error::kTooLong);
    EXPECT_EQ(parse("PROXY UNKNOWN " + std::string(92, 'x')).status, Status::kNeedMore);
    EXPECT_EQ(v1_error("PROXY UNKNOWN " + std::string(93, 'x')), Error::kTooLong);
}

TEST(ProxyProtocolV1, WrongSignature) {
    expect_malformed("GET / HTTP/1.1\r\n", Error::kNotProxyProtocol);
    expect_malformed("PROXYTCP4 1.2.3.4 1.2.3.4 1 2\r\n", Error::kNotProxyProtocol);
    expect_malformed("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", Error::kNotProxyProtocol);
    expect_malformed("\x16\x03\x01\x02\x00"s, Error::kNotProxyProtocol);
    expect_malformed("\x05\x01\x00"s, Error::kNotProxyProtocol);
    expect_malformed(" PROXY UNKNOWN\r\n", Error::kNotProxyProtocol);
}

TEST(ProxyProtocolV1, BadProtocol) {
    EXPECT_EQ(v1_error("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n"), Error::kBadProtocol);
    EXPECT_EQ(v1_error("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"), Error::kBadProtocol);
    EXPECT_EQ(v1_error("PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n"), Error::kBadProtocol);
    EXPECT_EQ(v1_error("PROXY UNKNOWNX\r\n"), Error::kBadProtocol);
    EXPECT_EQ(v1_error("PROXY \r\n"), Error::kBadProtocol);
}

TEST(ProxyProtocolV1, ExtraOrMissingSpacesAndFields) {
    for (const char* line : {
             "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
             "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
             "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
             "PROXY TCP4 1.2.3.4\r\n",
             "PROXY TCP4\r\n",
             "PROXY TCP4 \r\n",
         }) {
        Error error = v1_error(line);
        EXPECT_TRUE(error == Error::kBadSyntax || error == Error::kBadProtocol)
            << line << ": " << describe(error);
    }
    EXPECT_EQ(v1_error("PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n"), Error::kBadCharacter);
}

TEST(ProxyProtocolV1, BadPorts) {
    for (const char* line : {
             "PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 00 80\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 +80 80\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 80 0x50\r\n",
             "PROXY TCP4 1.2.3.4 5.6.7.8 123456 80\r\n",
         }) {
        EXPECT_EQ(v1_error(line), Error::kBadPort) << line;
    }
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n").status, Status::kDone);
}

TEST(ProxyProtocolV1, BadAddresses) {
    for (const char* line : {
             "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
             "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
             "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
             "PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
             "PROXY TCP6 ::1 1.2.3.4 1 2\r\n",
             "PROXY TCP6 [::1] ::2 1 2\r\n",
             "PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n",
             "PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
             "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::2 1 2\r\n",
         }) {
        EXPECT_EQ(v1_error(line), Error::kBadAddress) << line;
    }
}

TEST(ProxyProtocolV1, LineEnds) {
    expect_malformed("PROXY UNKNOWN\n", Error::kBareLf);
    expect_malformed("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Error::kBareLf);
    expect_malformed("PROXY UNKNOWN\r\r\n", Error::kBareCr);
    expect_malformed("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n", Error::kBareCr);
    expect_malformed("PROXY UNKNOWN \x01\r\n"s, Error::kBadCharacter);
    expect_malformed("PROXY UNKNOWN \x00\r\n"s, Error::kBadCharacter);
    expect_malformed("PROXY UNKNOWN \xff\r\n"s, Error::kBadCharacter);
    // Missing CRLF: the header never ends, so it needs more until 107 bytes.
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2").status, Status::kNeedMore);
    EXPECT_EQ(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r").status, Status::kNeedMore);
}

// --- version 2 ---------------------------------------------------------------

TEST(ProxyProtocolV2, ProxyTcp4) {
    const std::string header = v2(0x21, 0x11, tcp4_block());
    expect_prefixes_need_more(header);
    Result r = parse(header + "\x05\x01\x00"s);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.version, 2);
    EXPECT_EQ(r.consumed, header.size());
    EXPECT_EQ(r.command, Command::kProxy);
    ASSERT_TRUE(r.source && r.destination);
    EXPECT_EQ(*r.source, address("192.0.2.1", 51000));
    EXPECT_EQ(*r.destination, address("198.51.100.7", 3128));
}

TEST(ProxyProtocolV2, ProxyTcp6) {
    const std::string header = v2(0x21, 0x21, tcp6_block());
    expect_prefixes_need_more(header);
    Result r = parse(header);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, header.size());
    ASSERT_TRUE(r.source && r.destination);
    EXPECT_EQ(*r.source, address("2001:db8::1", 443));
    EXPECT_EQ(*r.destination, address("2001:db8::2", 80));
}

TEST(ProxyProtocolV2, LocalKeepsTheSocketAddress) {
    for (const std::string& header :
         {v2(0x20, 0x00, ""), v2(0x20, 0x11, tcp4_block()), v2(0x20, 0x31, std::string(216, 'x')),
          v2(0x20, 0x12, tcp6_block().substr(0, 12) + tlv(4, ""))}) {
        expect_prefixes_need_more(header);
        Result r = parse(header + "GET");
        ASSERT_EQ(r.status, Status::kDone) << describe(r.error);
        EXPECT_EQ(r.consumed, header.size());
        EXPECT_EQ(r.command, Command::kLocal);
        EXPECT_FALSE(r.source);
        EXPECT_FALSE(r.destination);
    }
}

TEST(ProxyProtocolV2, ProxyUnspecKeepsTheSocketAddress) {
    const std::string header = v2(0x21, 0x00, tlv(0x04, "abc"));
    Result r = parse(header);
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.command, Command::kProxy);
    EXPECT_EQ(r.consumed, header.size());
    EXPECT_FALSE(r.source);
}

TEST(ProxyProtocolV2, TlvsAreSkipped) {
    const std::string tlvs = tlv(0x01, "http/1.1") + tlv(0x02, "example.com") + tlv(0x04, "") +
                             tlv(0x05, std::string(32, 'u'));
    const std::string header = v2(0x21, 0x11, tcp4_block() + tlvs);
    expect_prefixes_need_more(header);
    Result r = parse(header + "CONNECT");
    ASSERT_EQ(r.status, Status::kDone);
    EXPECT_EQ(r.consumed, header.size());
    EXPECT_EQ(*r.source, address("192.0.2.1", 51000));
}

TEST(ProxyProtocolV2, TlvsMustFitTheHeader) {
    expect_malformed(v2(0x21, 0x11, tcp4_block() + "\x04"s), Error::kBadTlv);
    expect_malformed(v2(0x21, 0x11, tcp4_block() + "\x04\x00"s), Error::kBadTlv);
    expect_malformed(v2(0x21, 0x11, tcp4_block() + "\x04\x00\x05xxxx"s), Error::kBadTlv);
    expect_malformed(v2(0x21, 0x11, tcp4_block() + tlv(1, "h2") + "\x01\xff\xff"s), Error::kBadTlv);
    expect_malformed(v2(0x20, 0x00, "\x04\x00\x01"s), Error::kBadTlv);
}

TEST(ProxyProtocolV2, TlvBytesAreBounded) {
    const std::string most = tcp4_block() + tlv(0x04, std::string(kMaxV2TlvBytes - 3, 'x'));
    EXPECT_EQ(parse(v2(0x21, 0x11, most)).status, Status::kDone);
    const std::string over = tcp4_block() + tlv(0x04, std::string(kMaxV2TlvBytes - 2, 'x'));
    // Refused as soon as the length is read, before the body is waited for.
    const std::string header = v2(0x21, 0x11, over);
    EXPECT_EQ(parse(header.substr(0, kV2FixedSize)).error, Error::kTlvTooLong);
    expect_malformed(header, Error::kTlvTooLong);
    // The largest length the field holds.
    std::string huge = kSignature + "\x21\x11\xff\xff"s;
    expect_malformed(huge, Error::kTlvTooLong);
}

TEST(ProxyProtocolV2, LengthShorterThanTheAddressBlock) {
    expect_malformed(v2(0x21, 0x11, tcp4_block().substr(0, 11)), Error::kShortAddress);
    expect_malformed(v2(0x21, 0x21, tcp4_block()), Error::kShortAddress);
    expect_malformed(v2(0x20, 0x21, tcp4_block()), Error::kShortAddress);
}

TEST(ProxyProtocolV2, BadVersion) {
    expect_malformed(v2(0x11, 0x11, tcp4_block()), Error::kBadVersion);
    expect_malformed(v2(0x31, 0x11, tcp4_block()), Error::kBadVersion);
    expect_malformed(v2(0x01, 0x11, tcp4_block()), Error::kBadVersion);
}

TEST(ProxyProtocolV2, BadCommand) {
    expect_malformed(v2(0x22, 0x11, tcp4_block()), Error::kBadCommand);
    expect_malformed(v2(0x2f, 0x11, tcp4_block()), Error::kBadCommand);
}

TEST(ProxyProtocolV2, BadFamily) {
    for (uint8_t family : {0x01, 0x10, 0x13, 0x23, 0x30, 0x33, 0x41, 0xff}) {
        expect_malformed(v2(0x21, family, tcp6_block()), Error::kBadFamily);
        expect_malformed(v2(0x20, family, tcp6_block()), Error::kBadFamily);
    }
}

TEST(ProxyProtocolV2, UdpAndUnixClientsAreRefused) {
    expect_malformed(v2(0x21, 0x12, tcp4_block()), Error::kUnsupportedFamily);
    expect_malformed(v2(0x21, 0x22, tcp6_block()), Error::kUnsupportedFamily);
    expect_malformed(v2(0x21, 0x31, std::string(216, '\0')), Error::kUnsupportedFamily);
    expect_malformed(v2(0x21, 0x32, std::string(216, '\0')), Error::kUnsupportedFamily);
}

TEST(ProxyProtocolV2, WrongSignature) {
    std::string bad = v2(0x21, 0x11, tcp4_block());
    bad[7] = 'q';
    expect_malformed(bad, Error::kNotProxyProtocol);
    expect_malformed("\r\n\r\n\x01"s, Error::kNotProxyProtocol);
    expect_malformed("\r\nGET / HTTP/1.1\r\n"s, Error::kNotProxyProtocol);
}

TEST(ProxyProtocol, EmptyInputNeedsMore) {
    EXPECT_EQ(parse("").status, Status::kNeedMore);
}

TEST(ProxyProtocol, MaxHeaderSizeNeverNeedsMore) {
    // The longest acceptable header, less one byte, still needs more.
    const std::string longest =
        v2(0x20, 0x31, std::string(216, '\0') + tlv(0x04, std::string(kMaxV2TlvBytes - 3, 'x')));
    ASSERT_EQ(longest.size(), kMaxHeaderSize);
    EXPECT_EQ(parse(std::string_view(longest).substr(0, kMaxHeaderSize - 1)).status,
              Status::kNeedMore);
    EXPECT_EQ(parse(longest).status, Status::kDone);
}

TEST(ProxyProtocol, EveryErrorIsDescribed) {
    for (int e = static_cast<int>(Error::kNone); e <= static_cast<int>(Error::kBadTlv); ++e) {
        EXPECT_STRNE(describe(static_cast<Error>(e)), "unknown error");
    }
}

}  // namespace
}  // namespace common::proxy_protocol
