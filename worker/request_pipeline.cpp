#include "worker/request_pipeline.h"

#include <algorithm>

#include "worker/authenticator.h"
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
    return intent.destination.authority() + " " + route.name;
}

std::optional<Refusal> admit(common::SharedTable* table, const Account& account,
                             Admission& admission) {
    admission.account = account;
    if (table == nullptr) {
        if (account.max_sessions == 0) return std::nullopt;
        return make_refusal(RefusalCause::kInternal,
                            "sessions cannot be counted (no shared table)");
    }
    uint32_t limit = static_cast<uint32_t>(std::min<uint64_t>(account.max_sessions, UINT32_MAX));
    common::SharedTable::Lease lease = table->acquire(common::user_lease_key(account.name), limit);
    if (lease) {
        admission.hold(std::move(lease));
        return std::nullopt;
    }
    if (lease.refusal() == common::SharedTable::Refusal::kAtLimit) {
        return make_refusal(RefusalCause::kUserLimit, "user " + account.name +
                                                          " is at its limit of " +
                                                          std::to_string(account.max_sessions) +
                                                          " concurrent sessions (max_sessions)");
    }
    return make_refusal(RefusalCause::kInternal,
                        lease.refusal() == common::SharedTable::Refusal::kBroken
                            ? "the session table is unusable"
                            : "the session table is full");
}

RequestPipeline::~RequestPipeline() {
    cancel();
}

void RequestPipeline::start(const Intent& intent, bool may_reuse, Callback callback) {
    cancel();
    callback_ = std::move(callback);
    intent_ = &intent;
    may_reuse_ = may_reuse;
    authenticate();
}

// The listener says whether clients must authenticate; SOCKS5 has done it
// in its handshake already, HTTP presents its credentials with each request.
void RequestPipeline::authenticate() {
    const Intent& intent = *intent_;
    if (intent.listener->auth == common::ListenAuth::kNone || intent.account) {
        after_authentication(intent.account);
        return;
    }
    if (!intent.credentials) {
        refuse(auth_refusal(intent.credentials_error.empty() ? "proxy authentication required"
                                                             : intent.credentials_error),
               false);
        return;
    }
    if (context_.authenticator == nullptr) {
        refuse(make_refusal(RefusalCause::kInternal, "authentication is unavailable"), false);
        return;
    }
    const auto& [user, password] = *intent.credentials;
    auth_ticket_ = context_.authenticator->check(
        user, password, *intent.client, [this](AuthOutcome&& outcome) {
            auth_ticket_ = 0;
            if (outcome.refusal) {
                refuse(std::move(*outcome.refusal), false);
                return;
            }
            after_authentication(std::move(outcome.account));
        });
}

void RequestPipeline::after_authentication(std::optional<Account> account) {
    const Intent& intent = *intent_;
    if (auto refusal = authorize(context_.config->acl, intent)) {
        refuse(std::move(*refusal), true);
        return;
    }
    admission_ = Admission();
    if (account) {
        if (auto refusal = admit(context_.shared_table, *account, admission_)) {
            admission_ = Admission();
            refuse(std::move(*refusal), false, account->name);
            return;
        }
        context_.user_sessions.count(account->name);
    }
    route_ = choose_route(*context_.config, intent);
    if (may_reuse_ && !intent.tunnel()) {
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

void RequestPipeline::refuse(Refusal&& refusal, bool by_policy, std::string user) {
    PipelineResult refused;
    refused.refusal = std::move(refusal);
    refused.refused_by_policy = by_policy;
    refused.user = std::move(user);
    finish(std::move(refused));
}

void RequestPipeline::dial(const Intent& intent) {
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy, context_.pool);
    connect_->start(intent.destination.host, intent.destination.port,
                    [this](ConnectResult&& connected) { on_dialled(std::move(connected)); });
}

void RequestPipeline::cancel() {
    callback_ = nullptr;
    if (auth_ticket_ != 0) {
        context_.authenticator->cancel(auth_ticket_);
        auth_ticket_ = 0;
    }
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
        if (admission_.account) result.user = admission_.account->name;
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
    if (result.admission.account) result.user = result.admission.account->name;
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may cancel this
}

}  // namespace worker
