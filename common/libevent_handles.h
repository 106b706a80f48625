// Owning handles for the C objects proxyd uses: libevent, OpenSSL and plain
// file descriptors. Every C handle is held by a std::unique_ptr with a
// stateless deleter, so ownership is visible in the type and a handle can
// never be freed twice or leaked on an early return.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace common {

struct EventBaseDeleter {
    void operator()(event_base* base) const noexcept { event_base_free(base); }
};
struct EventDeleter {
    void operator()(event* ev) const noexcept { event_free(ev); }
};
struct BufferEventDeleter {
    void operator()(bufferevent* bev) const noexcept { bufferevent_free(bev); }
};
struct EvConnListenerDeleter {
    void operator()(evconnlistener* listener) const noexcept { evconnlistener_free(listener); }
};
struct EvBufferDeleter {
    void operator()(evbuffer* buffer) const noexcept { evbuffer_free(buffer); }
};
// fail_requests = 1: pending lookups get their callbacks (with an error) so
// no session waits forever on a resolver that is gone.
struct EvDnsBaseDeleter {
    void operator()(evdns_base* dns) const noexcept { evdns_base_free(dns, 1); }
};
struct SslCtxDeleter {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslDeleter {
    void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseDeleter>;
using EventPtr = std::unique_ptr<event, EventDeleter>;
using BufferEventPtr = std::unique_ptr<bufferevent, BufferEventDeleter>;
using EvConnListenerPtr = std::unique_ptr<evconnlistener, EvConnListenerDeleter>;
using EvBufferPtr = std::unique_ptr<evbuffer, EvBufferDeleter>;
using EvDnsBasePtr = std::unique_ptr<evdns_base, EvDnsBaseDeleter>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// A file descriptor that closes itself. Move-only; -1 means "none".
class UniqueFd {
  public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Gives up ownership without closing; returns the descriptor.
    int release() noexcept { return std::exchange(fd_, -1); }
    // Closes the current descriptor (if any) and takes `fd`.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0 && fd_ != fd) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

}  // namespace common
