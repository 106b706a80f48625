// What HTTP CONNECT and SOCKS do alike once the pipeline connected their
// upstream and their own success reply is queued: hand both connections to
// a Tunnel with the configured limits and count it. The OpenTunnel keeps
// only what a held tunnel needs (its record and its admission), so the
// protocol's request state can go once the tunnel runs; at the end it adds
// the tunnel's bytes to the record and the counters and finishes the record.
#pragma once

#include <functional>
#include <memory>

#include "common/libevent_handles.h"
#include "worker/exchange_record.h"
#include "worker/request_pipeline.h"
#include "worker/tunnel.h"

namespace worker {

struct WorkerContext;

class OpenTunnel {
  public:
    // `done` runs once at the tunnel's end, after the record was finished,
    // and may close the session that owns this.
    static std::unique_ptr<OpenTunnel> start(WorkerContext& context, common::BufferEventPtr client,
                                             common::BufferEventPtr upstream, ExchangeRecord record,
                                             Admission admission, std::function<void()> done);

  private:
    OpenTunnel(ExchangeRecord record, Admission admission)
        : record_(std::move(record)), admission_(std::move(admission)) {}

    ExchangeRecord record_;
    Admission admission_;  // given back with the tunnel
    std::unique_ptr<Tunnel> tunnel_;
};

}  // namespace worker
