#include "worker/route_table.h"

#include <algorithm>
#include <limits>

namespace worker {

namespace {

// FNV-1a, 64 bits: stable across processes and builds, which the sticky
// map's values and rendezvous hashing need (std::hash promises neither).
uint64_t fnv1a(std::string_view text, uint64_t hash = 14695981039346656037ull) {
    for (unsigned char c : text) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

// A final mix, so that keys differing in one byte spread over the routes.
uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

Route make_route(const common::ParentConfig* parent, const common::SocketAddress* source,
                 size_t index) {
    Route route;
    route.parent = parent;
    route.source = source;
    route.name = parent != nullptr ? parent->name : "direct";
    if (source != nullptr) route.name += "@" + source->host_string();
    route.id = static_cast<uint32_t>(fnv1a(route.name)) | 1;  // never 0
    route.index = index;
    return route;
}

bool contains(const std::vector<size_t>& tried, size_t index) {
    return std::find(tried.begin(), tried.end(), index) != tried.end();
}

}  // namespace

RouteTable::RouteTable(const common::Config& config)
    : rotation_(config.route.rotation), random_(std::random_device{}()) {
    std::vector<const common::ParentConfig*> parents;
    for (const std::string& name : config.route.parents) parents.push_back(config.parent(name));
    if (parents.empty()) parents.push_back(nullptr);
    for (const common::ParentConfig* parent : parents) {
        if (config.route.source_addresses.empty()) {
            routes_.push_back(make_route(parent, nullptr, routes_.size()));
            continue;
        }
        for (const common::SocketAddress& source : config.route.source_addresses) {
            routes_.push_back(make_route(parent, &source, routes_.size()));
        }
    }
    state_.resize(routes_.size());
    // Each worker starts its turns somewhere else, so that the first
    // requests of several workers do not all leave by the first route.
    next_ = random_() % routes_.size();
}

const Route* RouteTable::by_id(uint32_t id) const {
    for (const Route& route : routes_) {
        if (route.id == id) return &route;
    }
    return nullptr;
}

bool RouteTable::up(const Route& route, Clock::time_point now) const {
    return now >= state_[route.index].down_until;
}

const Route* RouteTable::rotate(Clock::time_point now, const std::vector<size_t>& tried) {
    std::vector<size_t> candidates;
    candidates.reserve(routes_.size());
    for (const Route& route : routes_) {
        if (up(route, now) && !contains(tried, route.index)) candidates.push_back(route.index);
    }
    if (candidates.empty()) return nullptr;
    switch (rotation_) {
        case common::Rotation::kRandom:
            return &routes_[candidates[random_() % candidates.size()]];
        case common::Rotation::kLeastConnections: {
            // Ties go round-robin, so equal routes still share the load.
            size_t start = next_++;
            size_t best = candidates[start % candidates.size()];
            for (size_t i = 0; i < candidates.size(); ++i) {
                size_t index = candidates[(start + i) % candidates.size()];
                if (state_[index].counters.active < state_[best].counters.active) best = index;
            }
            return &routes_[best];
        }
        case common::Rotation::kRoundRobin:
            break;
    }
    // The next route at or after the position that is a candidate: a route
    // that is down is skipped without shifting the others' turns.
    for (size_t i = 0; i < routes_.size(); ++i) {
        size_t index = (next_ + i) % routes_.size();
        if (!contains(candidates, index)) continue;
        next_ = index + 1;
        return &routes_[index];
    }
    return nullptr;
}

// Highest random weight (Thaler and Ravishankar): each route scores
// hash(key, route) and the best score wins. Every worker computes the same
// winner from the key alone, and when a route goes away only the keys it
// held move.
const Route* RouteTable::rendezvous(std::string_view session_key, Clock::time_point now,
                                    const std::vector<size_t>& tried) const {
    const uint64_t key_hash = fnv1a(session_key);
    const Route* best = nullptr;
    uint64_t best_score = 0;
    for (const Route& route : routes_) {
        if (!up(route, now) || contains(tried, route.index)) continue;
        uint64_t score = mix(key_hash ^ (uint64_t{route.id} * 0x9e3779b97f4a7c15ull));
        if (best == nullptr || score > best_score) {
            best = &route;
            best_score = score;
        }
    }
    return best;
}

void RouteTable::note_success(const Route& route) {
    State& state = state_[route.index];
    state.consecutive_failures = 0;
    state.down_until = {};
}

bool RouteTable::note_failure(const Route& route, Clock::time_point now) {
    State& state = state_[route.index];
    state.counters.failures++;
    uint64_t max_failures = route.parent ? route.parent->max_failures : kDirectMaxFailures;
    common::Duration retry_after = route.parent ? route.parent->retry_after : kDirectRetryAfter;
    // A route on probation (its down time over) goes down again at its
    // first failure.
    bool probing = state.down_until != Clock::time_point{};
    if (++state.consecutive_failures < max_failures && !probing) return false;
    state.down_until = now + retry_after;
    return true;
}

void RouteTable::opened(const Route& route) {
    RouteCounters& counters = state_[route.index].counters;
    counters.active++;
    counters.total++;
}

void RouteTable::closed(const Route& route) {
    state_[route.index].counters.active--;
}

std::vector<RouteSnapshot> RouteTable::snapshot(Clock::time_point now) const {
    std::vector<RouteSnapshot> out;
    out.reserve(routes_.size());
    for (const Route& route : routes_) {
        out.push_back(RouteSnapshot{route.name, route.parent ? route.parent->name : std::string(),
                                    state_[route.index].counters, down(route, now)});
    }
    return out;
}

}  // namespace worker
