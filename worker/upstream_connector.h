// Dials an upstream for a session: resolve the name, check every address
// against the destination policy (the address checked is the address
// dialled, so odd spellings and DNS rebinding cannot reach a private
// network), then connect with connect_timeout, falling back to the next
// address on failure.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/libevent_handles.h"
#include "worker/deferred_delete.h"
#include "worker/resolver.h"
#include "worker/upstream_pool.h"

namespace worker {

enum class ConnectError {
    kNone,
    kResolve,         // name did not resolve (502)
    kResolveTimeout,  // no DNS answer within dns_timeout (504)
    kDenied,          // every address is forbidden by policy (403)
    kLoop,            // the address is one of our own listeners (508)
    kUnreachable,     // no route to the host or network (502)
    kRefused,         // refused or reset while connecting (502)
    kTimeout,         // connect_timeout (504)
    kNoResources,     // no descriptor or memory for the socket (500)
    kBind,            // the source address cannot be bound (the route's failure, 502)
};

// Where a dial leaves from and what it may reach.
struct DialOptions {
    const common::SocketAddress* source =
        nullptr;  // bind to it first; nullptr: the kernel's choice
    // A parent proxy is the operator's choice of address: it is not held to
    // deny_private_destinations (our own listeners still are: a loop).
    bool allow_private = false;
};

struct ConnectResult {
    ConnectError error = ConnectError::kNone;
    std::string detail;  // for the error body and the log
    common::BufferEventPtr connection;
    common::SocketAddress peer;
};

struct ConnectPolicy {
    bool deny_private = true;
    std::chrono::milliseconds connect_timeout{10000};
    std::vector<common::SocketAddress> own_listeners;
};

// One connection attempt. Destroying it cancels whatever is in flight; the
// callback runs at most once. Its owner hands it to the graveyard
// (deferred_delete.h) rather than deleting it, since that may happen from
// inside the callback; once retired, nothing of it runs.
class UpstreamConnect final : public Deferrable {
  public:
    using Callback = std::function<void(ConnectResult&&)>;

    // `idle_pool`, when given, is where descriptors are taken back from
    // when none is left for the socket.
    UpstreamConnect(event_base* base, Resolver& resolver, const ConnectPolicy& policy,
                    UpstreamPool* idle_pool = nullptr);
    ~UpstreamConnect() override;

    void start(const std::string& host, uint16_t port, const DialOptions& options,
               Callback callback);

  private:
    void on_resolved(const Resolution& resolution);
    void try_next();
    bool dial(const common::SocketAddress& address);
    int bound_socket(const common::SocketAddress& address);
    void note_failure(const common::SocketAddress& address, int error);
    void fail(ConnectError error, std::string detail);
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;

    event_base* base_;
    Resolver& resolver_;
    const ConnectPolicy& policy_;
    UpstreamPool* idle_pool_;
    Resolver::RequestId dns_request_ = 0;
    std::string host_;
    uint16_t port_ = 0;
    DialOptions options_;
    std::vector<common::SocketAddress> candidates_;
    size_t next_ = 0;
    common::BufferEventPtr connecting_;
    std::string last_error_;
    ConnectError last_kind_ = ConnectError::kRefused;
    Callback callback_;
};

}  // namespace worker
