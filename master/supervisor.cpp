// Worker lifecycle, as the master sees it:
//
//   state      event                                  next state / action
//   ---------  -------------------------------------  ---------------------------------
//   (none)     slot empty and its backoff expired     starting   (fork)
//   starting   first report                           running
//   starting   no report for heartbeat_timeout        as running, below
//   running    report                                 running    (heartbeat)
//   running    no report for heartbeat_timeout,       SIGABRT, SIGKILL 1 s later
//              spinning or blocked (master/silence.h)
//   running    no report for heartbeat_timeout, but   running (warned, counted); SIGABRT
//              starved of CPU                         at 4 x heartbeat_timeout all the same
//   running    over worker_max_rss / _sessions,       running + retiring: a replacement
//              `drain PID`                            starts in the same slot
//   running    replacement (same slot) reported       draining   (kDrain)
//   running    a newer generation is ready,           draining   (kDrain)
//              slot above the target count
//   draining   graceful_timeout passed                SIGKILL
//   any        exit (SIGCHLD)                         reaped; unexpected exits count
//                                                     against the slot's backoff
//
// Draining workers never count toward the target: their slot is refilled at
// once. A slot whose workers fail soon after starting is respawned with an
// exponential backoff and shows as degraded until a worker runs stably.
#include "master/supervisor.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "master/cluster_status.h"
#include "worker/worker.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace master {

namespace ch = common::channel;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr common::Duration kAbortGrace{1000};
constexpr common::Duration kFastStopGrace{1000};
constexpr common::Duration kMaxBackoff{30000};
constexpr int kMaxWorkers = 1024;

int64_t ms_between(Clock::time_point from, Clock::time_point to) {
    return duration_cast<milliseconds>(to - from).count();
}

bool is_crash_signal(int sig) {
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

std::minstd_rand& rng() {
    static std::minstd_rand generator(
        static_cast<unsigned>(::getpid()) ^
        static_cast<unsigned>(Clock::now().time_since_epoch().count()));
    return generator;
}

// Up to one heartbeat interval, so recycles of several workers that cross
// their limit together are spread out.
common::Duration jitter(common::Duration upto) {
    if (upto.count() <= 0) return common::Duration{0};
    std::uniform_int_distribution<int64_t> dist(0, upto.count());
    return common::Duration{dist(rng())};
}

// In the forked worker: the master's signal handlers write to the master's
// libevent signal pipe, so they must go before anything else runs. SIGPIPE
// stays ignored: a worker writes to sockets a peer may have closed.
void reset_signals() {
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        ::signal(sig, sig == SIGPIPE ? SIG_IGN : SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

// In the forked worker: closes every descriptor it must not hold: other
// workers' channels (their EOF is how they learn the master died), the
// control socket, listeners of other generations, the master's event loop.
// Descriptors open on a file path (the error log) are kept. False when
// /proc/self/fd could not be read (nothing was closed then).
bool close_inherited_fds(const std::vector<int>& keep) {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) return false;
    std::vector<int> to_close;
    int dir_fd = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
        char* end = nullptr;
        long fd = std::strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0' || fd <= 2 || fd == dir_fd) continue;
        if (std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
        char target[256];
        std::string link = "/proc/self/fd/" + std::string(entry->d_name);
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n > 0 && target[0] == '/') continue;
        to_close.push_back(static_cast<int>(fd));
    }
    ::closedir(dir);
    for (int fd : to_close) ::close(fd);
    return true;
}

}  // namespace

const char* status_name(WorkerStatus status) {
    switch (status) {
        case WorkerStatus::kStarting:
            return "starting";
        case WorkerStatus::kRunning:
            return "running";
        case WorkerStatus::kDraining:
            return "draining";
    }
    return "unknown";
}

ExitKind classify_exit(int wait_status, int signal_sent) {
    if (WIFEXITED(wait_status)) {
        int code = WEXITSTATUS(wait_status);
        if (code == 0) return ExitKind::kClean;
        if (code == worker::kWorkerExitFatal) return ExitKind::kFatalConfig;
        return ExitKind::kFailed;
    }
    int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
    if (sig != 0 && sig == signal_sent) return ExitKind::kKilledByUs;
    if (signal_sent == SIGKILL && sig == SIGKILL) return ExitKind::kKilledByUs;
    if (is_crash_signal(sig)) return ExitKind::kCrashed;
    return ExitKind::kKilledOutside;
}

std::string describe_exit(int wait_status) {
    if (WIFEXITED(wait_status))
        return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) {
        int sig = WTERMSIG(wait_status);
        std::string text =
            "killed by signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")";
        if (WCOREDUMP(wait_status)) text += ", core dumped";
        return text;
    }
    return "ended with wait status " + std::to_string(wait_status);
}

common::Duration backoff_delay(int failures) {
    if (failures <= 1) return common::Duration{0};
    common::Duration delay{100};
    for (int i = 2; i < failures && delay < kMaxBackoff; ++i) delay *= 2;
    return std::min(delay, kMaxBackoff);
}

std::vector<BalanceAction> plan_balance(const std::vector<BalanceInput>& workers) {
    std::vector<BalanceAction> actions(workers.size(), BalanceAction::kNone);
    if (workers.size() < 2) {
        for (size_t i = 0; i < workers.size(); ++i) {
            if (workers[i].paused) actions[i] = BalanceAction::kResume;
        }
        return actions;
    }
    double sum = 0;
    for (const BalanceInput& w : workers) sum += static_cast<double>(w.active_sessions);
    const double mean = sum / static_cast<double>(workers.size());
    size_t accepting = 0;
    for (size_t i = 0; i < workers.size(); ++i) {
        double active = static_cast<double>(workers[i].active_sessions);
        if (workers[i].paused && active <= mean) actions[i] = BalanceAction::kResume;
        if (!workers[i].paused || actions[i] == BalanceAction::kResume) ++accepting;
    }
    for (size_t i = 0; i < workers.size(); ++i) {
        double active = static_cast<double>(workers[i].active_sessions);
        if (!workers[i].paused && active > mean * 1.2 + 2 && accepting > 1) {
            actions[i] = BalanceAction::kPause;
            --accepting;
        }
    }
    return actions;
}

// ---- Supervisor ---------------------------------------------------------------

Supervisor::Supervisor(event_base* base)
    : base_(base), scoreboard_(common::Scoreboard::create(kMaxWorkers)) {
    if (!scoreboard_)
        LOG_WARN("mmap() of the scoreboard failed (%d: %s)", errno, std::strerror(errno));
}

Supervisor::~Supervisor() = default;

void Supervisor::start_generation(GenerationPtr generation) {
    open_shared_table(*generation->config);
    const bool reload = current_ != nullptr;
    current_ = std::move(generation);
    // Users the new users file no longer has are forgotten, and so are the
    // routes the new configuration no longer has, once no worker reports them.
    const auto& users = current_->config->auth.users;
    std::erase_if(user_sessions_, [&](const auto& entry) { return !users.count(entry.first); });
    routes_.configure(current_->config);
    adopt_worker_count(reload);
    slots_.clear();
    limit_draining_generations();
    reconcile();
}

// The configuration's `workers`, as one comparable word.
std::string worker_spec(const common::MasterConfig& m) {
    if (!m.workers_auto) return std::to_string(m.workers);
    return "auto " + std::to_string(m.workers_min) + ".." + std::to_string(m.workers_max);
}

// An operator who scaled the workers (scale, SIGTTIN, SIGTTOU) and then
// reloads for another reason keeps the count chosen; a reload that changes
// `workers` itself means the new value. An elastic pool keeps its size over
// a reload (the new generation starts as large as the load needs), within
// the new bounds.
void Supervisor::adopt_worker_count(bool reload) {
    const common::MasterConfig& m = current_->config->master;
    const std::string spec = worker_spec(m);
    if (reload && pinned_ && spec == configured_workers_) {
        LOG_INFO("keeping %d workers as scaled: \"workers = %s\" did not change", target_,
                 spec.c_str());
    } else if (m.workers_auto) {
        pinned_ = false;
        target_ = std::clamp(reload ? target_ : m.workers_min, m.workers_min, m.workers_max);
    } else {
        pinned_ = false;
        target_ = std::clamp(m.workers, 1, kMaxWorkers);
    }
    configured_workers_ = spec;
    pool_.reset();
}

// The shared table is mapped once, before the first fork, so that every
// generation's workers share it; its size cannot change under them.
void Supervisor::open_shared_table(const common::Config& config) {
    common::SharedTable::Capacity capacity;
    capacity.keys = config.limits.shared_table_keys;
    capacity.leases = config.limits.shared_table_leases;
    capacity.holders = 4 * kMaxWorkers;  // live and draining workers
    if (!current_) {
        shared_table_ = common::SharedTable::create(capacity);
        if (!shared_table_) {
            LOG_ERROR("mmap() of the shared table (%zu keys, %zu leases) failed (%d: %s)",
                      capacity.keys, capacity.leases, errno, std::strerror(errno));
        }
    } else if (shared_table_ && (capacity.keys != shared_table_->capacity().keys ||
                                 capacity.leases != shared_table_->capacity().leases)) {
        LOG_WARN(
            "the shared table keeps %zu keys and %zu leases: a new size takes effect after "
            "a restart or a hot upgrade",
            shared_table_->capacity().keys, shared_table_->capacity().leases);
    }
}

void Supervisor::set_target(int count) {
    pinned_ = true;
    resize(count);
}

bool Supervisor::elastic() const {
    return current_ && current_->config->master.workers_auto && !pinned_;
}

void Supervisor::resize(int count) {
    target_ = std::clamp(count, 1, kMaxWorkers);
    for (auto it = slots_.begin(); it != slots_.end();) {
        it = it->first >= target_ ? slots_.erase(it) : std::next(it);
    }
    reconcile();
}

bool Supervisor::drain_worker(pid_t pid, std::string& error) {
    auto it = workers_.find(pid);
    if (it == workers_.end()) {
        error = "no worker with pid " + std::to_string(pid);
        return false;
    }
    Worker& w = *it->second;
    if (w.generation != current_) {
        error = "worker " + std::to_string(pid) + " belongs to an old generation";
        return false;
    }
    if (w.status == WorkerStatus::kDraining || w.retiring) {
        error = "worker " + std::to_string(pid) + " is already draining";
        return false;
    }
    LOG_INFO("retiring worker %d (pid %d) on request; starting its replacement", w.slot, w.pid);
    w.retiring = true;
    reconcile();
    return true;
}

void Supervisor::broadcast(ch::CommandCode code) {
    for (auto& [pid, w] : workers_) send_command(*w, code);
}

void Supervisor::stop(bool graceful) {
    Clock::time_point now = Clock::now();
    if (!stopping_ || (!graceful && !fast_stop_)) kill_at_ = now + kFastStopGrace;
    stopping_ = true;
    if (!graceful) fast_stop_ = true;
    for (auto& [pid, w] : workers_) {
        if (graceful) {
            if (w->status != WorkerStatus::kDraining) drain(*w, "shutting down");
        } else {
            send_command(*w, ch::CommandCode::kStop);
        }
    }
    close_listeners();
}

// The kernel keeps a listening socket, and queues new connections on it,
// while any process holds a copy: the master's must go at once, or a new
// client connects into a backlog nobody accepts from until the drain ends.
// close(), never shutdown(): shutdown() would end the socket for every
// holder, and the new master of a hot upgrade (which stops this one with
// SIGQUIT) holds copies of its own and keeps serving on them.
void Supervisor::close_listeners() {
    bool closed = false;
    auto close_all = [&closed](const Generation& generation) {
        for (const Listener& l : generation.listeners) {
            closed = closed || l.socket->fd;
            l.socket->fd.reset();
        }
    };
    if (current_) close_all(*current_);
    for (auto& [pid, w] : workers_) close_all(*w->generation);
    if (closed) LOG_INFO("listening sockets closed: new connections are refused");
}

bool Supervisor::slot_filled(int slot) const {
    for (const auto& [pid, w] : workers_) {
        if (w->generation == current_ && w->slot == slot && w->status != WorkerStatus::kDraining &&
            !w->retiring) {
            return true;
        }
    }
    return false;
}

bool Supervisor::ready() const {
    if (!current_) return false;
    for (int slot = 0; slot < target_; ++slot) {
        bool running = false;
        for (const auto& [pid, w] : workers_) {
            if (w->generation == current_ && w->slot == slot &&
                w->status == WorkerStatus::kRunning) {
                running = true;
                break;
            }
        }
        if (!running) return false;
    }
    return true;
}

Supervisor::Summary Supervisor::summary() const {
    Summary out;
    for (const auto& [pid, w] : workers_) {
        if (w->status == WorkerStatus::kRunning) ++out.running;
        out.active_sessions += w->report.counters.active_sessions;
    }
    return out;
}

bool Supervisor::degraded() const {
    for (const auto& [slot, info] : slots_) {
        if (info.degraded) return true;
    }
    return false;
}

// Spawns what is missing and drains what is surplus. Called after every
// change to the table, so the table converges without waiting for a tick.
void Supervisor::reconcile() {
    if (stopping_ || !current_) return;
    Clock::time_point now = Clock::now();
    for (int slot = 0; slot < target_; ++slot) {
        if (slot_filled(slot)) continue;
        SlotInfo& info = slots_[slot];
        if (now < info.next_spawn) continue;
        if (!spawn(slot)) {
            ++info.failures;
            info.next_spawn = now + std::max(backoff_delay(info.failures), common::Duration{100});
        }
    }
    bool new_generation_ready = ready();
    for (auto& [pid, w] : workers_) {
        if (w->status == WorkerStatus::kDraining) continue;
        if (w->generation == current_ && w->slot >= target_) {
            drain(*w, "the worker count was lowered");
        } else if (w->generation != current_ && new_generation_ready) {
            drain(*w, "a newer generation is ready");
        }
    }
}

void Supervisor::drain(Worker& w, const char* why) {
    w.status = WorkerStatus::kDraining;
    w.retiring = false;
    w.paused = false;
    w.drain_deadline = Clock::now() + w.generation->config->master.graceful_timeout;
    LOG_INFO("draining worker %d (pid %d, generation %u): %s", w.slot, w.pid, w.generation->number,
             why);
    send_command(w, ch::CommandCode::kDrain);
}

bool Supervisor::send_command(Worker& w, ch::CommandCode code) {
    if (!w.channel || w.channel_closed) return false;
    ch::Command command = ch::make_command(code);
    ssize_t n = ::send(w.channel.get(), &command, sizeof command, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(sizeof command)) return true;
    int err = n < 0 ? errno : EMSGSIZE;
    // A worker that is gone already is reaped on SIGCHLD; no need to shout.
    if (err == EPIPE || err == ECONNRESET) return false;
    LOG_ERROR("send() failed (%d: %s) while sending command %u to worker %d (pid %d)", err,
              std::strerror(err), static_cast<unsigned>(code), w.slot, w.pid);
    return false;
}

void Supervisor::send_signal(Worker& w, int sig) {
    if (::kill(w.pid, sig) != 0 && errno != ESRCH) {
        LOG_ERROR("kill(%d, %d) failed (%d: %s) for worker %d", w.pid, sig, errno,
                  std::strerror(errno), w.slot);
    }
    w.signal_sent = sig;
    w.signal_time = Clock::now();
}

// ---- spawning -----------------------------------------------------------------

bool Supervisor::spawn(int slot) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        LOG_ERROR("socketpair() failed (%d: %s) while spawning worker %d", errno,
                  std::strerror(errno), slot);
        return false;
    }
    common::UniqueFd ours(pair[0]);
    common::UniqueFd theirs(pair[1]);
    const pid_t master_pid = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        LOG_ERROR("fork() failed (%d: %s) while spawning worker %d", errno, std::strerror(errno),
                  slot);
        return false;
    }
    if (pid == 0) run_child(slot, theirs.get(), master_pid);

    auto w = std::make_unique<Worker>();
    w->owner = this;
    w->pid = pid;
    w->slot = slot;
    w->generation = current_;
    w->started = Clock::now();
    w->sched = start_track(read_sched_sample(pid));
    w->sched_read = w->started;
    w->channel = std::move(ours);
    w->channel_event.reset(
        event_new(base_, w->channel.get(), EV_READ | EV_PERSIST, on_channel, w.get()));
    if (!w->channel_event || event_add(w->channel_event.get(), nullptr) != 0) {
        // Without its channel the worker cannot be supervised: it sees EOF
        // when `w` goes away below... but only once reaped; kill it now.
        LOG_ERROR("event_add() failed while spawning worker %d (pid %d)", slot, pid);
        send_signal(*w, SIGKILL);
    }
    LOG_INFO("started worker %d (pid %d) of generation %u", slot, pid, current_->number);
    workers_.emplace(pid, std::move(w));
    return true;
}

void Supervisor::run_child(int slot, int channel_fd, pid_t master_pid) {
    reset_signals();
    // The master may have died between fork() and prctl(): then the death
    // signal would never come, so check the parent explicitly afterwards.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != master_pid) ::_exit(1);

    worker::WorkerStartup startup;
    startup.config = current_->config;
    startup.channel_fd = channel_fd;
    startup.slot = slot;
    startup.generation = current_->number;
    startup.scoreboard = scoreboard_.get();
    startup.shared_table = shared_table_.get();
    std::vector<int> keep{channel_fd};
    if (access_log_ != nullptr && access_log_->fd() >= 0) {
        startup.access_log_fd = access_log_->fd();
        keep.push_back(access_log_->fd());
    }
    for (const Listener& l : current_->listeners) {
        keep.push_back(l.fd());
        startup.listeners.push_back({l.fd(), l.config, l.socket->bound});
    }
    // Freeing the master's event base makes libevent forget the master's
    // signal handlers, so the worker's own base may take signals. Only safe
    // once the epoll descriptor is closed: epoll_ctl(DEL) on a shared epoll
    // set would unregister the master's own events.
    if (close_inherited_fds(keep)) event_base_free(base_);
    common::log::set_role("worker " + std::to_string(slot));
    int status = worker::run_worker(startup);
#if defined(__SANITIZE_ADDRESS__)
    // _exit skips LeakSanitizer's exit-time check; run it here so the
    // sanitizer build checks every worker for leaks, not only the master.
    __lsan_do_leak_check();
#endif
    ::_exit(status);
}

// ---- channel --------------------------------------------------------------------

void Supervisor::on_channel(evutil_socket_t, short, void* arg) noexcept {
    Worker* w = static_cast<Worker*>(arg);
    w->owner->read_channel(*w);
}

void Supervisor::read_channel(Worker& w) {
    for (int i = 0; i < 64; ++i) {
        alignas(8) unsigned char
            buf[std::max({sizeof(ch::Report), sizeof(ch::UserSessions), sizeof(ch::RouteStats)}) +
                64];
        ssize_t n = ::recv(w.channel.get(), buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            // EOF: the worker is exiting; SIGCHLD follows and reaps it.
            if (n < 0 && errno != ECONNRESET) {
                LOG_ERROR("recv() failed (%d: %s) on the channel of worker %d (pid %d)", errno,
                          std::strerror(errno), w.slot, w.pid);
            }
            event_del(w.channel_event.get());
            w.channel_closed = true;
            return;
        }
        size_t size = static_cast<size_t>(n);
        std::optional<ch::RecordType> type =
            size > sizeof buf ? std::nullopt : ch::record_type(buf, size);
        ch::DecodeStatus status = ch::DecodeStatus::kBadLength;
        if (type == ch::RecordType::kUserSessions) {
            ch::UserSessions record;
            status = ch::decode_user_sessions(buf, size, record);
            if (status == ch::DecodeStatus::kOk) on_user_sessions(w, record);
        } else if (type == ch::RecordType::kRouteStats) {
            ch::RouteStats record;
            status = ch::decode_route_stats(buf, size, record);
            if (status == ch::DecodeStatus::kOk) on_route_stats(w, record);
        } else if (type == ch::RecordType::kClusterStatus) {
            ch::ClusterStatus record;
            status = ch::decode_cluster_status(buf, size, record);
            if (status == ch::DecodeStatus::kOk) on_cluster_status(w, record);
        } else if (size <= sizeof buf) {
            ch::Report report;
            status = ch::decode_report(buf, size, report);
            if (status == ch::DecodeStatus::kOk) on_report(w, report);
        }
        if (status != ch::DecodeStatus::kOk) {
            LOG_ERROR("malformed report (%s, %zd bytes) from worker %d (pid %d)",
                      ch::describe(status), n, w.slot, w.pid);
        }
    }
}

void Supervisor::on_user_sessions(Worker& w, const ch::UserSessions& record) {
    if (record.pid != w.pid) {
        LOG_ERROR("user sessions from worker %d (pid %d) claim pid %d", w.slot, w.pid, record.pid);
        return;
    }
    const auto& users = current_->config->auth.users;
    for (uint32_t i = 0; i < record.count; ++i) {
        const ch::UserSessionCount& user = record.users[i];
        std::string_view name(user.name, user.name_length);
        // A user a reload removed may still be counted by a draining worker.
        if (users.find(name) == users.end()) continue;
        auto it = user_sessions_.find(name);
        if (it == user_sessions_.end()) it = user_sessions_.emplace(std::string(name), 0).first;
        it->second += user.sessions;
    }
}

void Supervisor::on_cluster_status(Worker& w, const ch::ClusterStatus& record) {
    if (record.pid != w.pid) {
        LOG_ERROR("cluster status from worker %d (pid %d) claims pid %d", w.slot, w.pid,
                  record.pid);
        return;
    }
    w.cluster = record;
}

void Supervisor::on_route_stats(Worker& w, const ch::RouteStats& record) {
    if (record.pid != w.pid) {
        LOG_ERROR("route stats from worker %d (pid %d) claim pid %d", w.slot, w.pid, record.pid);
        return;
    }
    routes_.on_record(w.pid, record);
}

void Supervisor::on_report(Worker& w, const ch::Report& report) {
    if (report.pid != w.pid || report.slot != static_cast<uint32_t>(w.slot)) {
        LOG_ERROR("report from worker %d (pid %d) claims slot %u pid %d", w.slot, w.pid,
                  report.slot, report.pid);
    }
    w.report = report;
    w.has_report = true;
    w.last_report = Clock::now();
    w.sched = start_track(read_sched_sample(w.pid));
    w.sched_read = w.last_report;
    if (w.starved) {
        w.starved = false;
        LOG_INFO("worker %d (pid %d) reports again after being starved of CPU", w.slot, w.pid);
    }
    if (report.state == static_cast<uint32_t>(ch::WorkerState::kDraining) &&
        w.status != WorkerStatus::kDraining) {
        // The worker decided to drain on its own (e.g. it lost a resource).
        w.status = WorkerStatus::kDraining;
        w.drain_deadline = w.last_report + w.generation->config->master.graceful_timeout;
    }
    if (w.status != WorkerStatus::kStarting) return;

    w.status = WorkerStatus::kRunning;
    LOG_INFO("worker %d (pid %d) of generation %u is ready after %lld ms", w.slot, w.pid,
             w.generation->number, static_cast<long long>(ms_between(w.started, w.last_report)));
    // A replacement is ready: retire what it replaces.
    for (auto& [pid, other] : workers_) {
        if (other->retiring && other->generation == w.generation && other->slot == w.slot &&
            other->status != WorkerStatus::kDraining) {
            drain(*other, "its replacement is ready");
        }
    }
    reconcile();
}

// ---- exits --------------------------------------------------------------------

void Supervisor::reap(const std::function<void(pid_t, int)>& on_other_exit) {
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) break;
        auto it = workers_.find(pid);
        if (it == workers_.end()) {
            if (on_other_exit) on_other_exit(pid, status);
            continue;
        }
        on_exit(*it->second, status);
        workers_.erase(it);
    }
    reconcile();
}

void Supervisor::on_exit(Worker& w, int wait_status) {
    const bool expected = w.status == WorkerStatus::kDraining || stopping_;
    const ExitKind kind = classify_exit(wait_status, w.signal_sent);
    const std::string how = describe_exit(wait_status);
    const int slot = w.slot;
    const int pid = w.pid;
    // A dead worker's row must not keep counting: clear it if still its own.
    if (scoreboard_) scoreboard_->release(slot, pid);
    // Whatever leases it held, however it ended, are given back.
    if (size_t given = shared_table_ ? shared_table_->reclaim(pid) : 0) {
        LOG_INFO("worker %d (pid %d) exited holding %zu leases: given back", slot, pid, given);
    }
    const long long lived = static_cast<long long>(ms_between(w.started, Clock::now()));
    switch (kind) {
        case ExitKind::kClean:
            if (expected)
                LOG_INFO("worker %d (pid %d) exited", slot, pid);
            else
                LOG_WARN("worker %d (pid %d) exited unexpectedly after %lld ms", slot, pid, lived);
            break;
        case ExitKind::kFatalConfig:
            LOG_ERROR("worker %d (pid %d) %s: it cannot run with this configuration", slot, pid,
                      how.c_str());
            break;
        case ExitKind::kFailed:
            LOG_ERROR("worker %d (pid %d) %s", slot, pid, how.c_str());
            break;
        case ExitKind::kCrashed:
            LOG_ALERT("worker %d (pid %d) crashed: %s", slot, pid, how.c_str());
            break;
        case ExitKind::kKilledByUs:
            if (expected)
                LOG_INFO("worker %d (pid %d) %s", slot, pid, how.c_str());
            else
                LOG_WARN("worker %d (pid %d) %s", slot, pid, how.c_str());
            break;
        case ExitKind::kKilledOutside:
            if (expected)
                LOG_WARN("worker %d (pid %d) %s", slot, pid, how.c_str());
            else
                LOG_ERROR("worker %d (pid %d) %s", slot, pid, how.c_str());
            break;
    }
    common::metrics::add_counters(retired_, w.report.counters);
    routes_.worker_exited(pid);
    count_restart(w, expected);
    if (!expected && !w.retiring) count_failure(w, kind);
}

// A worker we aborted for its silence was hung, whatever its exit says; any
// other exit nobody asked for is a crash (a signal, an exit code, even a
// clean exit). Recycles are counted when they are decided.
void Supervisor::count_restart(const Worker& w, bool expected) {
    if (w.hung)
        ++restarts_[prometheus::kRestartHung];
    else if (!expected)
        ++restarts_[prometheus::kRestartCrash];
}

// An unexpected exit of a current worker: respawn its slot after a backoff
// that grows while its workers keep failing soon after they start.
void Supervisor::count_failure(const Worker& w, ExitKind kind) {
    if (w.generation != current_ || w.slot >= target_) return;
    Clock::time_point now = Clock::now();
    SlotInfo& info = slots_[w.slot];
    const bool quick = !w.has_report || now - w.started < kStableAfter;
    info.failures = quick ? info.failures + 1 : 1;
    info.next_spawn = now + backoff_delay(info.failures);
    if (kind == ExitKind::kFatalConfig || info.failures >= kDegradedFailures) {
        if (!info.degraded) {
            LOG_ERROR("worker slot %d is degraded: %d failures in a row; respawning in %lld ms",
                      w.slot, info.failures,
                      static_cast<long long>(backoff_delay(info.failures).count()));
        }
        info.degraded = true;
    }
}

// ---- periodic checks ------------------------------------------------------------

void Supervisor::tick() {
    Clock::time_point now = Clock::now();
    for (auto& [pid, w] : workers_) {
        if (w->signal_sent == SIGKILL) continue;
        if (fast_stop_) {
            if (now >= kill_at_) {
                LOG_WARN("worker %d (pid %d) did not stop in time, sending SIGKILL", w->slot,
                         w->pid);
                send_signal(*w, SIGKILL);
            }
            continue;
        }
        if (w->status == WorkerStatus::kDraining && now >= w->drain_deadline) {
            LOG_WARN(
                "worker %d (pid %d) did not finish draining within %lld ms, sending SIGKILL",
                w->slot, w->pid,
                static_cast<long long>(w->generation->config->master.graceful_timeout.count()));
            send_signal(*w, SIGKILL);
            continue;
        }
        check_hung(*w, now);
    }
    if (stopping_) return;
    check_stable(now);
    check_recycle(now);
    balance(now);
    resize_pool(now);
    reconcile();
}

void Supervisor::check_hung(Worker& w, Clock::time_point now) {
    if (w.signal_sent == SIGKILL) return;
    if (w.signal_sent == SIGABRT) {
        if (now - w.signal_time >= kAbortGrace) {
            LOG_ERROR("worker %d (pid %d) still alive after SIGABRT, sending SIGKILL", w.slot,
                      w.pid);
            send_signal(w, SIGKILL);
        }
        return;
    }
    const common::MasterConfig& mc = w.generation->config->master;
    const Clock::time_point seen = w.has_report ? w.last_report : w.started;
    const common::Duration silent = duration_cast<milliseconds>(now - seen);
    // Once a report is overdue, every check reads the scheduler's view.
    if (silent * 2 > mc.heartbeat_interval * 3) {
        add_reading(w.sched, read_sched_sample(w.pid),
                    duration_cast<milliseconds>(now - w.sched_read));
        w.sched_read = now;
    }
    if (silent < mc.heartbeat_timeout) return;
    // A missed heartbeat is not yet a hang: the scheduler's counters tell a
    // worker that could not get a CPU from one that spins or sleeps.
    const Silence why = classify_silence(w.sched, silent, mc.heartbeat_interval);
    const std::string counters = describe_track(w.sched);
    if (forgive_starved(w, why, silent, counters)) return;
    LOG_ERROR("worker %d (pid %d) sent no report for %lld ms (%s: %s), sending SIGABRT", w.slot,
              w.pid, static_cast<long long>(silent.count()), silence_name(why), counters.c_str());
    w.hung = true;
    send_signal(w, SIGABRT);
}

// A starved worker is working, only slowly: warned about and counted once
// per silence, and left alone up to kStarvedTimeoutFactor heartbeat_timeouts.
// False when it must be aborted after all.
bool Supervisor::forgive_starved(Worker& w, Silence why, common::Duration silent,
                                 const std::string& counters) {
    if (why != Silence::kStarved) return false;
    const common::Duration limit =
        w.generation->config->master.heartbeat_timeout * kStarvedTimeoutFactor;
    if (silent >= limit) {
        LOG_ERROR(
            "worker %d (pid %d) has been starved of CPU for %lld ms (%s), longer than "
            "%d heartbeat_timeouts",
            w.slot, w.pid, static_cast<long long>(silent.count()), counters.c_str(),
            kStarvedTimeoutFactor);
        return false;
    }
    if (!w.starved) {
        w.starved = true;
        ++w.starved_count;
        ++starved_total_;
        LOG_WARN(
            "worker %d (pid %d) sent no report for %lld ms but is starved of CPU (%s): "
            "not aborting it before %lld ms",
            w.slot, w.pid, static_cast<long long>(silent.count()), counters.c_str(),
            static_cast<long long>(limit.count()));
    }
    return true;
}

void Supervisor::check_stable(Clock::time_point now) {
    for (auto& [slot, info] : slots_) {
        if (info.failures == 0) continue;
        for (const auto& [pid, w] : workers_) {
            if (w->generation == current_ && w->slot == slot &&
                w->status == WorkerStatus::kRunning && now - w->started >= kStableAfter) {
                if (info.degraded) LOG_INFO("worker slot %d recovered", slot);
                info = SlotInfo{};
                break;
            }
        }
    }
}

// One recycle at a time: a new one starts only when no worker is waiting
// for its replacement, and after a random delay.
void Supervisor::check_recycle(Clock::time_point now) {
    const common::MasterConfig& mc = current_->config->master;
    if (mc.worker_max_rss == 0 && mc.worker_max_sessions == 0) return;
    if (now < next_recycle_) return;
    for (const auto& [pid, w] : workers_) {
        if (w->retiring && w->status != WorkerStatus::kDraining) return;
    }
    for (auto& [pid, w] : workers_) {
        if (w->generation != current_ || w->status != WorkerStatus::kRunning || !w->has_report) {
            continue;
        }
        const common::metrics::Counters& r = w->report.counters;
        const bool rss = mc.worker_max_rss != 0 && r.rss_bytes > mc.worker_max_rss;
        const bool sessions =
            mc.worker_max_sessions != 0 && r.total_sessions >= mc.worker_max_sessions;
        if (!rss && !sessions) continue;
        if (rss) {
            LOG_INFO("recycling worker %d (pid %d): rss %llu bytes is above worker_max_rss",
                     w->slot, w->pid, static_cast<unsigned long long>(r.rss_bytes));
        } else {
            LOG_INFO("recycling worker %d (pid %d): %llu sessions reached worker_max_sessions",
                     w->slot, w->pid, static_cast<unsigned long long>(r.total_sessions));
        }
        w->retiring = true;
        ++restarts_[prometheus::kRestartRecycled];
        next_recycle_ = now + jitter(mc.heartbeat_interval);
        reconcile();
        return;
    }
}

// The sessions `w` holds now: its scoreboard row, or its last report when
// there is no scoreboard (or the row is not its own yet).
uint64_t Supervisor::active_now(const Worker& w) const {
    const int64_t live = scoreboard_ ? scoreboard_->active_of(w.slot, w.pid) : -1;
    return live >= 0 ? static_cast<uint64_t>(live) : w.report.counters.active_sessions;
}

// Every tick with the scoreboard's current counts: a worker the pool just
// added takes the new connections until it has caught up, and not a
// heartbeat longer (it would overshoot by a second of arrivals, and held
// tunnels never move back).
void Supervisor::balance(Clock::time_point now) {
    if (!scoreboard_) {
        if (now < next_balance_) return;
        next_balance_ = now + current_->config->master.heartbeat_interval;
    }
    // A worker silent for two heartbeats (stopped, starved, hung) takes no
    // connection however few it holds: the others must not step aside for it.
    const common::Duration silent_after = current_->config->master.heartbeat_interval * 2;
    std::vector<Worker*> members;
    std::vector<BalanceInput> inputs;
    for (auto& [pid, w] : workers_) {
        if (w->generation != current_ || w->status != WorkerStatus::kRunning || !w->has_report ||
            now - w->last_report > silent_after) {
            continue;
        }
        members.push_back(w.get());
        inputs.push_back({active_now(*w), w->paused});
    }
    std::vector<BalanceAction> actions = plan_balance(inputs);
    for (size_t i = 0; i < members.size(); ++i) {
        Worker& w = *members[i];
        if (actions[i] == BalanceAction::kPause && send_command(w, ch::CommandCode::kPauseAccept)) {
            LOG_DEBUG("pausing accepts on worker %d (pid %d): %llu active sessions", w.slot, w.pid,
                      static_cast<unsigned long long>(inputs[i].active_sessions));
            w.paused = true;
        } else if (actions[i] == BalanceAction::kResume &&
                   send_command(w, ch::CommandCode::kResumeAccept)) {
            LOG_DEBUG("resuming accepts on worker %d (pid %d)", w.slot, w.pid);
            w.paused = false;
        }
    }
}

// The elastic pool: once every slot runs and reported (so a worker still
// starting is not counted as empty capacity twice), the summed sessions of
// the current generation decide the count (master/worker_pool.h). Read
// every tick from the scoreboard, which is current: a burst of new sessions
// fills a worker well within the heartbeat its report waits for.
void Supervisor::resize_pool(Clock::time_point now) {
    if (!elastic()) return;
    const common::Config& config = *current_->config;
    PoolLoad load;
    for (const auto& [pid, w] : workers_) {
        if (w->generation != current_ || w->status == WorkerStatus::kDraining) continue;
        if (w->retiring || w->status != WorkerStatus::kRunning || !w->has_report) return;
        ++load.workers;
        load.active_sessions += active_now(*w);
    }
    if (load.workers != target_) return;
    load.capacity_per_worker = config.limits.max_connections;
    load.min = config.master.workers_min;
    load.max = config.master.workers_max;
    const int count = pool_.plan(load, now, config.master.heartbeat_interval);
    if (count == target_) return;
    const double used =
        100.0 * static_cast<double>(load.active_sessions) /
        (static_cast<double>(target_) * static_cast<double>(load.capacity_per_worker));
    LOG_INFO(
        "%s the worker pool from %d to %d: %llu sessions, %.0f%% of %d x %llu (workers_min %d, "
        "workers_max %d)",
        count > target_ ? "growing" : "shrinking", target_, count,
        static_cast<unsigned long long>(load.active_sessions), used, target_,
        static_cast<unsigned long long>(load.capacity_per_worker), load.min, load.max);
    resize(count);
}

// Bounds how many old generations may drain at once: the oldest ones are
// killed when a new generation would exceed max_draining_generations.
void Supervisor::limit_draining_generations() {
    const int limit = std::max(1, current_->config->master.max_draining_generations);
    std::vector<uint32_t> old;
    for (const auto& [pid, w] : workers_) {
        uint32_t number = w->generation->number;
        if (w->generation != current_ && std::find(old.begin(), old.end(), number) == old.end()) {
            old.push_back(number);
        }
    }
    std::sort(old.begin(), old.end());
    while (static_cast<int>(old.size()) > limit) {
        uint32_t victim = old.front();
        old.erase(old.begin());
        for (auto& [pid, w] : workers_) {
            if (w->generation->number == victim && w->signal_sent != SIGKILL) {
                LOG_WARN(
                    "too many generations draining: killing worker %d (pid %d) of generation %u",
                    w->slot, w->pid, victim);
                send_signal(*w, SIGKILL);
            }
        }
    }
}

// ---- reporting -----------------------------------------------------------------

namespace {

using common::Json;
using common::metrics::Counters;
using common::metrics::Metric;

// One metric's values by label value: {"denied": 3, ...}; a two-dimensional
// one nested, first dimension outer: {"http": {"2xx": 3, ...}, ...}; a
// histogram's buckets by `le` and its "sum_us".
Json by_label(const Metric& m, const Counters& counters) {
    Json out = Json::object();
    const uint64_t* values = m.values(counters);
    for (uint32_t i = 0; i < m.labelled_values(); ++i) {
        if (m.label.two())
            out[m.first_value(i)][m.second_value(i)] = values[i];
        else
            out[m.first_value(i)] = values[i];
    }
    if (m.type == common::metrics::Type::kHistogram) out["sum_us"] = values[m.labelled_values()];
    return out;
}

// "errors_by_class", "exchanges_by_protocol_class".
std::string by_label_name(const Metric& m) {
    std::string name = std::string(m.name) + "_by_" + m.label.first.name;
    if (m.label.two()) name += std::string("_") + m.label.second.name;
    return name;
}

}  // namespace

void add_worker_metrics(Json& item, const Counters& counters) {
    for (const Metric& m : common::metrics::kMetrics) {
        const std::string name(m.name);
        if (m.label.none())
            item[name] = m.values(counters)[0];
        else
            item[name] = by_label(m, counters);
    }
}

void add_stats_metrics(Json& out, const Counters& totals) {
    for (const Metric& m : common::metrics::kMetrics) {
        if (m.fold != common::metrics::Fold::kSum) continue;
        const std::string name(m.name);
        out[name] = m.total(totals);
        if (!m.label.none()) out[by_label_name(m)] = by_label(m, totals);
    }
}

Json Supervisor::workers_json() const {
    Json list = Json::array();
    Clock::time_point now = Clock::now();
    for (const auto& [pid, w] : workers_) {
        Json item;
        item["pid"] = w->pid;
        item["slot"] = w->slot;
        item["generation"] = w->generation->number;
        item["state"] = status_name(w->status);
        add_worker_metrics(item, w->report.counters);
        item["accepting"] = w->has_report && w->report.accepting != 0;
        item["paused"] = w->paused;
        item["retiring"] = w->retiring;
        item["starved"] = w->starved_count;
        item["last_report_ms"] = w->has_report ? Json(ms_between(w->last_report, now)) : Json();
        item["uptime_ms"] = ms_between(w->started, now);
        list.push_back(std::move(item));
    }
    return list;
}

Json Supervisor::slots_json() const {
    Json list = Json::array();
    Clock::time_point now = Clock::now();
    for (const auto& [slot, info] : slots_) {
        if (info.failures == 0 && !info.degraded) continue;
        Json item;
        item["slot"] = slot;
        item["failures"] = info.failures;
        item["backoff_ms"] = backoff_delay(info.failures).count();
        item["respawn_in_ms"] = std::max<int64_t>(0, ms_between(now, info.next_spawn));
        item["degraded"] = info.degraded;
        list.push_back(std::move(item));
    }
    return list;
}

Json Supervisor::stats_json() const {
    Counters totals = retired_;
    for (const auto& [pid, w] : workers_) common::metrics::add_summed(totals, w->report.counters);
    Json out;
    out["workers"] = workers_.size();
    add_stats_metrics(out, totals);
    Json users = Json::object();
    for (const auto& [name, sessions] : user_sessions_) users[name] = sessions;
    out["user_sessions"] = std::move(users);
    out["parents"] = routes_.parents_json();
    return out;
}

Json Supervisor::cluster_json() const {
    Counters totals = retired_;
    std::vector<ClusterWorker> workers;
    for (const auto& [pid, w] : workers_) {
        common::metrics::add_summed(totals, w->report.counters);
        workers.push_back({w->pid, w->slot, w->generation->number, w->cluster,
                           w->has_report ? &w->report.counters : nullptr});
    }
    return master::cluster_json(current_->config->cluster, workers, totals);
}

Json Supervisor::routes_json() const {
    return routes_.routes_json();
}

// The routes come from their JSON, which is what `routes` shows; a parent
// may share its name with a direct route, so samples of one name are summed
// (one series per label set, as the format requires).
prometheus::Snapshot Supervisor::metrics_snapshot() const {
    prometheus::Snapshot s;
    s.totals = retired_;
    for (const auto& [pid, w] : workers_) {
        common::metrics::add_summed(s.totals, w->report.counters);
        ++s.workers_by_state[static_cast<size_t>(w->status)];
    }
    s.restarts = restarts_;
    s.user_sessions.assign(user_sessions_.begin(), user_sessions_.end());
    for (const Json& r : routes_.routes_json()) {
        const std::string name = r.value("name", std::string());
        if (s.routes.empty() || s.routes.back().name != name) s.routes.push_back({name});
        prometheus::RouteSample& sample = s.routes.back();
        sample.active += r.value("active", uint64_t{0});
        sample.total += r.value("total", uint64_t{0});
        sample.failures += r.value("failures", uint64_t{0});
        sample.up = sample.up && r.value("state", std::string()) != "down";
    }
    return s;
}

Json Supervisor::users_json() const {
    Json users = Json::array();
    if (!current_) return users;
    for (const auto& [name, account] : current_->config->auth.users) {
        Json user;
        user["name"] = name;
        user["active_sessions"] =
            shared_table_ ? shared_table_->count(common::user_lease_key(name)) : 0;
        auto total = user_sessions_.find(name);
        user["total_sessions"] = total == user_sessions_.end() ? 0 : total->second;
        user["max_sessions"] = account.max_sessions;
        users.push_back(std::move(user));
    }
    return users;
}

}  // namespace master
