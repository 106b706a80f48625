#include "worker/redis_shared_state.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

// The adapter is a header of static C functions; its unused-parameter style
// is not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <hiredis/adapters/libevent.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "common/timeval.h"

namespace worker {

namespace {

using Clock = std::chrono::steady_clock;
namespace m = common::metrics;

uint64_t micros_since(Clock::time_point then) {
    auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - then);
    return static_cast<uint64_t>(std::max<int64_t>(0, elapsed.count()));
}

timeval timeval_of(std::chrono::milliseconds ms) {
    return common::to_timeval(std::max(ms, std::chrono::milliseconds(1)));
}

}  // namespace

RedisSharedState::RedisSharedState(event_base* base, const common::ClusterConfig& cluster,
                                   LocalSharedState& local, common::metrics::Counters& counters,
                                   std::string holder)
    : base_(base),
      address_(*cluster.redis),
      policy_(cluster.on_redis_down),
      local_(local),
      counters_(counters),
      holder_(std::move(holder)) {}

RedisSharedState::~RedisSharedState() {
    for (auto& [ticket, call] : calls_) {
        call.on_acquire = nullptr;
        call.on_take = nullptr;
        call.on_stick = nullptr;
    }
    if (context_ != nullptr && status_.state == RedisStatus::State::kUp) {
        // The process is going: give back what it holds now rather than in
        // kHolderTtl, with one write that does not wait for an answer.
        background(redis::Script::kDrop, redis::drop_args(holder_));
        if (context_ != nullptr) {
            int done = 0;
            redisBufferWrite(&context_->c, &done);
        }
    }
    redisAsyncContext* context = context_;
    context_ = nullptr;
    if (context != nullptr) {
        context->data = nullptr;  // the NULL answers hiredis gives its queue find no owner
        redisAsyncFree(context);
    }
    calls_.clear();
}

bool RedisSharedState::start() {
    watchdog_.reset(evtimer_new(base_, on_watchdog, this));
    reconnect_.reset(evtimer_new(base_, on_reconnect, this));
    refresh_.reset(event_new(base_, -1, EV_PERSIST, on_refresh, this));
    if (!watchdog_ || !reconnect_ || !refresh_) return false;
    timeval every = timeval_of(redis::kHolderRefresh);
    event_add(refresh_.get(), &every);
    connect();
    return true;
}

std::string RedisSharedState::down_detail() const {
    return "the cluster store (Redis " + address_.to_string() + ") is unreachable";
}

RedisStatus RedisSharedState::take_status() {
    RedisStatus status = status_;
    status_.latency_max_us = 0;
    return status;
}

// -------------------------------------------------------------- connection

void RedisSharedState::connect() {
    status_.state = RedisStatus::State::kConnecting;
    connect_started_ = Clock::now();
    const std::string host = address_.host_string();
    redisAsyncContext* context = redisAsyncConnect(host.c_str(), address_.port());
    if (context == nullptr || context->err != 0) {
        std::string error = context != nullptr ? context->errstr : "out of memory";
        if (context != nullptr) redisAsyncFree(context);
        lose("connect: " + error, false);
        return;
    }
    context->data = this;
    if (redisLibeventAttach(context, base_) != REDIS_OK) {
        redisAsyncFree(context);
        lose("cannot attach the connection to the loop", false);
        return;
    }
    redisAsyncSetConnectCallback(context, on_connect_cb);
    redisAsyncSetDisconnectCallback(context, on_disconnect_cb);
    context_ = context;
    counters_.redis_commands += redis::kScriptCount + 1;
    // Queued before any call: hiredis sends them once connected, in order,
    // so the EVALSHAs after them find their scripts and this worker's
    // holdings are written again before it takes more.
    for (size_t i = 0; i < redis::kScriptCount; ++i) {
        const std::string& source = redis::script_source(static_cast<redis::Script>(i));
        redisAsyncCommand(context, nullptr, nullptr, "SCRIPT LOAD %b", source.data(),
                          source.size());
    }
    resync();
    arm_watchdog();
}

void RedisSharedState::on_connected(int status) {
    if (status != REDIS_OK) {
        // hiredis frees the context after this callback.
        lose(std::string("connect: ") +
                 (context_->errstr[0] != '\0' ? context_->errstr : "connection failed"),
             false);
        return;
    }
    status_.state = RedisStatus::State::kUp;
    counters_.redis_up = 1;
    if (ever_up_) counters_.redis_reconnects++;
    if (announced_down_) {
        LOG_INFO(
            "the cluster store (Redis %s) is reachable again: limits, budgets and sticky "
            "routes are shared again",
            address_.to_string().c_str());
    }
    ever_up_ = true;
    announced_down_ = false;
    attempt_ = 0;
}

// The connection is gone (or never came): every call in flight is answered
// by the fallback, and a timer reconnects after the back-off. With
// `free_context` the context is ours to free (a timeout); otherwise hiredis
// is freeing it (an error, EOF).
void RedisSharedState::lose(const std::string& reason, bool free_context) {
    note_error(reason);
    redisAsyncContext* context = context_;
    context_ = nullptr;
    counters_.redis_up = 0;
    status_.state = RedisStatus::State::kDown;
    if (!announced_down_) {
        announced_down_ = true;
        LOG_WARN("the cluster store (Redis %s) is unreachable (%s): %s until it returns",
                 address_.to_string().c_str(), reason.c_str(),
                 policy_ == common::OnRedisDown::kLocal
                     ? "this node enforces limits, budgets and sticky routes alone"
                     : "requests that need it are refused (on_redis_down = deny)");
    }
    if (context != nullptr) {
        context->data = nullptr;  // its callbacks find no owner now
        if (free_context) redisAsyncFree(context);
    }
    answer_all_by_fallback();
    if (watchdog_) evtimer_del(watchdog_.get());
    timeval delay = timeval_of(redis::backoff(attempt_++));
    if (reconnect_) evtimer_add(reconnect_.get(), &delay);
}

void RedisSharedState::answer_all_by_fallback() {
    // A callback may cancel or start calls: take one at a time.
    while (!calls_.empty()) {
        Call call = std::move(calls_.begin()->second);
        calls_.erase(calls_.begin());
        fallback(call);
    }
}

// Calls go to Redis when it is up, and while the first connection is being
// made (queued in hiredis, so a request just after start waits for it
// rather than falling back); while reconnecting they fall back at once.
bool RedisSharedState::sendable() const {
    if (context_ == nullptr) return false;
    return status_.state == RedisStatus::State::kUp || !ever_up_;
}

void RedisSharedState::note_error(const std::string& error) {
    counters_.redis_errors++;
    status_.last_error = error;
    status_.error_at = std::chrono::system_clock::now();
}

void RedisSharedState::note_latency(Clock::time_point sent) {
    uint64_t us = micros_since(sent);
    counters_.redis_latency[m::redis_latency_bucket(us)]++;
    counters_.redis_latency[m::kRedisLatencyBucketCount] += us;
    status_.latency_ewma_us =
        status_.latency_ewma_us == 0 ? us : (status_.latency_ewma_us * 7 + us) / 8;
    status_.latency_max_us = std::max(status_.latency_max_us, us);
}

void RedisSharedState::resync() {
    std::vector<redis::Holding> held;
    held.reserve(held_.size());
    for (const auto& [key, count] : held_) held.push_back({key, count});
    background(redis::Script::kResync, redis::resync_args(holder_, held));
}

// A deadline for the oldest call in flight, or for the connect.
void RedisSharedState::arm_watchdog() {
    if (!watchdog_ || evtimer_pending(watchdog_.get(), nullptr)) return;
    timeval delay = timeval_of(redis::kTimeout);
    evtimer_add(watchdog_.get(), &delay);
}

void RedisSharedState::on_watchdog(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<RedisSharedState*>(arg);
    if (self->context_ == nullptr) return;
    Clock::time_point oldest = self->status_.state == RedisStatus::State::kConnecting
                                   ? self->connect_started_
                                   : Clock::time_point::max();
    for (const auto& [ticket, call] : self->calls_) oldest = std::min(oldest, call.sent);
    if (oldest == Clock::time_point::max()) return;
    auto age = Clock::now() - oldest;
    if (age >= redis::kTimeout) {
        self->lose("no answer within " + std::to_string(redis::kTimeout.count()) + " ms", true);
        return;
    }
    timeval rest =
        timeval_of(std::chrono::duration_cast<std::chrono::milliseconds>(redis::kTimeout - age) +
                   std::chrono::milliseconds(1));
    evtimer_add(self->watchdog_.get(), &rest);
}

void RedisSharedState::on_reconnect(evutil_socket_t, short, void* arg) noexcept {
    static_cast<RedisSharedState*>(arg)->connect();
}

// Keeps this worker's holdings counting; a lapse (the worker or Redis
// stalled past kHolderTtl) means others may have deleted them: write them
// again.
void RedisSharedState::on_refresh(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<RedisSharedState*>(arg);
    if (self->status_.state != RedisStatus::State::kUp) return;
    Call call;
    call.script = redis::Script::kRefresh;
    call.args = redis::refresh_args(self->holder_);
    self->send(std::move(call));
}

void RedisSharedState::on_connect_cb(const redisAsyncContext* context, int status) {
    auto* self = static_cast<RedisSharedState*>(context->data);
    if (self != nullptr && self->context_ == context) self->on_connected(status);
}

void RedisSharedState::on_disconnect_cb(const redisAsyncContext* context, int) {
    auto* self = static_cast<RedisSharedState*>(context->data);
    if (self != nullptr && self->context_ == context) {
        self->lose(context->errstr[0] != '\0' ? context->errstr : "connection closed", false);
    }
}

// ---------------------------------------------------------------- calls

SharedState::Ticket RedisSharedState::send(Call&& call) {
    Ticket ticket = next_ticket_++;
    auto [it, inserted] = calls_.emplace(ticket, std::move(call));
    it->second.sent = Clock::now();
    if (!issue(ticket, it->second)) {
        Call failed = std::move(it->second);
        calls_.erase(it);
        lose("cannot send a command", true);
        fallback(failed);
        return 0;
    }
    arm_watchdog();
    return ticket;
}

// EVALSHA, or EVAL with the source once the server said NOSCRIPT.
bool RedisSharedState::issue(Ticket ticket, Call& call) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    const std::string& head =
        call.resent ? redis::script_source(call.script) : redis::script_sha(call.script);
    const char* command = call.resent ? "EVAL" : "EVALSHA";
    argv.push_back(command);
    lengths.push_back(strlen(command));
    argv.push_back(head.data());
    lengths.push_back(head.size());
    for (const std::string& arg : call.args) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    counters_.redis_commands++;
    return redisAsyncCommandArgv(
               context_, on_reply_cb, reinterpret_cast<void*>(static_cast<uintptr_t>(ticket)),
               static_cast<int>(argv.size()), argv.data(), lengths.data()) == REDIS_OK;
}

// A call without a caller: its reply is only checked for errors.
void RedisSharedState::background(redis::Script script, std::vector<std::string> args) {
    if (context_ == nullptr) return;
    Call call;
    call.script = script;
    call.args = std::move(args);
    send(std::move(call));
}

SharedState::Ticket RedisSharedState::acquire(std::string_view key, uint32_t limit,
                                              AcquireCallback callback) {
    // A user without a limit needs no cluster-wide count: this node's table
    // counts it for `status`, with no round trip.
    if (limit == 0) return local_.acquire(key, limit, std::move(callback));
    Call call;
    call.script = redis::Script::kAcquire;
    call.args = redis::acquire_args(key, holder_, limit);
    call.key = key;
    call.limit = limit;
    call.on_acquire = std::move(callback);
    if (!sendable()) {
        fallback(call);
        return 0;
    }
    return send(std::move(call));
}

SharedState::Ticket RedisSharedState::take(std::string_view key, double rate, uint32_t burst,
                                           TakeCallback callback) {
    Call call;
    call.script = redis::Script::kTake;
    call.args = redis::take_args(key, rate, burst);
    call.key = key;
    call.rate = rate;
    call.burst = burst;
    call.on_take = std::move(callback);
    if (!sendable()) {
        fallback(call);
        return 0;
    }
    return send(std::move(call));
}

SharedState::Ticket RedisSharedState::stick(std::string_view key, uint32_t proposed,
                                            std::chrono::nanoseconds ttl, uint32_t avoid,
                                            StickCallback callback) {
    if (answer_from_cache(key, avoid, callback)) return 0;
    Call call;
    call.script = redis::Script::kStick;
    call.args = redis::stick_args(key, proposed, ttl, avoid);
    call.key = key;
    call.proposed = proposed;
    call.avoid = avoid;
    call.ttl = ttl;
    call.on_stick = std::move(callback);
    if (!sendable()) {
        fallback(call);
        return 0;
    }
    return send(std::move(call));
}

bool RedisSharedState::answer_from_cache(std::string_view key, uint32_t avoid,
                                         StickCallback& callback) {
    auto it = sticky_cache_.find(std::string(key));
    if (it == sticky_cache_.end()) return false;
    if (it->second.until <= Clock::now() || it->second.value == avoid) {
        sticky_cache_.erase(it);
        return false;
    }
    StickResult result;
    result.stick = {it->second.value, 0, true};
    callback(result);
    return true;
}

void RedisSharedState::cache_sticky(const std::string& key, uint32_t value,
                                    std::chrono::nanoseconds ttl) {
    const Clock::time_point now = Clock::now();
    if (sticky_cache_.size() >= kStickyCacheEntries) {
        std::erase_if(sticky_cache_, [&](const auto& entry) { return entry.second.until <= now; });
        // Still full of live entries: start over rather than grow.
        if (sticky_cache_.size() >= kStickyCacheEntries) sticky_cache_.clear();
    }
    auto window = std::min<std::chrono::nanoseconds>(ttl / 4, kStickyCacheFor);
    sticky_cache_[key] = Cached{value, now + std::chrono::duration_cast<Clock::duration>(window)};
}

void RedisSharedState::cancel(Ticket ticket) {
    auto it = calls_.find(ticket);
    if (it == calls_.end()) return;
    // The reply still comes: it must find the call to give back a lease
    // granted meanwhile.
    it->second.on_acquire = nullptr;
    it->second.on_take = nullptr;
    it->second.on_stick = nullptr;
}

// Answers `call` without Redis, by on_redis_down.
void RedisSharedState::fallback(Call& call) {
    bool deny = policy_ == common::OnRedisDown::kDeny;
    if (call.on_acquire) {
        AcquireResult result;
        if (deny) {
            result.refusal = StateRefusal::kDown;
        } else {
            result = local_.acquire_now(call.key, call.limit);
        }
        (deny ? counters_.cluster_denials : counters_.cluster_fallbacks)++;
        AcquireCallback callback = std::move(call.on_acquire);
        callback(std::move(result));
    } else if (call.on_take) {
        TakeResult result;
        if (deny) {
            result.down = true;
        } else {
            result = local_.take_now(call.key, call.rate, call.burst);
        }
        (deny ? counters_.cluster_denials : counters_.cluster_fallbacks)++;
        TakeCallback callback = std::move(call.on_take);
        callback(result);
    } else if (call.on_stick) {
        StickResult result;
        if (deny) {
            result.down = true;
            result.stick.value = call.proposed;
        } else {
            result = local_.stick_now(call.key, call.proposed, call.ttl, call.avoid);
        }
        (deny ? counters_.cluster_denials : counters_.cluster_fallbacks)++;
        StickCallback callback = std::move(call.on_stick);
        callback(result);
    }
}

void RedisSharedState::on_reply_cb(redisAsyncContext* context, void* reply, void* privdata) {
    auto* self = static_cast<RedisSharedState*>(context->data);
    if (self == nullptr) return;
    self->on_reply(static_cast<Ticket>(reinterpret_cast<uintptr_t>(privdata)),
                   static_cast<redisReply*>(reply));
}

void RedisSharedState::on_reply(Ticket ticket, redisReply* reply) {
    auto it = calls_.find(ticket);
    if (it == calls_.end()) return;
    if (reply == nullptr) {
        // The connection is going: hiredis answers what it had queued.
        lose(context_ != nullptr && context_->errstr[0] != '\0' ? context_->errstr
                                                                : "connection lost",
             false);
        return;
    }
    if (redis::is_noscript(reply) && !it->second.resent) {
        // The server lost its script cache (SCRIPT FLUSH, a failover):
        // send the source once, under the same ticket; EVAL caches it again.
        it->second.resent = true;
        it->second.sent = Clock::now();
        if (!issue(ticket, it->second)) lose("cannot send a command", true);
        return;
    }
    Call call = std::move(it->second);
    calls_.erase(it);
    note_latency(call.sent);
    complete(call, reply);
}

// Reads the reply of `call` and answers its caller.
void RedisSharedState::complete(Call& call, redisReply* reply) {
    bool failed = false;
    switch (call.script) {
        case redis::Script::kAcquire: {
            auto granted = redis::parse_acquire(reply);
            if (!granted) {
                failed = true;
                break;
            }
            AcquireResult result;
            if (*granted) {
                auto [entry, fresh] = held_.try_emplace(call.key, 0);
                entry->second++;
                result.lease = StateLease(this, &*entry);
            } else {
                result.refusal = StateRefusal::kAtLimit;
            }
            // Cancelled: the lease, if any, goes back as `result` dies.
            if (call.on_acquire) {
                AcquireCallback callback = std::move(call.on_acquire);
                callback(std::move(result));
            }
            return;
        }
        case redis::Script::kTake: {
            auto wait = redis::parse_take(reply);
            if (!wait) {
                failed = true;
                break;
            }
            if (call.on_take) {
                TakeCallback callback = std::move(call.on_take);
                callback(TakeResult{wait->count() == 0, *wait, false});
            }
            return;
        }
        case redis::Script::kStick: {
            auto stuck = redis::parse_stick(reply);
            if (!stuck || stuck->value == 0) {
                failed = true;
                break;
            }
            cache_sticky(call.key, stuck->value, call.ttl);
            if (call.on_stick) {
                StickResult result;
                result.stick = {stuck->value, stuck->previous, true};
                StickCallback callback = std::move(call.on_stick);
                callback(result);
            }
            return;
        }
        case redis::Script::kRefresh: {
            auto live = redis::parse_refresh(reply);
            if (live && !*live) {
                LOG_WARN(
                    "this worker's holdings in the cluster store had lapsed (it or Redis "
                    "stalled over %lld ms): writing them again",
                    static_cast<long long>(redis::kHolderTtl.count()));
                resync();
            }
            failed = !live;
            break;
        }
        default:
            failed = reply->type == REDIS_REPLY_ERROR;
            break;
    }
    if (!failed) return;
    std::string error = reply->type == REDIS_REPLY_ERROR && reply->str != nullptr
                            ? std::string(reply->str, reply->len)
                            : "unexpected reply";
    note_error(error);
    LOG_DEBUG("Redis %s: %s", address_.to_string().c_str(), error.c_str());
    // The store answered but could not decide: the fallback does.
    fallback(call);
}

void RedisSharedState::release(void* cookie) noexcept {
    auto* entry = static_cast<std::pair<const std::string, uint32_t>*>(cookie);
    std::string key = entry->first;
    if (--entry->second == 0) held_.erase(key);
    // While Redis is away the count above is the truth; the resync on
    // reconnect writes it. While connecting, the resync queued first still
    // has the old count, so the release goes after it on the same connection.
    if (context_ != nullptr) {
        background(redis::Script::kRelease, redis::release_args(key, holder_));
    }
}

}  // namespace worker
