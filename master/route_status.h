// What the master knows of the workers' routes, from their RouteStats
// records (common/channel.h): per live worker, each route's active sessions
// and health as that worker last said; per route, its sessions and failures
// summed over every worker, the exited ones included. It answers `routes`
// and the `parents` of `stats`.
//
// Health is per worker (worker/route_table.h), so a route is "down" while at
// least one live worker holds it down, and `down_workers` says how many; a
// parent is "down" when every one of its routes is. A reaped worker's
// sessions and health go with it; what it counted stays, as the user totals
// do. A reload forgets the totals of the routes it removed once no live
// worker reports them any more.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/channel.h"
#include "common/config.h"
#include "common/json_util.h"

namespace master {

class RouteStatus {
  public:
    // A record from the live worker `pid`, decoded (decode_route_stats).
    void on_record(pid_t pid, const common::channel::RouteStats& record);
    // The worker `pid` was reaped.
    void worker_exited(pid_t pid);
    // The configuration the routes now come from (start and every reload).
    void configure(common::ConfigPtr config);

    // Every route, sorted by name: [{"name", "parent" (null: direct),
    // "source" (null: the kernel's choice), "active", "total", "failures",
    // "state": "up" | "down", "down_workers", "workers" (live workers that
    // reported it)}, ...].
    common::Json routes_json() const;
    // Every parent that has a route: {"NAME": {"active", "total", "failures",
    // "state"}, ...}, summed over its routes.
    common::Json parents_json() const;

  private:
    // A route is its name and its kind, since a parent may be called
    // "direct" (see RouteStat).
    struct Key {
        std::string name;
        uint8_t parent_length = 0;  // 0: direct
        auto operator<=>(const Key&) const = default;
        std::string_view parent() const;  // "" for a direct route
        std::string_view source() const;  // "" for the kernel's choice
    };
    struct Gauge {
        uint64_t active = 0;
        bool down = false;
    };
    struct Totals {
        uint64_t total = 0;
        uint64_t failures = 0;
    };
    // One route over the live workers.
    struct Live {
        uint64_t active = 0;
        size_t workers = 0;
        size_t down_workers = 0;
    };

    Live live(const Key& key) const;
    bool configured(const Key& key) const;
    void forget_unconfigured();

    common::ConfigPtr config_;
    std::map<Key, Totals> totals_;  // every route reported and still kept
    std::map<pid_t, std::map<Key, Gauge>> gauges_;
};

}  // namespace master
