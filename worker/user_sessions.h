// Sessions admitted per user since the worker last told the master, sent
// after each heartbeat report as UserSessions records (common/channel.h).
// The master sums them into the per-user totals of `users` and `stats`; the
// sessions held *now* are counted exactly elsewhere, in the shared table.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace worker {

class UserSessionCounts {
  public:
    void count(std::string_view name);
    // Sends what was counted on the channel `fd` as records of `pid`; what
    // could not be sent (a full channel) stays for the next call.
    void send(int fd, pid_t pid);
    bool empty() const { return pending_.empty(); }

  private:
    std::map<std::string, uint64_t, std::less<>> pending_;
};

}  // namespace worker
