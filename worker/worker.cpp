// The worker process. Lifecycle:
//
//   state      event                                    next
//   ---------  ---------------------------------------  ---------------------
//   starting   loop, resolver, listeners ready           running (first report)
//   running    kDrain / SIGQUIT                          draining
//   running    kStop / SIGTERM / SIGINT / channel EOF    exit now
//   draining   last session closed                       exit
//   draining   kStop / SIGTERM / channel EOF             exit now
//
// Every heartbeat_interval the worker sends its report (the heartbeat),
// followed by what changed of its users' and routes' counters, and flushes
// the access log. A worker never outlives its master: channel EOF
// ends it, and the master also set PR_SET_PDEATHSIG before calling us.
#include "worker/worker.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include <openssl/rand.h>

#include "common/channel.h"
#include "common/libevent_handles.h"
#include "common/libevent_log.h"
#include "common/log.h"
#include "common/timeval.h"
#include "worker/acceptor.h"
#include "worker/access_log.h"
#include "worker/authenticator.h"
#include "worker/client_session.h"
#include "worker/deferred_delete.h"
#include "worker/redis_shared_state.h"
#include "worker/resolver.h"
#include "worker/route_reports.h"
#include "worker/route_table.h"
#include "worker/shared_state.h"
#include "worker/upstream_pool.h"
#include "worker/worker_context.h"

namespace worker {

using common::to_timeval;

namespace {

namespace channel = common::channel;

// Empty splice pipes kept for the next chunk (two descriptors each), out of
// common::kMaxSplicePipes busy or idle. A pipe is busy only while a sink is
// slower than its source, so a few cover a busy worker; more would sit on
// descriptors the sessions need.
constexpr size_t kIdlePipes = 32;

uint64_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// A SIGABRT from the master means this worker stopped reporting. Say so in
// the log before dying, with only async-signal-safe calls.
volatile sig_atomic_t g_active_sessions = 0;

void on_abort_signal(int) {
    char line[160] =
        "worker stopped reporting to the master and is being aborted; active sessions: ";
    size_t n = strlen(line);
    char digits[24];
    int d = 0;
    long value = g_active_sessions;
    do {
        digits[d++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && d < 20);
    while (d > 0) line[n++] = digits[--d];
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

class Worker {
  public:
    explicit Worker(const WorkerStartup& startup) : startup_(startup) {}
    int run();

  private:
    bool setup();
    bool setup_signals();
    bool start_authenticator(const common::Config& config);
    bool start_shared_state(const common::Config& config);
    void send_report();
    void send_cluster_status(pid_t pid);
    void handle_command(const channel::Command& command);
    void begin_drain();
    void stop_now();
    void session_closed();

    static void on_channel(evutil_socket_t fd, short, void* arg) noexcept;
    static void on_heartbeat(evutil_socket_t, short, void* arg) noexcept;
    static void on_signal(evutil_socket_t signal_number, short, void* arg) noexcept;
    static void on_session_closed(void* arg) noexcept;

    const WorkerStartup& startup_;
    common::EventBasePtr base_;
    std::unique_ptr<Resolver> resolver_;
    std::unique_ptr<UpstreamPool> pool_;
    // Outlives the sessions and the graveyard: their admissions hold routes.
    std::unique_ptr<RouteTable> routes_;
    // Outlives the sessions and the graveyard, whose pipelines may still
    // hold a verification to cancel.
    std::unique_ptr<Authenticator> authenticator_;
    // Outlives the sessions and the graveyard: their admissions hold leases
    // it handed out, their pipelines calls to cancel.
    std::unique_ptr<LocalSharedState> local_state_;
    std::unique_ptr<SharedState> shared_state_;  // the cluster store, when set
    RedisSharedState* redis_state_ = nullptr;    // shared_state_, for its status
    std::unique_ptr<PipePool> pipes_;
    std::unique_ptr<AccessLog> access_log_;
    DeferredDeleter graveyard_;
    std::unique_ptr<SessionList> sessions_;
    std::unique_ptr<Acceptor> acceptor_;
    common::EventPtr channel_event_;
    common::EventPtr heartbeat_;
    std::vector<common::EventPtr> signals_;
    WorkerContext context_;
    RouteReports route_reports_;
    std::chrono::steady_clock::time_point next_heartbeat_;
    uint64_t loop_lag_us_ = 0;
    channel::WorkerState state_ = channel::WorkerState::kStarting;
    int exit_status_ = kWorkerExitClean;
};

int Worker::run() {
    if (!setup()) return kWorkerExitFatal;
    state_ = channel::WorkerState::kRunning;
    send_report();  // the first report says "ready"
    event_base_dispatch(base_.get());
    // Fast stop or drained: whatever is left closes now.
    sessions_->close_all();
    graveyard_.free_now();
    pool_->clear();
    access_log_->flush();
    acceptor_.reset();
    return exit_status_;
}

bool Worker::setup() {
    const common::Config& config = *startup_.config;
    common::route_libevent_logs();
    base_ = make_worker_base();
    if (!base_) return false;
    resolver_ =
        Resolver::create(base_.get(), config.limits.dns_timeout, config.resolver.nameservers);
    if (!resolver_) return false;
    // Both pools are lines of the descriptor budget the master sized
    // RLIMIT_NOFILE for (common::descriptor_budget()).
    pool_ = std::make_unique<UpstreamPool>(config.limits.upstream_keepalive_timeout,
                                           config.limits.upstream_keepalive_per_destination,
                                           common::idle_upstream_limit(config.limits));
    pipes_ =
        std::make_unique<PipePool>(config.limits.buffer_size, kIdlePipes, common::kMaxSplicePipes);
    access_log_ = std::make_unique<AccessLog>(config.log.access_log, startup_.access_log_fd,
                                              config.log.access_log_format);
    context_.base = base_.get();
    context_.config = startup_.config;
    context_.resolver = resolver_.get();
    context_.pool = pool_.get();
    routes_ = std::make_unique<RouteTable>(config);
    context_.routes = routes_.get();
    context_.pipes = pipes_.get();
    context_.access_log = access_log_.get();
    context_.connect_policy.deny_private = config.acl.deny_private_destinations;
    context_.connect_policy.connect_timeout = config.limits.connect_timeout;
    for (const InheritedListener& l : startup_.listeners) {
        context_.connect_policy.own_listeners.push_back(l.bound);
    }
    if (!start_authenticator(config)) return false;
    context_.scoreboard = startup_.scoreboard;
    context_.shared_table = startup_.shared_table;
    if (!start_shared_state(config)) return false;
    context_.slot = startup_.slot;
    if (!graveyard_.start(base_.get())) return false;
    context_.graveyard = &graveyard_;
    sessions_ = std::make_unique<SessionList>(context_, on_session_closed, this);
    context_.sessions = sessions_.get();
    acceptor_ = std::make_unique<Acceptor>(context_, startup_.listeners);
    if (!acceptor_->start() || !setup_signals()) return false;
    channel_event_.reset(
        event_new(base_.get(), startup_.channel_fd, EV_READ | EV_PERSIST, on_channel, this));
    heartbeat_.reset(event_new(base_.get(), -1, EV_PERSIST, on_heartbeat, this));
    if (!channel_event_ || !heartbeat_) return false;
    event_priority_set(channel_event_.get(), kOwnPriority);
    event_priority_set(heartbeat_.get(), kOwnPriority);
    event_add(channel_event_.get(), nullptr);
    timeval interval = to_timeval(config.master.heartbeat_interval);
    event_add(heartbeat_.get(), &interval);
    next_heartbeat_ = std::chrono::steady_clock::now() + config.master.heartbeat_interval;
    return true;
}

// Only when a listener asks for passwords: the verifier's threads are
// started here, in the worker, since threads do not survive fork().
bool Worker::start_authenticator(const common::Config& config) {
    bool needed = std::any_of(config.listeners.begin(), config.listeners.end(), [](const auto& l) {
        return l.auth == common::ListenAuth::kPassword;
    });
    if (!needed) return true;
    authenticator_ = std::make_unique<Authenticator>(base_.get(), config);
    if (!authenticator_->ok()) {
        LOG_ERROR("cannot start the password verification threads");
        return false;
    }
    context_.authenticator = authenticator_.get();
    return true;
}

// This node's table answers alone, or stands in for the cluster store
// while it is down (on_redis_down = local).
bool Worker::start_shared_state(const common::Config& config) {
    local_state_ = std::make_unique<LocalSharedState>(startup_.shared_table);
    context_.shared_state = local_state_.get();
    if (!config.cluster.redis) return true;
    uint64_t nonce = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&nonce), sizeof(nonce)) != 1) {
        nonce = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    auto store = std::make_unique<RedisSharedState>(
        base_.get(), config.cluster, *local_state_, context_.counters,
        redis::holder_id(config.cluster.node, static_cast<long>(getpid()), nonce));
    if (!store->start()) {
        LOG_ERROR("cannot start the connection to the cluster store: out of memory");
        return false;
    }
    redis_state_ = store.get();
    shared_state_ = std::move(store);
    context_.shared_state = shared_state_.get();
    return true;
}

bool Worker::setup_signals() {
    // Signals meant for the master reach workers too when sent to the whole
    // process group (a terminal's ^C, `kill -HUP -PGID`); only these matter.
    for (int ignored : {SIGPIPE, SIGHUP, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH}) {
        signal(ignored, SIG_IGN);
    }
    signal(SIGABRT, on_abort_signal);
    for (int handled : {SIGTERM, SIGINT, SIGQUIT, SIGUSR1}) {
        event* ev = evsignal_new(base_.get(), handled, on_signal, this);
        if (ev == nullptr) return false;
        signals_.emplace_back(ev);
        if (event_priority_set(ev, kOwnPriority) != 0 || event_add(ev, nullptr) != 0) {
            return false;
        }
    }
    return true;
}

void Worker::send_report() {
    const Counters& c = context_.counters;
    channel::Report report = channel::make_report();
    report.pid = getpid();
    report.slot = static_cast<uint32_t>(startup_.slot);
    report.generation = startup_.generation;
    report.state = static_cast<uint32_t>(state_);
    report.accepting = acceptor_ && acceptor_->accepting() ? 1 : 0;
    // Every metric of the table travels; the two gauges that are measured
    // rather than counted are taken now.
    report.counters = c;
    report.counters.rss_bytes = resident_bytes();
    report.counters.loop_lag_us = loop_lag_us_;
    g_active_sessions = static_cast<sig_atomic_t>(c.active_sessions);
    // The channel is a datagram socket: one send is one whole record, and a
    // full socket (a master that is busy) just loses this beat.
    if (send(startup_.channel_fd, &report, sizeof(report), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno != EAGAIN) {
        LOG_DEBUG("send() of the report to the master failed (%d: %s)", errno,
                  std::strerror(errno));
    }
    context_.user_sessions.send(startup_.channel_fd, report.pid);
    if (redis_state_ != nullptr) send_cluster_status(report.pid);
    if (context_.routes != nullptr) {
        route_reports_.send(startup_.channel_fd, report.pid, *context_.routes,
                            RouteTable::Clock::now());
    }
}

void Worker::send_cluster_status(pid_t pid) {
    RedisStatus status = redis_state_->take_status();
    channel::ClusterStatus record = channel::make_cluster_status();
    record.pid = pid;
    record.state = static_cast<uint32_t>(status.state);
    record.latency_ewma_us = status.latency_ewma_us;
    record.latency_max_us = status.latency_max_us;
    if (!status.last_error.empty()) {
        record.error_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 status.error_at.time_since_epoch())
                                 .count();
        std::string_view error = status.last_error;
        error = error.substr(0, std::min(error.find('\0'), channel::kMaxClusterError));
        std::memcpy(record.error, error.data(), error.size());
        record.error_length = static_cast<uint16_t>(error.size());
    }
    if (send(startup_.channel_fd, &record, sizeof(record), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        LOG_DEBUG("send() of the cluster status to the master failed (%d: %s)", errno,
                  std::strerror(errno));
    }
}

void Worker::handle_command(const channel::Command& command) {
    switch (static_cast<channel::CommandCode>(command.code)) {
        case channel::CommandCode::kDrain:
            begin_drain();
            break;
        case channel::CommandCode::kPauseAccept:
            acceptor_->pause(Acceptor::kPausedByMaster);
            break;
        case channel::CommandCode::kResumeAccept:
            acceptor_->resume(Acceptor::kPausedByMaster);
            break;
        case channel::CommandCode::kReopenLogs: {
            std::string error;
            if (!common::log::reopen(error)) LOG_ERROR("%s", error.c_str());
            if (!access_log_->reopen(error)) LOG_ERROR("%s", error.c_str());
            break;
        }
        case channel::CommandCode::kStop:
            stop_now();
            break;
    }
}

void Worker::begin_drain() {
    if (state_ == channel::WorkerState::kDraining) return;
    state_ = channel::WorkerState::kDraining;
    context_.draining = true;
    acceptor_->close_listeners();
    LOG_INFO("draining: %llu sessions to finish",
             static_cast<unsigned long long>(context_.counters.active_sessions));
    sessions_->drain_all();
    if (sessions_->empty()) event_base_loopexit(base_.get(), nullptr);
    send_report();
}

// The listening sockets close first: a connection accepted now would only
// be cut, and one queued for us would wait for the master to exit.
void Worker::stop_now() {
    if (acceptor_) acceptor_->close_listeners();
    event_base_loopexit(base_.get(), nullptr);
}

void Worker::session_closed() {
    if (acceptor_) acceptor_->on_session_closed();
    if (context_.draining && sessions_->empty()) {
        event_base_loopexit(base_.get(), nullptr);
    }
}

void Worker::on_channel(evutil_socket_t fd, short, void* arg) noexcept {
    auto* self = static_cast<Worker*>(arg);
    char buffer[sizeof(channel::Command) + 64];
    ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        LOG_INFO("channel to the master closed: exiting");
        // Ready for good now, and first in priority: left in the loop, it
        // would run on every turn and starve everything else, the loop's
        // own exit included.
        event_del(self->channel_event_.get());
        self->stop_now();
        return;
    }
    channel::Command command;
    channel::DecodeStatus status = channel::decode_command(buffer, static_cast<size_t>(n), command);
    if (status != channel::DecodeStatus::kOk) {
        LOG_ALERT("malformed record from the master: %s", channel::describe(status));
        return;
    }
    self->handle_command(command);
}

void Worker::on_heartbeat(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<Worker*>(arg);
    auto now = std::chrono::steady_clock::now();
    auto lag = now - self->next_heartbeat_;
    self->loop_lag_us_ =
        lag.count() > 0 ? static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(lag).count())
                        : 0;
    self->next_heartbeat_ = now + self->startup_.config->master.heartbeat_interval;
    self->access_log_->flush();
    self->send_report();
}

void Worker::on_signal(evutil_socket_t signal_number, short, void* arg) noexcept {
    auto* self = static_cast<Worker*>(arg);
    switch (signal_number) {
        case SIGQUIT:
            self->begin_drain();
            break;
        case SIGUSR1: {
            channel::Command reopen = channel::make_command(channel::CommandCode::kReopenLogs);
            self->handle_command(reopen);
            break;
        }
        default:
            self->stop_now();
            break;
    }
}

void Worker::on_session_closed(void* arg) noexcept {
    static_cast<Worker*>(arg)->session_closed();
}

}  // namespace

common::EventBasePtr make_worker_base() {
    event_config* event_cfg = event_config_new();
    if (event_cfg == nullptr) {
        LOG_ERROR("event_config_new() failed while starting the worker");
        return nullptr;
    }
    // One thread per worker: libevent needs no locks. The changelist folds
    // the add/remove pairs of a loop turn (a write event armed and disarmed
    // around each response) into at most one epoll_ctl per descriptor.
    event_config_set_flag(event_cfg, EVENT_BASE_FLAG_NOLOCK);
    event_config_set_flag(event_cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_max_dispatch_interval(event_cfg, &kMaxTurn, -1, kSessionPriority);
    common::EventBasePtr base(event_base_new_with_config(event_cfg));
    event_config_free(event_cfg);
    if (!base) {
        LOG_ERROR("event_base_new() failed while starting the worker");
        return nullptr;
    }
    // Before any event exists: each event made from here on takes the
    // number of priorities / 2, that is kSessionPriority.
    static_assert(kSessionPriority == 1 && kOwnPriority == 0);
    if (event_base_priority_init(base.get(), 2) != 0) {
        LOG_ERROR("event_base_priority_init() failed while starting the worker");
        return nullptr;
    }
    return base;
}

int run_worker(const WorkerStartup& startup) {
    Worker worker(startup);
    return worker.run();
}

}  // namespace worker
