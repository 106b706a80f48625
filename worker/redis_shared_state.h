// The shared state kept in a Redis server ([cluster] redis), so per-user
// limits, destination budgets and sticky routes hold across every node
// that names it. One hiredis connection per worker, on the worker's loop;
// every call is one EVALSHA of a script (redis_protocol.h), so a
// check-and-take is one round trip, and nothing blocks the loop.
//
//   state        on entry                   calls
//   connecting   start(), a back-off ends   sent (hiredis queues them) on the
//                                           first connect; answered by the
//                                           fallback when reconnecting
//   up           connect callback OK        sent; answered from the reply
//   down         error, timeout, EOF        answered by the fallback; a timer
//                                           reconnects after the back-off
//
// The fallback (on_redis_down): `local` answers from this node's shared
// table, so each node enforces alone; `deny` answers "down" and the pipeline
// refuses the request (users without a limit, requests without a budget or
// a session ID ask nothing of Redis and are never refused). A lease taken
// from the local table stays there until released.
//
// Sticky values are cached per worker for min(TTL / 4, kStickyCacheFor): a
// session's requests within that window pay no round trip for their route.
// The window is how long this worker may keep sending a session by its old
// route after another node moved it (its route failed there); a route that
// fails here asks Redis again at once (the call avoids the cached value).
//
// Every connect and command has a deadline (redis::kTimeout): the oldest
// call in flight past it drops the connection, which answers every call in
// flight by the fallback. On connect the scripts are loaded and this
// worker's holdings written again (resync), so releases lost while Redis
// was away do not leak. State changes are logged once, not per request.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/address.h"
#include "common/config.h"
#include "common/libevent_handles.h"
#include "common/metrics.h"
#include "worker/redis_protocol.h"
#include "worker/shared_state.h"

struct redisAsyncContext;
struct redisReply;

namespace worker {

// What the `cluster` command reports of one worker's connection.
struct RedisStatus {
    // The values of common::channel::ClusterState.
    enum class State : uint8_t { kOff, kConnecting, kUp, kDown };
    State state = State::kOff;
    std::string last_error;                            // empty: none yet
    std::chrono::system_clock::time_point error_at{};  // when last_error happened
    uint64_t latency_ewma_us = 0;                      // of replies, weight 1/8
    uint64_t latency_max_us = 0;                       // since the last report
};

class RedisSharedState final : public SharedState {
  public:
    // Connects from `base`'s loop to `address`. `local` answers while Redis
    // is down with on_redis_down = local; `counters` gets the redis metrics.
    // Both must outlive this.
    RedisSharedState(event_base* base, const common::ClusterConfig& cluster,
                     LocalSharedState& local, common::metrics::Counters& counters,
                     std::string holder);
    // Gives this worker's holdings back in Redis (best effort, without
    // waiting) and closes the connection; no callback runs after.
    ~RedisSharedState() override;
    RedisSharedState(const RedisSharedState&) = delete;
    RedisSharedState& operator=(const RedisSharedState&) = delete;

    // Starts connecting. False when the timers cannot be made.
    bool start();

    Ticket acquire(std::string_view key, uint32_t limit, AcquireCallback callback) override;
    Ticket take(std::string_view key, double rate, uint32_t burst, TakeCallback callback) override;
    Ticket stick(std::string_view key, uint32_t proposed, std::chrono::nanoseconds ttl,
                 uint32_t avoid, StickCallback callback) override;
    void cancel(Ticket ticket) override;

    static constexpr std::chrono::milliseconds kStickyCacheFor{1000};
    static constexpr size_t kStickyCacheEntries = 4096;
    std::string down_detail() const override;

    // The status, and its latency maximum restarted.
    RedisStatus take_status();
    const std::string& holder() const { return holder_; }

  private:
    // A call in flight, keyed by ticket (sent order). What the fallback
    // needs to answer it if the connection is lost.
    struct Call {
        redis::Script script;
        std::vector<std::string> args;
        std::chrono::steady_clock::time_point sent;
        bool resent = false;  // once after NOSCRIPT, as EVAL
        std::string key;      // the table key
        uint32_t limit = 0;
        double rate = 0;
        uint32_t burst = 0;
        uint32_t proposed = 0;
        uint32_t avoid = 0;
        std::chrono::nanoseconds ttl{0};
        AcquireCallback on_acquire;  // at most one set; none once cancelled
        TakeCallback on_take;
        StickCallback on_stick;
    };

    bool sendable() const;
    Ticket send(Call&& call);
    bool issue(Ticket ticket, Call& call);
    void background(redis::Script script, std::vector<std::string> args);
    void connect();
    void on_connected(int status);
    void lose(const std::string& reason, bool free_context);
    void answer_all_by_fallback();
    void fallback(Call& call);
    void on_reply(Ticket ticket, redisReply* reply);
    void complete(Call& call, redisReply* reply);
    void note_latency(std::chrono::steady_clock::time_point sent);
    void note_error(const std::string& error);
    void resync();
    void arm_watchdog();
    bool answer_from_cache(std::string_view key, uint32_t avoid, StickCallback& callback);
    void cache_sticky(const std::string& key, uint32_t value, std::chrono::nanoseconds ttl);
    void release(void* cookie) noexcept override;

    static void on_connect_cb(const redisAsyncContext* context, int status);
    static void on_disconnect_cb(const redisAsyncContext* context, int status);
    static void on_reply_cb(redisAsyncContext* context, void* reply, void* privdata);
    static void on_watchdog(evutil_socket_t, short, void* arg) noexcept;
    static void on_reconnect(evutil_socket_t, short, void* arg) noexcept;
    static void on_refresh(evutil_socket_t, short, void* arg) noexcept;

    event_base* base_;
    common::SocketAddress address_;
    common::OnRedisDown policy_;
    LocalSharedState& local_;
    common::metrics::Counters& counters_;
    std::string holder_;
    redisAsyncContext* context_ = nullptr;  // owned by hiredis once connecting
    RedisStatus status_;
    bool ever_up_ = false;
    bool announced_down_ = false;  // the warning for this outage is logged
    unsigned attempt_ = 0;         // reconnects since the last success
    Ticket next_ticket_ = 1;
    std::map<Ticket, Call> calls_;
    // This worker's units per table key, as granted by Redis: the resync
    // writes them again. A lease's cookie points at its entry (stable in
    // an unordered_map); the entry goes when its count reaches 0.
    std::unordered_map<std::string, uint32_t> held_;
    struct Cached {
        uint32_t value = 0;
        std::chrono::steady_clock::time_point until{};
    };
    std::unordered_map<std::string, Cached> sticky_cache_;  // at most kStickyCacheEntries
    common::EventPtr watchdog_;
    common::EventPtr reconnect_;
    common::EventPtr refresh_;
    std::chrono::steady_clock::time_point connect_started_{};
};

}  // namespace worker
