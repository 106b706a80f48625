#include "worker/upstream_pool.h"

#include <algorithm>

#include "common/log.h"
#include "common/timeval.h"

namespace worker {

void UpstreamPool::put(const std::string& key, PooledConnection connection) {
    if (per_key_ == 0 || max_idle_ == 0) return;  // pooling off: the connection closes here
    if (auto same = by_key_.find(key); same != by_key_.end() && same->second.size() >= per_key_) {
        remove(same->second.front());
    }
    if (lru_.size() >= max_idle_) {
        LOG_DEBUG("upstream keep-alive pool full (%zu idle): closing the oldest, to %s", max_idle_,
                  lru_.front().key.c_str());
        remove(&lru_.front());
    }
    Position position = lru_.insert(lru_.end(), Entry{this, key, std::move(connection), {}});
    Entry* entry = &*position;
    entry->self = position;
    by_key_[key].push_back(entry);
    bufferevent* bev = entry->connection.connection.get();
    // Any byte or EOF on an idle connection means it can't be reused safely.
    bufferevent_setcb(bev, on_idle_read, nullptr, on_idle_event, entry);
    timeval timeout = common::to_timeval(idle_timeout_);
    bufferevent_set_timeouts(bev, &timeout, nullptr);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_enable(bev, EV_READ);
}

std::optional<PooledConnection> UpstreamPool::take(const std::string& key) {
    auto found = by_key_.find(key);
    if (found == by_key_.end()) return std::nullopt;
    Entry* entry = found->second.back();
    PooledConnection connection = std::move(entry->connection);
    found->second.pop_back();
    if (found->second.empty()) by_key_.erase(found);
    lru_.erase(entry->self);
    bufferevent* bev = connection.connection.get();
    // Reading stays enabled: the caller installs its callbacks before the
    // loop runs again, and a disable/enable pair would cost an epoll_ctl
    // per reuse.
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    bufferevent_set_timeouts(bev, nullptr, nullptr);
    return connection;
}

// libevent closes a freed bufferevent's socket only from its loop (a
// finalizer), too late for a caller about to retry accept() or socket():
// the socket is taken from the bufferevent and closed here.
size_t UpstreamPool::evict_oldest(size_t count) {
    size_t closed = 0;
    while (closed < count && !lru_.empty()) {
        Entry& oldest = lru_.front();
        bufferevent* bev = oldest.connection.connection.get();
        evutil_socket_t fd = bufferevent_getfd(bev);
        bufferevent_setfd(bev, -1);
        if (fd >= 0) evutil_closesocket(fd);
        remove(&oldest);
        ++closed;
    }
    if (closed > 0) note_eviction(closed);
    return closed;
}

// Running out of descriptors is a state of the host that lasts (a hard
// limit below the budget): a line a second tells it, not one per client.
void UpstreamPool::note_eviction(size_t closed) {
    evicted_unlogged_ += closed;
    auto now = std::chrono::steady_clock::now();
    if (now - last_eviction_log_ < std::chrono::seconds(1)) return;
    LOG_WARN(
        "out of descriptors: closed %zu idle upstream connections to make room (the limit of "
        "open files is below what max_connections needs, see proxyd.conf(5))",
        evicted_unlogged_);
    evicted_unlogged_ = 0;
    last_eviction_log_ = now;
}

void UpstreamPool::remove(Entry* entry) {
    auto found = by_key_.find(entry->key);
    if (found != by_key_.end()) {
        std::vector<Entry*>& entries = found->second;
        auto it = std::find(entries.begin(), entries.end(), entry);
        if (it != entries.end()) entries.erase(it);
        if (entries.empty()) by_key_.erase(found);
    }
    lru_.erase(entry->self);  // closes the connection
}

void UpstreamPool::clear() {
    by_key_.clear();
    lru_.clear();
}

void UpstreamPool::on_idle_read(bufferevent*, void* arg) noexcept {
    auto* entry = static_cast<Entry*>(arg);
    LOG_DEBUG("idle upstream connection to %s sent unexpected data; closed",
              entry->connection.peer.to_string().c_str());
    entry->pool->remove(entry);
}

void UpstreamPool::on_idle_event(bufferevent*, short, void* arg) noexcept {
    auto* entry = static_cast<Entry*>(arg);
    entry->pool->remove(entry);
}

}  // namespace worker
