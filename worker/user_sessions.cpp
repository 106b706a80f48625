#include "worker/user_sessions.h"

#include <sys/socket.h>

#include <cstring>

#include "common/channel.h"

namespace worker {

namespace channel = common::channel;

void UserSessionCounts::count(std::string_view name) {
    // Names come from the users file: at most kMaxUserName bytes.
    if (name.empty() || name.size() > channel::kMaxUserName) return;
    auto it = pending_.find(name);
    if (it == pending_.end()) it = pending_.emplace(std::string(name), 0).first;
    ++it->second;
}

void UserSessionCounts::send(int fd, pid_t pid) {
    while (!pending_.empty()) {
        channel::UserSessions record = channel::make_user_sessions();
        record.pid = pid;
        auto it = pending_.begin();
        for (; it != pending_.end() && record.count < channel::kUsersPerRecord; ++it) {
            channel::UserSessionCount& user = record.users[record.count++];
            user.sessions = it->second;
            user.name_length = static_cast<uint8_t>(it->first.size());
            std::memcpy(user.name, it->first.data(), it->first.size());
        }
        // One send is one whole record; a full channel keeps the counts.
        if (::send(fd, &record, sizeof record, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) return;
        pending_.erase(pending_.begin(), it);
    }
}

}  // namespace worker
