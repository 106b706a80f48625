// Accepts client connections on the inherited listening sockets and hands
// them to sessions.
//
// One connection per wakeup: every worker polls the same listening sockets,
// and a worker that took a whole burst in one go (as a loop until EAGAIN
// does) would end up holding most long-lived connections. Taking one and
// going back to the loop lets the other workers, woken by the same readiness,
// take the next ones; a busy worker comes back later and so takes fewer.
//
// And a worker that holds clearly more sessions than the least loaded other
// worker that is accepting (the scoreboard says, at this instant) steps
// aside: it stops watching the listeners for a moment (kYieldPause), so that
// worker, woken by the same readiness, takes the connection. It does not
// spin on the listener, which stays readable: every pass would be one more
// epoll_wait and loop turn, and on busy CPUs the peer may not run for a
// while. When the moment ends the worker takes the next connection itself,
// so a peer that is slow to run delays a connection by at most kYieldPause;
// a session of its own that ends sooner ends the pause sooner.
//
// Accepting pauses for any of these reasons and resumes only when none is
// left: the master asked (accept balancing), the worker is at
// max_connections, descriptors ran out (EMFILE/ENFILE, with no idle pooled
// upstream connection or pipe left to close: retried after a short pause),
// or it is draining (permanent).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <memory>
#include <vector>

#include "common/libevent_handles.h"
#include "worker/worker.h"
#include "worker/worker_context.h"

namespace worker {

// Starts the listener's protocol (HTTP or SOCKS) on the accepted socket `fd`
// of `client`, over TLS when the listener has a certificate. Takes `fd`: on
// failure it is closed and logged.
void serve_connection(WorkerContext& context, const common::ListenConfig& listener, int fd,
                      const common::SocketAddress& client);

class Acceptor {
  public:
    enum PauseReason : unsigned {
        kPausedByMaster = 1u << 0,
        kPausedAtLimit = 1u << 1,
        kPausedNoDescriptors = 1u << 2,
        kPausedDraining = 1u << 3,
        kPausedYielding = 1u << 4,  // stepping aside for a less loaded worker
    };

    Acceptor(WorkerContext& context, const std::vector<InheritedListener>& listeners);
    ~Acceptor();
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    // False (and logs) when a listener cannot be watched.
    bool start();
    void pause(PauseReason reason);
    void resume(PauseReason reason);
    // Stepping aside for a moment is not "not accepting" to the master.
    bool accepting() const { return (paused_ & ~kPausedYielding) == 0; }
    // Closes our copies of the listening sockets (drain): new connections
    // then go to the other workers.
    void close_listeners();
    // A session ended: below max_connections again?
    void on_session_closed();

  private:
    // One listening socket and what its connections speak.
    struct Endpoint {
        Acceptor* owner;
        InheritedListener listener;
        common::EventPtr readable;
    };

    void apply();
    void announce_accepting();
    void accept_one(Endpoint& endpoint);
    // accept4(), once more after closing idle descriptors when the table
    // is full. The descriptor, or -1 with errno set.
    int accept_client(int listen_fd, sockaddr_storage& address, socklen_t& length);
    void accept_failed(int error);
    bool should_yield() const;
    void step_aside();
    void publish_load();
    void serve(Endpoint& endpoint, int fd, const common::SocketAddress& client);
    static void on_readable(evutil_socket_t fd, short, void* arg) noexcept;
    static void on_retry(evutil_socket_t, short, void* arg) noexcept;
    static void on_yield_timer(evutil_socket_t, short, void* arg) noexcept;

    WorkerContext& context_;
    // This worker's pid, for the scoreboard rows it writes on every session
    // start and end (getpid() is a system call).
    const pid_t pid_ = getpid();
    std::vector<std::unique_ptr<Endpoint>> endpoints_;
    common::EventPtr retry_timer_;
    common::EventPtr yield_timer_;  // ends a step_aside()
    unsigned paused_ = 0;
    bool yield_expired_ = false;  // a pause ended: take the next connection
    bool watching_ = false;
    bool announced_accepting_ = false;  // what the scoreboard was told
};

}  // namespace worker
