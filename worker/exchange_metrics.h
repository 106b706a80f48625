// What a finished exchange adds to the worker's counters: its request by
// protocol and status class, its bytes by direction, its duration in the
// histogram, and the class of its upstream connect error if it had one.
// ExchangeRecord::finish() calls it, once per exchange, so HTTP requests,
// CONNECTs and SOCKS connects are counted by this one path.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/metrics.h"
#include "worker/exchange_record.h"
#include "worker/pipeline_types.h"

namespace worker {

// The protocol of `record`: SOCKS when it is not HTTP (version_minor -1),
// CONNECT by its method, else a plain HTTP request.
uint32_t protocol_of(const ExchangeRecord& record);

// The connect error class (common/metric_labels.h) of a refusal cause, or
// nullopt when the cause is not a failure to connect.
std::optional<uint32_t> connect_error_of(RefusalCause cause);

// Adds `record`, which lasted `duration`, to `counters`.
void count_exchange(const ExchangeRecord& record, std::chrono::steady_clock::duration duration,
                    common::metrics::Counters& counters);

}  // namespace worker
