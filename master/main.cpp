// proxyd's entry point: the command line (CONTRACT.md), then the start of
// the master: log, pid-file check, listeners, control socket, daemon, pid
// file, privileges, loop. Everything that can fail for an operator's reason
// fails here, before the first worker exists, with a message on stderr and
// exit status 1.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/default_config.h"
#include "common/libevent_handles.h"
#include "common/libevent_log.h"
#include "common/log.h"
#include "common/version.h"
#include "master/control_socket.h"
#include "master/listeners.h"
#include "master/master.h"
#include "master/pid_file.h"
#include "master/preflight.h"
#include "master/upgrade.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitConfig = 1;
constexpr int kExitUsage = 2;

struct CommandLine {
    std::string config_path;
    bool daemonize = false;
    bool test_only = false;
    std::string signal_name;
};

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: proxyd [-c FILE] [-d]\n"
                 "       proxyd -t [-c FILE]\n"
                 "       proxyd -s reload|reopen|quit|stop [-c FILE]\n"
                 "       proxyd -v | -h\n"
                 "\n"
                 "  -c, --config FILE   configuration file (default: conf/proxyd.conf when it\n"
                 "                      exists, else /etc/proxyd/proxyd.conf)\n"
                 "  -d, --daemon        run in the background\n"
                 "  -t, --test          test the configuration and exit\n"
                 "  -s, --signal SIG    signal the running master: reload, reopen, quit, stop\n"
                 "  -v, --version       print the version and exit\n"
                 "  -h, --help          print this help and exit\n");
}

// Returns -1 when the command line is fine, else the exit status to use.
int parse_command_line(int argc, char** argv, CommandLine& cl) {
    static const option kOptions[] = {
        {"config", required_argument, nullptr, 'c'},
        {"daemon", no_argument, nullptr, 'd'},
        {"test", no_argument, nullptr, 't'},
        {"signal", required_argument, nullptr, 's'},
        {"version", no_argument, nullptr, 'v'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:dts:vh", kOptions, nullptr)) != -1) {
        switch (c) {
            case 'c':
                cl.config_path = optarg;
                break;
            case 'd':
                cl.daemonize = true;
                break;
            case 't':
                cl.test_only = true;
                break;
            case 's':
                cl.signal_name = optarg;
                break;
            case 'v':
                std::printf("proxyd version %s\n", common::kVersion);
                return kExitOk;
            case 'h':
                usage(stdout);
                return kExitOk;
            case ':':
                std::fprintf(stderr, "proxyd: option requires an argument -- '%s'\n",
                             argv[optind - 1]);
                usage(stderr);
                return kExitUsage;
            default:
                std::fprintf(stderr, "proxyd: unknown option '%s'\n", argv[optind - 1]);
                usage(stderr);
                return kExitUsage;
        }
    }
    if (optind < argc) {
        std::fprintf(stderr, "proxyd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return kExitUsage;
    }
    const std::string& s = cl.signal_name;
    if (!s.empty() && s != "reload" && s != "reopen" && s != "quit" && s != "stop") {
        std::fprintf(stderr, "proxyd: invalid signal \"%s\" (reload, reopen, quit or stop)\n",
                     s.c_str());
        usage(stderr);
        return kExitUsage;
    }
    if (cl.config_path.empty()) {
        cl.config_path = common::default_config_path();
    }
    return -1;
}

// The pid file may outlive its master, and the pid be reused by anything:
// only a live proxyd master is signalled (the check a start makes).
int send_signal(const common::Config& config, const std::string& name) {
    int sig = name == "reload"   ? SIGHUP
              : name == "reopen" ? SIGUSR1
              : name == "quit"   ? SIGQUIT
                                 : SIGTERM;
    const std::string& path = config.master.pid_file;
    std::string error;
    std::optional<pid_t> pid = master::read_pid_file(path, error);
    if (!pid) {
        std::fprintf(stderr, "proxyd: cannot signal the master: %s (is proxyd running?)\n",
                     error.c_str());
        return 1;
    }
    if (::kill(*pid, 0) == 0 && !master::is_live_master(*pid)) {
        std::fprintf(stderr,
                     "proxyd: pid %d in \"%s\" is not a proxyd master (a stale pid file?); "
                     "nothing signalled\n",
                     *pid, path.c_str());
        return 1;
    }
    if (::kill(*pid, sig) != 0) {
        int err = errno;
        if (err == ESRCH) {
            std::fprintf(stderr, "proxyd: no process with pid %d (stale pid file \"%s\")\n", *pid,
                         path.c_str());
        } else {
            std::fprintf(stderr, "proxyd: kill(%d, %s) failed (%d: %s)\n", *pid, name.c_str(), err,
                         std::strerror(err));
        }
        return 1;
    }
    return 0;
}

void notify_parent(common::UniqueFd& fd, const std::string& message) {
    if (!fd) return;
    // A failed write needs no handling: the parent then reads EOF and says
    // the daemon exited during startup. (Fortified builds, such as the
    // Debian package's, refuse to discard write's result with a cast.)
    ssize_t written = ::write(fd.get(), message.data(), message.size());
    static_cast<void>(written);
    fd.reset();
}

// Reports a startup failure: on stderr always, to the process waiting for
// the outcome (`waiting`: the shell's side of -d, or the old master of a hot
// upgrade), and in the error log too when that is not stderr (so a daemon's
// failure is on record, once the log is open).
int fail_start(const common::Config& config, const std::string& message, common::UniqueFd& waiting,
               bool log_open = true) {
    std::fprintf(stderr, "proxyd: %s\n", message.c_str());
    notify_parent(waiting, message);
    if (log_open && config.log.error_log != "stderr") LOG_ERROR("%s", message.c_str());
    return 1;
}

// Double fork + setsid. The original process waits on a pipe until the
// daemon reports that it started ("" = ok) or why it did not, so `proxyd -d`
// still exits 1 on a startup failure. Returns the write end in the daemon.
common::UniqueFd daemonize() {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        std::fprintf(stderr, "proxyd: pipe2() failed (%d: %s)\n", errno, std::strerror(errno));
        std::exit(1);
    }
    common::UniqueFd read_end(pipe_fds[0]);
    common::UniqueFd write_end(pipe_fds[1]);
    pid_t pid = ::fork();
    if (pid < 0) {
        std::fprintf(stderr, "proxyd: fork() failed (%d: %s)\n", errno, std::strerror(errno));
        std::exit(1);
    }
    if (pid > 0) {
        write_end.reset();
        std::string message;
        char buf[512];
        ssize_t n;
        while ((n = ::read(read_end.get(), buf, sizeof buf)) > 0) message.append(buf, n);
        ::waitpid(pid, nullptr, 0);
        if (message == "ok") std::exit(0);
        std::fprintf(stderr, "proxyd: %s\n",
                     message.empty() ? "the daemon exited during startup" : message.c_str());
        std::exit(1);
    }
    read_end.reset();
    ::setsid();
    pid = ::fork();
    if (pid < 0) ::_exit(1);
    if (pid > 0) ::_exit(0);
    return write_end;
}

void redirect_stdio_to_null() {
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd < 0) return;
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    if (null_fd > STDERR_FILENO) ::close(null_fd);
}

// proxyd -t: the file, then what a start would refuse (master/preflight.h).
int test_config(const std::string& path, const common::Config& config) {
    master::PreflightReport report = master::preflight(config);
    for (const std::string& w : report.warnings)
        std::fprintf(stderr, "proxyd: warning: %s\n", w.c_str());
    for (const std::string& e : report.errors) std::fprintf(stderr, "proxyd: %s\n", e.c_str());
    if (!report.errors.empty()) {
        std::fprintf(stderr, "proxyd: configuration file %s test failed\n", path.c_str());
        return kExitConfig;
    }
    std::fprintf(stderr, "proxyd: configuration file %s test is successful\n", path.c_str());
    return kExitOk;
}

// A daemon's standard error is /dev/null: said on the terminal while
// there still is one.
void warn_lost_log(const CommandLine& cl, const common::Config& config, pid_t upgrade_from) {
    if (!cl.daemonize || upgrade_from > 0 || config.log.error_log != "stderr") return;
    std::fprintf(stderr,
                 "proxyd: warning: %s: [log] \"error_log\" is stderr, which -d sends to "
                 "/dev/null: every log line will be lost (set error_log to a file or to syslog)\n",
                 config.path.c_str());
}

int run(const CommandLine& cl, common::ConfigPtr config, master::UpgradeHandover& handover,
        int argc, char** argv) {
    std::string error;
    // Until the daemon or the new master of a hot upgrade serves, someone
    // waits to hear why it did not start.
    common::UniqueFd& notify = handover.report;
    warn_lost_log(cl, *config, handover.old_master);
    // The checks proxyd -t makes too, with the same messages, before
    // anything is opened or bound.
    master::PreflightReport report = master::check_files(*config);
    if (!report.errors.empty()) {
        for (const std::string& e : report.errors) std::fprintf(stderr, "proxyd: %s\n", e.c_str());
        notify_parent(notify, report.errors.front());
        return kExitConfig;
    }
    // Made and opened as root (when proxyd starts as root), then handed to
    // `user`, so that it can reopen, remove and rename them later.
    master::RootMade made;
    for (const std::string* file : {&config->master.pid_file, &config->master.control_socket}) {
        bool created = false;
        if (!master::make_runtime_directory(*file, error, &created)) {
            return fail_start(*config, error, notify, false);
        }
        if (created) made.directories.push_back(master::directory_of(*file));
    }
    common::log::set_role("master");
    if (!common::log::open(config->log.error_log, config->log.level, error)) {
        return fail_start(*config, error, notify, false);
    }
    common::route_libevent_logs();
    if (int fd = common::log::file_descriptor(); fd >= 0) {
        made.log_files.emplace_back(fd, config->log.error_log);
    }
    auto access_log = std::make_unique<master::AccessLogFile>();
    if (!access_log->open(config->log.access_log, error)) {
        fail_start(*config, config->path + ": [log] \"access_log\": " + error, notify);
        return kExitConfig;
    }
    if (access_log->fd() >= 0) made.log_files.emplace_back(access_log->fd(), access_log->path());
    master::MasterOptions options;
    options.config_path = cl.config_path;
    options.upgrade_from = handover.old_master;
    options.access_log = std::move(access_log);
    // Before any worker is forked: they must not inherit $NOTIFY_SOCKET.
    options.systemd = master::SystemdNotifier::from_environment(handover.old_master);
    options.argv.assign(argv, argv + argc);
    options.executable = master::resolve_executable(error);
    if (options.executable.empty()) {
        LOG_WARN("%s; hot upgrades will not work", error.c_str());
    }
    // A hot upgrade's old master is alive on purpose; it moved its pid file
    // aside, but may not have been able to.
    std::optional<pid_t> running = master::read_pid_file(config->master.pid_file, error);
    if (!(handover.old_master > 0 && running && *running == handover.old_master) &&
        !master::check_not_running(config->master.pid_file, error)) {
        return fail_start(*config, error, notify);
    }
    config = master::apply_descriptor_limit(config);
    std::unique_ptr<master::MetricsEndpoint> metrics =
        master::MetricsEndpoint::open(config->metrics, handover.fds, error);
    if (!metrics) return fail_start(*config, error, notify);
    std::vector<master::Listener> listeners;
    bool bound = master::open_listeners(config->listeners, {}, handover.fds, listeners, error);
    for (const auto& [name, fd] : handover.fds) ::close(fd);  // not adopted
    if (!bound) return fail_start(*config, error, notify);

    auto control = std::make_unique<master::ControlSocket>();
    if (!control->open(config->master.control_socket, handover.old_master > 0, error)) {
        return fail_start(*config, error, notify);
    }
    const bool daemon = cl.daemonize && handover.old_master == 0;
    if (daemon) notify = daemonize();
    if (!master::write_pid_file(config->master.pid_file, ::getpid(), error) ||
        !master::drop_privileges(config->master, *control, made, error)) {
        control->remove();
        master::remove_pid_file_if_ours(config->master.pid_file, ::getpid());
        return fail_start(*config, error, notify);
    }
    // Closed here, before the first worker is forked and could inherit it.
    notify_parent(notify, "ok");
    if (daemon) redirect_stdio_to_null();
    master::Master m(std::move(options), config, std::move(listeners), std::move(control),
                     std::move(metrics));
    return m.run();
}

}  // namespace

int main(int argc, char** argv) {
    CommandLine cl;
    int status = parse_command_line(argc, argv, cl);
    if (status >= 0) return status;

    // Taken first, so that the new master of a hot upgrade reports even a
    // configuration it cannot load to the old master.
    master::UpgradeHandover handover = master::take_upgrade_handover();
    std::string error;
    common::ConfigPtr config = common::load_config(cl.config_path, error);
    if (!config) {
        std::fprintf(stderr, "proxyd: %s\n", error.c_str());
        notify_parent(handover.report, error);
        if (cl.test_only) {
            std::fprintf(stderr, "proxyd: configuration file %s test failed\n",
                         cl.config_path.c_str());
        }
        return kExitConfig;
    }
    if (cl.test_only) return test_config(cl.config_path, *config);
    if (!cl.signal_name.empty()) return send_signal(*config, cl.signal_name);
    return run(cl, std::move(config), handover, argc, argv);
}
