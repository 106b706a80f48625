// The worker process: one libevent loop that accepts on the inherited
// listening sockets and serves sessions, reports to the master over its
// channel every heartbeat_interval, and obeys the master's commands.
#pragma once

#include <cstdint>
#include <vector>

#include "common/address.h"
#include "common/config.h"
#include "common/libevent_handles.h"
#include "common/scoreboard.h"
#include "common/shared_table.h"

namespace worker {

// A listening socket bound by the master and inherited across fork().
struct InheritedListener {
    int fd = -1;
    common::ListenConfig config;
    common::SocketAddress bound;  // the address actually bound (port 0 resolved)
};

struct WorkerStartup {
    common::ConfigPtr config;
    std::vector<InheritedListener> listeners;
    int channel_fd = -1;  // this worker's end of its SOCK_SEQPACKET socketpair
    // The access log the master opened, owned by the worker from here; -1:
    // none (master/log_files.h says why the master opens it).
    int access_log_fd = -1;
    int slot = 0;
    uint32_t generation = 0;
    common::Scoreboard* scoreboard = nullptr;  // shared with the master; may be null
    // Shared with the master and every worker; may be null (then fail closed).
    common::SharedTable* shared_table = nullptr;
};

// Exit statuses of a worker process, read by the master to classify exits.
enum WorkerExit : int {
    kWorkerExitClean = 0,
    kWorkerExitFatal = 3,  // cannot run with this configuration (e.g. TLS key)
};

// The worker's event loop has two priorities. Its own events (heartbeat, the
// master's channel, signals) take kOwnPriority and run first; sessions,
// listeners and the resolver take the default, kSessionPriority. A loop turn
// runs second-priority callbacks for at most kMaxTurn, then polls and runs its
// timers again, whatever is still pending: no burst of session work (hundreds
// of relays ready at once) holds back a heartbeat, so a worker that reports
// late was starved of CPU or is hung, never merely busy (master/silence.h).
// An own event must never stay ready (a channel at EOF is deleted): it would
// run on every turn, and no second-priority event would run again.
constexpr int kOwnPriority = 0;
constexpr int kSessionPriority = 1;
constexpr timeval kMaxTurn{0, 10 * 1000};

// Makes such an event loop, single-threaded (no locks); nullptr (logged) on
// failure. Every event made on it takes kSessionPriority unless set otherwise.
common::EventBasePtr make_worker_base();

// Runs the worker in the forked child until it is told to stop, drains, or
// loses its master. Returns the process exit status (WorkerExit).
int run_worker(const WorkerStartup& startup);

}  // namespace worker
