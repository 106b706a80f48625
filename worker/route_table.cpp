// TEMP route_table stub: the reports branch only. RouteTable is implemented
// by the routing core; this definition of the one member the heartbeat calls
// (worker/worker.cpp, through worker/route_reports.h) only lets this branch
// link. No RouteTable is ever built here (WorkerContext::routes stays null),
// so it is never called. Drop this file when merging the core.
#include "worker/route_table.h"

namespace worker {

std::vector<RouteSnapshot> RouteTable::snapshot(Clock::time_point) const {
    return {};
}

}  // namespace worker
