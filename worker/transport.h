// The client-side transport of a session: plain TCP or TLS, chosen by the
// listener. Sessions only see a bufferevent either way, so every protocol
// (HTTP, SOCKS) runs unchanged over both.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
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

// Sends bytes on a session's connection. On plain TCP with nothing queued
// before them they go out with one send() right away, as nginx writes: a
// response that fits the socket buffer then costs no event changes and no
// extra loop turn (a bufferevent would arm the write event, wait for it,
// write, and disarm it). What the socket does not take now, and everything
// on TLS, is queued in the bufferevent, which writes it when the socket is
// writable. A send error is left for the bufferevent to find: the bytes are
// queued, its write fails and it reports the error as usual.
void send_or_queue(bufferevent* bev, const void* data, size_t size);
// The same with `size` bytes moved from the front of `from`.
void send_or_queue(bufferevent* bev, evbuffer* from, size_t size);

// Lets the bufferevent write what is (or will be) queued in its output.
// bufferevent_enable(EV_WRITE) arms the write event even when there is
// nothing to write, costing an epoll_ctl and a wakeup; once enabled, the
// bufferevent arms it by itself whenever bytes are queued.
void enable_writing(bufferevent* bev);

// True when `bev` is a plain TCP socket (not TLS): its bytes may then be
// moved by the kernel (see socket_relay.h).
bool is_plain_tcp(bufferevent* bev);

// True when the peer of `bev`'s socket reset the connection, as far as the
// socket's TCP state tells: a peer that only half-closed leaves it in
// CLOSE_WAIT, a reset in CLOSE. Meaningful only while our own side of the
// socket is still open (after both FINs the state is CLOSE too). libevent
// reports a reset on a TLS connection as an EOF, since the listener allows
// a dirty shutdown (see make_client_transport()); this tells them apart.
bool reset_by_peer(bufferevent* bev);

// After an error on a client transport: OpenSSL's reason, or "" for plain
// TCP or when OpenSSL has nothing to say.
std::string transport_error(bufferevent* bev);

}  // namespace worker
