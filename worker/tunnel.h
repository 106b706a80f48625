// A byte tunnel between a client and an upstream (CONNECT), with flow
// control in both directions and half-close:
//
//   - bytes read on one side go to the other side's output; when that output
//     passes the high mark, reading stops until it drains to half of it;
//   - EOF on one side is passed on as shutdown(SHUT_WR) once everything
//     before it was written; the tunnel ends when both directions are done,
//     on any error, or after tunnel_idle_timeout with no byte either way.
//
// Between two plain TCP sockets each direction is a SocketRelay (splice(2),
// no copy through user space); when the client speaks TLS the bytes must
// pass through OpenSSL, so they go through the bufferevents.
#pragma once

#include <event2/bufferevent.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/libevent_handles.h"
#include "worker/pipe_pool.h"
#include "worker/socket_relay.h"

namespace worker {

struct TunnelTotals {
    uint64_t client_to_upstream = 0;
    uint64_t upstream_to_client = 0;
    const char* end_reason = "";  // "closed", "idle timeout", "client error", ...
};

class Tunnel {
  public:
    using DoneCallback = std::function<void(const TunnelTotals&)>;

    // Takes both connections; bytes already in the client's input (sent
    // before the 200) are forwarded first. Without `pipes` every tunnel
    // goes through the bufferevents.
    Tunnel(event_base* base, PipePool* pipes, common::BufferEventPtr client,
           common::BufferEventPtr upstream, size_t high_watermark,
           std::chrono::milliseconds idle_timeout, DoneCallback done);
    ~Tunnel();
    Tunnel(const Tunnel&) = delete;
    Tunnel& operator=(const Tunnel&) = delete;

    void start();
    const TunnelTotals& totals() const { return totals_; }

  private:
    struct Side {
        Tunnel* tunnel;
        common::BufferEventPtr bev;
        Side* peer;
        uint64_t* counter;                     // bytes moved from this side to its peer
        bool eof = false;                      // this side will send no more
        bool shut_down = false;                // its peer's write side is shut down
        std::unique_ptr<SocketRelay> relay{};  // from this side to its peer, if spliced
    };

    void start_relays();
    void on_relay_end(Side& from, SocketRelay::End end);
    void start_bufferevents();
    void relay(Side& from);
    void maybe_shutdown(Side& from);
    void finish(const char* reason);
    std::chrono::steady_clock::time_point latest_activity() const;
    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_write(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_idle_check(evutil_socket_t, short, void* arg) noexcept;

    event_base* base_;
    PipePool* pipes_;
    Side client_;
    Side upstream_;
    size_t high_watermark_;
    std::chrono::milliseconds idle_timeout_;
    common::EventPtr idle_timer_;
    std::chrono::steady_clock::time_point last_activity_;
    TunnelTotals totals_;
    DoneCallback done_;
};

}  // namespace worker
