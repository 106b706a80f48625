#include "worker/policy.h"

#include <netinet/in.h>

#include <cstring>
#include <string>

#include "worker/refusal.h"

namespace worker {

namespace {

bool is_own_listener(const ConnectPolicy& policy, const common::SocketAddress& address) {
    common::SocketAddress dialled = as_dialled(address);
    for (const common::SocketAddress& own : policy.own_listeners) {
        if (own == dialled) return true;
        // A wildcard listener answers on every local address; loopback is
        // the one a request can name without knowing this host's addresses.
        bool wildcard = own.host_string() == "0.0.0.0" || own.host_string() == "::";
        bool loopback =
            dialled.host_string().rfind("127.", 0) == 0 || dialled.host_string() == "::1";
        if (wildcard && loopback && own.port() == dialled.port()) return true;
    }
    return false;
}

}  // namespace

bool client_allowed(const common::AclConfig& acl, const common::SocketAddress& client) {
    return common::address_allowed(acl.allow_clients, client);
}

std::optional<Refusal> check_client(const common::AclConfig& acl,
                                    const common::SocketAddress& client) {
    if (client_allowed(acl, client)) return std::nullopt;
    return make_refusal(RefusalCause::kClientDenied,
                        "client " + client.host_string() + " is not allowed (allow_clients)");
}

std::optional<Refusal> authorize(const common::AclConfig& acl, const Intent& intent) {
    uint16_t port = intent.destination.port;
    if (intent.tunnel() && !common::port_allowed(acl.connect_ports, port)) {
        return make_refusal(RefusalCause::kPortDenied, "tunnel to port " + std::to_string(port) +
                                                           " is not allowed (connect_ports)");
    }
    if (intent.via_names_us) {
        return make_refusal(RefusalCause::kViaLoop, "request loops back to the proxy (Via)");
    }
    return std::nullopt;
}

DialVerdict check_dialled_address(const ConnectPolicy& policy,
                                  const common::SocketAddress& address) {
    if (is_own_listener(policy, address)) return DialVerdict::kOwnListener;
    if (policy.deny_private && common::is_private_destination(address)) {
        return DialVerdict::kPrivate;
    }
    return DialVerdict::kAllowed;
}

common::SocketAddress as_dialled(const common::SocketAddress& address) {
    common::SocketAddress out = address;
    if (address.family() == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.get());
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            sockaddr_in v4{};
            v4.sin_family = AF_INET;
            v4.sin_port = v6->sin6_port;
            std::memcpy(&v4.sin_addr, v6->sin6_addr.s6_addr + 12, 4);
            out = common::SocketAddress::from(reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
        } else if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) {
            out = *common::SocketAddress::from_numeric("::1", address.port());
        }
    }
    if (out.family() == AF_INET &&
        reinterpret_cast<const sockaddr_in*>(out.get())->sin_addr.s_addr == INADDR_ANY) {
        out = *common::SocketAddress::from_numeric("127.0.0.1", address.port());
    }
    return out;
}

}  // namespace worker
