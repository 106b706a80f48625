#include "common/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace common {

namespace {

// The descriptor standing for syslog(3): lines go through syslog() instead
// of write().
constexpr int kSyslogFd = -2;
constexpr int kFailed = -1;

struct LogState {
    int fd = STDERR_FILENO;
    std::string target = "stderr";
    std::string role = "master";
    LogLevel level = LogLevel::kInfo;
};

LogState& state() {
    static LogState s;
    return s;
}

int open_target(const std::string& target, std::string& error) {
    if (target == "stderr") return STDERR_FILENO;
    if (target == "syslog") {
        // LOG_NDELAY connects now, before the workers are forked: they share
        // the socket, and each line is one datagram, so lines stay whole.
        ::openlog("proxyd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
        return kSyslogFd;
    }
    int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == kFailed) error = "cannot open log file \"" + target + "\": " + std::strerror(errno);
    return fd;
}

// Switches to the new descriptor and closes the old one (never stderr).
void install_fd(int fd) {
    LogState& s = state();
    if (fd == s.fd) return;
    if (s.fd == kSyslogFd) {
        ::closelog();
    } else if (s.fd != STDERR_FILENO) {
        ::close(s.fd);
    }
    s.fd = fd;
}

int syslog_priority(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return LOG_DEBUG;
        case LogLevel::kInfo:
            return LOG_INFO;
        case LogLevel::kWarn:
            return LOG_WARNING;
        case LogLevel::kError:
            return LOG_ERR;
        case LogLevel::kAlert:
            return LOG_ALERT;
    }
    return LOG_ERR;
}

size_t format_time(char* out, size_t size) {
    timeval tv;
    gettimeofday(&tv, nullptr);
    tm local;
    localtime_r(&tv.tv_sec, &local);
    size_t n = strftime(out, size, "%Y-%m-%d %H:%M:%S", &local);
    n += snprintf(out + n, size - n, ".%03d", static_cast<int>(tv.tv_usec / 1000));
    return n;
}

}  // namespace

bool parse_log_level(const std::string& text, LogLevel& level) {
    static const struct {
        const char* name;
        LogLevel level;
    } kLevels[] = {{"debug", LogLevel::kDebug},
                   {"info", LogLevel::kInfo},
                   {"warn", LogLevel::kWarn},
                   {"error", LogLevel::kError}};
    for (const auto& entry : kLevels) {
        if (text == entry.name) {
            level = entry.level;
            return true;
        }
    }
    return false;
}

const char* log_level_name(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
        case LogLevel::kAlert:
            return "alert";
    }
    return "?";
}

namespace log {

bool open(const std::string& target, LogLevel level, std::string& error) {
    int fd = open_target(target, error);
    if (fd == kFailed) return false;
    install_fd(fd);
    state().target = target;
    state().level = level;
    return true;
}

bool reopen(std::string& error) {
    LogState& s = state();
    if (s.target == "stderr" || s.target == "syslog") return true;
    int fd = open_target(s.target, error);
    if (fd == kFailed) return false;
    install_fd(fd);
    return true;
}

int file_descriptor() {
    return state().fd == STDERR_FILENO ? -1 : state().fd;
}

void set_role(const std::string& role) {
    state().role = role;
}

bool enabled(LogLevel level) {
    return level >= state().level || level == LogLevel::kAlert;
}

void write(LogLevel level, const char* format, ...) {
    char line[2048];
    size_t n = format_time(line, sizeof(line));
    const LogState& s = state();
    n += snprintf(line + n, sizeof(line) - n, " [%s] %d ", log_level_name(level),
                  static_cast<int>(getpid()));
    // syslog stamps the time, the pid and the priority itself.
    const size_t role_at = n;
    n += snprintf(line + n, sizeof(line) - n, "%s: ", s.role.c_str());
    va_list args;
    va_start(args, format);
    int written = vsnprintf(line + n, sizeof(line) - n, format, args);
    va_end(args);
    if (written < 0) written = 0;
    n = std::min(n + static_cast<size_t>(written), sizeof(line) - 2);
    if (s.fd == kSyslogFd) {
        line[n] = '\0';
        ::syslog(syslog_priority(level), "%s", line + role_at);
        return;
    }
    line[n++] = '\n';
    // One write per line: O_APPEND makes concurrent writers safe. A failed
    // log write has nowhere to be reported, so it is ignored on purpose.
    ssize_t ignored = ::write(s.fd, line, n);
    (void)ignored;
}

}  // namespace log
}  // namespace common
