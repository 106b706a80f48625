// The routes' counters and health as the master learns them: after each
// heartbeat report, RouteStats records (common/channel.h) carry every route
// that changed since the last ones. Active sessions and health travel as
// they are now; totals and failures as increases, which the master sums into
// the per-route totals of `proxyctl routes`, so a record lost with a dying
// worker loses only its own counts.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/channel.h"
#include "worker/route_table.h"

namespace worker {

class RouteReports {
  public:
    // Sends on the channel `fd`, as records of `pid`, every route of `routes`
    // whose active count, health, total or failures changed since the master
    // was last told of it (every route, on the first call); nothing when
    // nothing changed. What a full channel refused is sent by the next call,
    // before the other routes.
    // A route whose name cannot travel (common::channel::set_route_names)
    // is never sent.
    void send(int fd, pid_t pid, const std::vector<RouteSnapshot>& routes);
    void send(int fd, pid_t pid, const RouteTable& table, RouteTable::Clock::time_point now) {
        send(fd, pid, table.snapshot(now));
    }

  private:
    // What the master was last told of a route.
    struct Sent {
        RouteCounters counters;
        bool down = false;
        bool same(const RouteSnapshot& route) const;
    };

    void fill(common::channel::RouteStats& record, const std::vector<RouteSnapshot>& routes,
              size_t& looked, std::vector<const RouteSnapshot*>& carried) const;

    std::map<std::string, Sent, std::less<>> sent_;  // by route name
    size_t start_ = 0;                               // the index the next call starts at
};

}  // namespace worker
