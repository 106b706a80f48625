#include "worker/tunnel_start.h"

#include <string_view>

#include "worker/worker_context.h"

namespace worker {

std::unique_ptr<Tunnel> start_tunnel(WorkerContext& context, common::BufferEventPtr client,
                                     common::BufferEventPtr upstream, ExchangeRecord& record,
                                     std::function<void()> done) {
    context.counters.tunnels++;
    record.status = 200;
    const common::LimitsConfig& limits = context.config->limits;
    auto tunnel = std::make_unique<Tunnel>(
        context.base, context.pipes, std::move(client), std::move(upstream), limits.buffer_size,
        limits.tunnel_idle_timeout,
        [&context, &record, done = std::move(done)](const TunnelTotals& totals) {
            // Every byte was read on one side and written on the other.
            uint64_t relayed = totals.client_to_upstream + totals.upstream_to_client;
            context.counters.bytes_in += relayed;
            context.counters.bytes_out += relayed;
            record.bytes_from_client += totals.client_to_upstream;
            record.bytes_to_client += totals.upstream_to_client;
            if (std::string_view(totals.end_reason) != "closed") record.reason = totals.end_reason;
            record.finish(context);
            done();
        });
    tunnel->start();
    return tunnel;
}

}  // namespace worker
