#include "tests/integration/redis_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace harness {

namespace {

bool installed(const char* program) {
    for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/"}) {
        if (::access((std::string(dir) + program).c_str(), X_OK) == 0) return true;
    }
    return false;
}

}  // namespace

RedisServer::RedisServer() {
    if (!installed("redis-server") || !installed("redis-cli")) {
        skip_reason_ = "redis-server is not installed (make deps installs it)";
        return;
    }
    available_ = true;
    dir_ = make_temp_dir("proxyd-redis-");
    // The port is picked free and then given to redis-server, which may lose
    // it to another process in between: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = closed_port();
        if (launch()) return;
    }
    ADD_FAILURE() << "redis-server did not start; its log:\n" << log();
}

RedisServer::~RedisServer() {
    kill();
    remove_tree(dir_);
}

bool RedisServer::launch() {
    // No persistence (a restarted server is empty, as after a crash without
    // a dump), no protected mode (loopback only anyway), its own log file.
    std::vector<std::string> argv = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--protected-mode",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     dir_ + "/redis.log"};
    pid_ = spawn_process(argv, -1, -1, true, true);
    if (pid_ < 0) return false;
    if (answers_ping(10s)) return true;
    kill();
    return false;
}

bool RedisServer::answers_ping(Millis timeout) const {
    return wait_for(
               [&] {
                   int status = 0;
                   if (::waitpid(pid_, &status, WNOHANG) == pid_)
                       return true;  // died: stop waiting
                   return cli({"PING"}, 2s) == "PONG";
               },
               timeout, 50ms) &&
           process_alive(pid_) && cli({"PING"}, 2s) == "PONG";
}

void RedisServer::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

bool RedisServer::restart() {
    kill();
    // The port was ours a moment ago; redis-server sets SO_REUSEADDR, so
    // connections of the old one in TIME_WAIT do not keep it.
    for (int attempt = 0; attempt < 20; ++attempt) {
        if (launch()) return true;
        std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "redis-server did not restart on port " << port_ << "; its log:\n" << log();
    return false;
}

void RedisServer::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void RedisServer::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

std::string RedisServer::cli(const std::vector<std::string>& args, Millis timeout) const {
    std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    CurlResult result = run_program(argv, timeout);
    if (result.exit_code != 0) return {};
    while (!result.out.empty() && result.out.back() == '\n') result.out.pop_back();
    return result.out;
}

std::string RedisServer::log() const {
    return read_file(dir_ + "/redis.log");
}

}  // namespace harness
