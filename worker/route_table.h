// The ways out of one worker and what it knows of each: the routes of the
// configuration (every pair of a parent, or direct, and a source address),
// their passive health, and their counters for `proxyctl routes`.
//
//   [route] parents = a, b          routes: a@192.0.2.1  a@192.0.2.2
//   source_addresses = 192.0.2.1,           b@192.0.2.1  b@192.0.2.2
//                      192.0.2.2
//
// Without parents the routes are direct@ADDRESS; without source addresses
// they are the parents' names, or the single route "direct".
//
// Health is passive and per worker, as nginx's max_fails is: a route whose
// dial fails max_failures times in a row for reasons of its own (the parent
// does not answer, refuses, breaks its handshake; the source address cannot
// be bound) is down for retry_after, then one session may try it again;
// the first success brings it up. A destination that refuses is not the
// route's failure. Direct routes use the defaults of a parent (3, 10s).
//
// Selection is here too, as functions of the table alone (unit-tested):
// rotation for requests without a session ID, rendezvous hashing for those
// with one (every worker proposes the same route for a session while they
// agree on health; the shared table's sticky map then keeps it for
// sticky_ttl, see request_pipeline.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.h"
#include "worker/pipeline_types.h"

namespace worker {

struct RouteCounters {
    uint64_t active = 0;    // sessions using the route now
    uint64_t total = 0;     // sessions that went out by it
    uint64_t failures = 0;  // dials that failed for reasons of the route
};

// One route as the master is told of it (worker/route_reports.h), copied out
// of the table by RouteTable::snapshot().
struct RouteSnapshot {
    std::string name;    // Route::name
    std::string parent;  // the parent's name; empty for a direct route
    RouteCounters counters;
    bool down = false;  // down(route, now)
};

class RouteTable {
  public:
    using Clock = std::chrono::steady_clock;
    // Health for direct routes, whose only failure of their own is a
    // source address that cannot be bound.
    static constexpr uint64_t kDirectMaxFailures = 3;
    static constexpr common::Duration kDirectRetryAfter{10000};

    // Every route of `config` (which must outlive the table), in the order
    // parents x source addresses. Never empty.
    explicit RouteTable(const common::Config& config);
    RouteTable(const RouteTable&) = delete;
    RouteTable& operator=(const RouteTable&) = delete;

    const std::vector<Route>& routes() const { return routes_; }
    const Route* by_id(uint32_t id) const;

    // Selection among the routes that are up and not in `tried` (indices).
    // nullptr when none is left.
    const Route* rotate(Clock::time_point now, const std::vector<size_t>& tried);
    const Route* rendezvous(std::string_view session_key, Clock::time_point now,
                            const std::vector<size_t>& tried) const;
    bool up(const Route& route, Clock::time_point now) const;

    // Health: a dial by `route` worked, or failed for a reason of its own.
    // note_failure() returns true when that failure took the route down.
    void note_success(const Route& route);
    bool note_failure(const Route& route, Clock::time_point now);

    // A session holds the route from its dial (or pooled connection) to its
    // end: see RouteUse.
    void opened(const Route& route);
    void closed(const Route& route);

    const RouteCounters& counters(const Route& route) const { return state_[route.index].counters; }
    bool down(const Route& route, Clock::time_point now) const { return !up(route, now); }
    // Every route in the order of routes(), with its counters and whether it
    // is down at `now`: what the heartbeat sends (worker/route_reports.h).
    std::vector<RouteSnapshot> snapshot(Clock::time_point now) const;

  private:
    struct State {
        RouteCounters counters;
        uint32_t consecutive_failures = 0;
        Clock::time_point down_until{};
    };

    common::Rotation rotation_;
    std::vector<Route> routes_;
    std::vector<State> state_;
    size_t next_ = 0;  // round-robin position
    std::minstd_rand random_;
};

// A session's hold on a route: counted active while it lives. Move-only;
// kept in the session's Admission, so every way a session ends gives it up.
class RouteUse {
  public:
    RouteUse() = default;
    RouteUse(RouteTable& table, const Route& route) : table_(&table), route_(&route) {
        table.opened(route);
    }
    RouteUse(RouteUse&& other) noexcept
        : table_(std::exchange(other.table_, nullptr)), route_(other.route_) {}
    RouteUse& operator=(RouteUse&& other) noexcept {
        if (this != &other) {
            release();
            table_ = std::exchange(other.table_, nullptr);
            route_ = other.route_;
        }
        return *this;
    }
    RouteUse(const RouteUse&) = delete;
    RouteUse& operator=(const RouteUse&) = delete;
    ~RouteUse() { release(); }

    void release() {
        if (table_ != nullptr) std::exchange(table_, nullptr)->closed(*route_);
    }

  private:
    RouteTable* table_ = nullptr;
    const Route* route_ = nullptr;
};

}  // namespace worker
