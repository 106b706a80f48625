// The listening sockets. The master binds every [listen NAME] before it forks
// and the workers inherit the descriptors; it never accepts on them itself.
//
// A socket is shared between generations: a reload that keeps a listener's
// address, protocol and TLS files keeps the very same descriptor, so not one
// queued connection is dropped. The socket closes when the last generation
// that uses it is gone (shared_ptr), which is how a removed listener stays
// open until the old generation has drained.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/config.h"
#include "common/libevent_handles.h"

namespace master {

struct ListenSocket {
    // Mutable: a stop closes the master's copy through every generation that
    // shares the socket (Supervisor::close_listeners()); fd() is -1 after.
    mutable common::UniqueFd fd;
    common::SocketAddress bound;  // read back with getsockname(): port 0 resolved
};

struct Listener {
    common::ListenConfig config;
    std::shared_ptr<const ListenSocket> socket;

    int fd() const { return socket->fd.get(); }
};

// True when a socket bound for `a` can serve `b`: the same address (host and
// configured port, compared as addresses). Protocol and TLS files may differ:
// they belong to the generation that accepts, not to the socket.
bool same_endpoint(const common::ListenConfig& a, const common::ListenConfig& b);

// Binds and listens for `config`: SO_REUSEADDR, IPV6_V6ONLY on v6,
// nonblocking, close-on-exec (workers are forked, not exec'ed; the hot
// upgrade clears the flag on purpose). nullptr with `error` like
// `bind() to 127.0.0.1:3128 failed (98: Address already in use) for listener "main"`,
// and the errno in `*error_number` when given (0 for an invalid address).
std::shared_ptr<const ListenSocket> bind_socket(const common::ListenConfig& config,
                                                std::string& error, int* error_number = nullptr);

// Takes over an inherited descriptor (hot upgrade) when it is a listening
// TCP socket bound to what `config` asks for; nullptr otherwise (the caller
// still owns and closes `fd` then).
std::shared_ptr<const ListenSocket> adopt_socket(const common::ListenConfig& config, int fd);

// Builds the listeners for `configs`: sockets of `current` are reused where
// same_endpoint() holds, then descriptors in `inherited` (name -> fd; adopted
// entries are erased from the map), then new sockets are bound. Returns false
// with `error` naming the listener when one cannot be bound; `current` is
// never modified, and sockets bound by a failed call are closed again.
bool open_listeners(const std::vector<common::ListenConfig>& configs,
                    const std::vector<Listener>& current, std::map<std::string, int>& inherited,
                    std::vector<Listener>& out, std::string& error);

}  // namespace master
