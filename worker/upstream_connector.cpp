#include "worker/upstream_connector.h"

#include <event2/bufferevent.h>
#include <netinet/tcp.h>

#include <cstring>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeval.h"
#include "worker/policy.h"

namespace worker {

using common::to_timeval;

namespace {

constexpr size_t kMaxAddressesTried = 4;

bool out_of_descriptors(int error) {
    return error == EMFILE || error == ENFILE;
}

}  // namespace

UpstreamConnect::UpstreamConnect(event_base* base, Resolver& resolver, const ConnectPolicy& policy,
                                 UpstreamPool* idle_pool)
    : base_(base), resolver_(resolver), policy_(policy), idle_pool_(idle_pool) {}

UpstreamConnect::~UpstreamConnect() {
    if (dns_request_) resolver_.cancel(dns_request_);
}

void UpstreamConnect::start(const std::string& host, uint16_t port, const DialOptions& options,
                            Callback callback) {
    host_ = host;
    port_ = port;
    options_ = options;
    callback_ = std::move(callback);
    dns_request_ = resolver_.resolve(host, [this](const Resolution& r) {
        dns_request_ = 0;
        if (!retired()) on_resolved(r);
    });
}

void UpstreamConnect::on_resolved(const Resolution& resolution) {
    if (!resolution.ok) {
        fail(resolution.timed_out ? ConnectError::kResolveTimeout : ConnectError::kResolve,
             "cannot resolve \"" + host_ + "\": " + resolution.error);
        return;
    }
    std::string denied;
    for (common::SocketAddress address : resolution.addresses) {
        address.set_port(port_);
        DialVerdict verdict = check_dialled_address(policy_, address);
        if (verdict == DialVerdict::kOwnListener) {
            fail(ConnectError::kLoop,
                 "request loops back to the proxy (" + address.to_string() + ")");
            return;
        }
        if (verdict == DialVerdict::kPrivate && !options_.allow_private) {
            denied = address.host_string();
            continue;
        }
        // A socket bound to an IPv4 source can only reach IPv4 addresses.
        if (options_.source && options_.source->family() != address.family()) {
            continue;
        }
        if (candidates_.size() < kMaxAddressesTried) candidates_.push_back(address);
    }
    if (candidates_.empty()) {
        if (!denied.empty()) {
            fail(ConnectError::kDenied, "destination " + denied + " is a private address");
        } else {
            fail(ConnectError::kUnreachable,
                 "\"" + host_ + "\" has no " +
                     (options_.source->family() == AF_INET ? "IPv4" : "IPv6") +
                     " address to reach from source address " + options_.source->host_string());
        }
        return;
    }
    try_next();
}

void UpstreamConnect::try_next() {
    while (next_ < candidates_.size()) {
        if (dial(candidates_[next_++])) return;  // on_event tells how it went
    }
    connecting_.reset();
    fail(last_kind_, last_error_.empty() ? "cannot connect to " + host_ : last_error_);
}

// Starts connecting to `address`. False, with last_error_ set, when that
// failed at once. An idle pooled connection is a descriptor nobody is using:
// when the socket cannot be made for want of one, the oldest idle connection
// is closed and the socket made again, once.
bool UpstreamConnect::dial(const common::SocketAddress& address) {
    for (bool retried = false;; retried = true) {
        int fd = -1;
        if (options_.source) {
            fd = bound_socket(address);
            if (fd < 0) {
                int error = errno;
                if (!retried && out_of_descriptors(error) && idle_pool_ &&
                    idle_pool_->evict_oldest(1) > 0) {
                    continue;
                }
                if (last_kind_ != ConnectError::kBind) note_failure(address, error);
                return false;
            }
        }
        connecting_.reset(bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE));
        if (!connecting_) {
            if (fd >= 0) close(fd);
            last_error_ = "bufferevent_socket_new() failed";
            return false;
        }
        bufferevent_setcb(connecting_.get(), nullptr, nullptr, on_event, this);
        timeval timeout = to_timeval(policy_.connect_timeout);
        bufferevent_set_timeouts(connecting_.get(), nullptr, &timeout);
        if (bufferevent_socket_connect(connecting_.get(), address.get(), address.length) == 0) {
            return true;
        }
        int error = errno;
        if (!retried && out_of_descriptors(error) && idle_pool_ &&
            idle_pool_->evict_oldest(1) > 0) {
            continue;
        }
        note_failure(address, error);
        return false;
    }
}

// A socket bound to the route's source address. IP_BIND_ADDRESS_NO_PORT
// defers the choice of the local port to connect(), which then picks one
// free for this destination: without it bind() would reserve a port for
// every destination at once, and a source address would run out of ports
// after some 28,000 upstream connections in all instead of per destination.
// -1 with errno set, and last_kind_ = kBind when the address is the cause.
int UpstreamConnect::bound_socket(const common::SocketAddress& address) {
    int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    common::SocketAddress source = *options_.source;
    source.set_port(0);
    if (bind(fd, source.get(), source.length) == 0) return fd;
    int error = errno;
    close(fd);
    if (!out_of_descriptors(error) && error != ENOBUFS && error != ENOMEM) {
        last_kind_ = ConnectError::kBind;
        last_error_ = "cannot bind source address " + source.host_string() + " (" +
                      std::strerror(error) + ")";
    }
    errno = error;
    return -1;
}

void UpstreamConnect::on_event(bufferevent* bev, short events, void* arg) noexcept {
    auto* self = live<UpstreamConnect>(arg);
    if (self == nullptr) return;
    const common::SocketAddress& peer = self->candidates_[self->next_ - 1];
    if (events & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
        bufferevent_set_timeouts(bev, nullptr, nullptr);
        ConnectResult result{ConnectError::kNone, "", std::move(self->connecting_), peer};
        Callback callback = std::move(self->callback_);
        callback(std::move(result));  // may retire self
        return;
    }
    if (events & BEV_EVENT_TIMEOUT) {
        self->last_kind_ = ConnectError::kTimeout;
        self->last_error_ = "connect to " + peer.to_string() + " timed out";
    } else {
        self->note_failure(peer, EVUTIL_SOCKET_ERROR());
    }
    self->try_next();
}

// Unreachable is told apart from refused, and a want of our own resources
// from both: RFC 9209 names them differently (destination_ip_unroutable,
// connection_refused, proxy_internal_error), and so do SOCKS replies.
void UpstreamConnect::note_failure(const common::SocketAddress& address, int error) {
    if (error == ENETUNREACH || error == EHOSTUNREACH || error == ENETDOWN) {
        last_kind_ = ConnectError::kUnreachable;
    } else if (out_of_descriptors(error) || error == ENOBUFS || error == ENOMEM) {
        last_kind_ = ConnectError::kNoResources;
    } else {
        last_kind_ = ConnectError::kRefused;
    }
    last_error_ = "connect() to " + address.to_string() + " failed (" + std::to_string(error) +
                  ": " + std::strerror(error) + ")";
}

void UpstreamConnect::fail(ConnectError error, std::string detail) {
    ConnectResult result;
    result.error = error;
    result.detail = std::move(detail);
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may retire this
}

}  // namespace worker
