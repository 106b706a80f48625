#include "worker/proxy_header.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/channel.h"
#include "common/log.h"
#include "common/timeval.h"
#include "worker/acceptor.h"

namespace worker {

namespace pp = common::proxy_protocol;
namespace channel = common::channel;

namespace {

// The error class says timeout; the log line says which.
constexpr const char* kTimedOut = "no complete PROXY protocol header within header_timeout";

}  // namespace

void ProxyHeaderSession::start(WorkerContext& context, const common::ListenConfig& listener, int fd,
                               const common::SocketAddress& peer) {
    if (!common::address_allowed(listener.proxy_protocol_from, peer)) {
        context.counters.errors[channel::kErrDenied]++;
        LOG_WARN("client %s on listener \"%s\": not in proxy_protocol_from: connection closed",
                 peer.to_string().c_str(), listener.name.c_str());
        ::close(fd);
        return;
    }
    context.sessions->open(
        std::unique_ptr<ClientSession>(new ProxyHeaderSession(context, listener, fd, peer)));
}

ProxyHeaderSession::ProxyHeaderSession(WorkerContext& context, const common::ListenConfig& listener,
                                       int fd, const common::SocketAddress& peer)
    : ClientSession(context, listener, peer), fd_(fd) {
    event_.reset(event_new(context_.base, fd, EV_READ, on_event, this));
}

void ProxyHeaderSession::serve() {
    deadline_ = std::chrono::steady_clock::now() + context_.config->limits.header_timeout;
    wait();
}

// One deadline from the accept, not a timeout per read: a sender trickling
// a byte at a time must not hold the connection longer. Once it has passed,
// the timeout fires at the next loop turn.
void ProxyHeaderSession::wait() {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_ - std::chrono::steady_clock::now());
    timeval tv = common::to_timeval(std::max(left, std::chrono::milliseconds(0)));
    event_add(event_.get(), &tv);
}

void ProxyHeaderSession::on_event(evutil_socket_t, short what, void* arg) noexcept {
    auto* self = live<ProxyHeaderSession>(arg);
    if (self == nullptr) return;
    if (what & EV_READ) {
        self->on_readable();
        return;
    }
    self->refuse(channel::kErrTimeout, kTimedOut);
}

// Looks at what has arrived without taking it: only once the parser says
// where the header ends are exactly its bytes read off the socket. A header
// that came whole (the usual case) is parsed where it was peeked; only one
// cut across packets is kept in header_ between reads.
void ProxyHeaderSession::on_readable() {
    char peeked[pp::kMaxHeaderSize];
    ssize_t n = ::recv(fd_.get(), peeked, pp::kMaxHeaderSize - header_.size(), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        wait();
        return;
    }
    if (n <= 0) {
        LOG_INFO("client %s on listener \"%s\": %s before its PROXY protocol header ended",
                 client_text_.c_str(), listener_.name.c_str(),
                 n == 0 ? "connection closed" : std::strerror(errno));
        close();
        return;
    }
    const size_t before = header_.size();
    const auto size = static_cast<size_t>(n);
    std::string_view seen(peeked, size);
    if (before > 0) seen = header_.append(peeked, size);
    pp::Result header = pp::parse(seen);
    switch (header.status) {
        case pp::Status::kNeedMore:
            // Every byte of an unfinished header is the header's.
            if (!take(size)) return;
            if (before == 0) header_.assign(peeked, size);
            wait();
            return;
        case pp::Status::kMalformed:
            refuse(channel::kErrClientProtocol,
                   std::string("bad PROXY protocol header (") + pp::describe(header.error) + ")");
            return;
        case pp::Status::kDone:
            if (take(header.consumed - before)) hand_over(header);
            return;
    }
}

bool ProxyHeaderSession::take(size_t size) {
    char discard[pp::kMaxHeaderSize];
    ssize_t n = ::recv(fd_.get(), discard, size, 0);
    if (n == static_cast<ssize_t>(size)) return true;
    // The bytes were peeked a moment ago: only a reset can take them away.
    LOG_INFO("client %s on listener \"%s\": reading its PROXY protocol header failed (%s)",
             client_text_.c_str(), listener_.name.c_str(),
             n < 0 ? std::strerror(errno) : "short read");
    close();
    return false;
}

// From here on the connection is the reported client's: the session sees
// its address for allow_clients, limits, the access log and the exchange
// record. LOCAL and UNKNOWN keep the balancer's own.
void ProxyHeaderSession::hand_over(const pp::Result& header) {
    event_.reset();
    const common::SocketAddress& client = header.source ? *header.source : client_address_;
    serve_connection(context_, listener_, fd_.release(), client);
    close();
}

void ProxyHeaderSession::refuse(uint32_t error_class, const std::string& why) {
    context_.counters.errors[error_class]++;
    LOG_WARN("client %s on listener \"%s\": %s: connection closed", client_text_.c_str(),
             listener_.name.c_str(), why.c_str());
    close();
}

}  // namespace worker
