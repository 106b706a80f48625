// The classes of errors workers count: the values of the `class` label of the
// `errors` metric (common/metrics.h) and the index into Counters::errors.
// They live in namespace common::channel because that is where they were
// born (the report record) and where sessions name them
// (`counters.errors[common::channel::kErrDenied]++`); they have their own
// header so that the metric table can name them without the channel, which
// itself carries the metric table.
#pragma once

#include <cstdint>

namespace common::channel {

enum ErrorClass : uint32_t {
    kErrClientProtocol = 0,  // malformed client input (400, 414, 431, 505)
    kErrDenied,              // ACL, ports, private destinations (403)
    kErrUpstreamConnect,     // refused, unreachable, unresolvable (502)
    kErrUpstreamProtocol,    // garbage or truncated from upstream (502)
    kErrTimeout,             // header, connect, upstream, idle timeouts (408/504)
    kErrInternal,            // resource exhaustion, accept errors
    kErrAuth,                // missing, wrong or malformed credentials (407)
    kErrLimit,               // over a user's session limit (429)
    kErrorClassCount
};

// The label value of `error_class` ("denied"); "unknown" when out of range.
constexpr const char* error_class_name(uint32_t error_class) {
    switch (error_class) {
        case kErrClientProtocol:
            return "client_protocol";
        case kErrDenied:
            return "denied";
        case kErrUpstreamConnect:
            return "upstream_connect";
        case kErrUpstreamProtocol:
            return "upstream_protocol";
        case kErrTimeout:
            return "timeout";
        case kErrInternal:
            return "internal";
        case kErrAuth:
            return "auth";
        case kErrLimit:
            return "limit";
        default:
            return "unknown";
    }
}

}  // namespace common::channel
