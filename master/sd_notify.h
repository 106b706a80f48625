// systemd's readiness protocol (sd_notify(3)), spoken by the master only.
//
// proxyd implements the datagram protocol itself instead of linking
// libsystemd: it is a few dozen lines of a protocol systemd documents as
// stable (one AF_UNIX SOCK_DGRAM datagram of "KEY=VALUE\n" lines to the
// socket named by $NOTIFY_SOCKET), and a library dependency would tie the
// binary and the Debian package to libsystemd for that alone.
//
//   when                                      datagram
//   ----------------------------------------  ------------------------------------------
//   every worker of the first generation runs READY=1, STATUS=...
//   reload begins (SIGHUP, control reload)    RELOADING=1, MONOTONIC_USEC=<CLOCK_MONOTONIC>
//   the new generation runs, or the reload    READY=1, STATUS=...
//   was refused
//   a hot upgrade's new master runs           MAINPID=<its pid>, READY=1, STATUS=...
//   stop (SIGTERM, SIGINT, SIGQUIT, control)  STOPPING=1
//   the status line changed (at most 1/s)     STATUS=N workers, M active sessions
//   half of $WATCHDOG_USEC passed             WATCHDOG=1
//
// Sending never blocks (MSG_DONTWAIT) and never raises SIGPIPE
// (MSG_NOSIGNAL); a failure is logged once and then ignored, because a
// service manager that stopped listening must not stop the proxy.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace master {

constexpr const char* kNotifySocketEnv = "NOTIFY_SOCKET";
constexpr const char* kWatchdogUsecEnv = "WATCHDOG_USEC";
constexpr const char* kWatchdogPidEnv = "WATCHDOG_PID";

// The address $NOTIFY_SOCKET names: a path starting with '/', or an
// abstract name starting with '@' (the '@' becomes the leading NUL byte and
// the length covers the name only, without a trailing NUL). False with
// `error` set for anything else (empty, relative, too long, "vsock:...").
bool parse_notify_address(std::string_view text, sockaddr_un& address, socklen_t& length,
                          std::string& error);

// "RELOADING=1\nMONOTONIC_USEC=<usec>\n".
std::string reloading_message(uint64_t monotonic_usec);
// "STATUS=<text>\n" with any newline in `text` replaced by a space, so the
// text stays one field.
std::string status_message(std::string_view text);
// CLOCK_MONOTONIC in microseconds, the clock MONOTONIC_USEC is read against.
uint64_t monotonic_usec();

class SystemdNotifier {
  public:
    // Disabled: every call is a no-op.
    SystemdNotifier() = default;

    // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and removes
    // them from this process's environment, so the workers (forked later)
    // inherit none of them and only the master ever notifies. The watchdog
    // is kept when $WATCHDOG_PID is unset or names this process or
    // `upgrade_from` (the old master of a hot upgrade, whose pid systemd
    // knew). An invalid $NOTIFY_SOCKET is logged and leaves it disabled.
    static SystemdNotifier from_environment(pid_t upgrade_from);

    bool enabled() const { return enabled_; }
    // Sends `message` as one datagram. False when disabled or sending
    // failed (the first failure is logged at warn, later ones are not).
    bool send(std::string_view message);

    // The variables a hot upgrade's new master needs to notify in turn
    // ("NOTIFY_SOCKET=...", "WATCHDOG_USEC=..."); empty when disabled.
    std::vector<std::string> environment_for_successor() const;

    // The watchdog interval systemd asked for, zero when there is none.
    std::chrono::microseconds watchdog_interval() const { return watchdog_; }
    // Sends WATCHDOG=1 when half of the interval has passed since the last
    // one (or this is the first call). Cheap; call it from every loop tick.
    void watchdog_tick(std::chrono::steady_clock::time_point now);

  private:
    bool enabled_ = false;
    sockaddr_un address_{};
    socklen_t address_length_ = 0;
    std::string socket_text_;
    std::chrono::microseconds watchdog_{0};
    std::chrono::steady_clock::time_point last_watchdog_{};
    bool watchdog_sent_ = false;
    bool warned_ = false;
};

}  // namespace master
