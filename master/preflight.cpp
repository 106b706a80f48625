#include "master/preflight.h"

#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "master/control_socket.h"
#include "master/listeners.h"
#include "master/master.h"
#include "master/metrics_endpoint.h"
#include "master/pid_file.h"

namespace master {

std::string directory_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

namespace {

// A file may be created in `dir`: 0, or why not.
int directory_error(const std::string& dir) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return errno;
    if (!S_ISDIR(st.st_mode)) return ENOTDIR;
    if (::access(dir.c_str(), W_OK | X_OK) != 0) return errno;
    return 0;
}

std::string failed(const std::string& call, const std::string& path, int err) {
    return call + " \"" + path + "\" failed (" + std::to_string(err) + ": " + std::strerror(err) +
           ")";
}

// The directory of the pid file or of the control socket: a start makes it
// when missing (make_runtime_directory), then creates `target` in it with
// `call` ("open()", "bind()"). The message a start would fail with, or "".
std::string runtime_file_problem(const std::string& file, const std::string& call,
                                 const std::string& target) {
    const std::string dir = directory_of(file);
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 && errno == ENOENT) {
        int err = directory_error(directory_of(dir));
        return err == 0 ? "" : failed("mkdir()", dir, err);
    }
    int err = directory_error(dir);
    return err == 0 ? "" : failed(call, target, err);
}

class Report {
  public:
    explicit Report(const common::Config& config) : prefix_(config.path + ": ") {}

    void error(const std::string& where, const std::string& message) {
        out_.errors.push_back(prefix_ + where + ": " + message);
    }
    void warning(const std::string& where, const std::string& message) {
        out_.warnings.push_back(prefix_ + where + ": " + message);
    }
    PreflightReport take() { return std::move(out_); }

  private:
    std::string prefix_;
    PreflightReport out_;
};

// Whether the pid file names a live proxyd master.
bool master_running(const common::Config& config) {
    std::string ignored;
    std::optional<pid_t> pid = read_pid_file(config.master.pid_file, ignored);
    return pid && *pid != ::getpid() && is_live_master(*pid);
}

void check_logs(const common::Config& config, Report& report) {
    const std::string& error_log = config.log.error_log;
    if (error_log == "syslog") {
        // glibc's syslog() writes to this socket; without it lines are lost.
        if (::access("/dev/log", W_OK) != 0) {
            report.warning("[log] \"error_log\"",
                           "syslog: /dev/log cannot be written (" +
                               std::string(std::strerror(errno)) +
                               "): log lines are lost until a syslog daemon listens there");
        }
    } else if (error_log != "stderr") {
        if (int err = append_error(error_log)) {
            report.error("[log] \"error_log\"",
                         "cannot open log file \"" + error_log + "\": " + std::strerror(err));
        }
    }
    const std::string& access_log = config.log.access_log;
    if (!access_log.empty()) {
        if (int err = append_error(access_log)) {
            report.error("[log] \"access_log\"",
                         "cannot open access log \"" + access_log + "\": " + std::strerror(err));
        }
    }
}

// A start writes "PID_FILE.tmp" and renames it over the pid file.
void check_pid_file(const common::Config& config, Report& report) {
    const std::string& path = config.master.pid_file;
    std::string problem = runtime_file_problem(path, "open()", path + ".tmp");
    struct stat st;
    if (problem.empty() && ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        problem = failed("rename()", path, EISDIR);
    }
    if (!problem.empty()) report.error("[master] \"pid_file\"", problem);
}

void check_control_socket(const common::Config& config, bool in_use_ok, Report& report) {
    const std::string& path = config.master.control_socket;
    std::string problem;
    if (!ControlSocket::check(path, in_use_ok, problem)) {
        report.error("[master] \"control_socket\"", problem);
        return;
    }
    problem = runtime_file_problem(path, "bind()", path);
    if (!problem.empty()) report.error("[master] \"control_socket\"", problem);
}

void check_accounts(const common::Config& config, Report& report) {
    const common::MasterConfig& m = config.master;
    if (m.user.empty() && m.group.empty()) return;
    if (::geteuid() != 0) {
        report.warning("[master] \"user\", \"group\"", "ignored: proxyd is not running as root");
        return;
    }
    if (!m.user.empty() && ::getpwnam(m.user.c_str()) == nullptr) {
        report.error("[master] \"user\"", "unknown user \"" + m.user + "\"");
    }
    if (!m.group.empty() && ::getgrnam(m.group.c_str()) == nullptr) {
        report.error("[master] \"group\"", "unknown group \"" + m.group + "\"");
    }
}

void check_paths(const common::Config& config, bool control_in_use_ok, Report& report) {
    check_logs(config, report);
    if (std::string problem = source_address_problem(config); !problem.empty()) {
        report.error("[route] \"source_addresses\"", problem);
    }
    check_pid_file(config, report);
    check_control_socket(config, control_in_use_ok, report);
    check_accounts(config, report);
}

// Binds them all before closing any, as a start holds them all: two
// listeners that cannot both be bound fail here too.
void check_listeners(const common::Config& config, bool running, Report& report) {
    std::vector<std::shared_ptr<const ListenSocket>> bound;
    for (const common::ListenConfig& l : config.listeners) {
        std::string error;
        int err = 0;
        auto sock = bind_socket(l, error, &err);
        if (sock) {
            bound.push_back(std::move(sock));
        } else if (!(err == EADDRINUSE && running)) {
            report.error("[listen " + l.name + "] \"address\"", error);
        }
    }
    if (!config.metrics.listen) return;
    std::string error;
    int err = 0;
    if (!bind_metrics_socket(*config.metrics.listen, error, &err) &&
        !(err == EADDRINUSE && running)) {
        report.error("[metrics] \"listen\"", error);
    }
}

// As apply_descriptor_limit() at a start: root may raise the hard limit for
// a max_connections given as a number (this process's own, which ends with
// the test), anyone else is warned. "auto" takes what the limit allows.
void check_nofile(const common::Config& config, Report& report) {
    if (config.limits.max_connections == 0) return;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t wanted = wanted_nofile(config);
    if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= wanted) return;
    rlimit raised{wanted, wanted};
    if (::geteuid() == 0 && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
    report.warning("[limits] \"max_connections\"", nofile_shortfall(limit.rlim_max, config));
}

}  // namespace

std::string source_address_problem(const common::Config& config) {
    for (const common::SocketAddress& source : config.route.source_addresses) {
        int fd = ::socket(source.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return "socket() failed: " + std::string(std::strerror(errno));
        int one = 1;
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        int result = ::bind(fd, source.get(), source.length);
        int error = errno;
        ::close(fd);
        if (result != 0) {
            return "source address " + source.host_string() + " cannot be bound (" +
                   std::strerror(error) + ")";
        }
    }
    return "";
}

int append_error(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return EISDIR;
        return ::access(path.c_str(), W_OK) == 0 ? 0 : errno;
    }
    if (errno != ENOENT) return errno;
    return directory_error(directory_of(path));
}

bool make_runtime_directory(const std::string& file, std::string& error, bool* created) {
    const std::string dir = directory_of(file);
    bool made = ::mkdir(dir.c_str(), 0755) == 0;
    if (created != nullptr) *created = made;
    if (made || errno == EEXIST) return true;
    error = failed("mkdir()", dir, errno);
    return false;
}

PreflightReport check_files(const common::Config& config) {
    Report report(config);
    // A start checks the control socket in use for real, after the pid file.
    check_paths(config, /*control_in_use_ok=*/true, report);
    return report.take();
}

PreflightReport preflight(const common::Config& config) {
    Report report(config);
    const bool running = master_running(config);
    check_paths(config, /*control_in_use_ok=*/running, report);
    check_listeners(config, running, report);
    check_nofile(config, report);
    return report.take();
}

}  // namespace master
