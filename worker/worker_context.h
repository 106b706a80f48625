// What every session of a worker shares: the loop, the configuration, the
// resolver, the upstream pool, the access log, the counters reported to the
// master, and the list of live sessions (for drain and stop).
#pragma once

#include <event2/event.h>

#include <cstdint>
#include <list>

#include "common/channel.h"
#include "common/config.h"
#include "common/metrics.h"
#include "common/scoreboard.h"
#include "worker/access_log.h"
#include "worker/pipe_pool.h"
#include "worker/resolver.h"
#include "worker/upstream_connector.h"
#include "worker/upstream_pool.h"

namespace worker {

class ClientSession;

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
    int slot = 0;
    std::list<ClientSession*> sessions;  // see client_session.h

    // Called by a session as it is destroyed; the worker may exit when
    // draining and this was the last one, or resume accepting.
    void (*on_session_closed)(void* worker) = nullptr;
    void* worker = nullptr;
};

}  // namespace worker
