// The control socket: a Unix stream socket, mode 0600, where the operator
// (through proxyctl) or a script sends one command per line and reads one
// JSON object per line back. Only the master's own uid (and root) may talk to
// it; the peer's uid comes from SO_PEERCRED, not from anything it says.
//
// Clients are bufferevents with timeouts, so a client that connects and
// says nothing (or never reads) costs a descriptor for a while, never the
// master's attention. Nor its memory: a client's commands are read only
// while fewer than kOutputHighMark bytes of answers wait for it, so one that
// sends commands and never reads its answers holds at most that plus one
// answer, and is closed when its write timeout passes.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/libevent_handles.h"

namespace master {

class ControlSocket {
  public:
    // Gets one command line (no newline, printable ASCII, at most
    // kMaxLineLength bytes) and returns one JSON object (no newline).
    using Handler = std::function<std::string(std::string_view line)>;

    static constexpr size_t kMaxLineLength = 1024;
    static constexpr size_t kMaxClients = 64;
    static constexpr size_t kOutputHighMark = 256 * 1024;

    ControlSocket() = default;
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    // Creates the socket at `path` with mode 0600 and listens. A socket file
    // left by a dead master is replaced; one a live process still accepts on
    // is an error ("control socket \"run/proxyd.sock\" is in use by another
    // process"). With `takeover` (hot upgrade) the file is replaced without
    // asking: the old master keeps its own descriptor. False with `error`.
    bool open(const std::string& path, bool takeover, std::string& error);

    // What open() would refuse, found without creating or removing anything
    // (proxyd -t): a path too long, a file there that is not a socket, a
    // socket a live process accepts on (unless `in_use_ok`). The messages are
    // open()'s. False with `error`. (Its directory: see master/preflight.h.)
    static bool check(const std::string& path, bool in_use_ok, std::string& error);

    // Starts accepting clients on `base`. False with `error`.
    bool start(event_base* base, Handler handler, std::string& error);

    // Gives the socket file to the unprivileged user the master drops to.
    bool chown(uid_t uid, gid_t gid, std::string& error);

    // Unlinks the socket file unless a new master has replaced it since.
    void remove();

    const std::string& path() const { return path_; }
    size_t client_count() const { return clients_.size(); }

  private:
    struct Client {
        ControlSocket* owner = nullptr;
        common::BufferEventPtr bev;
        bool closing = false;  // close once the answer is written
        bool paused = false;   // not reading: too many answers are queued
    };

    static void on_accept(evconnlistener* listener, evutil_socket_t fd, sockaddr* addr, int len,
                          void* arg) noexcept;
    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_write(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;

    void accept_client(int fd);
    void read_lines(Client& client);
    std::string handle(std::string_view line);
    void answer(Client& client, const std::string& json, bool then_close);
    void close_client(Client& client);

    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    common::UniqueFd fd_;
    event_base* base_ = nullptr;
    common::EvConnListenerPtr listener_;
    Handler handler_;
    std::map<Client*, std::unique_ptr<Client>> clients_;
};

// The error answer every failing command gives: {"ok":false,"error":"..."}.
std::string error_answer(std::string_view message);

}  // namespace master
