// Idle upstream connections kept for reuse, per worker, keyed by destination
// and route ("example.com:80 direct"). An idle connection that receives data
// or EOF, or stays idle past the keep-alive timeout, is closed and forgotten;
// each key holds at most `per_key` connections (the oldest goes first).
#pragma once

#include <event2/event.h>

#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/address.h"
#include "common/libevent_handles.h"

namespace worker {

struct PooledConnection {
    common::BufferEventPtr connection;
    common::SocketAddress peer;
};

class UpstreamPool {
  public:
    UpstreamPool(std::chrono::milliseconds idle_timeout, size_t per_key)
        : idle_timeout_(idle_timeout), per_key_(per_key) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // Keeps `connection` for reuse. Its callbacks are replaced by the pool's.
    void put(const std::string& key, PooledConnection connection);
    // The most recently used idle connection for `key`, if any; its callbacks
    // and timeouts are cleared but reading stays enabled, so the caller must
    // install its own callbacks before returning to the loop.
    std::optional<PooledConnection> take(const std::string& key);
    size_t idle_count() const { return idle_count_; }
    void clear();

  private:
    struct Entry {
        UpstreamPool* pool;
        std::string key;
        PooledConnection connection;
    };
    void remove(Entry* entry);
    static void on_idle_read(bufferevent* bev, void* arg) noexcept;
    static void on_idle_event(bufferevent* bev, short events, void* arg) noexcept;

    std::chrono::milliseconds idle_timeout_;
    size_t per_key_;
    size_t idle_count_ = 0;
    std::unordered_map<std::string, std::list<Entry>> idle_;
};

}  // namespace worker
