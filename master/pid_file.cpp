#include "master/pid_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/libevent_handles.h"
#include "common/log.h"

namespace master {

namespace {

std::string errno_text(const char* call, const std::string& path, int err) {
    return std::string(call) + " \"" + path + "\" failed (" + std::to_string(err) + ": " +
           std::strerror(err) + ")";
}

// /proc/PID/comm, or "" when unreadable (other namespace, no /proc).
std::string command_name(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/comm";
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return "";
    char buf[64];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) return "";
    return std::string(buf, static_cast<size_t>(n));
}

std::string executable_of(const std::string& link) {
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::optional<pid_t> read_pid_file(const std::string& path, std::string& error) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        error = errno_text("open()", path, errno);
        return std::nullopt;
    }
    char buf[32];
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n < 0) {
        error = errno_text("read()", path, errno);
        return std::nullopt;
    }
    buf[n] = '\0';
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(buf, &end, 10);
    while (end && (*end == '\n' || *end == ' ')) ++end;
    if (errno != 0 || end == buf || *end != '\0' || value <= 0 || value > INT32_MAX) {
        error = "invalid pid in \"" + path + "\"";
        return std::nullopt;
    }
    return static_cast<pid_t>(value);
}

bool is_live_master(pid_t pid) {
    if (pid <= 0) return false;
    if (::kill(pid, 0) != 0 && errno != EPERM) return false;
    std::string name = command_name(pid);
    if (name.empty() || name.find("proxyd") != std::string::npos) return true;
    // A renamed binary: the same executable as ours still counts.
    std::string theirs = executable_of("/proc/" + std::to_string(pid) + "/exe");
    return theirs.empty() || theirs == executable_of("/proc/self/exe");
}

bool check_not_running(const std::string& path, std::string& error) {
    std::string ignored;
    std::optional<pid_t> pid = read_pid_file(path, ignored);
    if (!pid || *pid == ::getpid() || !is_live_master(*pid)) return true;
    error = "proxyd is already running (pid " + std::to_string(*pid) + ", pid file " + path + ")";
    return false;
}

bool write_pid_file(const std::string& path, pid_t pid, std::string& error) {
    std::string tmp = path + ".tmp";
    common::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        error = errno_text("open()", tmp, errno);
        return false;
    }
    std::string text = std::to_string(pid) + "\n";
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n != static_cast<ssize_t>(text.size())) {
        error = errno_text("write()", tmp, n < 0 ? errno : EIO);
        ::unlink(tmp.c_str());
        return false;
    }
    if (::close(fd.release()) != 0) {
        error = errno_text("close()", tmp, errno);
        ::unlink(tmp.c_str());
        return false;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        error = errno_text("rename()", path, errno);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

void remove_pid_file_if_ours(const std::string& path, pid_t pid) {
    std::string error;
    std::optional<pid_t> stored = read_pid_file(path, error);
    if (!stored || *stored != pid) return;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        LOG_WARN("unlink() \"%s\" failed (%d: %s)", path.c_str(), errno, std::strerror(errno));
    }
}

}  // namespace master
