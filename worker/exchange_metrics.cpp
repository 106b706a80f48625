#include "worker/exchange_metrics.h"

namespace worker {

namespace m = common::metrics;

uint32_t protocol_of(const ExchangeRecord& record) {
    if (record.version_minor < 0) return m::kProtocolSocks;
    return record.method == "CONNECT" ? m::kProtocolConnect : m::kProtocolHttp;
}

std::optional<uint32_t> connect_error_of(RefusalCause cause) {
    switch (cause) {
        case RefusalCause::kResolve:
        case RefusalCause::kResolveTimeout:
            return m::kConnectResolve;
        case RefusalCause::kUnreachable:
            return m::kConnectUnreachable;
        case RefusalCause::kConnectRefused:
            return m::kConnectRefused;
        case RefusalCause::kConnectTimeout:
            return m::kConnectTimeout;
        case RefusalCause::kParentTls:
        case RefusalCause::kParentCertificate:
        case RefusalCause::kParentAuth:
        case RefusalCause::kParentRefused:
            return m::kConnectParent;
        case RefusalCause::kNoRoute:
            return m::kConnectNoRoute;
        default:
            return std::nullopt;
    }
}

void count_exchange(const ExchangeRecord& record, std::chrono::steady_clock::duration duration,
                    m::Counters& counters) {
    const uint32_t row = protocol_of(record) * m::kStatusClassCount;
    counters.exchanges[row + m::status_class(record.status)]++;
    counters.exchange_bytes[m::kFromClient] += record.bytes_from_client;
    counters.exchange_bytes[m::kToClient] += record.bytes_to_client;
    counters.exchange_bytes[m::kFromUpstream] += record.bytes_from_upstream;
    counters.exchange_bytes[m::kToUpstream] += record.bytes_to_upstream;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
    const uint64_t observed = us > 0 ? static_cast<uint64_t>(us) : 0;
    counters.request_duration[m::duration_bucket(observed)]++;
    counters.request_duration[m::kDurationBucketCount] += observed;  // the sum
    if (record.refusal) {
        if (std::optional<uint32_t> error = connect_error_of(*record.refusal)) {
            counters.upstream_connect_errors[*error]++;
        }
    }
}

}  // namespace worker
