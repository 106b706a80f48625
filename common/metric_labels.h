// The label values of the worker metrics that describe finished exchanges
// (common/metrics.h): protocol, status class, byte direction, upstream
// connect error class, and the request duration histogram's buckets. Like
// error_class.h, they sit apart so that the metric table can name them
// without pulling in the worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace common::metrics {

// Which protocol the client spoke for the exchange.
enum Protocol : uint32_t {
    kProtocolHttp = 0,  // a plain http:// request (or a head that could not be read)
    kProtocolConnect,   // an HTTP CONNECT
    kProtocolSocks,     // a SOCKS5, SOCKS4 or SOCKS4a connect
};
inline constexpr uint32_t kProtocolCount = 3;

// The class of the exchange's status. SOCKS exchanges carry the status the
// same outcome gets over HTTP (worker/refusal.cpp's table): 2xx for reply
// 0x00 (succeeded), 4xx for a refusal of the client's own doing (not
// allowed, a bad request, authentication), 5xx for failures to reach the
// destination (host unreachable, connection refused, TTL expired).
enum StatusClass : uint32_t {
    kStatus1xx = 0,
    kStatus2xx,
    kStatus3xx,
    kStatus4xx,
    kStatus5xx,
    kStatusOther,  // no status: the exchange ended before one was chosen
};
inline constexpr uint32_t kStatusClassCount = 6;

// Which way bytes went, counted from the proxy's point of view.
enum Direction : uint32_t {
    kFromClient = 0,
    kToClient,
    kFromUpstream,
    kToUpstream,
};
inline constexpr uint32_t kDirectionCount = 4;

// Why a connection to the destination (or a parent) could not be made.
enum ConnectError : uint32_t {
    kConnectResolve = 0,  // the name did not resolve, or DNS did not answer in time
    kConnectUnreachable,  // no route to the host or network
    kConnectRefused,      // refused or reset while connecting
    kConnectTimeout,      // no answer within connect_timeout
    kConnectParent,       // a parent proxy failed: TLS, certificate, credentials, refusal
    kConnectNoRoute,      // every route was down
};
inline constexpr uint32_t kConnectErrorCount = 6;

static_assert(kProtocolSocks + 1 == kProtocolCount && kStatusOther + 1 == kStatusClassCount &&
              kToUpstream + 1 == kDirectionCount && kConnectNoRoute + 1 == kConnectErrorCount);

// The request duration histogram's upper bounds in microseconds, ascending;
// a last bucket, +Inf, follows them. CONNECT and SOCKS exchanges last as
// long as their tunnel, hence the long tail.
inline constexpr uint64_t kDurationBoundsUs[] = {
    5'000,     10'000,    25'000,    50'000,     100'000,    250'000,    500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000, 300'000'000};
inline constexpr uint32_t kDurationBucketCount = std::size(kDurationBoundsUs) + 1;

constexpr const char* protocol_name(uint32_t protocol) {
    constexpr const char* kNames[] = {"http", "connect", "socks"};
    return protocol < kProtocolCount ? kNames[protocol] : "unknown";
}

constexpr const char* status_class_name(uint32_t status_class) {
    constexpr const char* kNames[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    return status_class < kStatusClassCount ? kNames[status_class] : "unknown";
}

constexpr const char* direction_name(uint32_t direction) {
    constexpr const char* kNames[] = {"from_client", "to_client", "from_upstream", "to_upstream"};
    return direction < kDirectionCount ? kNames[direction] : "unknown";
}

constexpr const char* connect_error_name(uint32_t error) {
    constexpr const char* kNames[] = {"resolve", "unreachable", "refused",
                                      "timeout", "parent",      "no_route"};
    return error < kConnectErrorCount ? kNames[error] : "unknown";
}

// The `le` label value of bucket `index`: the bound in seconds, "+Inf" last.
constexpr const char* duration_bucket_name(uint32_t index) {
    constexpr const char* kNames[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                                      "2.5",   "5",    "10",    "30",   "60",  "300",  "+Inf"};
    static_assert(std::size(kNames) == kDurationBucketCount);
    return index < kDurationBucketCount ? kNames[index] : "unknown";
}

// The class of an HTTP status; kStatusOther for 0 (none) and anything
// outside 100..599.
constexpr uint32_t status_class(int status) {
    if (status < 100 || status > 599) return kStatusOther;
    return static_cast<uint32_t>(status / 100 - 1);  // kStatus1xx .. kStatus5xx
}

// The bucket a duration of `us` microseconds falls in: the first whose
// bound it does not exceed (Prometheus buckets are "less than or equal").
constexpr uint32_t duration_bucket(uint64_t us) {
    uint32_t i = 0;
    while (i < std::size(kDurationBoundsUs) && us > kDurationBoundsUs[i]) ++i;
    return i;
}

// The Redis round trip histogram's upper bounds in microseconds: a healthy
// store on the same network answers well under a millisecond; the last
// bound is the command timeout (worker/redis_protocol.h).
inline constexpr uint64_t kRedisLatencyBoundsUs[] = {100,   250,    500,    1'000,   2'500,
                                                     5'000, 10'000, 25'000, 100'000, 500'000};
inline constexpr uint32_t kRedisLatencyBucketCount = std::size(kRedisLatencyBoundsUs) + 1;

constexpr const char* redis_latency_bucket_name(uint32_t index) {
    constexpr const char* kNames[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                      "0.01",   "0.025",   "0.1",    "0.5",   "+Inf"};
    static_assert(std::size(kNames) == kRedisLatencyBucketCount);
    return index < kRedisLatencyBucketCount ? kNames[index] : "unknown";
}

constexpr uint32_t redis_latency_bucket(uint64_t us) {
    uint32_t i = 0;
    while (i < std::size(kRedisLatencyBoundsUs) && us > kRedisLatencyBoundsUs[i]) ++i;
    return i;
}

}  // namespace common::metrics
