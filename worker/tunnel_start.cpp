#include "worker/tunnel_start.h"

#include <string_view>

#include "worker/worker_context.h"

namespace worker {

std::unique_ptr<OpenTunnel> OpenTunnel::start(WorkerContext& context, common::BufferEventPtr client,
                                              common::BufferEventPtr upstream,
                                              ExchangeRecord record, Admission admission,
                                              std::function<void()> done) {
    context.counters.tunnels++;
    record.status = 200;
    std::unique_ptr<OpenTunnel> open(new OpenTunnel(std::move(record), std::move(admission)));
    OpenTunnel* self = open.get();
    const common::LimitsConfig& limits = context.config->limits;
    open->tunnel_ = std::make_unique<Tunnel>(
        context.base, context.pipes, std::move(client), std::move(upstream), limits.buffer_size,
        limits.tunnel_idle_timeout,
        [&context, self, done = std::move(done)](const TunnelTotals& totals) {
            // Every byte was read on one side and written on the other.
            uint64_t relayed = totals.client_to_upstream + totals.upstream_to_client;
            context.counters.bytes_in += relayed;
            context.counters.bytes_out += relayed;
            ExchangeRecord& r = self->record_;
            r.bytes_from_client += totals.client_to_upstream;
            r.bytes_to_client += totals.upstream_to_client;
            r.bytes_to_upstream += totals.client_to_upstream;
            r.bytes_from_upstream += totals.upstream_to_client;
            if (std::string_view(totals.end_reason) != "closed") r.reason = totals.end_reason;
            r.finish(context);
            done();
        });
    open->tunnel_->start();
    return open;
}

}  // namespace worker
