#include "worker/route_reports.h"

#include <sys/socket.h>

#include "common/channel.h"

namespace worker {

namespace channel = common::channel;

namespace {

// An increase since the last record. A counter below what was sent can only
// come from a table that started again: everything it holds is new.
uint64_t delta(uint64_t now, uint64_t sent) {
    return now >= sent ? now - sent : now;
}

// One entry for `route`, whose counters were `sent` when the master was last
// told of it (zeros: never). False when its names cannot travel.
bool fill_entry(channel::RouteStat& entry, const RouteSnapshot& route, const RouteCounters& sent) {
    if (!channel::set_route_names(entry, route.name, route.parent)) return false;
    entry.active = route.counters.active;
    entry.total_delta = delta(route.counters.total, sent.total);
    entry.failures_delta = delta(route.counters.failures, sent.failures);
    entry.down = route.down ? 1 : 0;
    return true;
}

}  // namespace

bool RouteReports::Sent::same(const RouteSnapshot& route) const {
    return route.down == down && route.counters.active == counters.active &&
           route.counters.total == counters.total && route.counters.failures == counters.failures;
}

// Fills `record` with the routes that changed, looking at them from the
// `looked`-th after start_ on (round the table) and moving `looked` past the
// last one it looked at; `carried` gets the routes the record holds.
void RouteReports::fill(channel::RouteStats& record, const std::vector<RouteSnapshot>& routes,
                        size_t& looked, std::vector<const RouteSnapshot*>& carried) const {
    for (; looked < routes.size() && record.count < channel::kRoutesPerRecord; ++looked) {
        const RouteSnapshot& route = routes[(start_ + looked) % routes.size()];
        auto last = sent_.find(route.name);
        if (last != sent_.end() && last->second.same(route)) continue;
        channel::RouteStat& entry = record.routes[record.count];
        if (!fill_entry(entry, route,
                        last == sent_.end() ? RouteCounters{} : last->second.counters)) {
            entry = channel::RouteStat{};
            continue;
        }
        carried.push_back(&route);
        ++record.count;
    }
}

void RouteReports::send(int fd, pid_t pid, const std::vector<RouteSnapshot>& routes) {
    if (start_ >= routes.size()) start_ = 0;
    size_t looked = 0;
    while (looked < routes.size()) {
        const size_t first = looked;
        channel::RouteStats record = channel::make_route_stats();
        record.pid = pid;
        std::vector<const RouteSnapshot*> carried;
        fill(record, routes, looked, carried);
        if (record.count == 0) return;
        // One send is one whole record. A full channel keeps the changes
        // unsent, so the next call computes them again, increases included,
        // and starts with them: routes late in the table are not starved by
        // earlier ones that change at every beat.
        if (::send(fd, &record, sizeof record, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            start_ = (start_ + first) % routes.size();
            return;
        }
        for (const RouteSnapshot* route : carried)
            sent_[route->name] = {route->counters, route->down};
    }
}

}  // namespace worker
