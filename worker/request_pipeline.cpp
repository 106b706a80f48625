#include "worker/request_pipeline.h"

#include "worker/deferred_delete.h"
#include "worker/policy.h"
#include "worker/refusal.h"
#include "worker/upstream_pool.h"
#include "worker/worker_context.h"

namespace worker {

Route choose_route(const common::Config&, const Intent&) {
    return Route{};
}

std::string pool_key(const Intent& intent, const Route& route) {
    return intent.destination.authority() + " " + route.name();
}

RequestPipeline::~RequestPipeline() {
    drop_connector();
}

void RequestPipeline::start(const Intent& intent, bool may_reuse, Callback callback) {
    drop_connector();
    pending_ = PipelineResult();
    callback_ = std::move(callback);
    // authenticate: every listener is auth = none until accounts exist.
    if (auto refusal = authorize(context_.config->acl, intent)) {
        PipelineResult refused;
        refused.refusal = std::move(refusal);
        refused.refused_by_policy = true;
        finish(std::move(refused));
        return;
    }
    pending_.admission = Admission();
    pending_.route = choose_route(*context_.config, intent);
    if (may_reuse && !intent.tunnel()) {
        if (auto pooled = context_.pool->take(pool_key(intent, pending_.route))) {
            pending_.upstream = std::move(pooled->connection);
            pending_.peer = pooled->peer;
            pending_.reused = true;
            finish(std::move(pending_));
            return;
        }
    }
    dial(intent);
}

void RequestPipeline::dial(const Intent& intent) {
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy);
    connect_->start(intent.destination.host, intent.destination.port,
                    [this](ConnectResult&& connected) {
                        if (!retired()) on_dialled(std::move(connected));
                    });
}

void RequestPipeline::cancel() {
    callback_ = nullptr;
    drop_connector();
}

void RequestPipeline::drop_connector() {
    if (connect_) context_.graveyard->defer(std::move(connect_));
}

void RequestPipeline::on_dialled(ConnectResult&& connected) {
    drop_connector();
    PipelineResult result = std::move(pending_);
    if (connected.error != ConnectError::kNone) {
        result = PipelineResult();
        result.refusal = make_refusal(cause_of(connected.error), std::move(connected.detail));
    } else {
        result.upstream = std::move(connected.connection);
        result.peer = connected.peer;
    }
    finish(std::move(result));
}

void RequestPipeline::finish(PipelineResult&& result) {
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may retire this
}

}  // namespace worker
