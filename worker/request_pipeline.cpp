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
    callback_ = std::move(callback);
    // authenticate: every listener is auth = none until accounts exist.
    if (auto refusal = authorize(context_.config->acl, intent)) {
        PipelineResult refused;
        refused.refusal = std::move(refusal);
        refused.refused_by_policy = true;
        finish(std::move(refused));
        return;
    }
    admission_ = Admission();
    route_ = choose_route(*context_.config, intent);
    if (may_reuse && !intent.tunnel()) {
        if (auto pooled = context_.pool->take(pool_key(intent, route_))) {
            PipelineResult reused;
            reused.upstream = std::move(pooled->connection);
            reused.peer = pooled->peer;
            reused.route = route_;
            reused.admission = std::move(admission_);
            reused.reused = true;
            finish(std::move(reused));
            return;
        }
    }
    dial(intent);
}

void RequestPipeline::dial(const Intent& intent) {
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy, context_.pool);
    connect_->start(intent.destination.host, intent.destination.port,
                    [this](ConnectResult&& connected) { on_dialled(std::move(connected)); });
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
    PipelineResult result;
    if (connected.error != ConnectError::kNone) {
        result.refusal = make_refusal(cause_of(connected.error), std::move(connected.detail));
        admission_ = Admission();  // a refused request holds nothing
    } else {
        result.upstream = std::move(connected.connection);
        result.peer = connected.peer;
        result.route = route_;
        result.admission = std::move(admission_);
    }
    finish(std::move(result));
}

void RequestPipeline::finish(PipelineResult&& result) {
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may cancel this
}

}  // namespace worker
