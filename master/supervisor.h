// The supervisor: the master's table of workers and everything it decides
// about them. It spawns workers into slots, reads their reports (the reports
// are the heartbeats), reaps and classifies their exits, respawns with a
// per-slot backoff, kills hung workers, recycles workers that grew too big or
// served too long, drains old generations once a new one is ready, and
// balances accepting between workers.
//
// It never blocks: every decision is taken in tick() (a 100 ms timer), in
// reap() (SIGCHLD) or when a report arrives.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/config.h"
#include "common/json_util.h"
#include "common/libevent_handles.h"
#include "common/metrics.h"
#include "common/scoreboard.h"
#include "common/shared_table.h"
#include "master/listeners.h"
#include "master/log_files.h"
#include "master/prometheus.h"
#include "master/route_status.h"
#include "master/silence.h"
#include "master/worker_pool.h"

namespace master {

using Clock = std::chrono::steady_clock;

// One configuration with the listeners bound for it. Workers keep their
// generation alive (shared_ptr) until they exit, and with it any listener
// the new configuration dropped.
struct Generation {
    uint32_t number = 0;
    common::ConfigPtr config;
    std::vector<Listener> listeners;
};
using GenerationPtr = std::shared_ptr<const Generation>;

enum class WorkerStatus { kStarting, kRunning, kDraining };
const char* status_name(WorkerStatus status);

// ---- Pure policy, unit-tested ------------------------------------------------

enum class ExitKind {
    kClean,          // exit(0)
    kFatalConfig,    // exit(3): cannot run with this configuration
    kFailed,         // any other exit code
    kCrashed,        // SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT we did not send
    kKilledByUs,     // the last signal we sent it
    kKilledOutside,  // any other signal (kill -9 from an operator, OOM killer)
};
// `signal_sent` is the last signal the master sent this worker, 0 if none.
ExitKind classify_exit(int wait_status, int signal_sent);
// "exited with code 3", "killed by signal 11 (Segmentation fault)".
std::string describe_exit(int wait_status);

// The delay before respawning a slot whose worker failed `failures` times in
// a row, each soon after starting: nothing for the first failure, then
// 100 ms doubling up to 30 s.
common::Duration backoff_delay(int failures);
// A slot counts as degraded from this many quick failures in a row.
constexpr int kDegradedFailures = 3;
// A worker that ran this long without failing resets its slot's backoff.
constexpr common::Duration kStableAfter{10000};

// Accept balancing: which workers to pause or resume, given their active
// sessions. A worker above mean * 1.2 + 2 is paused; a paused one at or below
// the mean is resumed; fewer than two workers means resume everything; and at
// least one worker always keeps accepting.
struct BalanceInput {
    uint64_t active_sessions = 0;
    bool paused = false;
};
enum class BalanceAction { kNone, kPause, kResume };
std::vector<BalanceAction> plan_balance(const std::vector<BalanceInput>& workers);

// ---- Reporting: the metric table (common/metrics.h) as JSON fields ----------

// Adds every metric of one worker to `item`: a number each, or for a
// labelled metric an object by label value ("errors": {"denied": 3, ...}),
// nested for two dimensions ("exchanges": {"http": {"2xx": 3, ...}, ...});
// a histogram's object also holds "sum_us".
void add_worker_metrics(common::Json& item, const common::metrics::Counters& counters);
// Adds the totals `stats` shows: every metric folded by Fold::kSum as a
// number (a histogram's: its count), and for a labelled one also
// "<name>_by_<label>[_<label>]" ("errors_by_class") by label value.
void add_stats_metrics(common::Json& out, const common::metrics::Counters& totals);

// ---- The worker table ------------------------------------------------------

class Supervisor;

struct Worker {
    Supervisor* owner = nullptr;
    pid_t pid = 0;
    int slot = 0;
    GenerationPtr generation;
    WorkerStatus status = WorkerStatus::kStarting;
    common::UniqueFd channel;  // the master's end of the socketpair
    common::EventPtr channel_event;
    bool has_report = false;
    common::channel::Report report{};
    Clock::time_point started;
    Clock::time_point last_report;
    Clock::time_point drain_deadline;
    Clock::time_point signal_time;
    // The scheduler's view of it since its last report (master/silence.h),
    // and when it was last read.
    SchedTrack sched;
    Clock::time_point sched_read;
    bool starved = false;        // silent past heartbeat_timeout, but starved
    uint64_t starved_count = 0;  // such silences so far
    int signal_sent = 0;         // the last signal we sent, 0 if none
    bool retiring = false;       // a replacement is starting; drain once it is ready
    bool hung = false;           // aborted for its silence: its exit is a "hung" restart
    bool paused = false;         // told to stop accepting (balancing)
    bool channel_closed = false;
    // Its connection to the cluster store, when [cluster] redis is set.
    std::optional<common::channel::ClusterStatus> cluster;
};

struct SlotInfo {
    int failures = 0;  // quick failures in a row
    Clock::time_point next_spawn{};
    bool degraded = false;
};

class Supervisor {
  public:
    explicit Supervisor(event_base* base);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Makes `generation` the current one with config->master.workers slots.
    // Its workers start at the next tick; the previous generations are
    // drained once every slot of this one has reported. A count set by
    // set_target() (scale, SIGTTIN, SIGTTOU) is kept instead while the
    // configuration's own `workers` value stays what it was.
    void start_generation(GenerationPtr generation);
    // The access log each worker forked from now on inherits (the master's,
    // which outlives the supervisor); null: none.
    void set_access_log(const AccessLogFile* log) { access_log_ = log; }
    const GenerationPtr& current() const { return current_; }

    int target() const { return target_; }
    // Sets the worker count of the current generation (1..1024): extra slots
    // are spawned, workers above the count are drained. The operator's
    // count: an elastic pool keeps it (stops resizing) until a reload
    // changes the configuration's `workers`.
    void set_target(int count);
    // The pool is elastic ("workers = auto") and not pinned by set_target().
    bool elastic() const;

    // Retires a worker of the current generation: a replacement starts first
    // and the worker is drained once the replacement reported. False with
    // `error` when `pid` is not such a worker.
    bool drain_worker(pid_t pid, std::string& error);

    // Sends `code` to every worker; failures are logged.
    void broadcast(common::channel::CommandCode code);

    // Reaps every exited child. Exits of children that are not workers (the
    // new master of a hot upgrade) go to `on_other_exit(pid, wait_status)`.
    void reap(const std::function<void(pid_t, int)>& on_other_exit);

    // Periodic work: deadlines, hung workers, respawns, recycling, balancing.
    void tick();

    // Stops everything: graceful drains every worker (SIGKILL at
    // graceful_timeout), otherwise workers get kStop and SIGKILL after 1 s.
    // Either way the master's copies of the listening sockets close at once
    // (the workers close theirs as they drain or stop), so new clients are
    // refused. No worker is spawned afterwards.
    void stop(bool graceful);
    bool stopping() const { return stopping_; }
    bool empty() const { return workers_.empty(); }

    // Every slot of the current generation has a running worker.
    bool ready() const;
    bool degraded() const;

    // What systemd's STATUS= line shows: workers running (any generation)
    // and the active sessions of every worker, from their last reports.
    struct Summary {
        int running = 0;
        uint64_t active_sessions = 0;
    };
    Summary summary() const;
    // Silences past heartbeat_timeout forgiven because the worker was
    // starved of CPU, since the master started.
    uint64_t starved_total() const { return starved_total_; }

    common::Json workers_json() const;
    common::Json slots_json() const;
    // Totals over live workers plus everything exited workers had reported;
    // with the sessions admitted per user and the routes' sums per parent.
    common::Json stats_json() const;
    // Every user of the current configuration's users file, by name: its
    // sessions now (exact, from the shared table), sessions admitted so far
    // (the workers' reports) and its limit.
    common::Json users_json() const;
    // Every route the workers report, by name: see RouteStatus::routes_json().
    common::Json routes_json() const;
    common::Json cluster_json() const;
    // What /metrics and the `metrics` command render (master/prometheus.h).
    prometheus::Snapshot metrics_snapshot() const;

  private:
    static void on_channel(evutil_socket_t fd, short events, void* arg) noexcept;
    void read_channel(Worker& worker);
    void on_report(Worker& worker, const common::channel::Report& report);
    void on_user_sessions(Worker& worker, const common::channel::UserSessions& record);
    void on_route_stats(Worker& worker, const common::channel::RouteStats& record);
    void on_cluster_status(Worker& worker, const common::channel::ClusterStatus& record);
    void on_exit(Worker& worker, int wait_status);
    void count_failure(const Worker& worker, ExitKind kind);
    void count_restart(const Worker& worker, bool expected);

    bool spawn(int slot);
    [[noreturn]] void run_child(int slot, int channel_fd, pid_t master_pid);

    void reconcile();
    void drain(Worker& worker, const char* why);
    void check_hung(Worker& worker, Clock::time_point now);
    bool forgive_starved(Worker& worker, Silence why, common::Duration silent,
                         const std::string& counters);
    void check_recycle(Clock::time_point now);
    void check_stable(Clock::time_point now);
    void balance(Clock::time_point now);
    uint64_t active_now(const Worker& w) const;
    void resize_pool(Clock::time_point now);
    void resize(int count);
    void limit_draining_generations();
    void close_listeners();
    bool send_command(Worker& worker, common::channel::CommandCode code);
    void send_signal(Worker& worker, int sig);
    bool slot_filled(int slot) const;
    void open_shared_table(const common::Config& config);
    void adopt_worker_count(bool reload);

    event_base* base_;
    const AccessLogFile* access_log_ = nullptr;
    // Mapped before the first fork, so every worker shares it (see
    // common/scoreboard.h); null if mmap failed (balancing then relies on
    // the reports alone).
    std::unique_ptr<common::Scoreboard> scoreboard_;
    // Leases and budgets exact across workers (common/shared_table.h): made
    // by the first start_generation(), before the first fork, and kept by
    // every reload; null if that failed.
    std::unique_ptr<common::SharedTable> shared_table_;
    GenerationPtr current_;
    int target_ = 0;
    // The current configuration's `workers` (with auto, its bounds), to
    // tell a reload that changed it from one that did not.
    std::string configured_workers_;
    bool pinned_ = false;  // the operator set the count (scale, SIGTTIN, SIGTTOU)
    WorkerPool pool_;
    std::map<pid_t, std::unique_ptr<Worker>> workers_;
    std::map<int, SlotInfo> slots_;
    bool stopping_ = false;
    bool fast_stop_ = false;
    Clock::time_point kill_at_{};
    Clock::time_point next_recycle_{};
    Clock::time_point next_balance_{};
    common::metrics::Counters retired_{};  // what exited workers had counted
    // Sessions admitted per user, summed from the workers' UserSessions
    // records; only names of the current users file are kept, so it is
    // bounded by that file.
    std::map<std::string, uint64_t, std::less<>> user_sessions_;
    // The routes' sessions, failures and health, from the workers'
    // RouteStats records.
    RouteStatus routes_;
    uint64_t starved_total_ = 0;
    // Workers replaced, by prometheus::RestartReason.
    std::array<uint64_t, prometheus::kRestartReasonCount> restarts_{};
};

}  // namespace master
