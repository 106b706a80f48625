// The access log's file, held by the master. The master opens it, not the
// workers: at start before it drops its privileges, as nginx does, so that
// `user = nobody` can log into a root-owned directory such as /var/log;
// at a reload when the path changed; at a reopen (logrotate, SIGUSR1). Each
// worker inherits the descriptor when it is forked (worker::WorkerStartup)
// and writes its buffered lines to it (worker/access_log.h).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/libevent_handles.h"

namespace master {

class AccessLogFile {
  public:
    // Opens `path` for appending ("" turns the log off). False with `error`
    // naming the path when it cannot; the file open before stays in use.
    bool open(const std::string& path, std::string& error);
    // Opens the same path again, for a log that was rotated away. False
    // with `error` when it cannot; the old descriptor stays in use.
    bool reopen(std::string& error);
    // -1 when off.
    int fd() const { return fd_.get(); }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    common::UniqueFd fd_;
};

// Makes the log file open on `fd` (a regular file only) belong to `uid` and
// `gid`, so the process that drops to them can still reopen it by its path
// (the file is reused when it exists). False with `error` (naming `path`).
bool give_log_file(int fd, const std::string& path, uid_t uid, gid_t gid, std::string& error);

}  // namespace master
