// The client-side transport of a session: plain TCP or TLS, chosen by the
// listener. Sessions only see a bufferevent either way, so every protocol
// (HTTP, SOCKS) runs unchanged over both.
#pragma once

#include <event2/event.h>

#include <string>

#include "common/config.h"
#include "common/libevent_handles.h"

namespace worker {

// Wraps the accepted socket `fd`. With a TLS listener the handshake runs as
// the session starts reading. On failure closes `fd` and returns nullptr.
common::BufferEventPtr make_client_transport(event_base* base, evutil_socket_t fd,
                                             const common::ListenConfig& listener);

// Lets one read or write move up to `bytes` at a time. libevent's defaults
// (4 KiB reads, 16 KiB writes) cost a syscall and a loop turn per 4 KiB of
// a large body or a busy tunnel.
void set_io_size(bufferevent* bev, size_t bytes);

// After an error on a client transport: OpenSSL's reason, or "" for plain
// TCP or when OpenSSL has nothing to say.
std::string transport_error(bufferevent* bev);

}  // namespace worker
