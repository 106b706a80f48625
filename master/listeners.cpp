#include "master/listeners.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace master {

namespace {

std::string failure(const char* call, const std::string& where, const std::string& name, int err) {
    return std::string(call) + where + " failed (" + std::to_string(err) + ": " +
           std::strerror(err) + ") for listener \"" + name + "\"";
}

std::string display(const common::HostPort& hp) {
    if (hp.host.find(':') != std::string::npos) {
        return "[" + hp.host + "]:" + std::to_string(hp.port);
    }
    return hp.host + ":" + std::to_string(hp.port);
}

bool set_int_option(int fd, int level, int option, int value) {
    return ::setsockopt(fd, level, option, &value, sizeof value) == 0;
}

}  // namespace

// A socket is kept across a reload when it listens on the same address.
// What its connections speak (protocol, TLS, certificate) belongs to the
// generation that accepts them, so changing it never rebinds the port.
bool same_endpoint(const common::ListenConfig& a, const common::ListenConfig& b) {
    auto address_a = common::SocketAddress::from_numeric(a.address.host, a.address.port);
    auto address_b = common::SocketAddress::from_numeric(b.address.host, b.address.port);
    return address_a && address_b && *address_a == *address_b;
}

std::shared_ptr<const ListenSocket> bind_socket(const common::ListenConfig& config,
                                                std::string& error, int* error_number) {
    const std::string where = " to " + display(config.address);
    if (error_number != nullptr) *error_number = 0;
    auto fail = [&](const char* call) {
        const int err = errno;
        if (error_number != nullptr) *error_number = err;
        error = failure(call, where, config.name, err);
        return nullptr;
    };
    std::optional<common::SocketAddress> address =
        common::SocketAddress::from_numeric(config.address.host, config.address.port);
    if (!address) {
        error =
            "invalid address \"" + config.address.host + "\" for listener \"" + config.name + "\"";
        return nullptr;
    }
    auto sock = std::make_shared<ListenSocket>();
    sock->fd.reset(::socket(address->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!sock->fd) {
        return fail("socket()");
    }
    int fd = sock->fd.get();
    if (!set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1)) {
        return fail("setsockopt(SO_REUSEADDR)");
    }
    if (address->family() == AF_INET6 && !set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) {
        return fail("setsockopt(IPV6_V6ONLY)");
    }
    if (::bind(fd, address->get(), address->length) != 0) {
        return fail("bind()");
    }
    if (::listen(fd, config.backlog) != 0) {
        return fail("listen()");
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return fail("getsockname()");
    }
    sock->bound = common::SocketAddress::from(reinterpret_cast<sockaddr*>(&ss), len);
    return sock;
}

std::shared_ptr<const ListenSocket> adopt_socket(const common::ListenConfig& config, int fd) {
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening) {
        return nullptr;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return nullptr;
    common::SocketAddress bound =
        common::SocketAddress::from(reinterpret_cast<sockaddr*>(&ss), len);
    std::optional<common::SocketAddress> wanted =
        common::SocketAddress::from_numeric(config.address.host, config.address.port);
    if (!wanted || wanted->family() != bound.family()) return nullptr;
    if (wanted->host_string() != bound.host_string()) return nullptr;
    if (config.address.port != 0 && config.address.port != bound.port()) return nullptr;
    auto sock = std::make_shared<ListenSocket>();
    sock->fd.reset(fd);
    sock->bound = bound;
    return sock;
}

bool open_listeners(const std::vector<common::ListenConfig>& configs,
                    const std::vector<Listener>& current, std::map<std::string, int>& inherited,
                    std::vector<Listener>& out, std::string& error) {
    std::vector<Listener> result;
    // Each old socket serves one new listener at most: two "127.0.0.1:0"
    // listeners are two sockets.
    std::vector<const ListenSocket*> taken;
    for (const common::ListenConfig& config : configs) {
        Listener listener{config, nullptr};
        for (const Listener& old : current) {
            if (std::find(taken.begin(), taken.end(), old.socket.get()) != taken.end()) continue;
            if (same_endpoint(old.config, config)) {
                taken.push_back(old.socket.get());
                listener.socket = old.socket;
                // A changed backlog applies to a live socket: listen() again.
                if (old.config.backlog != config.backlog &&
                    ::listen(listener.fd(), config.backlog) != 0) {
                    LOG_WARN(
                        "listen() failed (%d: %s) while changing the backlog of listener "
                        "\"%s\"",
                        errno, std::strerror(errno), config.name.c_str());
                }
                break;
            }
        }
        auto it = inherited.find(config.name);
        if (!listener.socket && it != inherited.end()) {
            listener.socket = adopt_socket(config, it->second);
            if (listener.socket) inherited.erase(it);
        }
        if (!listener.socket) listener.socket = bind_socket(config, error);
        if (!listener.socket) return false;
        result.push_back(std::move(listener));
    }
    out = std::move(result);
    return true;
}

}  // namespace master
