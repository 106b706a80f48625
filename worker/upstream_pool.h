// Idle upstream connections kept for reuse, per worker, keyed by destination
// and route ("example.com:80 direct"). An idle connection that receives data
// or EOF, or stays idle past the keep-alive timeout, is closed and forgotten.
//
// Two bounds: each key holds at most `per_key` connections, and the pool as a
// whole at most `max_idle`, so that a client naming many destinations cannot
// fill the worker's descriptor table with idle sockets (the pool is one line
// of the descriptor budget, common/config.h). Either way the least recently
// pooled connection goes first. evict_oldest() gives descriptors back when
// the worker runs out of them anyway (a hard limit below the budget).
#pragma once

#include <event2/event.h>

#include <chrono>
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
    UpstreamPool(std::chrono::milliseconds idle_timeout, size_t per_key, size_t max_idle)
        : idle_timeout_(idle_timeout), per_key_(per_key), max_idle_(max_idle) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // Keeps `connection` for reuse. Its callbacks are replaced by the pool's.
    void put(const std::string& key, PooledConnection connection);
    // The most recently used idle connection for `key`, if any; its callbacks
    // and timeouts are cleared but reading stays enabled, so the caller must
    // install its own callbacks before returning to the loop.
    std::optional<PooledConnection> take(const std::string& key);
    // Closes up to `count` idle connections, least recently pooled first,
    // whatever their key, and their descriptors are free when it returns.
    // Returns how many it closed (0: the pool is empty).
    size_t evict_oldest(size_t count);
    size_t idle_count() const { return lru_.size(); }
    void clear();

  private:
    struct Entry;
    using Position = std::list<Entry>::iterator;
    struct Entry {
        UpstreamPool* pool;
        std::string key;
        PooledConnection connection;
        Position self;  // this entry in lru_, for removal by address
    };
    void remove(Entry* entry);
    void note_eviction(size_t closed);
    static void on_idle_read(bufferevent* bev, void* arg) noexcept;
    static void on_idle_event(bufferevent* bev, short events, void* arg) noexcept;

    std::chrono::milliseconds idle_timeout_;
    size_t per_key_;
    size_t max_idle_;
    // Every idle connection, least recently pooled first. A list, so an
    // entry's address (libevent's callback argument) never moves.
    std::list<Entry> lru_;
    // The entries of each key, least recently pooled first (at most per_key_).
    std::unordered_map<std::string, std::vector<Entry*>> by_key_;
    size_t evicted_unlogged_ = 0;
    std::chrono::steady_clock::time_point last_eviction_log_{};
};

}  // namespace worker
