#include "worker/refusal.h"

#include "common/channel.h"
#include "common/socks_parser.h"

namespace worker {

namespace {

namespace channel = common::channel;
namespace socks = common::socks;

struct CauseRow {
    const char* name;
    int http_status;
    uint8_t socks_reply;
    const char* error_type;
    uint32_t error_class;
};

// Indexed by RefusalCause. The error types are RFC 9209's (§2.3): a
// refusal by configuration is http_request_denied, except the destination
// address checks (destination_ip_prohibited) and loops (proxy_loop_detected);
// a request the proxy could not read is http_request_error, whatever its
// status (400, 408, 414, 431, 501, 505).
constexpr CauseRow kCauses[] = {
    {"bad_request", 400, socks::kRepGeneralFailure, "http_request_error",
     channel::kErrClientProtocol},
    {"port_denied", 403, socks::kRepNotAllowed, "http_request_denied", channel::kErrDenied},
    {"via_loop", 508, socks::kRepNotAllowed, "proxy_loop_detected", channel::kErrDenied},
    {"address_loop", 508, socks::kRepNotAllowed, "proxy_loop_detected", channel::kErrDenied},
    {"private_destination", 403, socks::kRepNotAllowed, "destination_ip_prohibited",
     channel::kErrDenied},
    {"dns_error", 502, socks::kRepHostUnreachable, "dns_error", channel::kErrUpstreamConnect},
    {"dns_timeout", 504, socks::kRepHostUnreachable, "dns_timeout", channel::kErrTimeout},
    {"unreachable", 502, socks::kRepNetworkUnreachable, "destination_ip_unroutable",
     channel::kErrUpstreamConnect},
    {"connection_refused", 502, socks::kRepConnectionRefused, "connection_refused",
     channel::kErrUpstreamConnect},
    {"connection_timeout", 504, socks::kRepTtlExpired, "connection_timeout", channel::kErrTimeout},
    {"client_timeout", 408, socks::kRepGeneralFailure, "http_request_error", channel::kErrTimeout},
    {"upstream_protocol", 502, socks::kRepGeneralFailure, "http_protocol_error",
     channel::kErrUpstreamProtocol},
    {"upstream_head_too_large", 502, socks::kRepGeneralFailure, "http_response_header_section_size",
     channel::kErrUpstreamProtocol},
    {"upstream_transfer_coding", 502, socks::kRepGeneralFailure, "http_response_transfer_coding",
     channel::kErrUpstreamProtocol},
    {"upstream_incomplete", 502, socks::kRepGeneralFailure, "http_response_incomplete",
     channel::kErrUpstreamProtocol},
    {"upstream_timeout", 504, socks::kRepTtlExpired, "http_response_timeout", channel::kErrTimeout},
    {"auth_required", 407, socks::kRepNotAllowed, "http_request_denied", channel::kErrAuth},
    {"auth_busy", 429, socks::kRepNotAllowed, "http_request_denied", channel::kErrAuth},
    {"user_limit", 429, socks::kRepNotAllowed, "http_request_denied", channel::kErrLimit},
    {"parent_tls", 502, socks::kRepGeneralFailure, "tls_protocol_error",
     channel::kErrUpstreamConnect},
    {"parent_certificate", 502, socks::kRepGeneralFailure, "tls_certificate_error",
     channel::kErrUpstreamConnect},
    {"parent_auth", 502, socks::kRepGeneralFailure, "proxy_configuration_error",
     channel::kErrUpstreamConnect},
    {"parent_refused", 502, socks::kRepHostUnreachable, "destination_unavailable",
     channel::kErrUpstreamConnect},
    {"no_route", 502, socks::kRepGeneralFailure, "destination_unavailable",
     channel::kErrUpstreamConnect},
    {"destination_rate", 429, socks::kRepNotAllowed, "http_request_denied", channel::kErrLimit},
    {"client_denied", 403, socks::kRepNotAllowed, "http_request_denied", channel::kErrDenied},
    {"cluster_store_down", 503, socks::kRepGeneralFailure, "proxy_internal_error",
     channel::kErrInternal},
    {"internal_error", 500, socks::kRepGeneralFailure, "proxy_internal_error",
     channel::kErrInternal},
};
static_assert(std::size(kCauses) == static_cast<size_t>(RefusalCause::kInternal) + 1,
              "one row per RefusalCause");

const CauseRow& row(RefusalCause cause) {
    return kCauses[static_cast<size_t>(cause)];
}

}  // namespace

Refusal make_refusal(RefusalCause cause, std::string detail) {
    const CauseRow& r = row(cause);
    return Refusal{cause,        r.http_status, r.socks_reply, std::move(detail),
                   r.error_type, r.error_class};
}

Refusal make_refusal(RefusalCause cause, int http_status, std::string detail) {
    Refusal refusal = make_refusal(cause, std::move(detail));
    refusal.http_status = http_status;
    return refusal;
}

RefusalCause cause_of(ConnectError error) {
    switch (error) {
        case ConnectError::kResolve:
            return RefusalCause::kResolve;
        case ConnectError::kResolveTimeout:
            return RefusalCause::kResolveTimeout;
        case ConnectError::kUnreachable:
            return RefusalCause::kUnreachable;
        case ConnectError::kDenied:
            return RefusalCause::kPrivateDestination;
        case ConnectError::kLoop:
            return RefusalCause::kAddressLoop;
        case ConnectError::kRefused:
            return RefusalCause::kConnectRefused;
        case ConnectError::kTimeout:
            return RefusalCause::kConnectTimeout;
        case ConnectError::kNoResources:
            return RefusalCause::kInternal;
        case ConnectError::kBind:
            return RefusalCause::kUnreachable;
        case ConnectError::kNone:
            break;
    }
    return RefusalCause::kInternal;
}

const char* cause_name(RefusalCause cause) {
    return row(cause).name;
}

}  // namespace worker
