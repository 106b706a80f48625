// Idle upstream connections kept for reuse, per worker, keyed by destination
// and route ("example.com:80 direct"). An idle connection that receives data
// or EOF, or stays idle past the keep-alive timeout, is closed and forgotten.
//
// Two bounds: each key holds at most its cap of connections, and the pool as
// a whole at most `max_idle`, so that a client naming many destinations
// cannot fill the worker's descriptor table with idle sockets (the pool is
// one line of the descriptor budget, common/config.h). Either way the least
// recently pooled connection goes first. evict_oldest() gives descriptors
// back when the worker runs out of them anyway (a hard limit below the
// budget).
//
// A key's cap is fixed (upstream_keepalive_per_destination = N) or follows
// its demand (auto, the default, issue 18): the most connections of the key
// in use at once (an InUse token each, from the pool or freshly connected,
// until it comes back or closes) over the last window of `idle_timeout`, and
// never less than kAutoFloor. A key that had 30 requests in flight keeps the
// 30 connections that served them; when its demand falls, the cap follows
// one to two windows later, and the connections past it close as they come
// back (or, idle, at the keep-alive timeout, which is the same window).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/address.h"
#include "common/libevent_handles.h"

namespace worker {

struct PooledConnection {
    common::BufferEventPtr connection;
    common::SocketAddress peer;
};

class UpstreamPool {
  public:
    using Clock = std::chrono::steady_clock;

  private:
    struct Entry;
    // A key's idle connections and its demand. The record lives while the
    // key has either, so there are at most max_idle + (tokens in use) of them.
    struct KeyState {
        std::vector<Entry*> idle;  // least recently pooled first
        size_t in_use = 0;
        // The most in use at once in the current window, and in the one
        // before it (0 when that one is more than a window ago).
        size_t peak = 0;
        size_t previous_peak = 0;
        Clock::time_point window_start{};
    };
    using KeyMap = std::unordered_map<std::string, KeyState>;

  public:
    // The least an automatic cap keeps per key (the old fixed default).
    static constexpr size_t kAutoFloor = 8;

    // `per_key`: a fixed cap per key (0: pooling off), or none: automatic.
    // `now` is for the tests; the steady clock otherwise.
    UpstreamPool(std::chrono::milliseconds idle_timeout, std::optional<size_t> per_key,
                 size_t max_idle, std::function<Clock::time_point()> now = nullptr)
        : idle_timeout_(idle_timeout),
          per_key_(per_key),
          max_idle_(max_idle),
          now_(now ? std::move(now) : [] { return Clock::now(); }) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // One upstream connection of a key in use (taken from the pool or newly
    // connected), from in_use() until it is destroyed or reset(): the holder
    // keeps it beside the connection and drops it when the connection goes
    // back to the pool or closes. Must not outlive the pool.
    class InUse {
      public:
        InUse() = default;
        InUse(InUse&& other) noexcept : pool_(other.pool_), key_(other.key_) {
            other.pool_ = nullptr;
            other.key_ = nullptr;
        }
        InUse& operator=(InUse&& other) noexcept {
            if (this != &other) {
                reset();
                pool_ = other.pool_;
                key_ = other.key_;
                other.pool_ = nullptr;
                other.key_ = nullptr;
            }
            return *this;
        }
        InUse(const InUse&) = delete;
        InUse& operator=(const InUse&) = delete;
        ~InUse() { reset(); }
        void reset() noexcept;
        explicit operator bool() const { return pool_ != nullptr; }

      private:
        friend class UpstreamPool;
        InUse(UpstreamPool* pool, KeyMap::value_type* key) : pool_(pool), key_(key) {}
        UpstreamPool* pool_ = nullptr;
        KeyMap::value_type* key_ = nullptr;  // a node of by_key_: its address never moves
    };

    // Counts one connection of `key` in use until the token goes.
    InUse in_use(const std::string& key);

    // Keeps `connection` for reuse. Its callbacks are replaced by the pool's.
    void put(const std::string& key, PooledConnection connection);
    // The most recently used idle connection for `key`, if any; its callbacks
    // and timeouts are cleared but reading stays enabled, so the caller must
    // install its own callbacks before returning to the loop. With `use`,
    // the connection taken is counted in use at once (the token is set
    // before the key's last idle connection leaves, so its demand record
    // stays).
    std::optional<PooledConnection> take(const std::string& key, InUse* use = nullptr);
    // Closes up to `count` idle connections, least recently pooled first,
    // whatever their key, and their descriptors are free when it returns.
    // Returns how many it closed (0: the pool is empty).
    size_t evict_oldest(size_t count);
    size_t idle_count() const { return lru_.size(); }
    size_t idle_count(const std::string& key) const;
    // Connections of `key` in use now (live InUse tokens).
    size_t in_use_count(const std::string& key) const;
    // The idle connections `key` may keep now: the fixed cap, or the
    // automatic one from its recent demand.
    size_t cap(const std::string& key);
    // Closes every idle connection; tokens in use stay valid.
    void clear();

  private:
    using Position = std::list<Entry>::iterator;
    struct Entry {
        UpstreamPool* pool;
        std::string key;
        PooledConnection connection;
        Position self;  // this entry in lru_, for removal by address
    };
    void remove(Entry* entry);
    void release(KeyMap::value_type* key) noexcept;
    void roll_window(KeyState& state, Clock::time_point now) const;
    size_t cap_of(KeyState& state);
    void forget_if_unused(KeyMap::iterator found);
    void note_eviction(size_t closed);
    static void on_idle_read(bufferevent* bev, void* arg) noexcept;
    static void on_idle_event(bufferevent* bev, short events, void* arg) noexcept;

    std::chrono::milliseconds idle_timeout_;
    std::optional<size_t> per_key_;  // none: automatic
    size_t max_idle_;
    std::function<Clock::time_point()> now_;
    // Every idle connection, least recently pooled first. A list, so an
    // entry's address (libevent's callback argument) never moves.
    std::list<Entry> lru_;
    // Each key's idle entries and demand (a node-based map: tokens point
    // into it).
    KeyMap by_key_;
    size_t evicted_unlogged_ = 0;
    std::chrono::steady_clock::time_point last_eviction_log_{};
};

}  // namespace worker
