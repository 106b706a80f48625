// A real redis-server (Debian's redis-server package) run by a test on a
// loopback port of its own, in a temp dir of its own, with persistence off.
// The cluster tests share state between proxyd nodes through it and kill,
// pause and restart it to see what the nodes do.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace harness {

class RedisServer {
  public:
    // Starts the server and waits (bounded) until it answers PING. When the
    // package is not installed, available() is false and skip_reason() says
    // so: the test skips with that message (`make deps` installs it).
    RedisServer();
    ~RedisServer();
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    bool available() const { return available_; }
    const std::string& skip_reason() const { return skip_reason_; }
    bool running() const { return pid_ > 0; }
    uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }
    // "127.0.0.1:PORT", the value of `[cluster] redis`.
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    // Stops it (SIGKILL: no goodbye to the clients, as in a crash) and reaps it.
    void kill();
    // Starts it again on the same port, empty (persistence is off). False,
    // with ADD_FAILURE, when it does not answer PING in time.
    bool restart();
    // SIGSTOP / SIGCONT: the server keeps its connections but answers nothing.
    void pause();
    void resume();

    // Runs redis-cli against it with `args` ("GET", "key"...); its stdout
    // without the last newline. Empty when redis-cli failed.
    std::string cli(const std::vector<std::string>& args, Millis timeout = 5s) const;
    // The error log of the server, for failure messages.
    std::string log() const;

  private:
    bool launch();
    bool answers_ping(Millis timeout) const;

    bool available_ = false;
    std::string skip_reason_;
    std::string dir_;
    uint16_t port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace harness
