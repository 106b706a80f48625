// What a start needs beyond a valid file, checked without changing anything,
// so that `proxyd -t` refuses what a start would refuse:
//
//   check                       start fails with                           -t
//   --------------------------  -----------------------------------------  ---------------------
//   error_log, access_log       cannot open log file / access log "X"      error (same text)
//   error_log = syslog          (starts; lines are lost)                   warning when /dev/log
//                                                                          cannot be written
//   pid_file, control_socket:   mkdir() "DIR" failed (a start makes a      error (same text)
//     their directory           missing directory, one level), or
//                               open() "X.tmp" / bind() "X" failed
//   control_socket              too long, not a socket                     error (same text)
//   control_socket in use       in use by another process                  error, unless the
//   listener bind               bind() to A:P failed (...)                 pid file names a live
//                                                                          master: then an
//                                                                          address or socket in
//                                                                          use is taken as its own
//   [route] source_addresses    source address A cannot be bound (...)     error (same text);
//                               (also at every reload, which it refuses)
//   user, group (as root)       unknown user / group                       error; not as root:
//                                                                          warning (ignored)
//   RLIMIT_NOFILE hard limit    warning                                    warning
//
// Every message is prefixed with the configuration file and the section and
// key it comes from. A start runs the file and user checks too (check_files),
// before it binds anything, so both say the same.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"

namespace master {

struct PreflightReport {
    std::vector<std::string> errors;    // a start would fail
    std::vector<std::string> warnings;  // a start would warn
};

// The log files, the pid file's directory, the control socket's path and
// directory, user and group: what a start checks before it binds anything.
PreflightReport check_files(const common::Config& config);

// check_files(), then binds every listener (all at once, as a start does, and
// closes them again) and asks whether the control socket is in use, and
// compares the limit of open files with max_connections: everything a start
// would refuse or warn about, for `proxyd -t`.
PreflightReport preflight(const common::Config& config);

// Why a source address of [route] cannot be bound (not an address of this
// host, say), or "" when every one can.
std::string source_address_problem(const common::Config& config);

// Whether a file can be opened for appending at `path`: it exists and is
// writable, or its directory exists and is writable. errno-like result, 0
// when it can.
int append_error(const std::string& path);

// The directory part of `path`: "." when it has none.
std::string directory_of(const std::string& path);

// Makes the directory of `file` (the pid file, the control socket) when it
// is missing: one level, mode 0755, so a fresh tree's "run/" or a wiped
// "/run/proxyd/" is no reason to fail. False with `error`
// ("mkdir() \"run\" failed (13: Permission denied)"). `created` (when
// given) says whether it made the directory now.
bool make_runtime_directory(const std::string& file, std::string& error, bool* created = nullptr);

}  // namespace master
