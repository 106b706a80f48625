// The control socket and the master's log and upgrade commands, end to end
// (issue 13): the connection limit, several commands on one connection,
// `reopen` and SIGUSR1 after the log files were renamed, and the rollback
// after a hot upgrade whose new master fails to start.
//
// Every answer is checked whole (`ok` and the exact `error` text, or the
// exact line), so a missing answer can never pass for a refusal.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::Clock;
using harness::ConfigBuilder;
using harness::Json;
using harness::Millis;
using harness::ProxydInstance;
using harness::wait_for;

// One connection to the control socket, kept open across commands (the
// harness's control() opens one per command).
class ControlConnection {
  public:
    ~ControlConnection() { close(); }

    bool connect(const std::string& path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) return false;
        std::memcpy(addr.sun_path, path.data(), path.size());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        return fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    }
    bool send(const std::string& text) {
        return fd_ >= 0 && ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) ==
                               static_cast<ssize_t>(text.size());
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    // The next line without its "\n"; nullopt on EOF, error or timeout.
    std::optional<std::string> read_line(Millis timeout = 5s) {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            size_t eol = buffer_.find('\n');
            if (eol != std::string::npos) {
                std::string line = buffer_.substr(0, eol);
                buffer_.erase(0, eol + 1);
                return line;
            }
            if (!fill(deadline)) return std::nullopt;
        }
    }
    // True when the master closed the connection, with nothing more to read.
    bool at_eof(Millis timeout = 5s) {
        auto deadline = Clock::now() + timeout;
        while (buffer_.empty()) {
            if (!fill(deadline)) return eof_ && buffer_.empty();
        }
        return false;
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    bool fill(Clock::time_point deadline) {
        if (fd_ < 0 || eof_) return false;
        auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        pollfd p{fd_, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
        char buf[4096];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        buffer_.append(buf, static_cast<size_t>(n));
        return true;
    }

    int fd_ = -1;
    bool eof_ = false;
    std::string buffer_;
};

// A refusal exactly as the master writes it (keys in insertion order).
std::string error_line(const std::string& message) {
    return R"({"ok":false,"error":")" + message + R"("})";
}

// `help` answered in full on `conn`: the connection is registered.
bool answers_help(ControlConnection& conn) {
    if (!conn.send("help\n")) return false;
    std::optional<std::string> line = conn.read_line();
    if (!line) return false;
    std::optional<Json> answer = Json::parse(*line);
    return answer && (*answer)["ok"].boolean() && (*answer)["commands"].size() == 14;
}

// The HTTP status curl got through the proxy, as text ("200", "502").
std::string status_via(uint16_t proxy_port, const std::string& url) {
    harness::CurlResult r =
        harness::curl_via(proxy_port, {"-o", "/dev/null", "-w", "%{http_code}", url});
    return r.out;
}

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

bool contains(const std::string& path, const std::string& needle) {
    return harness::read_file(path).find(needle) != std::string::npos;
}

pid_t pid_in_file(const std::string& path) {
    return static_cast<pid_t>(std::atol(harness::read_file(path).c_str()));
}

// ---------------------------------------------------------------------------

// 64 clients (kMaxClients) are served; the 65th gets one refusal line and is
// closed; the 64 keep working, and once one leaves a new client is served.
TEST(ControlSocket, ConnectionBeyondTheLimitIsRefusedWithAnAnswer) {
    constexpr int kMaxClients = 64;
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    std::vector<std::unique_ptr<ControlConnection>> held;
    for (int i = 0; i < kMaxClients; ++i) {
        held.push_back(std::make_unique<ControlConnection>());
        ASSERT_TRUE(held.back()->connect(proxy.control_socket_path())) << "client " << i;
        ASSERT_TRUE(answers_help(*held.back())) << "client " << i;
    }

    ControlConnection extra;
    ASSERT_TRUE(extra.connect(proxy.control_socket_path()));
    EXPECT_EQ(extra.read_line(), error_line("too many control connections"));
    EXPECT_TRUE(extra.at_eof());
    EXPECT_TRUE(proxy.wait_for_log("control connection refused: 64 clients already connected"))
        << proxy.error_log();

    ASSERT_TRUE(held.front()->send("workers\n"));
    std::optional<Json> workers = Json::parse(held.front()->read_line().value_or(""));
    ASSERT_TRUE(workers);
    EXPECT_TRUE((*workers)["ok"].boolean());
    EXPECT_EQ((*workers)["workers"].size(), 2u);

    held.back().reset();  // one leaves: room for one more
    EXPECT_TRUE(wait_for(
        [&] {
            ControlConnection next;
            return next.connect(proxy.control_socket_path()) && answers_help(next);
        },
        5s));
}

// Several commands in one write, then EOF: one answer per line, in order,
// and the connection closes after the last.
TEST(ControlSocket, PipelinedCommandsAreAnsweredInOrder) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    ControlConnection conn;
    ASSERT_TRUE(conn.connect(proxy.control_socket_path()));
    ASSERT_TRUE(conn.send("help\nstatus\nbogus\nscale x\r\nworkers\nstatus extra\n"));
    conn.shutdown_write();

    std::optional<Json> help = Json::parse(conn.read_line().value_or(""));
    ASSERT_TRUE(help);
    EXPECT_TRUE((*help)["ok"].boolean());
    EXPECT_EQ((*help)["commands"][0].str(), "status");
    EXPECT_EQ((*help)["commands"].size(), 14u);  // users, routes, cluster and metrics included

    std::optional<Json> status = Json::parse(conn.read_line().value_or(""));
    ASSERT_TRUE(status);
    EXPECT_TRUE((*status)["ok"].boolean());
    EXPECT_EQ((*status)["master_pid"].as_int(), proxy.master_pid());
    EXPECT_TRUE((*status)["workers"].is_array());

    EXPECT_EQ(conn.read_line(), error_line(R"(unknown command \"bogus\")"));
    EXPECT_EQ(conn.read_line(), error_line("usage: scale N (1..1024)"));

    std::optional<Json> workers = Json::parse(conn.read_line().value_or(""));
    ASSERT_TRUE(workers);
    EXPECT_TRUE((*workers)["ok"].boolean());
    EXPECT_EQ((*workers)["workers"].size(), 2u);

    EXPECT_EQ(conn.read_line(), error_line(R"(command \"status\" takes no arguments)"));
    EXPECT_TRUE(conn.at_eof());
    // "scale x" was refused: nothing changed.
    EXPECT_EQ(proxy.status()["target_workers"].as_int(), 2);
}

// Renames both logs, asks for a reopen with `trigger`, and checks that new
// lines of the master and of the worker go to new files and none to the
// renamed ones. `announce` is the master's line about the request.
void check_reopen(ProxydInstance& proxy, const std::function<void()>& trigger,
                  const std::string& announce) {
    const std::string access_log = proxy.path("access.log");
    const std::string error_log = proxy.error_log_path();
    harness::HttpOrigin origin;
    const uint16_t port = proxy.listener_port();
    const std::string refused = "http://127.0.0.1:" + std::to_string(harness::closed_port());
    ASSERT_EQ(status_via(port, origin.url("/before-reopen")), "200");
    ASSERT_EQ(status_via(port, refused + "/before-reopen-502"), "502");
    ASSERT_TRUE(wait_for([&] { return contains(access_log, "/before-reopen"); }, 5s));
    ASSERT_TRUE(wait_for([&] { return contains(error_log, "/before-reopen-502"); }, 5s));

    ASSERT_EQ(::rename(access_log.c_str(), (access_log + ".1").c_str()), 0);
    ASSERT_EQ(::rename(error_log.c_str(), (error_log + ".1").c_str()), 0);
    trigger();
    // The worker creates the access log again when it reopens its logs.
    ASSERT_TRUE(wait_for([&] { return file_exists(access_log) && file_exists(error_log); }, 5s));

    ASSERT_EQ(status_via(port, origin.url("/after-reopen")), "200");
    ASSERT_EQ(status_via(port, refused + "/after-reopen-502"), "502");
    EXPECT_TRUE(wait_for([&] { return contains(access_log, "/after-reopen"); }, 5s));
    EXPECT_TRUE(wait_for([&] { return contains(error_log, "/after-reopen-502"); }, 5s));
    EXPECT_TRUE(contains(error_log + ".1", announce));
    EXPECT_FALSE(contains(error_log, announce));
    EXPECT_FALSE(contains(access_log + ".1", "/after-reopen"));
    EXPECT_FALSE(contains(error_log + ".1", "/after-reopen"));
    EXPECT_FALSE(contains(access_log, "/before-reopen"));
    EXPECT_FALSE(contains(error_log, "/before-reopen"));
}

ConfigBuilder with_access_log() {
    ConfigBuilder config;
    config.set("master", "workers", "1");
    config.set("log", "access_log", "${dir}/access.log");
    return config;
}

TEST(ControlSocket, ReopenCommandMovesBothLogsToNewFiles) {
    ProxydInstance proxy(with_access_log());
    ASSERT_TRUE(proxy.start());
    check_reopen(
        proxy, [&] { EXPECT_EQ(proxy.control("reopen"), R"({"ok":true})"); },
        "reopen requested on the control socket");
}

TEST(ControlSocket, Sigusr1MovesBothLogsToNewFiles) {
    ProxydInstance proxy(with_access_log());
    ASSERT_TRUE(proxy.start());
    check_reopen(
        proxy, [&] { EXPECT_TRUE(proxy.signal(SIGUSR1)); }, "SIGUSR1 received: reopening logs");
}

// After SIGUSR2 the new master exits 1: the old one logs the failure, puts
// its pid file back, keeps its workers and serves on.
void check_failed_upgrade(ProxydInstance& proxy) {
    const pid_t master = proxy.master_pid();
    ASSERT_EQ(pid_in_file(proxy.pid_file_path()), master);
    Json before = proxy.status();
    ASSERT_EQ(before["workers"].size(), 2u);
    ASSERT_TRUE(proxy.signal(SIGUSR2));
    ASSERT_TRUE(
        proxy.wait_for_log("hot upgrade failed: new master exited with status 1; still serving"))
        << proxy.error_log();
    std::vector<std::string> started =
        proxy.log_lines_with("hot upgrade: started new master (pid ");
    ASSERT_EQ(started.size(), 1u) << proxy.error_log();
    const pid_t child = static_cast<pid_t>(
        std::atol(started[0].c_str() + started[0].find("(pid ") + std::strlen("(pid ")));
    EXPECT_FALSE(harness::process_alive(child));

    EXPECT_EQ(pid_in_file(proxy.pid_file_path()), master);
    EXPECT_FALSE(file_exists(proxy.pid_file_path() + ".oldbin"));
    EXPECT_TRUE(proxy.running());
    Json after = proxy.status();
    EXPECT_EQ(after["master_pid"].as_int(), master);
    EXPECT_EQ(after["upgrade_child"].as_int(), 0);
    ASSERT_EQ(after["workers"].size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(after["workers"][i]["pid"].as_int(), before["workers"][i]["pid"].as_int());
        EXPECT_EQ(after["workers"][i]["state"].str(), "running");
    }
    harness::HttpOrigin origin;
    harness::CurlResult r = harness::curl_via(proxy.listener_port(), {origin.url("/bytes/2000")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, harness::pattern_bytes(2000));
}

// The new master reads the config again: a config broken since the start
// makes it exit 1. Once the config is fixed, the next upgrade succeeds.
TEST(ControlSocket, HotUpgradeWithABrokenConfigRollsBack) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const pid_t old_master = proxy.master_pid();
    const uint16_t port = proxy.listener_port();
    proxy.config().raw("[no_such_section]\nkey = 1\n");
    ASSERT_TRUE(proxy.write_config());
    check_failed_upgrade(proxy);
    // The new master's refusal names the file and line, as at any start.
    const std::string stderr_text = proxy.stderr_output();
    EXPECT_NE(stderr_text.find(proxy.config_path() + ":"), std::string::npos) << stderr_text;
    EXPECT_NE(stderr_text.find(": unknown section [no_such_section]"), std::string::npos)
        << stderr_text;

    proxy.config() = ConfigBuilder();
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(proxy.signal(SIGUSR2));
    EXPECT_EQ(proxy.wait_exit_code(15s), 0) << proxy.error_log();
    const pid_t new_master = pid_in_file(proxy.pid_file_path());
    EXPECT_NE(new_master, old_master);
    EXPECT_EQ(proxy.status()["master_pid"].as_int(), new_master);
    EXPECT_EQ(proxy.listener_port(), port);
}

// The binary on disk was replaced by one that cannot start (the master
// execs the path it was started from).
TEST(ControlSocket, HotUpgradeToABrokenBinaryRollsBack) {
    const char* env = std::getenv("PROXYD_BIN");
    const std::string real_bin = env != nullptr && *env != '\0' ? env : "build/proxyd";
    ProxydInstance proxy;
    const std::string copy = proxy.path("proxyd-copy");
    ASSERT_EQ(harness::run_program({"cp", real_bin, copy}).exit_code, 0);
    // The harness starts whatever PROXYD_BIN names: the copy, for this
    // instance only.
    ::setenv("PROXYD_BIN", copy.c_str(), 1);
    const bool started = proxy.start();
    if (env != nullptr)
        ::setenv("PROXYD_BIN", env, 1);
    else
        ::unsetenv("PROXYD_BIN");
    ASSERT_TRUE(started);

    const std::string script = proxy.path("proxyd-new");
    ASSERT_TRUE(harness::write_file(script, "#!/bin/sh\necho broken binary >&2\nexit 1\n"));
    ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
    ASSERT_EQ(::rename(script.c_str(), copy.c_str()), 0);
    check_failed_upgrade(proxy);
    EXPECT_NE(proxy.stderr_output().find("broken binary"), std::string::npos)
        << proxy.stderr_output();
}

}  // namespace
