#include "master/log_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "worker/access_log.h"

namespace master {

bool AccessLogFile::open(const std::string& path, std::string& error) {
    if (path.empty()) {
        path_.clear();
        fd_.reset();
        return true;
    }
    common::UniqueFd fd(worker::open_access_log(path, error));
    if (!fd) return false;
    path_ = path;
    fd_ = std::move(fd);
    return true;
}

bool AccessLogFile::reopen(std::string& error) {
    if (path_.empty()) return true;
    return open(path_, error);
}

// nginx gives its logs to the worker user the same way; a file someone
// made for us (logrotate's `create`) is left as it is when it is ours
// already.
bool give_log_file(int fd, const std::string& path, uid_t uid, gid_t gid, std::string& error) {
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        error = "fstat() \"" + path + "\" failed (" + std::strerror(errno) + ")";
        return false;
    }
    if (!S_ISREG(st.st_mode) || (st.st_uid == uid && st.st_gid == gid)) return true;
    if (::fchown(fd, uid, gid) != 0) {
        error = "chown() \"" + path + "\" failed (" + std::strerror(errno) + ")";
        return false;
    }
    return true;
}

}  // namespace master
