#include "master/upgrade.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace master {

std::string resolve_executable(std::string& error) {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) {
        error = std::string("readlink() \"/proc/self/exe\" failed (") + std::to_string(errno) +
                ": " + std::strerror(errno) + ")";
        return "";
    }
    return std::string(buf, static_cast<size_t>(n));
}

std::string format_listen_fds(const std::vector<Listener>& listeners) {
    std::string out;
    for (const Listener& l : listeners) {
        if (!out.empty()) out += ';';
        out += l.config.name + "=" + std::to_string(l.fd());
    }
    return out;
}

bool parse_listen_fds(std::string_view text, std::map<std::string, int>& out, std::string& error) {
    out.clear();
    while (!text.empty()) {
        size_t end = text.find(';');
        std::string_view entry = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        size_t eq = entry.rfind('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == entry.size()) {
            error = "malformed entry \"" + std::string(entry) + "\" in " + kListenFdsEnv;
            return false;
        }
        std::string number(entry.substr(eq + 1));
        char* stop = nullptr;
        long fd = std::strtol(number.c_str(), &stop, 10);
        if (*stop != '\0' || fd < 3 || fd > 1 << 20) {
            error = "bad descriptor \"" + number + "\" in " + kListenFdsEnv;
            return false;
        }
        out[std::string(entry.substr(0, eq))] = static_cast<int>(fd);
    }
    return true;
}

UpgradeHandover take_upgrade_handover() {
    UpgradeHandover handover;
    const char* from = std::getenv(kUpgradeFromEnv);
    const char* fds = std::getenv(kListenFdsEnv);
    const char* report = std::getenv(kUpgradeReportEnv);
    if (from != nullptr) handover.old_master = static_cast<pid_t>(std::atoi(from));
    if (report != nullptr && handover.old_master > 0) {
        int fd = std::atoi(report);
        if (fd > STDERR_FILENO && ::fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) handover.report.reset(fd);
    }
    if (fds != nullptr) {
        std::string error;
        if (!parse_listen_fds(fds, handover.fds, error)) {
            LOG_ERROR("hot upgrade: %s; binding every listener anew", error.c_str());
        }
    }
    // Nothing inherited may stay open by accident, or leak into workers.
    for (auto it = handover.fds.begin(); it != handover.fds.end();) {
        if (::fcntl(it->second, F_SETFD, FD_CLOEXEC) != 0) {
            it = handover.fds.erase(it);
        } else {
            ++it;
        }
    }
    ::unsetenv(kUpgradeFromEnv);
    ::unsetenv(kListenFdsEnv);
    ::unsetenv(kUpgradeReportEnv);
    return handover;
}

pid_t start_new_master(const std::string& executable, const std::vector<std::string>& argv,
                       const std::vector<Listener>& listeners, const std::vector<std::string>& env,
                       common::UniqueFd& report, std::string& error) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        error = std::string("pipe2() failed (") + std::to_string(errno) + ": " +
                std::strerror(errno) + ") while starting the new master";
        return -1;
    }
    common::UniqueFd read_end(pipe_fds[0]);
    common::UniqueFd write_end(pipe_fds[1]);
    // Prepared before fork(): the child only calls async-signal-safe code.
    std::string fds = format_listen_fds(listeners);
    std::string from = std::to_string(::getpid());
    std::string report_fd = std::to_string(write_end.get());
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_copy = env;  // putenv() keeps the pointers

    pid_t pid = ::fork();
    if (pid < 0) {
        error = std::string("fork() failed (") + std::to_string(errno) + ": " +
                std::strerror(errno) + ") while starting the new master";
        return -1;
    }
    if (pid > 0) {
        report = std::move(read_end);
        return pid;
    }

    // Until exec() the master's handlers would feed the master's signal
    // pipe; the new master installs its own.
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGPIPE) ::signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const Listener& l : listeners) ::fcntl(l.fd(), F_SETFD, 0);
    // Blocking again, or a long reason could be cut short.
    ::fcntl(write_end.get(), F_SETFL, 0);
    ::fcntl(write_end.get(), F_SETFD, 0);
    ::setenv(kListenFdsEnv, fds.c_str(), 1);
    ::setenv(kUpgradeFromEnv, from.c_str(), 1);
    ::setenv(kUpgradeReportEnv, report_fd.c_str(), 1);
    for (std::string& e : env_copy) ::putenv(e.data());
    ::execv(executable.c_str(), args.data());
    LOG_ERROR("execv() \"%s\" failed (%d: %s) while starting the new master", executable.c_str(),
              errno, std::strerror(errno));
    ::_exit(127);
}

std::string read_upgrade_report(int fd) {
    std::string text;
    char buf[512];
    ssize_t n;
    while (fd >= 0 && text.size() < 4096 && (n = ::read(fd, buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<size_t>(n));
    }
    return text.substr(0, 4096);
}

}  // namespace master
