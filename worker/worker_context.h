// What every session of a worker shares: the loop, the configuration, the
// resolver, the upstream pool, the access log, the counters reported to the
// master, and the list of sessions (client_session.h).
#pragma once

#include <event2/event.h>

#include <cstdint>

#include "common/channel.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/scoreboard.h"
#include "common/shared_table.h"
#include "worker/access_log.h"
#include "worker/pipe_pool.h"
#include "worker/resolver.h"
#include "worker/upstream_connector.h"
#include "worker/upstream_pool.h"
#include "worker/user_sessions.h"

namespace worker {

class Authenticator;
class SharedState;
class RouteTable;
class DeferredDeleter;
class SessionList;

// Declared with the metric table (common/metrics.h): sessions increment its
// fields, the heartbeat copies it whole into the report.
using Counters = common::metrics::Counters;

struct WorkerContext {
    event_base* base = nullptr;
    common::ConfigPtr config;
    Resolver* resolver = nullptr;
    UpstreamPool* pool = nullptr;
    PipePool* pipes = nullptr;
    AccessLog* access_log = nullptr;
    ConnectPolicy connect_policy;
    Counters counters;
    bool draining = false;
    common::Scoreboard* scoreboard = nullptr;
    common::SharedTable* shared_table = nullptr;  // may be null (mmap failed)
    // Leases, budgets and the sticky map: this node's table or the cluster
    // store (shared_state.h); never null while serving.
    SharedState* shared_state = nullptr;
    Authenticator* authenticator = nullptr;  // null when no listener needs it
    RouteTable* routes = nullptr;            // the ways out; never null while serving
    UserSessionCounts user_sessions;
    int slot = 0;
    SessionList* sessions = nullptr;
    DeferredDeleter* graveyard = nullptr;  // see deferred_delete.h
};

}  // namespace worker
