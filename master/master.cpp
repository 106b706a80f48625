#include "master/master.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/json_util.h"
#include "common/log.h"
#include "master/pid_file.h"
#include "master/preflight.h"
#include "master/upgrade.h"

namespace master {

namespace {

using common::Json;
namespace ch = common::channel;

constexpr timeval kTickInterval{0, 100 * 1000};
// systemd's STATUS= line is sent when it changes, at most this often.
constexpr std::chrono::seconds kSystemdStatusEvery{1};
// After the last worker is gone, answers still queued on the control socket
// get this long to be written before the loop ends.
constexpr timeval kExitFlush{0, 100 * 1000};
constexpr int kSignals[] = {SIGHUP,  SIGTERM, SIGINT,  SIGQUIT, SIGUSR1,
                            SIGUSR2, SIGTTIN, SIGTTOU, SIGCHLD};

const char* protocol_name(common::ListenProtocol protocol) {
    return protocol == common::ListenProtocol::kSocks5 ? "socks5" : "http";
}

std::string ok_answer() {
    return R"({"ok":true})";
}

// Two [metrics] listen values name the same address (or are both off).
bool same_metrics_listen(const common::MetricsConfig& a, const common::MetricsConfig& b) {
    if (!a.listen || !b.listen) return !a.listen && !b.listen;
    auto address_a = common::SocketAddress::from_numeric(a.listen->host, a.listen->port);
    auto address_b = common::SocketAddress::from_numeric(b.listen->host, b.listen->port);
    return address_a && address_b && *address_a == *address_b;
}

const char* kHelp[] = {
    "status", "workers", "stats",     "users",  "routes", "cluster", "metrics",
    "reload", "scale N", "drain PID", "reopen", "quit",   "stop",    "help",
};

}  // namespace

std::vector<std::string_view> split_command(std::string_view line) {
    std::vector<std::string_view> words;
    size_t pos = 0;
    while (pos < line.size()) {
        while (pos < line.size() && line[pos] == ' ') ++pos;
        size_t end = pos;
        while (end < line.size() && line[end] != ' ') ++end;
        if (end > pos) words.push_back(line.substr(pos, end - pos));
        pos = end;
    }
    return words;
}

std::optional<long> parse_integer(std::string_view text, long min, long max) {
    if (text.empty() || text.size() > 18) return std::nullopt;
    long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < min || value > max) return std::nullopt;
    return value;
}

// Workers inherit the limit: it must cover everything one worker may hold
// at once (common::descriptor_budget(), which the worker's pools respect).
rlim_t wanted_nofile(const common::Config& config) {
    if (config.limits.max_connections != 0) {
        return static_cast<rlim_t>(common::descriptor_budget(config).total());
    }
    common::Config ceiling = config;
    ceiling.limits.max_connections = common::kAutoMaxConnectionsCeiling;
    return static_cast<rlim_t>(common::descriptor_budget(ceiling).total());
}

std::string nofile_shortfall(rlim_t hard_limit, const common::Config& config) {
    const common::DescriptorBudget budget = common::descriptor_budget(config);
    return "the hard limit of open files (" + std::to_string(hard_limit) +
           ") is below what a worker may hold, " + std::to_string(budget.total()) +
           " (max_connections * 2 + upstream keep-alive " + std::to_string(budget.idle_upstreams) +
           " + splice pipes " + std::to_string(budget.splice_pipes) + " + listeners " +
           std::to_string(budget.listeners) + " + " + std::to_string(budget.fixed) +
           "); each worker will take at most " +
           std::to_string(common::max_connections_within(config, hard_limit)) +
           " connections (raise the limit with ulimit -Hn or LimitNOFILE=)";
}

namespace {

// Soft limit up to `wanted`, capped by the hard one. Only a number the
// operator chose makes root raise the hard limit itself: "auto" lives
// within the limit it was given.
void raise_nofile_limit(const common::Config& config) {
    const rlim_t wanted = wanted_nofile(config);
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        LOG_WARN("getrlimit(RLIMIT_NOFILE) failed (%d: %s)", errno, std::strerror(errno));
        return;
    }
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return;
    if (config.limits.max_connections != 0 && limit.rlim_max != RLIM_INFINITY &&
        limit.rlim_max < wanted && ::geteuid() == 0) {
        rlimit raised{wanted, wanted};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
    }
    rlim_t target = wanted;
    if (limit.rlim_max != RLIM_INFINITY) target = std::min(target, limit.rlim_max);
    if (target <= limit.rlim_cur) return;
    limit.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        LOG_WARN("setrlimit(RLIMIT_NOFILE, %llu) failed (%d: %s)",
                 static_cast<unsigned long long>(target), errno, std::strerror(errno));
    }
}

}  // namespace

common::ConfigPtr apply_descriptor_limit(const common::ConfigPtr& config) {
    raise_nofile_limit(*config);
    rlimit limit{};
    uint64_t got = UINT64_MAX / 4;  // unlimited: only the ceiling applies
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        got = limit.rlim_cur;
    }
    std::string note;
    common::ConfigPtr resolved = common::resolve_max_connections(config, got, note);
    if (!note.empty()) LOG_WARN("%s", note.c_str());
    LOG_INFO("each worker takes up to %llu connections (open files limit %llu%s)",
             static_cast<unsigned long long>(resolved->limits.max_connections),
             static_cast<unsigned long long>(got),
             config->limits.max_connections == 0 ? ", max_connections = auto" : "");
    return resolved;
}

bool drop_privileges(const common::MasterConfig& config, ControlSocket& control,
                     const RootMade& made, std::string& error) {
    if (config.user.empty() && config.group.empty()) return true;
    if (::geteuid() != 0) {
        LOG_WARN("\"user\" and \"group\" are ignored: proxyd is not running as root");
        return true;
    }
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (!config.user.empty()) {
        passwd* pw = ::getpwnam(config.user.c_str());
        if (pw == nullptr) {
            error = "unknown user \"" + config.user + "\"";
            return false;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (!config.group.empty()) {
        group* gr = ::getgrnam(config.group.c_str());
        if (gr == nullptr) {
            error = "unknown group \"" + config.group + "\"";
            return false;
        }
        gid = gr->gr_gid;
    }
    if (!control.chown(uid, gid, error)) return false;
    for (const auto& [fd, path] : made.log_files) {
        if (!give_log_file(fd, path, uid, gid, error)) return false;
    }
    for (const std::string& dir : made.directories) {
        if (::chown(dir.c_str(), uid, gid) != 0) {
            error = "chown() \"" + dir + "\" failed (" + std::to_string(errno) + ": " +
                    std::strerror(errno) + ")";
            return false;
        }
    }
    if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
        error = std::string("dropping privileges failed (") + std::to_string(errno) + ": " +
                std::strerror(errno) + ")";
        return false;
    }
    LOG_INFO("running as uid %u, gid %u", static_cast<unsigned>(uid), static_cast<unsigned>(gid));
    return true;
}

// ---- Master -------------------------------------------------------------------

Master::Master(MasterOptions options, common::ConfigPtr config, std::vector<Listener> listeners,
               std::unique_ptr<ControlSocket> control, std::unique_ptr<MetricsEndpoint> metrics)
    : options_(std::move(options)),
      config_(std::move(config)),
      initial_listeners_(std::move(listeners)),
      control_(std::move(control)),
      metrics_(std::move(metrics)),
      pid_file_(config_->master.pid_file),
      started_(std::chrono::steady_clock::now()) {}

Master::~Master() {
    // Workers' events belong to base_: free them before the base.
    supervisor_.reset();
    control_.reset();
    metrics_.reset();
    tick_event_.reset();
    signal_events_.clear();
}

int Master::run() {
    base_.reset(event_base_new());
    if (!base_) {
        LOG_ALERT("event_base_new() failed in the master");
        return 1;
    }
    ::signal(SIGPIPE, SIG_IGN);
    for (int sig : kSignals) {
        common::EventPtr ev(evsignal_new(base_.get(), sig, on_signal, this));
        if (!ev || event_add(ev.get(), nullptr) != 0) {
            LOG_ALERT("evsignal_new() failed for signal %d", sig);
            return 1;
        }
        signal_events_.push_back(std::move(ev));
    }
    tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, on_tick, this));
    if (!tick_event_ || event_add(tick_event_.get(), &kTickInterval) != 0) {
        LOG_ALERT("event_add() failed for the master's timer");
        return 1;
    }
    std::string error;
    if (!control_->start(
            base_.get(), [this](std::string_view line) { return handle_command(line); }, error)) {
        LOG_ERROR("%s", error.c_str());
        return 1;
    }
    supervisor_ = std::make_unique<Supervisor>(base_.get());
    if (!options_.access_log) options_.access_log = std::make_unique<AccessLogFile>();
    supervisor_->set_access_log(options_.access_log.get());
    if (!metrics_->start(
            base_.get(), [this] { return metrics_text(); }, error)) {
        LOG_ERROR("%s", error.c_str());
        return 1;
    }
    auto generation = std::make_shared<Generation>();
    generation->number = ++generation_;
    generation->config = config_;
    generation->listeners = std::move(initial_listeners_);
    LOG_INFO("proxyd master started (pid %d), %d workers, configuration \"%s\"", ::getpid(),
             config_->master.workers, options_.config_path.c_str());
    supervisor_->start_generation(std::move(generation));

    event_base_dispatch(base_.get());
    cleanup_files();
    LOG_INFO("master exited");
    return 0;
}

void Master::on_signal(evutil_socket_t sig, short, void* arg) noexcept {
    static_cast<Master*>(arg)->handle_signal(static_cast<int>(sig));
}

void Master::on_tick(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Master*>(arg)->tick();
}

void Master::handle_signal(int sig) {
    std::string error;
    switch (sig) {
        case SIGHUP:
            LOG_INFO("SIGHUP received: reloading");
            reload(error);
            break;
        case SIGTERM:
        case SIGINT:
            LOG_INFO("%s received: fast stop", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            stop(false);
            break;
        case SIGQUIT:
            LOG_INFO("SIGQUIT received: graceful stop");
            stop(true);
            break;
        case SIGUSR1:
            LOG_INFO("SIGUSR1 received: reopening logs");
            reopen_logs();
            break;
        case SIGUSR2:
            LOG_INFO("SIGUSR2 received: hot upgrade");
            start_upgrade();
            break;
        case SIGTTIN:
        case SIGTTOU:
            if (supervisor_->stopping()) break;
            supervisor_->set_target(supervisor_->target() + (sig == SIGTTIN ? 1 : -1));
            LOG_INFO("%s received: %d workers", sig == SIGTTIN ? "SIGTTIN" : "SIGTTOU",
                     supervisor_->target());
            break;
        case SIGCHLD:
            supervisor_->reap([this](pid_t pid, int status) { on_other_exit(pid, status); });
            check_done();
            break;
        default:
            break;
    }
}

void Master::tick() {
    supervisor_->tick();
    notify_systemd();
    // A master started by a hot upgrade takes over once all its workers run.
    if (options_.upgrade_from > 0 && !told_old_master_ && supervisor_->ready()) {
        told_old_master_ = true;
        LOG_INFO("hot upgrade: every worker is ready; asking the old master (pid %d) to stop",
                 options_.upgrade_from);
        if (::kill(options_.upgrade_from, SIGQUIT) != 0) {
            LOG_WARN("kill(%d, SIGQUIT) failed (%d: %s) while taking over from the old master",
                     options_.upgrade_from, errno, std::strerror(errno));
        }
    }
    check_done();
}

// systemd hears of every reload attempt (RELOADING=1). A refused one is
// over at once, so READY=1 follows with the reason; an accepted one is
// over when the new generation runs (notify_systemd()).
bool Master::reload(std::string& error) {
    if (supervisor_->stopping()) {
        error = "proxyd is shutting down";
        return false;
    }
    SystemdNotifier& systemd = options_.systemd;
    systemd.send(reloading_message(monotonic_usec()));
    if (apply_reload(error)) {
        ready_owed_ = true;
        return true;
    }
    if (!ready_owed_) systemd.send("READY=1\n" + status_message("reload refused: " + error));
    return false;
}

bool Master::apply_reload(std::string& error) {
    common::ConfigPtr config = common::load_config(options_.config_path, error);
    if (!config) {
        LOG_ERROR("reload refused, keeping the current configuration: %s", error.c_str());
        return false;
    }
    if (std::string problem = source_address_problem(*config); !problem.empty()) {
        error = config->path + ": [route] \"source_addresses\": " + problem;
        LOG_ERROR("reload refused, keeping the current configuration: %s", error.c_str());
        return false;
    }
    std::map<std::string, int> none;
    std::vector<Listener> listeners;
    if (!open_listeners(config->listeners, supervisor_->current()->listeners, none, listeners,
                        error)) {
        LOG_ERROR("reload refused, keeping the current configuration: %s", error.c_str());
        return false;
    }
    // A changed access log is opened here, by the master, which has the
    // same rights as its workers (they inherit the descriptor).
    auto access_log = std::make_unique<AccessLogFile>();
    bool new_access_log = config->log.access_log != options_.access_log->path();
    if (new_access_log && !access_log->open(config->log.access_log, error)) {
        error = config->path + ": [log] \"access_log\": " + error;
        LOG_ERROR("reload refused, keeping the current configuration: %s", error.c_str());
        return false;
    }
    const common::LogConfig& old_log = config_->log;
    if (config->log.error_log != old_log.error_log || config->log.level != old_log.level) {
        if (!common::log::open(config->log.error_log, config->log.level, error)) {
            LOG_ERROR("reload refused, keeping the current configuration: %s", error.c_str());
            return false;
        }
    }
    const common::MasterConfig& was = config_->master;
    const common::MasterConfig& now = config->master;
    if (now.pid_file != was.pid_file || now.control_socket != was.control_socket ||
        now.user != was.user || now.group != was.group) {
        LOG_WARN("pid_file, control_socket, user and group take effect only on restart");
    }
    if (!same_metrics_listen(config->metrics, metrics_->config())) {
        LOG_WARN("[metrics] listen takes effect only on restart or hot upgrade; still serving %s",
                 metrics_->address().c_str());
    }
    config = apply_descriptor_limit(config);
    if (new_access_log) options_.access_log = std::move(access_log);
    supervisor_->set_access_log(options_.access_log.get());
    config_ = config;
    auto generation = std::make_shared<Generation>();
    generation->number = ++generation_;
    generation->config = std::move(config);
    generation->listeners = std::move(listeners);
    supervisor_->start_generation(std::move(generation));
    LOG_INFO("configuration reloaded: generation %u with %d workers", generation_,
             supervisor_->target());
    return true;
}

void Master::reopen_logs() {
    std::string error;
    if (!common::log::reopen(error)) LOG_ERROR("reopening the log failed: %s", error.c_str());
    // For the workers forked from now on; the running ones reopen theirs.
    if (!options_.access_log->reopen(error)) {
        LOG_ERROR("reopening the access log failed: %s", error.c_str());
    }
    supervisor_->broadcast(ch::CommandCode::kReopenLogs);
}

void Master::stop(bool graceful) {
    if (upgrade_child_ > 0) {
        // Stopped by the new master of a hot upgrade (or during one): the
        // service goes on in the new master, which took over as MAINPID,
        // so systemd must hear neither STOPPING=1 nor this one's watchdog.
        options_.systemd = SystemdNotifier();
    } else if (!supervisor_->stopping()) {
        options_.systemd.send("STOPPING=1\n");
    }
    supervisor_->stop(graceful);
    check_done();
}

void Master::start_upgrade() {
    if (supervisor_->stopping()) return;
    if (upgrade_child_ > 0) {
        LOG_WARN("hot upgrade already in progress (new master pid %d)", upgrade_child_);
        return;
    }
    const std::string old_bin = pid_file_ + ".oldbin";
    bool moved = ::rename(pid_file_.c_str(), old_bin.c_str()) == 0;
    if (!moved) {
        LOG_WARN("rename() \"%s\" to \"%s\" failed (%d: %s)", pid_file_.c_str(), old_bin.c_str(),
                 errno, std::strerror(errno));
    }
    std::string error;
    std::vector<Listener> handed = supervisor_->current()->listeners;
    if (std::optional<Listener> metrics = metrics_->handover()) handed.push_back(*metrics);
    pid_t pid =
        start_new_master(options_.executable, options_.argv, handed,
                         options_.systemd.environment_for_successor(), upgrade_report_, error);
    if (pid < 0) {
        LOG_ERROR("hot upgrade failed: %s; still serving", error.c_str());
        if (moved) ::rename(old_bin.c_str(), pid_file_.c_str());
        return;
    }
    upgrade_child_ = pid;
    LOG_INFO("hot upgrade: started new master (pid %d) from \"%s\"", pid,
             options_.executable.c_str());
}

void Master::on_other_exit(pid_t pid, int wait_status) {
    if (pid != upgrade_child_) return;
    upgrade_child_ = 0;
    if (supervisor_->stopping()) {
        LOG_WARN("new master (pid %d) %s", pid, describe_exit(wait_status).c_str());
        return;
    }
    // The child is gone: whatever it reported is in the pipe already.
    std::string reason = read_upgrade_report(upgrade_report_.get());
    upgrade_report_.reset();
    if (!reason.empty() && reason != "ok") {
        LOG_ERROR("hot upgrade: the new master (pid %d) could not start: %s", pid, reason.c_str());
    }
    int status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
    LOG_ERROR("hot upgrade failed: new master exited with status %d; still serving", status);
    const std::string old_bin = pid_file_ + ".oldbin";
    std::string error;
    std::optional<pid_t> stored = read_pid_file(pid_file_, error);
    if (!stored || *stored == pid || !is_live_master(*stored)) {
        if (!write_pid_file(pid_file_, ::getpid(), error)) LOG_ERROR("%s", error.c_str());
        ::unlink(old_bin.c_str());
    }
}

// Called every tick: READY=1 when owed and every worker of the current
// generation runs (a hot upgrade's new master names itself MAINPID first,
// which NotifyAccess=all lets systemd accept), the watchdog, and STATUS=
// when it changed.
void Master::notify_systemd() {
    SystemdNotifier& systemd = options_.systemd;
    if (!systemd.enabled()) return;
    const auto now = std::chrono::steady_clock::now();
    systemd.watchdog_tick(now);
    if (supervisor_->stopping()) return;
    std::string status = systemd_status();
    if (ready_owed_ && supervisor_->ready()) {
        std::string message = "READY=1\n";
        if (options_.upgrade_from > 0 && generation_ == 1)
            message = "MAINPID=" + std::to_string(::getpid()) + "\n" + message;
        systemd.send(message + status_message(status));
        ready_owed_ = false;
    } else if (status == systemd_status_ || now - systemd_status_at_ < kSystemdStatusEvery) {
        return;
    } else {
        systemd.send(status_message(status));
    }
    systemd_status_ = std::move(status);
    systemd_status_at_ = now;
}

std::string Master::systemd_status() const {
    Supervisor::Summary s = supervisor_->summary();
    std::string text = std::to_string(s.running) + (s.running == 1 ? " worker" : " workers") +
                       " running, " + std::to_string(s.active_sessions) + " active session" +
                       (s.active_sessions == 1 ? "" : "s");
    if (supervisor_->degraded()) text += ", degraded";
    return text;
}

void Master::check_done() {
    if (exiting_ || !supervisor_->stopping() || !supervisor_->empty()) return;
    exiting_ = true;
    LOG_INFO("all workers have exited");
    event_base_loopexit(base_.get(), &kExitFlush);
}

void Master::cleanup_files() {
    remove_pid_file_if_ours(pid_file_, ::getpid());
    remove_pid_file_if_ours(pid_file_ + ".oldbin", ::getpid());
    control_->remove();
}

// ---- control commands ---------------------------------------------------------------

std::string Master::status_answer() const {
    Json v;
    v["ok"] = true;
    v["master_pid"] = ::getpid();
    v["generation"] = generation_;
    v["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::steady_clock::now() - started_)
                        .count();
    v["config"] = options_.config_path;
    v["node"] = supervisor_->current()->config->cluster.node;
    v["target_workers"] = supervisor_->target();
    // The pool's bounds and each worker's capacity, as resolved at start.
    const common::Config& config = *supervisor_->current()->config;
    v["elastic"] = supervisor_->elastic();
    v["workers_min"] =
        config.master.workers_auto ? config.master.workers_min : config.master.workers;
    v["workers_max"] =
        config.master.workers_auto ? config.master.workers_max : config.master.workers;
    v["max_connections"] = config.limits.max_connections;
    v["degraded"] = supervisor_->degraded();
    v["starved_total"] = supervisor_->starved_total();
    v["stopping"] = supervisor_->stopping();
    v["upgrade_child"] = upgrade_child_;
    Json listeners = Json::array();
    for (const Listener& l : supervisor_->current()->listeners) {
        Json item;
        item["name"] = l.config.name;
        item["address"] = l.socket->bound.to_string();
        item["protocol"] = protocol_name(l.config.protocol);
        item["tls"] = l.config.tls();
        listeners.push_back(std::move(item));
    }
    v["listeners"] = std::move(listeners);
    v["metrics"] = metrics_->address();
    v["workers"] = supervisor_->workers_json();
    v["slots"] = supervisor_->slots_json();
    return common::to_line(v);
}

std::string Master::metrics_text() const {
    return prometheus::render(supervisor_->metrics_snapshot());
}

std::string Master::handle_command(std::string_view line) {
    std::vector<std::string_view> words = split_command(line);
    if (words.empty()) return error_answer("empty command");
    const std::string_view cmd = words[0];
    const size_t args = words.size() - 1;
    auto no_args = [&]() { return args == 0; };

    if (cmd == "status" && no_args()) return status_answer();
    if (cmd == "workers" && no_args()) {
        Json v;
        v["ok"] = true;
        v["workers"] = supervisor_->workers_json();
        return common::to_line(v);
    }
    if (cmd == "users" && no_args()) {
        Json v;
        v["ok"] = true;
        v["users"] = supervisor_->users_json();
        return common::to_line(v);
    }
    if (cmd == "routes" && no_args()) {
        Json v;
        v["ok"] = true;
        v["routes"] = supervisor_->routes_json();
        return common::to_line(v);
    }
    if (cmd == "cluster" && no_args()) {
        Json v = supervisor_->cluster_json();
        v["ok"] = true;
        return common::to_line(v);
    }
    if (cmd == "metrics" && no_args()) {
        Json v;
        v["ok"] = true;
        v["text"] = metrics_text();
        return common::to_line(v);
    }
    if (cmd == "stats" && no_args()) {
        Json stats = supervisor_->stats_json();
        Json out;
        out["ok"] = true;
        for (auto& [key, value] : stats.items()) out[key] = std::move(value);
        return common::to_line(out);
    }
    if (cmd == "reload" && no_args()) {
        std::string error;
        if (!reload(error)) return error_answer(error);
        Json v;
        v["ok"] = true;
        v["generation"] = generation_;
        return common::to_line(v);
    }
    if (cmd == "scale") {
        std::optional<long> n = args == 1 ? parse_integer(words[1], 1, 1024) : std::nullopt;
        if (!n) return error_answer("usage: scale N (1..1024)");
        if (supervisor_->stopping()) return error_answer("proxyd is shutting down");
        LOG_INFO("scale requested: %ld workers", *n);
        supervisor_->set_target(static_cast<int>(*n));
        Json v;
        v["ok"] = true;
        v["workers"] = supervisor_->target();
        return common::to_line(v);
    }
    if (cmd == "drain") {
        std::optional<long> pid = args == 1 ? parse_integer(words[1], 1, INT32_MAX) : std::nullopt;
        if (!pid) return error_answer("usage: drain PID");
        std::string error;
        if (supervisor_->stopping()) return error_answer("proxyd is shutting down");
        if (!supervisor_->drain_worker(static_cast<pid_t>(*pid), error)) return error_answer(error);
        return ok_answer();
    }
    if (cmd == "reopen" && no_args()) {
        LOG_INFO("reopen requested on the control socket");
        reopen_logs();
        return ok_answer();
    }
    if ((cmd == "quit" || cmd == "stop") && no_args()) {
        LOG_INFO("%s requested on the control socket",
                 cmd == "quit" ? "graceful stop" : "fast stop");
        stop(cmd == "quit");
        return ok_answer();
    }
    if (cmd == "help" && no_args()) {
        Json v;
        v["ok"] = true;
        Json list = Json::array();
        for (const char* h : kHelp) list.push_back(h);
        v["commands"] = std::move(list);
        return common::to_line(v);
    }
    for (const char* known : {"status", "workers", "stats", "users", "routes", "cluster", "metrics",
                              "reload", "reopen", "quit", "stop", "help"}) {
        if (cmd == known)
            return error_answer("command \"" + std::string(cmd) + "\" takes no arguments");
    }
    return error_answer("unknown command \"" + std::string(cmd) + "\"");
}

}  // namespace master
