#include "worker/exchange_record.h"

#include "worker/access_log.h"
#include "worker/exchange_metrics.h"
#include "worker/refusal.h"
#include "worker/worker_context.h"

namespace worker {

void ExchangeRecord::refuse(const Refusal& r) {
    status = r.http_status;
    reason = r.detail;
    refusal = r.cause;
    error_class = r.error_class;
}

void ExchangeRecord::fail(uint32_t why_class, std::string why) {
    error_class = why_class;
    reason = std::move(why);
}

void ExchangeRecord::finish(WorkerContext& context) {
    if (finished_) return;
    finished_ = true;
    if (error_class) context.counters.errors[*error_class]++;
    const std::chrono::steady_clock::duration duration = std::chrono::steady_clock::now() - started;
    count_exchange(*this, duration, context.counters);
    if (!context.access_log->enabled()) return;
    AccessRecord line;
    line.time = std::chrono::system_clock::now();
    line.client = client;
    line.user = user;
    line.listener = listener;
    line.method = method;
    line.target = target;
    line.version_minor = version_minor;
    line.status = status;
    line.bytes_from_client = bytes_from_client;
    line.bytes_to_client = bytes_to_client;
    line.duration = duration;
    line.upstream = upstream;
    line.route = route;
    if (refusal) line.refusal = cause_name(*refusal);
    line.reason = reason;
    line.referer = referer;
    line.user_agent = user_agent;
    line.pid = context.access_log->pid();
    context.access_log->write(line);
}

}  // namespace worker
