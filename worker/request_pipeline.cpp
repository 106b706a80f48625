#include "worker/request_pipeline.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>

#include "common/log.h"
#include "common/timeval.h"
#include "worker/authenticator.h"
#include "worker/deferred_delete.h"
#include "worker/policy.h"
#include "worker/refusal.h"
#include "worker/upstream_pool.h"
#include "worker/worker_context.h"

namespace worker {

namespace {

using Clock = RouteTable::Clock;

// A key longer than the shared table takes is replaced by its SHA-256: a
// client choosing host names cannot make two keys share a count.
std::string fit_key(std::string key) {
    if (key.size() <= common::SharedTable::kMaxKeyBytes) return key;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(key.data(), key.size(), digest, &length, EVP_sha256(), nullptr);
    static const char kHex[] = "0123456789abcdef";
    std::string hashed = key.substr(0, key.find(':') + 1) + "#";
    for (unsigned int i = 0; i < length; ++i) {
        hashed.push_back(kHex[digest[i] >> 4]);
        hashed.push_back(kHex[digest[i] & 15]);
    }
    return hashed;
}

bool is_ip_literal(const common::ProxyTarget& target) {
    return target.ipv6_literal || common::SocketAddress::from_numeric(target.host, 0).has_value();
}

// What the route's dial failing says about the route: a parent that does
// not answer is down; a destination that does not is not the route's fault.
bool is_route_failure(const Route& route, ConnectError error) {
    if (error == ConnectError::kBind) return true;
    if (route.parent == nullptr) return false;
    return error == ConnectError::kRefused || error == ConnectError::kTimeout ||
           error == ConnectError::kUnreachable || error == ConnectError::kResolve ||
           error == ConnectError::kResolveTimeout;
}

Refusal refusal_of(const Route& route, ParentResult& handshake) {
    switch (handshake.error) {
        case ParentError::kTls:
            return make_refusal(RefusalCause::kParentTls, std::move(handshake.detail));
        case ParentError::kCertificate:
            return make_refusal(RefusalCause::kParentCertificate, std::move(handshake.detail));
        case ParentError::kAuth:
            return make_refusal(RefusalCause::kParentAuth, std::move(handshake.detail));
        case ParentError::kRefused: {
            Refusal refusal =
                make_refusal(RefusalCause::kParentRefused, std::move(handshake.detail));
            // A SOCKS client hears what the parent said of the destination.
            if (route.parent->scheme == common::ParentScheme::kSocks5) {
                refusal.socks_reply = handshake.socks_reply;
            }
            return refusal;
        }
        case ParentError::kTimeout:
            return make_refusal(RefusalCause::kConnectTimeout, std::move(handshake.detail));
        case ParentError::kNoResources:
            return make_refusal(RefusalCause::kInternal, std::move(handshake.detail));
        case ParentError::kProtocol:
        case ParentError::kClosed:
        case ParentError::kNone:
            break;
    }
    return make_refusal(RefusalCause::kUpstreamProtocol, std::move(handshake.detail));
}

}  // namespace

std::string pool_key(const Intent& intent, const Route& route) {
    return intent.destination.authority() + " " + route.name;
}

std::string budget_key(std::string_view host, const Route& route) {
    std::string key = "dst:";
    key.append(host).append("|");
    if (route.parent != nullptr) {
        key.append("parent:").append(route.parent->name);
    } else if (route.source != nullptr) {
        key.append(route.source->host_string());
    } else {
        key.append("-");
    }
    return fit_key(std::move(key));
}

std::string sticky_key(const Account& account) {
    return fit_key("sticky:" + account.name + ":" + account.session_id);
}

uint32_t lease_limit(const Account& account) {
    return static_cast<uint32_t>(std::min<uint64_t>(account.max_sessions, UINT32_MAX));
}

std::optional<Refusal> admit(AcquireResult&& result, Admission& admission,
                             const SharedState& state) {
    const Account& account = *admission.account;
    switch (result.refusal) {
        case StateRefusal::kNone:
            if (result.lease) admission.hold(std::move(result.lease));
            return std::nullopt;
        case StateRefusal::kAtLimit:
            return make_refusal(RefusalCause::kUserLimit,
                                "user " + account.name + " is at its limit of " +
                                    std::to_string(account.max_sessions) +
                                    " concurrent sessions (max_sessions)");
        case StateRefusal::kDown:
            return make_refusal(RefusalCause::kSharedStateDown, state.down_detail());
        case StateRefusal::kBroken:
            return make_refusal(RefusalCause::kInternal, "the session table is unusable");
        case StateRefusal::kFull:
            break;
    }
    return make_refusal(RefusalCause::kInternal, "the session table is full");
}

RequestPipeline::~RequestPipeline() {
    cancel();
}

void RequestPipeline::start(const Intent& intent, bool may_reuse, Callback callback) {
    cancel();
    callback_ = std::move(callback);
    intent_ = &intent;
    may_reuse_ = may_reuse;
    route_ = nullptr;
    tried_.clear();
    last_failure_.reset();
    // The first stage, for every protocol: a client outside allow_clients
    // is refused before its credentials are looked at, and the connection
    // closes after the answer.
    if (auto refusal = check_client(context_.config->acl, *intent.client)) {
        refuse(std::move(*refusal), true);
        return;
    }
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
    if (!account) {
        choose_route();
        return;
    }
    admission_.account = std::move(account);
    const Account& admitted = *admission_.account;
    track(context_.shared_state->acquire(common::user_lease_key(admitted.name),
                                         lease_limit(admitted), [this](AcquireResult&& result) {
                                             state_ticket_ = 0;
                                             on_admitted(std::move(result));
                                         }));
}

void RequestPipeline::on_admitted(AcquireResult&& result) {
    if (auto refusal = admit(std::move(result), admission_, *context_.shared_state)) {
        std::string name = admission_.account->name;
        admission_ = Admission();
        refuse(std::move(*refusal), false, std::move(name));
        return;
    }
    context_.user_sessions.count(admission_.account->name);
    choose_route();
}

// A session ID keeps its route (sticky_route); other requests rotate.
void RequestPipeline::choose_route() {
    const Clock::time_point now = Clock::now();
    const Account* account = admission_.account ? &*admission_.account : nullptr;
    if (account != nullptr && !account->session_id.empty()) {
        sticky_route(*account, now);
        return;
    }
    route_chosen(context_.routes->rotate(now, tried_));
}

void RequestPipeline::route_chosen(const Route* route) {
    route_ = route;
    if (route_ == nullptr) {
        // After a failure with nothing left to try, the client hears of
        // that failure rather than of the routes' state.
        refuse(last_failure_ ? std::move(*last_failure_)
                             : make_refusal(RefusalCause::kNoRoute,
                                            "no route is up (every way out failed recently)"),
               false);
        return;
    }
    queued_until_ = Clock::now() + context_.config->limits.destination_queue_timeout;
    take_budget();
}

// Every worker proposes the same route for a session (rendezvous hashing
// over the routes it thinks up); the shared sticky map keeps the first one
// stored until the session goes unused for its TTL, or its route fails here.
void RequestPipeline::sticky_route(const Account& account, Clock::time_point now) {
    RouteTable& routes = *context_.routes;
    const Route* proposed = routes.rendezvous(sticky_key(account), now, tried_);
    if (proposed == nullptr) {
        route_chosen(nullptr);
        return;
    }
    sticky_retry_ = false;
    ask_sticky(account, proposed, tried_.empty() ? 0 : routes.routes()[tried_.back()].id);
}

void RequestPipeline::ask_sticky(const Account& account, const Route* proposed, uint32_t avoid) {
    auto ttl = account.ttl.count() > 0
                   ? std::chrono::duration_cast<std::chrono::nanoseconds>(account.ttl)
                   : std::chrono::duration_cast<std::chrono::nanoseconds>(
                         context_.config->route.sticky_ttl);
    track(context_.shared_state->stick(sticky_key(account), proposed->id, ttl, avoid,
                                       [this, proposed](StickResult result) {
                                           state_ticket_ = 0;
                                           on_sticky(result, proposed);
                                       }));
}

void RequestPipeline::on_sticky(const StickResult& result, const Route* proposed) {
    if (result.down) {
        refuse(store_down_refusal(), false);
        return;
    }
    RouteTable& routes = *context_.routes;
    const Account& account = *admission_.account;
    const Route* route = routes.by_id(result.stick.value);
    // The stored route is not one of ours (another configuration) or is
    // down here: the session moves to the proposal.
    if (!sticky_retry_ && (route == nullptr || !routes.up(*route, Clock::now()) ||
                           std::find(tried_.begin(), tried_.end(), route->index) != tried_.end())) {
        sticky_retry_ = true;
        ask_sticky(account, proposed, result.stick.value);
        return;
    }
    if (route == nullptr) route = proposed;
    uint32_t previous = result.stick.previous;
    if (previous != 0 && previous != route->id) {
        const Route* from = routes.by_id(previous);
        LOG_INFO("session %s of user %s moves from route %s to route %s: %s",
                 account.session_id.c_str(), account.name.c_str(),
                 from != nullptr ? from->name.c_str() : "(gone)", route->name.c_str(),
                 tried_.empty() ? "the route is down" : "the route failed");
    }
    route_chosen(route);
}

// The destination's budget from this route's exit. While a token is due
// within destination_queue_timeout the request waits on a timer; the loop
// serves everything else meanwhile.
void RequestPipeline::take_budget() {
    const common::LimitsConfig& limits = context_.config->limits;
    if (limits.destination_rate <= 0) {
        take_pooled_or_dial();
        return;
    }
    uint32_t burst =
        static_cast<uint32_t>(std::min<uint64_t>(limits.destination_burst, UINT32_MAX));
    track(context_.shared_state->take(budget_key(intent_->destination.host, *route_),
                                      limits.destination_rate, burst, [this](TakeResult result) {
                                          state_ticket_ = 0;
                                          on_budget(result);
                                      }));
}

void RequestPipeline::on_budget(const TakeResult& result) {
    if (result.taken) {
        take_pooled_or_dial();
        return;
    }
    if (result.down) {
        refuse(store_down_refusal(), false);
        return;
    }
    const common::LimitsConfig& limits = context_.config->limits;
    std::chrono::nanoseconds wait = result.wait;
    if (wait.count() == 0) {
        refuse(make_refusal(RefusalCause::kInternal, "the budget table is full"), false);
        return;
    }
    if (Clock::now() + wait <= queued_until_) {
        if (!budget_timer_) budget_timer_.reset(evtimer_new(context_.base, on_budget_timer, this));
        timeval delay = common::to_timeval(std::chrono::duration_cast<std::chrono::milliseconds>(
            wait + std::chrono::microseconds(999)));
        if (budget_timer_ && evtimer_add(budget_timer_.get(), &delay) == 0) return;
    }
    std::string exit = route_->parent != nullptr   ? "parent " + route_->parent->name
                       : route_->source != nullptr ? route_->source->host_string()
                                                   : "this proxy";
    char rate[32];
    snprintf(rate, sizeof(rate), "%g", limits.destination_rate);
    Refusal refusal =
        make_refusal(RefusalCause::kDestinationRate,
                     "destination " + intent_->destination.host + " is over its budget of " + rate +
                         " requests/s from " + exit + " (destination_rate)");
    refusal.retry_after = static_cast<uint32_t>(
        std::max<double>(1, std::ceil(std::chrono::duration<double>(wait).count())));
    refuse(std::move(refusal), false);
}

void RequestPipeline::track(SharedState::Ticket ticket) {
    if (ticket != 0) state_ticket_ = ticket;
}

Refusal RequestPipeline::store_down_refusal() const {
    return make_refusal(RefusalCause::kSharedStateDown, context_.shared_state->down_detail());
}

void RequestPipeline::on_budget_timer(evutil_socket_t, short, void* arg) noexcept {
    static_cast<RequestPipeline*>(arg)->take_budget();
}

void RequestPipeline::take_pooled_or_dial() {
    if (may_reuse_ && !intent_->tunnel()) {
        UpstreamPool::InUse in_use;
        if (auto pooled = context_.pool->take(pool_key(*intent_, *route_), &in_use)) {
            succeed(std::move(pooled->connection), pooled->peer, true, std::move(in_use));
            return;
        }
    }
    dial();
}

void RequestPipeline::dial() {
    const Intent& intent = *intent_;
    const common::ParentConfig* parent = route_->parent;
    DialOptions options;
    options.source = route_->source;
    options.allow_private = parent != nullptr;
    if (parent != nullptr && is_ip_literal(intent.destination)) {
        // A private destination is refused before it goes to a parent too:
        // the parent may well sit in the network the rule protects.
        auto literal =
            common::SocketAddress::from_numeric(intent.destination.host, intent.destination.port);
        if (literal &&
            check_dialled_address(context_.connect_policy, *literal) == DialVerdict::kPrivate) {
            refuse(make_refusal(RefusalCause::kPrivateDestination,
                                "destination " + intent.destination.host + " is a private address"),
                   false);
            return;
        }
    }
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy, context_.pool);
    const std::string& host = parent != nullptr ? parent->host : intent.destination.host;
    uint16_t port = parent != nullptr ? parent->port : intent.destination.port;
    connect_->start(host, port, options,
                    [this](ConnectResult&& connected) { on_dialled(std::move(connected)); });
}

void RequestPipeline::on_dialled(ConnectResult&& connected) {
    drop_connector();
    const Route& route = *route_;
    if (connected.error != ConnectError::kNone) {
        std::string detail = route.parent != nullptr
                                 ? "parent " + route.parent->name + ": " + connected.detail
                                 : std::move(connected.detail);
        Refusal refusal = make_refusal(cause_of(connected.error), std::move(detail));
        if (is_route_failure(route, connected.error)) {
            route_failed(std::move(refusal));
        } else {
            refuse(std::move(refusal), false);
        }
        return;
    }
    const common::ParentConfig* parent = route.parent;
    bool tunnel = intent_->tunnel() || (parent && parent->scheme == common::ParentScheme::kSocks5);
    if (parent == nullptr || (parent->scheme == common::ParentScheme::kHttp && !tunnel)) {
        context_.routes->note_success(route);
        succeed(std::move(connected.connection), connected.peer, false);
        return;
    }
    std::optional<TunnelTarget> target;
    if (tunnel) {
        target = TunnelTarget{intent_->destination.host, intent_->destination.port,
                              is_ip_literal(intent_->destination)};
    }
    const common::Config& config = *context_.config;
    handshake_ = std::make_unique<ParentHandshake>(context_.base, *parent, config.proxy.name,
                                                   config.limits.connect_timeout,
                                                   config.limits.max_header_size);
    handshake_->start(std::move(connected.connection), std::move(target),
                      [this, peer = connected.peer](ParentResult&& result) {
                          on_handshake(std::move(result), peer);
                      });
}

void RequestPipeline::on_handshake(ParentResult&& handshake, const common::SocketAddress& peer) {
    drop_connector();
    const Route& route = *route_;
    if (handshake.error == ParentError::kNone) {
        context_.routes->note_success(route);
        succeed(std::move(handshake.connection), peer, false);
        return;
    }
    Refusal refusal = refusal_of(route, handshake);
    if (is_route_failure(handshake.error)) {
        route_failed(std::move(refusal));
    } else {
        refuse(std::move(refusal), false);
    }
}

void RequestPipeline::route_failed(Refusal&& refusal) {
    const Route& route = *route_;
    if (context_.routes->note_failure(route, Clock::now())) {
        LOG_WARN("route %s is down after %s; it is tried again after its retry_after",
                 route.name.c_str(), refusal.detail.c_str());
    }
    tried_.push_back(route.index);
    if (context_.config->route.on_failure == common::OnFailure::kRetryNext &&
        tried_.size() < kMaxRouteAttempts) {
        LOG_INFO("%s; trying another route", refusal.detail.c_str());
        last_failure_ = std::make_unique<Refusal>(std::move(refusal));
        choose_route();
        return;
    }
    refuse(std::move(refusal), false);
}

void RequestPipeline::refuse(Refusal&& refusal, bool by_policy, std::string user) {
    PipelineResult refused;
    refused.refusal = std::move(refusal);
    refused.refused_by_policy = by_policy;
    refused.route = route_;  // the last one tried, if any: the logs name it
    refused.user =
        !user.empty() || !admission_.account ? std::move(user) : admission_.account->name;
    admission_ = Admission();  // a refused request holds nothing
    finish(std::move(refused));
}

void RequestPipeline::succeed(common::BufferEventPtr upstream, const common::SocketAddress& peer,
                              bool reused, UpstreamPool::InUse in_use) {
    PipelineResult result;
    result.in_use = std::move(in_use);
    result.upstream = std::move(upstream);
    result.peer = peer;
    result.route = route_;
    admission_.use(RouteUse(*context_.routes, *route_));
    result.admission = std::move(admission_);
    result.reused = reused;
    finish(std::move(result));
}

void RequestPipeline::cancel() {
    callback_ = nullptr;
    if (auth_ticket_ != 0) {
        context_.authenticator->cancel(auth_ticket_);
        auth_ticket_ = 0;
    }
    if (state_ticket_ != 0) {
        context_.shared_state->cancel(state_ticket_);
        state_ticket_ = 0;
    }
    if (budget_timer_) evtimer_del(budget_timer_.get());
    drop_connector();
}

void RequestPipeline::drop_connector() {
    if (connect_) context_.graveyard->defer(std::move(connect_));
    if (handshake_) context_.graveyard->defer(std::move(handshake_));
}

void RequestPipeline::finish(PipelineResult&& result) {
    if (result.admission.account) result.user = result.admission.account->name;
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may cancel this
}

}  // namespace worker
