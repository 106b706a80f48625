// SOCKS messages for the integration tests (see socks_messages.h).
#include "tests/integration/socks_messages.h"

namespace harness::socks {

const std::string kGreetingNoAuth = bytes({5, 1, 0});
const std::string kMethodNoAuth = bytes({5, 0});
const std::string kLoopbackIpv4 = bytes({127, 0, 0, 1});
const std::string kSocks4Rejected = bytes({0, 0x5b, 0, 0, 0, 0, 0, 0});

std::string port_bytes(uint16_t port) {
    return bytes({port >> 8, port & 0xff});
}

std::string request(int command, const std::string& atyp_and_address, uint16_t port) {
    return bytes({5, command, 0}) + atyp_and_address + port_bytes(port);
}

std::string connect_ipv4(uint16_t port, const std::string& ip) {
    return request(1, bytes({1}) + ip, port);
}

std::string connect_name(const std::string& host, uint16_t port) {
    return request(1, bytes({3, static_cast<int>(host.size())}) + host, port);
}

std::string failure(int reply) {
    return bytes({5, reply, 0, 1, 0, 0, 0, 0, 0, 0});
}

std::string socks4_request(int command, uint16_t port, const std::string& ip,
                           const std::string& user, const std::string& host) {
    std::string out = bytes({4, command}) + port_bytes(port) + ip + user + std::string(1, '\0');
    const bool socks4a = ip.size() == 4 && ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
    if (socks4a) out += host + std::string(1, '\0');
    return out;
}

std::string socks4a_connect(const std::string& host, uint16_t port) {
    return socks4_request(1, port, bytes({0, 0, 0, 1}), "tester", host);
}

}  // namespace harness::socks
