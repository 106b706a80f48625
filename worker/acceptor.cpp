#include "worker/acceptor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "worker/http_connection.h"
#include "worker/policy.h"
#include "worker/proxy_header.h"
#include "worker/socks_session.h"
#include "worker/transport.h"

namespace worker {

namespace {

constexpr timeval kRetryAfterExhaustion{0, 200 * 1000};
constexpr int64_t kMinSessionsToYield = 8;
// How long a worker that stepped aside leaves the listeners to the others
// (libevent's epoll timers have a millisecond's precision).
constexpr timeval kYieldPause{0, 1000};

}  // namespace

Acceptor::Acceptor(WorkerContext& context, const std::vector<InheritedListener>& listeners)
    : context_(context) {
    for (const InheritedListener& listener : listeners) {
        endpoints_.push_back(std::make_unique<Endpoint>(Endpoint{this, listener, nullptr}));
    }
}

// Our copies of the listening sockets close with us; the master keeps its own.
Acceptor::~Acceptor() {
    close_listeners();
}

bool Acceptor::start() {
    retry_timer_.reset(event_new(context_.base, -1, 0, on_retry, this));
    yield_timer_.reset(event_new(context_.base, -1, 0, on_yield_timer, this));
    if (!retry_timer_ || !yield_timer_) return false;
    if (context_.scoreboard) context_.scoreboard->claim(context_.slot, pid_);
    for (auto& endpoint : endpoints_) {
        const InheritedListener& listener = endpoint->listener;
        evutil_make_socket_nonblocking(listener.fd);
        // Accepted sockets inherit TCP_NODELAY from the listening socket on
        // Linux: one call here instead of one per connection. Set by each
        // worker, so listeners inherited from an older master get it too.
        int one = 1;
        setsockopt(listener.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        endpoint->readable.reset(event_new(context_.base, listener.fd, EV_READ | EV_PERSIST,
                                           on_readable, endpoint.get()));
        if (!endpoint->readable) {
            LOG_ERROR("event_new() failed for listener \"%s\" (%s)", listener.config.name.c_str(),
                      listener.bound.to_string().c_str());
            return false;
        }
    }
    apply();
    return true;
}

void Acceptor::pause(PauseReason reason) {
    paused_ |= reason;
    apply();
}

void Acceptor::resume(PauseReason reason) {
    paused_ &= ~static_cast<unsigned>(reason);
    apply();
}

void Acceptor::apply() {
    announce_accepting();
    bool watch = paused_ == 0;
    if (watch == watching_) return;
    watching_ = watch;
    for (auto& endpoint : endpoints_) {
        if (!endpoint->readable) continue;
        if (watch) {
            event_add(endpoint->readable.get(), nullptr);
        } else {
            event_del(endpoint->readable.get());
        }
    }
}

// Others yield only to a worker that accepts. One that stepped aside for
// a moment still counts: were it left out, the others would stop yielding
// to anyone and fill up while it waits (under a burst one worker took all
// 50 of a benchmark's connections that way). Only a clearly more loaded
// worker steps aside, so the least loaded one never does; two may be aside
// at once when one's count went stale while the other filled up, and the
// pause bounds that wait.
void Acceptor::announce_accepting() {
    bool accepting_now = accepting();
    if (accepting_now == announced_accepting_) return;
    announced_accepting_ = accepting_now;
    if (context_.scoreboard) {
        context_.scoreboard->set_accepting(context_.slot, pid_, accepting_now);
    }
}

void Acceptor::close_listeners() {
    paused_ |= kPausedDraining;
    announced_accepting_ = false;  // the released slot is told nothing more
    if (yield_timer_) event_del(yield_timer_.get());
    if (context_.scoreboard) context_.scoreboard->release(context_.slot, pid_);
    for (auto& endpoint : endpoints_) {
        if (!endpoint->readable) continue;
        endpoint->readable.reset();
        ::close(endpoint->listener.fd);
    }
    watching_ = false;
}

void Acceptor::on_session_closed() {
    publish_load();
    if ((paused_ & kPausedYielding) && !should_yield()) {
        event_del(yield_timer_.get());
        resume(kPausedYielding);
    }
    if ((paused_ & kPausedAtLimit) &&
        context_.counters.active_sessions < context_.config->limits.max_connections) {
        resume(kPausedAtLimit);
    }
}

void Acceptor::publish_load() {
    if (context_.scoreboard) {
        context_.scoreboard->set_active(context_.slot, pid_, context_.counters.active_sessions);
    }
}

// "Clearly more": above the least loaded other worker that is accepting now
// by more than one session and an eighth, so near-equal workers never wait
// on each other. Below kMinSessionsToYield the counts are the noise of
// short requests (a worker holds a handful at most), not an imbalance of
// long-lived connections, and yielding there only adds latency.
bool Acceptor::should_yield() const {
    if (!context_.scoreboard || yield_expired_) return false;
    auto mine = static_cast<int64_t>(context_.counters.active_sessions);
    if (mine < kMinSessionsToYield) return false;
    int64_t least = context_.scoreboard->least_loaded_other(context_.slot);
    if (least < 0) return false;
    return mine > least + 1 + least / 8;
}

void Acceptor::accept_one(Endpoint& endpoint) {
    if (should_yield()) {
        step_aside();
        return;
    }
    yield_expired_ = false;
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    int fd = accept_client(endpoint.listener.fd, address, length);
    if (fd < 0) {
        // EAGAIN: another worker took it. ECONNABORTED: the client gave up.
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR) {
            accept_failed(errno);
        }
        return;
    }
    context_.counters.accepts++;
    serve(endpoint, fd, common::SocketAddress::from(reinterpret_cast<sockaddr*>(&address), length));
    publish_load();
    if (context_.counters.active_sessions >= context_.config->limits.max_connections) {
        LOG_WARN("%llu connections reached max_connections: accepting paused",
                 static_cast<unsigned long long>(context_.counters.active_sessions));
        pause(kPausedAtLimit);
    }
}

// The other workers stay woken by the listeners' readiness; this one comes
// back when the pause ends or one of its sessions ends.
void Acceptor::step_aside() {
    pause(kPausedYielding);
    event_add(yield_timer_.get(), &kYieldPause);
}

// Idle descriptors go before a client is turned away: when the table is
// full, the oldest idle pooled upstream connections (and idle splice pipes)
// are closed and the accept tried once more. Two pooled connections, since
// the client will want an upstream of its own.
int Acceptor::accept_client(int listen_fd, sockaddr_storage& address, socklen_t& length) {
    for (bool retried = false;; retried = true) {
        length = sizeof(address);
        int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&address), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 || retried || (errno != EMFILE && errno != ENFILE)) return fd;
        int error = errno;
        size_t freed = context_.pool ? context_.pool->evict_oldest(2) : 0;
        if (freed == 0 && context_.pipes) freed = context_.pipes->drop_idle();
        if (freed == 0) {
            errno = error;
            return -1;
        }
    }
}

void serve_connection(WorkerContext& context, const common::ListenConfig& listener, int fd,
                      const common::SocketAddress& client) {
    // allow_clients is the pipeline's first stage (policy.h), so that a
    // refused client hears why in its protocol and has its log line.
    common::BufferEventPtr transport = make_client_transport(context.base, fd, listener);
    if (!transport) return;
    switch (listener.protocol) {
        case common::ListenProtocol::kHttp:
            HttpConnection::start(context, listener, std::move(transport), client);
            break;
        case common::ListenProtocol::kSocks5:
            SocksSession::start(context, listener, std::move(transport), client);
            break;
    }
}

// Behind a balancer the client is known only from its PROXY header, read
// before anything else (before TLS too): proxy_header.h.
void Acceptor::serve(Endpoint& endpoint, int fd, const common::SocketAddress& client) {
    const common::ListenConfig& listener = endpoint.listener.config;
    if (listener.proxy_protocol) {
        ProxyHeaderSession::start(context_, listener, fd, client);
        return;
    }
    serve_connection(context_, listener, fd, client);
}

// Running out of descriptors is the case that matters: the pending
// connection stays in the backlog and would wake us again at once, so
// accepting pauses for a moment instead of spinning.
void Acceptor::accept_failed(int error) {
    context_.counters.errors[common::channel::kErrInternal]++;
    if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
        LOG_WARN("accept() failed (%d: %s): accepting paused for 200 ms", error,
                 std::strerror(error));
        pause(kPausedNoDescriptors);
        event_add(retry_timer_.get(), &kRetryAfterExhaustion);
        return;
    }
    LOG_INFO("accept() failed (%d: %s)", error, std::strerror(error));
}

void Acceptor::on_readable(evutil_socket_t, short, void* arg) noexcept {
    auto* endpoint = static_cast<Endpoint*>(arg);
    endpoint->owner->accept_one(*endpoint);
}

void Acceptor::on_retry(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Acceptor*>(arg)->resume(kPausedNoDescriptors);
}

void Acceptor::on_yield_timer(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<Acceptor*>(arg);
    self->yield_expired_ = true;
    self->resume(kPausedYielding);
}

}  // namespace worker
