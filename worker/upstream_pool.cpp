#include "worker/upstream_pool.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/timeval.h"

namespace worker {

void UpstreamPool::put(const std::string& key, PooledConnection connection) {
    if (per_key_ == 0u || max_idle_ == 0) return;  // pooling off: the connection closes here
    // Past the key's cap (which may have fallen since these were kept), the
    // least recently pooled of the key go first. remove() may forget the
    // key's record, so it is found anew each time.
    size_t limit = std::min(cap(key), max_idle_);
    for (;;) {
        auto same = by_key_.find(key);
        if (same == by_key_.end() || same->second.idle.size() < limit) break;
        remove(same->second.idle.front());
    }
    if (lru_.size() >= max_idle_) {
        LOG_DEBUG("upstream keep-alive pool full (%zu idle): closing the oldest, to %s", max_idle_,
                  lru_.front().key.c_str());
        remove(&lru_.front());
    }
    auto [found, inserted] = by_key_.try_emplace(key);
    if (inserted) found->second.window_start = now_();
    Position position = lru_.insert(lru_.end(), Entry{this, key, std::move(connection), {}});
    Entry* entry = &*position;
    entry->self = position;
    found->second.idle.push_back(entry);
    bufferevent* bev = entry->connection.connection.get();
    // Any byte or EOF on an idle connection means it can't be reused safely.
    bufferevent_setcb(bev, on_idle_read, nullptr, on_idle_event, entry);
    timeval timeout = common::to_timeval(idle_timeout_);
    bufferevent_set_timeouts(bev, &timeout, nullptr);
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_enable(bev, EV_READ);
}

std::optional<PooledConnection> UpstreamPool::take(const std::string& key, InUse* use) {
    auto found = by_key_.find(key);
    if (found == by_key_.end() || found->second.idle.empty()) return std::nullopt;
    if (use != nullptr) *use = in_use(key);
    Entry* entry = found->second.idle.back();
    PooledConnection connection = std::move(entry->connection);
    found->second.idle.pop_back();
    lru_.erase(entry->self);
    forget_if_unused(found);
    bufferevent* bev = connection.connection.get();
    // Reading stays enabled: the caller installs its callbacks before the
    // loop runs again, and a disable/enable pair would cost an epoll_ctl
    // per reuse.
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    bufferevent_set_timeouts(bev, nullptr, nullptr);
    return connection;
}

// ---------------------------------------------------------------- demand

UpstreamPool::InUse UpstreamPool::in_use(const std::string& key) {
    auto [found, inserted] = by_key_.try_emplace(key);
    KeyState& state = found->second;
    Clock::time_point now = now_();
    if (inserted) {
        state.window_start = now;
    } else {
        roll_window(state, now);
    }
    ++state.in_use;
    state.peak = std::max(state.peak, state.in_use);
    return InUse(this, &*found);
}

void UpstreamPool::InUse::reset() noexcept {
    if (pool_ == nullptr) return;
    UpstreamPool* pool = pool_;
    pool_ = nullptr;
    pool->release(std::exchange(key_, nullptr));
}

void UpstreamPool::release(KeyMap::value_type* key) noexcept {
    --key->second.in_use;
    // The node is by_key_'s: found again, to be erased by position (its
    // key must not be the argument that erasing destroys).
    forget_if_unused(by_key_.find(key->first));
}

// Windows of idle_timeout_: a peak counts for the window it happened in and
// the next one, so a key's cap stays up for one to two windows after its
// demand fell. No event (a new use) in a whole window means no higher use
// than the one in use now.
void UpstreamPool::roll_window(KeyState& state, Clock::time_point now) const {
    Clock::duration elapsed = now - state.window_start;
    if (elapsed < idle_timeout_) return;
    state.previous_peak = elapsed < 2 * idle_timeout_ ? state.peak : state.in_use;
    state.peak = state.in_use;
    state.window_start = now;
}

size_t UpstreamPool::cap_of(KeyState& state) {
    if (per_key_) return *per_key_;
    roll_window(state, now_());
    return std::max({kAutoFloor, state.peak, state.previous_peak});
}

size_t UpstreamPool::cap(const std::string& key) {
    auto found = by_key_.find(key);
    if (found == by_key_.end()) return per_key_.value_or(kAutoFloor);
    return cap_of(found->second);
}

size_t UpstreamPool::idle_count(const std::string& key) const {
    auto found = by_key_.find(key);
    return found == by_key_.end() ? 0 : found->second.idle.size();
}

size_t UpstreamPool::in_use_count(const std::string& key) const {
    auto found = by_key_.find(key);
    return found == by_key_.end() ? 0 : found->second.in_use;
}

void UpstreamPool::forget_if_unused(KeyMap::iterator found) {
    if (found->second.in_use == 0 && found->second.idle.empty()) by_key_.erase(found);
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
        std::vector<Entry*>& entries = found->second.idle;
        auto it = std::find(entries.begin(), entries.end(), entry);
        if (it != entries.end()) entries.erase(it);
        forget_if_unused(found);
    }
    lru_.erase(entry->self);  // closes the connection
}

// The records of keys in use stay: their tokens point into them.
void UpstreamPool::clear() {
    for (auto it = by_key_.begin(); it != by_key_.end();) {
        it->second.idle.clear();
        it = it->second.in_use == 0 ? by_key_.erase(it) : std::next(it);
    }
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
