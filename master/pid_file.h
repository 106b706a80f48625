// The pid file: how `proxyd -s`, init scripts and a second proxyd find the
// running master. Written atomically (temporary file + rename) so a reader
// never sees a half-written number, and removed only by the master it names.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace master {

// The pid stored in `path`. nullopt with `error` set when the file is
// missing ("open() \"run/proxyd.pid\" failed (2: No such file or directory)")
// or does not hold a positive decimal number.
std::optional<pid_t> read_pid_file(const std::string& path, std::string& error);

// True when `pid` is a live process that looks like a proxyd master: it
// exists (kill(pid, 0) succeeds or fails with EPERM) and its command name
// contains "proxyd" or it runs the same executable as this process (or
// neither can be read). A stale pid file whose pid now belongs to some
// unrelated process therefore does not block a start.
bool is_live_master(pid_t pid);

// Fails with a clear message when `path` names a live proxyd master
// ("proxyd is already running (pid 1234, pid file run/proxyd.pid)").
bool check_not_running(const std::string& path, std::string& error);

// Writes `pid` followed by a newline to `path` via `path.tmp` + rename().
// False with `error` set on any failure; nothing is left half-written.
bool write_pid_file(const std::string& path, pid_t pid, std::string& error);

// Removes `path` only when it still names `pid`, so an old master handing
// over to a new one never deletes its successor's pid file.
void remove_pid_file_if_ours(const std::string& path, pid_t pid);

}  // namespace master
