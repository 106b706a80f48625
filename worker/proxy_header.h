// The first step of every connection on a listener with proxy_protocol = yes:
// read the PROXY protocol header (common/proxy_protocol.h) a load balancer
// sends before the client's bytes, then serve the connection as the client
// it names. It runs on the raw socket, before TLS and before HTTP or SOCKS
// know anything, so every listener kind gets it at this one seam.
//
//   state       event                                  next
//   ----------  -------------------------------------  ---------------------------
//   (accept)    peer outside proxy_protocol_from       closed (warn), never a session
//   reading     bytes, header incomplete               reading (they are taken off
//                                                      the socket: all header)
//   reading     header complete                        the listener's session, as
//                                                      the reported client; closed
//   reading     malformed header                       closed (warn)
//   reading     header_timeout since the accept        closed (warn)
//   reading     EOF or a socket error                  closed (info)
//
// Only the header's own bytes are read off the socket: the rest is looked at
// with MSG_PEEK and stays in the kernel, so a request (or a TLS ClientHello)
// sent in the same packet reaches the session exactly as if the header had
// not been there, with no buffer handed over. The header phase is a session
// of its own in the worker's list, so max_connections, the drain and the
// stop see the connection; what it holds (the bytes of a header cut across
// packets, at most kMaxHeaderSize) is freed when the real session starts.
#pragma once

#include <chrono>
#include <string>

#include "common/address.h"
#include "common/config.h"
#include "common/libevent_handles.h"
#include "common/proxy_protocol.h"
#include "worker/client_session.h"
#include "worker/worker_context.h"

namespace worker {

class ProxyHeaderSession final : public ClientSession {
  public:
    // Takes the accepted socket `fd` from `peer`, the balancer. A peer
    // outside the listener's proxy_protocol_from is refused here: the socket
    // is closed and the refusal logged and counted as denied.
    static void start(WorkerContext& context, const common::ListenConfig& listener, int fd,
                      const common::SocketAddress& peer);

    // A header under way is still read (header_timeout bounds it): the
    // connection is accepted, and its request must not be lost.
    void on_drain() override {}

  private:
    ProxyHeaderSession(WorkerContext& context, const common::ListenConfig& listener, int fd,
                       const common::SocketAddress& peer);

    bool ready() const override { return event_ != nullptr; }
    void serve() override;
    void on_close() override { event_.reset(); }
    // The real session is counted when it opens; this step is not one.
    bool counts_in_total() const override { return false; }

    // Waits for more bytes until the deadline.
    void wait();
    void on_readable();
    // Reads `size` bytes (known to be header) off the socket for good.
    bool take(size_t size);
    void hand_over(const common::proxy_protocol::Result& header);
    void refuse(uint32_t error_class, const std::string& why);
    static void on_event(evutil_socket_t, short what, void* arg) noexcept;

    common::UniqueFd fd_;  // declared before event_: the event goes first
    common::EventPtr event_;
    std::chrono::steady_clock::time_point deadline_;
    // Header bytes read so far when it came in pieces; empty otherwise.
    std::string header_;
};

}  // namespace worker
