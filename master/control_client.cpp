#include "master/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/config.h"
#include "common/default_config.h"
#include "common/libevent_handles.h"

namespace master::proxyctl {

namespace {

constexpr int kTimeoutMs = 10000;
// Far above any real answer (a status with 1024 workers is ~400 KiB); a peer
// that sends more without a newline is not proxyd.
constexpr size_t kMaxAnswer = 16 << 20;

std::string permission_denied(const std::string& path) {
    return "permission denied on " + path + " (run as root or the proxyd user)";
}

// The connect() failures an operator meets, in their words.
std::string connect_error(const std::string& path, int err) {
    switch (err) {
        case ENOENT:
            return "proxyd is not running (no socket " + path + ")";
        case ECONNREFUSED:
            return "proxyd is not running (no process accepts on " + path + ")";
        case EACCES:
        case EPERM:
            return permission_denied(path);
        default:
            return "cannot connect to " + path + ": " + std::strerror(err);
    }
}

common::UniqueFd connect_to(const std::string& path, std::string& error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        error = "control socket path too long: " + path;
        return {};
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        error = std::string("socket() failed: ") + std::strerror(errno);
        return {};
    }
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        error = connect_error(path, errno);
        return {};
    }
    return fd;
}

// Reads until the first newline. True with the line in `answer`.
bool read_line(int fd, const std::string& path, std::string& answer, std::string& error) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    for (;;) {
        size_t nl = answer.find('\n');
        if (nl != std::string::npos) {
            answer.resize(nl);
            return true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        pollfd pfd{fd, POLLIN, 0};
        int ready = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            error = "no answer from " + path + " within 10 s";
            return false;
        }
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (!answer.empty()) return true;
            error = "proxyd closed " + path + " without an answer";
            return false;
        }
        answer.append(buf, static_cast<size_t>(n));
        if (answer.size() > kMaxAnswer && answer.find('\n') == std::string::npos) {
            error = "answer from " + path + " is longer than 16 MiB";
            return false;
        }
    }
}

}  // namespace

bool find_socket(const std::string& socket_option, const std::string& config_option,
                 std::string& path, std::string& warning, std::string& error) {
    if (!socket_option.empty()) {
        path = socket_option;
        return true;
    }
    const std::string config_path =
        config_option.empty() ? common::default_config_path() : config_option;
    if (config_option.empty() && ::access(config_path.c_str(), R_OK) != 0) {
        path = kSystemSocket;
        return true;
    }
    common::ConfigPtr config = common::load_config(config_path, error);
    if (config) {
        path = config->master.control_socket;
        return true;
    }
    if (!config_option.empty()) return false;
    warning = error + "; trying " + kSystemSocket;
    error.clear();
    path = kSystemSocket;
    return true;
}

bool exchange(const std::string& path, const std::string& command, std::string& answer,
              std::string& error) {
    answer.clear();
    common::UniqueFd fd = connect_to(path, error);
    if (!fd) return false;
    // A master that refuses the connection (SO_PEERCRED) writes its answer
    // and closes at once: the send may then fail with EPIPE, but the refusal
    // waits in the socket to be read, and says more than "Broken pipe".
    std::string line = command + "\n";
    ssize_t sent = ::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL);
    int send_errno = errno;
    if (read_line(fd.get(), path, answer, error)) return true;
    if (sent < 0 && send_errno != EPIPE && send_errno != ECONNRESET) {
        error = "cannot send to " + path + ": " + std::strerror(send_errno);
    }
    return false;
}

std::string explain_refusal(const std::string& path, const std::string& error) {
    return error == "permission denied" ? permission_denied(path) : error;
}

}  // namespace master::proxyctl
