#include "master/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/json_util.h"
#include "common/log.h"

namespace master {

namespace {

constexpr timeval kReadTimeout{30, 0};
constexpr timeval kWriteTimeout{10, 0};

std::string failure(const char* call, const std::string& path, int err) {
    return std::string(call) + " \"" + path + "\" failed (" + std::to_string(err) + ": " +
           std::strerror(err) + ")";
}

bool make_address(const std::string& path, sockaddr_un& addr, std::string& error) {
    addr = sockaddr_un{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        error = "control socket path \"" + path + "\" is empty or too long";
        return false;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    return true;
}

// True when some process accepts connections on `path` right now.
bool socket_in_use(const sockaddr_un& addr) {
    common::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return false;
    return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

bool printable(std::string_view line) {
    for (char c : line) {
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) return false;
    }
    return true;
}

}  // namespace

std::string error_answer(std::string_view message) {
    common::Json v;
    v["ok"] = false;
    v["error"] = message;
    return common::to_line(v);
}

ControlSocket::~ControlSocket() {
    clients_.clear();
    listener_.reset();
}

bool ControlSocket::open(const std::string& path, bool takeover, std::string& error) {
    // The same checks as proxyd -t (check()), then a stale socket goes.
    if (!check(path, takeover, error)) return false;
    sockaddr_un addr;
    if (!make_address(path, addr, error)) return false;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        error = failure("unlink()", path, errno);
        return false;
    }
    struct stat st;
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd_) {
        error = failure("socket()", path, errno);
        return false;
    }
    // The umask makes the socket 0600 from its first instant; chmod() after
    // bind() would leave a window where anyone may connect.
    mode_t old_mask = ::umask(0177);
    int rc = ::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int bind_errno = errno;
    ::umask(old_mask);
    if (rc != 0) {
        error = failure("bind()", path, bind_errno);
        fd_.reset();
        return false;
    }
    if (::listen(fd_.get(), 64) != 0 || ::stat(path.c_str(), &st) != 0) {
        error = failure("listen()", path, errno);
        fd_.reset();
        return false;
    }
    path_ = path;
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    return true;
}

bool ControlSocket::check(const std::string& path, bool in_use_ok, std::string& error) {
    sockaddr_un addr;
    if (!make_address(path, addr, error)) return false;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            error = "control socket \"" + path + "\" exists and is not a socket";
            return false;
        }
        if (!in_use_ok && socket_in_use(addr)) {
            error = "control socket \"" + path + "\" is in use by another process";
            return false;
        }
    }
    return true;
}

bool ControlSocket::start(event_base* base, Handler handler, std::string& error) {
    base_ = base;
    handler_ = std::move(handler);
    listener_.reset(
        evconnlistener_new(base, on_accept, this, LEV_OPT_CLOSE_ON_EXEC, -1, fd_.get()));
    if (!listener_) {
        error = "evconnlistener_new() failed for control socket \"" + path_ + "\"";
        return false;
    }
    return true;
}

bool ControlSocket::chown(uid_t uid, gid_t gid, std::string& error) {
    if (::lchown(path_.c_str(), uid, gid) != 0) {
        error = failure("lchown()", path_, errno);
        return false;
    }
    return true;
}

void ControlSocket::remove() {
    if (path_.empty()) return;
    struct stat st;
    if (::lstat(path_.c_str(), &st) != 0) return;
    // A new master (hot upgrade) bound a new socket at the same path.
    if (st.st_dev != dev_ || st.st_ino != ino_) return;
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
        LOG_WARN("unlink() \"%s\" failed (%d: %s)", path_.c_str(), errno, std::strerror(errno));
    }
}

void ControlSocket::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int,
                              void* arg) noexcept {
    static_cast<ControlSocket*>(arg)->accept_client(fd);
}

void ControlSocket::accept_client(int fd) {
    common::UniqueFd conn(fd);
    ucred cred{};
    socklen_t len = sizeof cred;
    std::string refusal;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        LOG_ERROR("getsockopt(SO_PEERCRED) failed (%d: %s) on the control socket", errno,
                  std::strerror(errno));
        refusal = "permission denied";
    } else if (cred.uid != ::getuid() && cred.uid != 0) {
        LOG_WARN("control connection from uid %u (pid %d) refused: permission denied",
                 static_cast<unsigned>(cred.uid), static_cast<int>(cred.pid));
        refusal = "permission denied";
    } else if (clients_.size() >= kMaxClients) {
        LOG_WARN("control connection refused: %zu clients already connected", clients_.size());
        refusal = "too many control connections";
    }
    if (!refusal.empty()) {
        // Best effort: the answer is small and the socket buffer empty.
        std::string line = error_answer(refusal) + "\n";
        (void)::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        return;
    }
    evutil_make_socket_nonblocking(fd);
    auto client = std::make_unique<Client>();
    client->owner = this;
    client->bev.reset(bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE));
    if (!client->bev) {
        LOG_ERROR("bufferevent_socket_new() failed for a control connection");
        return;
    }
    conn.release();
    Client* raw = client.get();
    bufferevent_setcb(raw->bev.get(), on_read, on_write, on_event, raw);
    bufferevent_set_timeouts(raw->bev.get(), &kReadTimeout, &kWriteTimeout);
    bufferevent_enable(raw->bev.get(), EV_READ | EV_WRITE);
    clients_.emplace(raw, std::move(client));
}

void ControlSocket::on_read(bufferevent*, void* arg) noexcept {
    Client* client = static_cast<Client*>(arg);
    client->owner->read_lines(*client);
}

// Answers every complete line, until the answers waiting to be written
// reach kOutputHighMark: then it stops reading (and answering) this client
// until they are written (on_write resumes it).
void ControlSocket::read_lines(Client& client) {
    evbuffer* input = bufferevent_get_input(client.bev.get());
    evbuffer* output = bufferevent_get_output(client.bev.get());
    while (!client.closing) {
        if (evbuffer_get_length(output) >= kOutputHighMark) {
            client.paused = true;
            bufferevent_disable(client.bev.get(), EV_READ);
            return;
        }
        evbuffer_ptr eol = evbuffer_search_eol(input, nullptr, nullptr, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (evbuffer_get_length(input) > kMaxLineLength) {
                answer(client, error_answer("command too long"), true);
            }
            return;
        }
        size_t length = static_cast<size_t>(eol.pos);
        if (length > kMaxLineLength) {
            answer(client, error_answer("command too long"), true);
            return;
        }
        std::string line(length, '\0');
        evbuffer_remove(input, line.data(), length);
        evbuffer_drain(input, 1);  // the '\n'
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!printable(line)) {
            answer(client, error_answer("invalid characters in command"), false);
            continue;
        }
        answer(client, handle(line), false);
    }
}

// The handler runs inside a noexcept libevent callback: an exception out of
// it (memory, a JSON type error) costs one answer, never the master.
std::string ControlSocket::handle(std::string_view line) {
    try {
        return handler_(line);
    } catch (const std::exception& e) {
        LOG_ERROR("control command \"%.*s\" failed: %s", static_cast<int>(line.size()), line.data(),
                  e.what());
        return error_answer("internal error");
    }
}

void ControlSocket::answer(Client& client, const std::string& json, bool then_close) {
    evbuffer* output = bufferevent_get_output(client.bev.get());
    evbuffer_add(output, json.data(), json.size());
    evbuffer_add(output, "\n", 1);
    if (then_close) {
        client.closing = true;
        bufferevent_disable(client.bev.get(), EV_READ);
    }
}

// Called once the answers are all written.
void ControlSocket::on_write(bufferevent* bev, void* arg) noexcept {
    Client* client = static_cast<Client*>(arg);
    if (client->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        client->owner->close_client(*client);
    } else if (client->paused) {
        client->paused = false;
        bufferevent_enable(bev, EV_READ);
        client->owner->read_lines(*client);  // the lines read before the pause
    }
}

void ControlSocket::on_event(bufferevent* bev, short events, void* arg) noexcept {
    Client* client = static_cast<Client*>(arg);
    if ((events & BEV_EVENT_TIMEOUT) && (events & BEV_EVENT_WRITING)) {
        LOG_WARN(
            "control connection closed: it read none of its answers for %lld s (%zu bytes "
            "queued)",
            static_cast<long long>(kWriteTimeout.tv_sec),
            evbuffer_get_length(bufferevent_get_output(bev)));
        client->owner->close_client(*client);
        return;
    }
    // The client closed its side after its last command: finish answering.
    bool pending = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
    if ((events & BEV_EVENT_EOF) && pending && !(events & BEV_EVENT_ERROR)) {
        client->closing = true;
        bufferevent_disable(bev, EV_READ);
        return;
    }
    client->owner->close_client(*client);
}

void ControlSocket::close_client(Client& client) {
    clients_.erase(&client);
}

}  // namespace master
