#include "worker/destination_policy.h"

#include "common/channel.h"
#include "common/socks_parser.h"

namespace worker {

namespace channel = common::channel;

namespace {

constexpr uint8_t kSocksGeneralFailure = common::socks::kRepGeneralFailure;
constexpr uint8_t kSocksNotAllowed = common::socks::kRepNotAllowed;
constexpr uint8_t kSocksHostUnreachable = common::socks::kRepHostUnreachable;
constexpr uint8_t kSocksConnectionRefused = common::socks::kRepConnectionRefused;
constexpr uint8_t kSocksTtlExpired = common::socks::kRepTtlExpired;

}  // namespace

std::optional<Refusal> check_tunnel_port(const common::AclConfig& acl, uint16_t port) {
    if (common::port_allowed(acl.connect_ports, port)) return std::nullopt;
    return Refusal{403, kSocksNotAllowed,
                   "tunnel to port " + std::to_string(port) + " is not allowed (connect_ports)",
                   "destination_ip_prohibited", channel::kErrDenied};
}

Refusal refusal_for(ConnectError error, const std::string& detail) {
    switch (error) {
        case ConnectError::kResolve:
            return {502, kSocksHostUnreachable, detail, "dns_error", channel::kErrUpstreamConnect};
        case ConnectError::kDenied:
            return {403, kSocksNotAllowed, detail, "destination_ip_prohibited",
                    channel::kErrDenied};
        case ConnectError::kLoop:
            return {508, kSocksNotAllowed, detail, "http_request_denied", channel::kErrDenied};
        case ConnectError::kRefused:
            return {502, kSocksConnectionRefused, detail, "connection_refused",
                    channel::kErrUpstreamConnect};
        case ConnectError::kTimeout:
            return {504, kSocksTtlExpired, detail, "connection_timeout", channel::kErrTimeout};
        case ConnectError::kNone:
            break;
    }
    return {500, kSocksGeneralFailure, detail, "proxy_internal_error", channel::kErrInternal};
}

}  // namespace worker
