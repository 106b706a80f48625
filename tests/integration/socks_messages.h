// SOCKS messages as clients send them and proxyd answers them, byte by byte
// (RFC 1928, RFC 1929; SOCKS4 and 4a as the de facto protocol), for tests
// that speak SOCKS over a RawClient or a TlsClient.
//
//   client.send(harness::socks::kGreetingNoAuth);
//   EXPECT_EQ(client.recv_some(), harness::socks::kMethodNoAuth);
//   client.send(harness::socks::connect_name("origin.test", 443));
//   EXPECT_EQ(harness::hex(client.read_at_least(10)),
//             harness::hex(harness::socks::failure(harness::socks::kHostUnreachable)));
#pragma once

#include <cstdint>
#include <string>

#include "tests/integration/harness.h"

namespace harness::socks {

// SOCKS5 reply codes (RFC 1928 §6).
constexpr int kSucceeded = 0x00;
constexpr int kGeneralFailure = 0x01;
constexpr int kNotAllowed = 0x02;
constexpr int kNetworkUnreachable = 0x03;
constexpr int kHostUnreachable = 0x04;
constexpr int kConnectionRefused = 0x05;
constexpr int kTtlExpired = 0x06;
constexpr int kCommandNotSupported = 0x07;
constexpr int kAddressTypeNotSupported = 0x08;

// 05 01 00: one method offered, "no authentication".
extern const std::string kGreetingNoAuth;
// 05 00: the server chose it.
extern const std::string kMethodNoAuth;
// 127.0.0.1 as four bytes.
extern const std::string kLoopbackIpv4;
// 00 5B + 6 bytes: a SOCKS4 request rejected.
extern const std::string kSocks4Rejected;

// A port in network byte order.
std::string port_bytes(uint16_t port);
// 05 CMD 00, then the address type and address, then the port.
std::string request(int command, const std::string& atyp_and_address, uint16_t port);
// CONNECT to an IPv4 address (4 bytes; loopback by default).
std::string connect_ipv4(uint16_t port, const std::string& ip = kLoopbackIpv4);
// CONNECT to a domain name (ATYP 3).
std::string connect_name(const std::string& host, uint16_t port);
// 05 REP 00 01 0.0.0.0:0, what every SOCKS5 refusal of proxyd carries.
std::string failure(int reply);

// 04 CMD PORT IP USER 00 [HOST 00]: the host only for SOCKS4a (IP 0.0.0.x).
std::string socks4_request(int command, uint16_t port, const std::string& ip,
                           const std::string& user = "", const std::string& host = "");
// SOCKS4a CONNECT to a name, as user "tester".
std::string socks4a_connect(const std::string& host, uint16_t port);

}  // namespace harness::socks
