#include "worker/acceptor.h"

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "worker/http_session.h"
#include "worker/socks_session.h"
#include "worker/transport.h"

namespace worker {

namespace {

constexpr timeval kRetryAfterExhaustion{0, 200 * 1000};

}  // namespace

Acceptor::Acceptor(WorkerContext& context, const std::vector<InheritedListener>& listeners)
    : context_(context) {
    for (const InheritedListener& listener : listeners) {
        endpoints_.push_back(std::make_unique<Endpoint>(Endpoint{this, listener, nullptr}));
    }
}

Acceptor::~Acceptor() = default;

bool Acceptor::start() {
    retry_timer_.reset(event_new(context_.base, -1, 0, on_retry, this));
    for (auto& endpoint : endpoints_) {
        const InheritedListener& listener = endpoint->listener;
        // The socket is already listening (bound by the master); -1 keeps
        // its backlog. The fd is ours to close: the master keeps its own.
        evconnlistener* ev = evconnlistener_new(context_.base, on_accept, endpoint.get(),
                                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                                listener.fd);
        if (ev == nullptr) {
            LOG_ERROR("evconnlistener_new() failed for listener \"%s\" (%s)",
                      listener.config.name.c_str(), listener.bound.to_string().c_str());
            return false;
        }
        evconnlistener_set_error_cb(ev, on_accept_error);
        endpoint->ev.reset(ev);
    }
    return retry_timer_ != nullptr;
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
    for (auto& endpoint : endpoints_) {
        if (!endpoint->ev) continue;
        if (paused_) {
            evconnlistener_disable(endpoint->ev.get());
        } else {
            evconnlistener_enable(endpoint->ev.get());
        }
    }
}

void Acceptor::close_listeners() {
    paused_ |= kPausedDraining;
    for (auto& endpoint : endpoints_) endpoint->ev.reset();
}

void Acceptor::on_session_closed() {
    if ((paused_ & kPausedAtLimit) &&
        context_.counters.active_sessions < context_.config->limits.max_connections) {
        resume(kPausedAtLimit);
    }
}

void Acceptor::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* address, int length,
                         void* arg) noexcept {
    auto* endpoint = static_cast<Endpoint*>(arg);
    Acceptor* self = endpoint->owner;
    WorkerContext& context = self->context_;
    context.counters.accepts++;
    common::SocketAddress client =
        common::SocketAddress::from(address, static_cast<socklen_t>(length));
    if (!common::address_allowed(context.config->acl.allow_clients, client)) {
        context.counters.errors[common::channel::kErrDenied]++;
        LOG_INFO("client %s is not in allow_clients: connection closed",
                 client.to_string().c_str());
        evutil_closesocket(fd);
        return;
    }
    common::BufferEventPtr transport =
        make_client_transport(context.base, fd, endpoint->listener.config);
    if (!transport) return;
    switch (endpoint->listener.config.protocol) {
        case common::ListenProtocol::kHttp:
            HttpSession::start(context, std::move(transport), client);
            break;
        case common::ListenProtocol::kSocks5:
            SocksSession::start(context, std::move(transport), client);
            break;
    }
    if (context.counters.active_sessions >= context.config->limits.max_connections) {
        LOG_WARN("%llu connections reached max_connections: accepting paused",
                 static_cast<unsigned long long>(context.counters.active_sessions));
        self->pause(kPausedAtLimit);
    }
}

// accept() failed. Running out of descriptors is the case that matters: the
// pending connection stays in the backlog and would wake us again at once,
// so accepting pauses for a moment instead of spinning.
void Acceptor::on_accept_error(evconnlistener*, void* arg) noexcept {
    Acceptor* self = static_cast<Endpoint*>(arg)->owner;
    int error = EVUTIL_SOCKET_ERROR();
    self->context_.counters.errors[common::channel::kErrInternal]++;
    if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
        LOG_WARN("accept() failed (%d: %s): accepting paused for 200 ms", error,
                 std::strerror(error));
        self->pause(kPausedNoDescriptors);
        event_add(self->retry_timer_.get(), &kRetryAfterExhaustion);
        return;
    }
    LOG_INFO("accept() failed (%d: %s)", error, std::strerror(error));
}

void Acceptor::on_retry(evutil_socket_t, short, void* arg) noexcept {
    static_cast<Acceptor*>(arg)->resume(kPausedNoDescriptors);
}

}  // namespace worker
