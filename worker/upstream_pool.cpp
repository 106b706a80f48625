#include "worker/upstream_pool.h"

#include "common/log.h"
#include "common/timeval.h"

namespace worker {

void UpstreamPool::put(const std::string& key, PooledConnection connection) {
    if (per_key_ == 0) return;  // pooling off: the connection closes here
    std::list<Entry>& entries = idle_[key];
    if (entries.size() >= per_key_) remove(&entries.front());
    std::list<Entry>& list = idle_[key];  // remove() may have erased the key
    list.push_back(Entry{this, key, std::move(connection)});
    Entry* entry = &list.back();
    bufferevent* bev = entry->connection.connection.get();
    // Any byte or EOF on an idle connection means it can't be reused safely.
    bufferevent_setcb(bev, on_idle_read, nullptr, on_idle_event, entry);
    timeval timeout = common::to_timeval(idle_timeout_);
    bufferevent_set_timeouts(bev, &timeout, nullptr);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_enable(bev, EV_READ);
    ++idle_count_;
}

std::optional<PooledConnection> UpstreamPool::take(const std::string& key) {
    auto found = idle_.find(key);
    if (found == idle_.end() || found->second.empty()) return std::nullopt;
    PooledConnection connection = std::move(found->second.back().connection);
    found->second.pop_back();
    if (found->second.empty()) idle_.erase(found);
    --idle_count_;
    bufferevent* bev = connection.connection.get();
    // Reading stays enabled: the caller installs its callbacks before the
    // loop runs again, and a disable/enable pair would cost an epoll_ctl
    // per reuse.
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    bufferevent_set_timeouts(bev, nullptr, nullptr);
    return connection;
}

void UpstreamPool::remove(Entry* entry) {
    auto found = idle_.find(entry->key);
    if (found == idle_.end()) return;
    std::list<Entry>& entries = found->second;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
        if (&*it != entry) continue;
        entries.erase(it);  // closes the connection
        --idle_count_;
        break;
    }
    if (entries.empty()) idle_.erase(found);
}

void UpstreamPool::clear() {
    idle_.clear();
    idle_count_ = 0;
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
