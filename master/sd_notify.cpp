#include "master/sd_notify.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/libevent_handles.h"
#include "common/log.h"

namespace master {

bool parse_notify_address(std::string_view text, sockaddr_un& address, socklen_t& length,
                          std::string& error) {
    address = sockaddr_un{};
    address.sun_family = AF_UNIX;
    if (text.empty() || (text[0] != '/' && text[0] != '@')) {
        error = "\"" + std::string(text) +
                "\" is neither an absolute path nor an abstract socket name (@...)";
        return false;
    }
    // A path needs room for its NUL; an abstract name has none.
    const size_t room = sizeof(address.sun_path) - (text[0] == '/' ? 1 : 0);
    if (text.size() < 2 || text.size() > room) {
        error = "\"" + std::string(text) + "\" is not a valid socket address length";
        return false;
    }
    std::memcpy(address.sun_path, text.data(), text.size());
    if (text[0] == '@') address.sun_path[0] = '\0';
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size());
    return true;
}

std::string reloading_message(uint64_t usec) {
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n";
}

std::string status_message(std::string_view text) {
    std::string out = "STATUS=";
    for (char c : text) out += c == '\n' ? ' ' : c;
    out += '\n';
    return out;
}

uint64_t monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

namespace {

// A positive decimal number, or 0 for anything else.
uint64_t parse_unsigned(const char* text) {
    if (text == nullptr || *text == '\0') return 0;
    char* end = nullptr;
    errno = 0;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-') return 0;
    return value;
}

}  // namespace

SystemdNotifier SystemdNotifier::from_environment(pid_t upgrade_from) {
    SystemdNotifier n;
    const char* socket = std::getenv(kNotifySocketEnv);
    const uint64_t usec = parse_unsigned(std::getenv(kWatchdogUsecEnv));
    const uint64_t watchdog_pid = parse_unsigned(std::getenv(kWatchdogPidEnv));
    if (socket != nullptr) {
        std::string error;
        n.socket_text_ = socket;
        n.enabled_ = parse_notify_address(socket, n.address_, n.address_length_, error);
        if (!n.enabled_) LOG_WARN("%s: %s; not notifying systemd", kNotifySocketEnv, error.c_str());
    }
    const bool ours = watchdog_pid == 0 || watchdog_pid == static_cast<uint64_t>(::getpid()) ||
                      (upgrade_from > 0 && watchdog_pid == static_cast<uint64_t>(upgrade_from));
    if (n.enabled_ && usec > 0 && ours) n.watchdog_ = std::chrono::microseconds(usec);
    ::unsetenv(kNotifySocketEnv);
    ::unsetenv(kWatchdogUsecEnv);
    ::unsetenv(kWatchdogPidEnv);
    return n;
}

bool SystemdNotifier::send(std::string_view message) {
    if (!enabled_) return false;
    // A socket per message, as libsystemd does: nothing stays open for the
    // workers to inherit, and a manager that restarted is found again.
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ssize_t sent = -1;
    if (fd) {
        sent = ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                        reinterpret_cast<const sockaddr*>(&address_), address_length_);
    }
    if (sent == static_cast<ssize_t>(message.size())) return true;
    if (!warned_) {
        warned_ = true;
        int err = sent < 0 || !fd ? errno : EMSGSIZE;
        LOG_WARN("%s() to %s \"%s\" failed (%d: %s); later failures are not logged",
                 fd ? "sendto" : "socket", kNotifySocketEnv, socket_text_.c_str(), err,
                 std::strerror(err));
    }
    return false;
}

std::vector<std::string> SystemdNotifier::environment_for_successor() const {
    std::vector<std::string> env;
    if (!enabled_) return env;
    env.push_back(std::string(kNotifySocketEnv) + "=" + socket_text_);
    if (watchdog_.count() > 0)
        env.push_back(std::string(kWatchdogUsecEnv) + "=" + std::to_string(watchdog_.count()));
    return env;
}

void SystemdNotifier::watchdog_tick(std::chrono::steady_clock::time_point now) {
    if (!enabled_ || watchdog_.count() == 0) return;
    if (watchdog_sent_ && now - last_watchdog_ < watchdog_ / 2) return;
    watchdog_sent_ = true;
    last_watchdog_ = now;
    send("WATCHDOG=1\n");
}

}  // namespace master
