// The policy and error vocabulary shared by every protocol that opens a
// tunnel or a connection for a client (HTTP CONNECT, HTTP forwarding,
// SOCKS): what is refused before dialling, and how each failure reads as
// an HTTP status and as a SOCKS reply code. One table, so an HTTP client
// and a SOCKS client are told the same thing for the same cause.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/config.h"
#include "common/uri.h"
#include "worker/upstream_connector.h"

namespace worker {

struct Refusal {
    int http_status = 0;
    uint8_t socks_reply = 0;      // RFC 1928 REP
    std::string detail;           // for the error body, the log and the access log
    const char* error_type = "";  // RFC 9209 Proxy-Status error type
    uint32_t error_class = 0;     // common::channel::ErrorClass
};

// Checks a tunnel destination (CONNECT, SOCKS) before anything is resolved:
// the port must be in connect_ports. Destination addresses are checked after
// resolution by the connector, on the address actually dialled.
std::optional<Refusal> check_tunnel_port(const common::AclConfig& acl, uint16_t port);

// How a failed connection attempt is reported.
Refusal refusal_for(ConnectError error, const std::string& detail);

}  // namespace worker
