// What HTTP CONNECT and SOCKS do alike once the pipeline connected their
// upstream and their own success reply is queued: hand both connections to
// a Tunnel with the configured limits, count it, and at its end add its
// bytes to the exchange record and the counters and close the record.
#pragma once

#include <functional>
#include <memory>

#include "common/libevent_handles.h"
#include "worker/exchange_record.h"
#include "worker/tunnel.h"

namespace worker {

struct WorkerContext;

// `record` must outlive the tunnel; `done` runs once at its end, after the
// record was finished, and may close the session that owns the tunnel.
std::unique_ptr<Tunnel> start_tunnel(WorkerContext& context, common::BufferEventPtr client,
                                     common::BufferEventPtr upstream, ExchangeRecord& record,
                                     std::function<void()> done);

}  // namespace worker
