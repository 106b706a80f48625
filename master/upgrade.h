// Hot upgrade (SIGUSR2): the running master forks and execs the binary now on
// disk with the same command line, handing over its listening sockets, so the
// ports never stop accepting while the program is replaced.
//
//   old master                          new master
//   ----------                          ----------
//   SIGUSR2: pid_file -> .oldbin,
//   fork + exec(executable, argv)  -->  adopts PROXYD_LISTEN_FDS, takes over
//                                       the control socket, writes pid_file,
//                                       starts its workers
//                                  <--  SIGQUIT once every worker reported
//   drains its workers, exits 0;
//   removes only files still its own
//
// If the new master exits before that, the old one sees SIGCHLD (it is the
// parent), logs "hot upgrade failed" with the reason the new master gave,
// moves the pid file back and serves on. The reason travels on a pipe
// (PROXYD_UPGRADE_REPORT_FD): the new master writes why it could not start,
// or "ok" once it has, as `proxyd -d` tells the shell. Its standard error
// would not do: under -d that is /dev/null.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/libevent_handles.h"
#include "master/listeners.h"

namespace master {

constexpr const char* kListenFdsEnv = "PROXYD_LISTEN_FDS";
constexpr const char* kUpgradeFromEnv = "PROXYD_UPGRADE_FROM";
constexpr const char* kUpgradeReportEnv = "PROXYD_UPGRADE_REPORT_FD";

// The path of the running binary, read once at startup so that a binary
// replaced on disk later (package upgrade) is the one the upgrade executes.
// "" with `error` set when /proc/self/exe cannot be read.
std::string resolve_executable(std::string& error);

// "main=3;admin=4".
std::string format_listen_fds(const std::vector<Listener>& listeners);
// Parses the format above. Each name maps to a descriptor >= 3; false with
// `error` on anything else.
bool parse_listen_fds(std::string_view text, std::map<std::string, int>& out, std::string& error);

// What a master started by a hot upgrade inherits. Read once and removed
// from the environment so the workers and later upgrades never see it.
struct UpgradeHandover {
    pid_t old_master = 0;            // 0: a normal start
    std::map<std::string, int> fds;  // listener name -> inherited descriptor
    common::UniqueFd report;         // write "ok" or why the start failed, then close
};
UpgradeHandover take_upgrade_handover();

// Forks and execs `executable` with `argv`, passing the listening sockets
// and `env` ("NAME=value" entries added to the environment). `report` gets
// the read end of the new master's report pipe (non-blocking). Returns the
// new master's pid, or -1 with `error` set when pipe2() or fork() failed.
// A failed exec shows up as the child exiting with status 127.
pid_t start_new_master(const std::string& executable, const std::vector<std::string>& argv,
                       const std::vector<Listener>& listeners, const std::vector<std::string>& env,
                       common::UniqueFd& report, std::string& error);

// What the new master wrote on its report pipe so far (at most 4 KiB),
// without blocking: "ok", the reason it failed, or "" when it wrote nothing.
std::string read_upgrade_report(int fd);

}  // namespace master
