// SOCKS5 client messages and answers, see socks_client.h for the contract.
#include "common/socks_client.h"

#include <netinet/in.h>

#include "common/address.h"

namespace common::socks {

namespace {

constexpr size_t kMaxField = 255;

uint8_t byte_at(std::string_view input, size_t i) {
    return static_cast<uint8_t>(input[i]);
}

void append_field(std::string_view field, std::string& out) {
    out.push_back(static_cast<char>(field.size()));
    out.append(field);
}

// The address part of a CONNECT request: ATYP and DST.ADDR.
bool append_address(std::string_view host, bool is_ip_literal, std::string& out) {
    if (!is_ip_literal) {
        if (host.empty() || host.size() > kMaxField) return false;
        out.push_back(static_cast<char>(kAtypDomain));
        append_field(host, out);
        return true;
    }
    const std::optional<SocketAddress> address = SocketAddress::from_numeric(host, 0);
    if (!address) return false;
    if (address->family() == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address->storage);
        out.push_back(static_cast<char>(kAtypIpv4));
        out.append(reinterpret_cast<const char*>(&v4->sin_addr), 4);
    } else {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address->storage);
        out.push_back(static_cast<char>(kAtypIpv6));
        out.append(reinterpret_cast<const char*>(&v6->sin6_addr), 16);
    }
    return true;
}

}  // namespace

std::string build_greeting(bool with_credentials) {
    if (with_credentials) {
        return {static_cast<char>(kVersion5), 2, static_cast<char>(kMethodNoAuth),
                static_cast<char>(kMethodUsernamePassword)};
    }
    return {static_cast<char>(kVersion5), 1, static_cast<char>(kMethodNoAuth)};
}

Result<uint8_t> parse_method_selection(std::string_view input) {
    if (input.empty()) return need_more<uint8_t>();
    if (byte_at(input, 0) != kVersion5) return fail<uint8_t>(ParseError::kBadVersion);
    if (input.size() < 2) return need_more<uint8_t>();
    return complete<uint8_t>(2, byte_at(input, 1));
}

std::optional<std::string> build_password_request(std::string_view user,
                                                  std::string_view password) {
    if (user.empty() || user.size() > kMaxField) return std::nullopt;
    if (password.empty() || password.size() > kMaxField) return std::nullopt;
    std::string out(1, static_cast<char>(kAuthVersion));
    append_field(user, out);
    append_field(password, out);
    return out;
}

Result<bool> parse_password_reply(std::string_view input) {
    if (input.empty()) return need_more<bool>();
    if (byte_at(input, 0) != kAuthVersion) return fail<bool>(ParseError::kBadAuthVersion);
    if (input.size() < 2) return need_more<bool>();
    return complete<bool>(2, byte_at(input, 1) == 0);
}

std::optional<std::string> build_connect_request(std::string_view host, uint16_t port,
                                                 bool is_ip_literal) {
    if (port == 0) return std::nullopt;
    std::string out{static_cast<char>(kVersion5), static_cast<char>(kCommandConnect), 0};
    if (!append_address(host, is_ip_literal, out)) return std::nullopt;
    out.push_back(static_cast<char>(port >> 8));
    out.push_back(static_cast<char>(port & 0xff));
    return out;
}

// VER REP RSV ATYP are judged as they arrive; then the length of the rest
// is known (for a name, once its length byte is there).
Result<ConnectReply> parse_connect_reply(std::string_view input) {
    using R = ConnectReply;
    const size_t n = input.size();
    if (n < 1) return need_more<R>();
    if (byte_at(input, 0) != kVersion5) return fail<R>(ParseError::kBadVersion);
    if (n < 3) return need_more<R>();
    if (byte_at(input, 2) != 0) return fail<R>(ParseError::kBadReserved);
    if (n < 4) return need_more<R>();
    size_t length = 0;
    switch (byte_at(input, 3)) {
        case kAtypIpv4:
            length = 4 + 4 + 2;
            break;
        case kAtypIpv6:
            length = 4 + 16 + 2;
            break;
        case kAtypDomain:
            if (n < 5) return need_more<R>();
            length = 4 + 1 + byte_at(input, 4) + 2;
            break;
        default:
            return fail<R>(ParseError::kUnknownAddressType);
    }
    if (n < length) return need_more<R>();
    return complete(length, ConnectReply{byte_at(input, 1)});
}

std::string describe_socks_reply(uint8_t rep) {
    switch (rep) {
        case kRepSucceeded:
            return "succeeded";
        case kRepGeneralFailure:
            return "general failure";
        case kRepNotAllowed:
            return "connection not allowed by ruleset";
        case kRepNetworkUnreachable:
            return "network unreachable";
        case kRepHostUnreachable:
            return "host unreachable";
        case kRepConnectionRefused:
            return "connection refused";
        case kRepTtlExpired:
            return "TTL expired";
        case kRepCommandNotSupported:
            return "command not supported";
        case kRepAddressTypeNotSupported:
            return "address type not supported";
        default:
            return "unassigned reply " + std::to_string(rep);
    }
}

}  // namespace common::socks
