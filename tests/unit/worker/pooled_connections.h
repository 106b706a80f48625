// Connections for the upstream pool's unit tests: each a connected socket
// pair whose one end the pool gets as a bufferevent, while the test keeps the
// other to see whether the pool closed it.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <vector>

#include "common/libevent_handles.h"
#include "worker/upstream_pool.h"

namespace worker {

class PooledConnections {
  protected:
    PooledConnections() : base_(event_base_new()) {}

    PooledConnection connection() {
        int fds[2];
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        peers_.emplace_back(fds[1]);
        PooledConnection pooled;
        pooled.connection.reset(bufferevent_socket_new(base_.get(), fds[0], BEV_OPT_CLOSE_ON_FREE));
        return pooled;
    }

    // libevent closes a freed bufferevent's socket from its loop.
    void run_loop() { event_base_loop(base_.get(), EVLOOP_NONBLOCK); }

    // Did the pool close connection number `i` (in order of connection())?
    // The loop runs first unless `without_loop`.
    bool closed(size_t i, bool without_loop = false) {
        if (!without_loop) run_loop();
        char byte;
        return recv(peers_[i].get(), &byte, 1, MSG_DONTWAIT) == 0;
    }

    // How many of the connections made so far the pool closed.
    size_t closed_count() {
        run_loop();
        size_t count = 0;
        for (size_t i = 0; i < peers_.size(); ++i) count += closed(i, true) ? 1 : 0;
        return count;
    }

    common::EventBasePtr base_;
    std::vector<common::UniqueFd> peers_;
};

}  // namespace worker
