// The master process: one libevent loop that turns signals, control-socket
// commands, worker reports and a 100 ms tick into supervision. It never
// touches client traffic.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/libevent_handles.h"
#include "master/control_socket.h"
#include "master/listeners.h"
#include "master/log_files.h"
#include "master/metrics_endpoint.h"
#include "master/sd_notify.h"
#include "master/supervisor.h"

namespace master {

struct MasterOptions {
    std::string config_path;
    std::string executable;         // resolved at startup, for hot upgrades
    std::vector<std::string> argv;  // the command line a hot upgrade runs again
    pid_t upgrade_from = 0;         // the old master when started by a hot upgrade
    SystemdNotifier systemd;        // disabled unless $NOTIFY_SOCKET was set
    // Opened before the privileges were dropped; workers inherit it.
    std::unique_ptr<AccessLogFile> access_log;
};

class Master {
  public:
    Master(MasterOptions options, common::ConfigPtr config, std::vector<Listener> listeners,
           std::unique_ptr<ControlSocket> control, std::unique_ptr<MetricsEndpoint> metrics);
    ~Master();
    Master(const Master&) = delete;
    Master& operator=(const Master&) = delete;

    // Runs until stopped; returns the process exit status (0 on a clean stop,
    // 1 when the loop could not be set up).
    int run();

    // One control command line -> one JSON answer (no newline).
    std::string handle_command(std::string_view line);

  private:
    static void on_signal(evutil_socket_t sig, short events, void* arg) noexcept;
    static void on_tick(evutil_socket_t fd, short events, void* arg) noexcept;
    void handle_signal(int sig);
    void tick();

    bool reload(std::string& error);
    bool apply_reload(std::string& error);
    void notify_systemd();
    std::string systemd_status() const;
    void reopen_logs();
    void stop(bool graceful);
    void start_upgrade();
    void on_other_exit(pid_t pid, int wait_status);
    void check_done();
    void cleanup_files();

    std::string status_answer() const;
    std::string metrics_text() const;

    MasterOptions options_;
    common::ConfigPtr config_;
    std::vector<Listener> initial_listeners_;
    std::unique_ptr<ControlSocket> control_;
    std::unique_ptr<MetricsEndpoint> metrics_;  // bound at startup; serves nothing when off
    std::string pid_file_;                      // as at startup: a reload does not move it
    uint32_t generation_ = 0;
    std::chrono::steady_clock::time_point started_;

    common::EventBasePtr base_;
    std::vector<common::EventPtr> signal_events_;
    common::EventPtr tick_event_;
    std::unique_ptr<Supervisor> supervisor_;

    pid_t upgrade_child_ = 0;          // the new master we started, while it runs
    common::UniqueFd upgrade_report_;  // its report pipe (master/upgrade.h)
    // systemd: READY=1 is owed once the first generation runs, and again
    // after each RELOADING=1 once the new one does.
    bool ready_owed_ = true;
    std::string systemd_status_;  // the STATUS= text sent last
    std::chrono::steady_clock::time_point systemd_status_at_{};
    bool told_old_master_ = false;
    bool exiting_ = false;
};

// ---- helpers shared with main.cpp and the tests ---------------------------------

// Splits a control command line on spaces: "scale 4" -> {"scale", "4"}.
std::vector<std::string_view> split_command(std::string_view line);
// A decimal integer in [min, max]; nullopt for anything else.
std::optional<long> parse_integer(std::string_view text, long min, long max);

// Raises RLIMIT_NOFILE's soft limit to a worker's descriptor budget,
// common::descriptor_budget() (capped by the hard limit; root may raise the
// hard limit for a max_connections it was given as a number), then returns
// the configuration the workers run: max_connections resolved to what the
// limit obtained allows (common::resolve_max_connections()), with a warning
// when a configured number had to be lowered.
common::ConfigPtr apply_descriptor_limit(const common::ConfigPtr& config);
// The descriptors a worker may need: common::descriptor_budget()'s total;
// for "max_connections = auto", that of kAutoMaxConnectionsCeiling.
rlim_t wanted_nofile(const common::Config& config);
// The warning for a hard limit of open files below the budget of a
// max_connections given as a number, naming its parts.
std::string nofile_shortfall(rlim_t hard_limit, const common::Config& config);

// What the master opened or made as root that the user it becomes must own
// to use again: the log files (reopened by path after a rotation) and the
// runtime directories it created (the pid file and the control socket are
// removed, renamed and made again in them).
struct RootMade {
    std::vector<std::pair<int, std::string>> log_files;  // descriptor, path
    std::vector<std::string> directories;
};

// Switches to the configured user/group (only when running as root; when not
// root and they are set, warns and ignores them). The control socket and
// `made` are handed to that user first. False with `error` set.
bool drop_privileges(const common::MasterConfig& config, ControlSocket& control,
                     const RootMade& made, std::string& error);

}  // namespace master
