// proxyctl against the real proxyd: options anywhere on the line, the
// version, the confirmations of commands that change something, errors an
// operator can act on (not running, permission denied), finding the socket
// the way proxyd finds its configuration, and `top` run non-interactively.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::CurlResult;
using harness::Json;
using harness::ProxydInstance;

CurlResult ctl(const std::vector<std::string>& args, harness::Millis timeout = 10s) {
    std::vector<std::string> argv = {harness::proxyctl_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return harness::run_program(argv, timeout);
}

std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

TEST(ProxyctlCli, OptionsMayFollowTheCommand) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const std::string sock = proxy.control_socket_path();
    CurlResult r = ctl({"status", "--json", "-s", sock});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = Json::parse(r.out.substr(0, r.out.find('\n')));
    ASSERT_TRUE(j) << r.out;
    EXPECT_EQ((*j)["master_pid"].as_int(), proxy.master_pid());
    r = ctl({"workers", "--socket=" + sock});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
}

TEST(ProxyctlCli, VersionIsProxydsVersion) {
    CurlResult a = ctl({"--version"});
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, "proxyctl 0.1.0\n");
    CurlResult b = ctl({"status", "-V"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(b.out, a.out);
    CurlResult d = harness::run_program({harness::proxyd_bin(), "--version"});
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_NE(d.out.find("0.1.0"), std::string::npos) << d.out;
}

TEST(ProxyctlCli, UsageErrorsExitTwo) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{}, {"--frob", "status"}, {"status", "-n", "2"}}) {
        CurlResult r = ctl(args);
        EXPECT_EQ(r.exit_code, 2) << r.err;
        EXPECT_NE(r.err.find("usage: proxyctl"), std::string::npos) << r.err;
    }
}

TEST(Proxyctl, CommandsThatChangeSomethingConfirm) {
    ProxydInstance proxy;
    proxy.expect_worker_events({ProxydInstance::WorkerEvent::kReplaced});
    ASSERT_TRUE(proxy.start());
    const std::string sock = proxy.control_socket_path();

    CurlResult r = ctl({"-s", sock, "reload"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "reload: new generation 2 started\n");
    EXPECT_EQ(proxy.status()["generation"].as_int(), 2);
    // --json stays the answer alone.
    r = ctl({"-s", sock, "reload", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "{\"ok\":true,\"generation\":3}\n");
    ASSERT_TRUE(harness::wait_for([&] { return proxy.exactly_running(2); }, 15s));

    r = ctl({"-s", sock, "scale", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "scale: 3 workers wanted\n");
    r = ctl({"-s", sock, "reopen"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "reopen: log files reopened\n");
    ASSERT_TRUE(harness::wait_for([&] { return proxy.exactly_running(3); }, 15s));
    const pid_t victim = proxy.worker_pids().front();
    r = ctl({"-s", sock, "drain", std::to_string(victim)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out,
              "drain: worker " + std::to_string(victim) + " is being replaced and retired\n");
    EXPECT_TRUE(harness::wait_for([&] { return !proxy.lists_worker(victim); }, 15s));

    r = ctl({"-s", sock, "stop"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "stop: fast stop started\n");
    EXPECT_TRUE(proxy.wait_exit(15s));
}

TEST(Proxyctl, QuitConfirms) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    CurlResult r = ctl({"quit", "-s", proxy.control_socket_path()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "quit: graceful stop started\n");
    EXPECT_TRUE(proxy.wait_exit(15s));
}

TEST(Proxyctl, NotRunningSaysSo) {
    const std::string dir = harness::make_temp_dir();
    const std::string absent = dir + "/absent.sock";
    CurlResult r = ctl({"-s", absent, "status"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "proxyctl: proxyd is not running (no socket " + absent + ")\n");
    r = ctl({"-s", absent, "top", "-n", "1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("proxyd is not running"), std::string::npos) << r.err;

    // A socket file left behind, nothing accepting on it.
    const std::string stale = dir + "/stale.sock";
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
    r = ctl({"-s", stale, "status"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("proxyd is not running"), std::string::npos) << r.err;
    harness::remove_tree(dir);
}

// As an operator who is neither root nor proxyd's user: refused by the
// socket file's mode, then (mode opened up) by the master's SO_PEERCRED
// check. Both read as a permission problem, never "Broken pipe".
TEST(Proxyctl, PermissionDeniedSaysSo) {
    if (::getuid() != 0) GTEST_SKIP() << "needs root to run proxyctl as nobody";
    if (::access("/usr/sbin/runuser", X_OK) != 0) GTEST_SKIP() << "no runuser";
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const std::string sock = proxy.control_socket_path();
    ASSERT_EQ(::chmod(proxy.dir().c_str(), 0755), 0);
    const std::string expected =
        "proxyctl: permission denied on " + sock + " (run as root or the proxyd user)\n";
    auto as_nobody = [&](const std::vector<std::string>& args) {
        std::vector<std::string> argv = {"/usr/sbin/runuser",     "-u", "nobody", "--",
                                         harness::proxyctl_bin(), "-s", sock};
        argv.insert(argv.end(), args.begin(), args.end());
        return harness::run_program(argv);
    };
    CurlResult r = as_nobody({"status"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.err, expected);

    ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
    r = as_nobody({"status"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.err, expected);
    r = as_nobody({"top", "-n", "1"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(r.err, expected);
    EXPECT_TRUE(proxy.status()["ok"].boolean());
}

TEST(Proxyctl, SocketFoundThroughTheConfiguration) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const std::string pid = std::to_string(proxy.master_pid());
    CurlResult r = ctl({"status", "-c", proxy.config_path()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("master_pid: " + pid), std::string::npos) << r.out;

    // No option: conf/proxyd.conf of the current directory, as proxyd -c.
    const std::string tree = proxy.path("tree");
    ASSERT_EQ(::mkdir(tree.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((tree + "/conf").c_str(), 0700), 0);
    ASSERT_TRUE(
        harness::write_file(tree + "/conf/proxyd.conf", harness::read_file(proxy.config_path())));
    // (The binary by its absolute path: PROXYCTL_BIN may be relative.)
    char* bin = ::realpath(harness::proxyctl_bin().c_str(), nullptr);
    ASSERT_NE(bin, nullptr) << harness::proxyctl_bin();
    const std::string absolute_bin = bin;
    std::free(bin);
    r = harness::run_program({"env", "-C", tree, absolute_bin, "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("master_pid: " + pid), std::string::npos) << r.out;

    // A -c file that does not load is the error, with its line.
    ASSERT_TRUE(harness::write_file(proxy.path("bad.conf"), "[master]\nfrobnicate = 1\n"));
    r = ctl({"-c", proxy.path("bad.conf"), "status"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("bad.conf:2"), std::string::npos) << r.err;
}

// top without a terminal: plain frames, one line per worker with its pid,
// generation, state, and (from the second frame on) measured rates.
TEST(Proxyctl, TopShowsEveryWorker) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    const std::vector<pid_t> pids = proxy.worker_pids();
    ASSERT_EQ(pids.size(), 2u);
    CurlResult r = ctl({"top", "-n", "2", "-d", "0.2", "-s", proxy.control_socket_path()}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find('\033'), std::string::npos) << "escape codes without a terminal";
    EXPECT_EQ(count(r.out, "PID  "), 2u) << r.out;
    EXPECT_EQ(count(r.out, " workers "), 2u) << r.out;
    for (pid_t pid : pids) {
        size_t rows = 0;
        for (const std::string& line : lines_of(r.out)) {
            auto cols = words(line);
            if (cols.empty() || cols[0] != std::to_string(pid)) continue;
            ++rows;
            // PID SLOT GEN STATE SESS REQ/S IN/S OUT/S RSS LAST
            ASSERT_EQ(cols.size(), 10u) << line;
            EXPECT_EQ(cols[2], "1") << line;
            EXPECT_EQ(cols[3], "running") << line;
            EXPECT_EQ(cols[4], "0") << line;
            EXPECT_NE(cols[8], "0B") << line;  // a worker has resident memory
            EXPECT_TRUE(cols[9].ends_with("ms")) << line;
        }
        EXPECT_EQ(rows, 2u) << "worker " << pid << " in each frame:\n" << r.out;
    }
}

TEST(Proxyctl, TopMeasuresRates) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    // Heartbeats every 200 ms: by the third frame, a second apart, every
    // worker has reported twice and shows a rate.
    CurlResult r = ctl({"top", "-n", "3", "-d", "1", "-s", proxy.control_socket_path()}, 20s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const size_t heading = r.out.rfind("PID  ");
    ASSERT_NE(heading, std::string::npos) << r.out;
    const std::string last = r.out.substr(heading);
    size_t rows = 0;
    for (const std::string& line : lines_of(last)) {
        auto cols = words(line);
        if (cols.size() != 10 || cols[0] == "PID") continue;
        ++rows;
        char* end = nullptr;
        std::strtod(cols[5].c_str(), &end);
        EXPECT_TRUE(end != cols[5].c_str() && *end == '\0') << "REQ/S: " << line;
    }
    EXPECT_EQ(rows, 2u) << r.out;
}

// top on a terminal (a pseudo-terminal here): drawn in place, and `key`
// (q, or Ctrl-C through the terminal's own SIGINT) ends it with status 0,
// the cursor shown again and the terminal's modes as they were.
void run_top_on_a_terminal(ProxydInstance& proxy, char key) {
    int master_fd = -1;
    int slave_fd = -1;
    ASSERT_EQ(::openpty(&master_fd, &slave_fd, nullptr, nullptr, nullptr), 0);
    termios before{};
    ASSERT_EQ(::tcgetattr(slave_fd, &before), 0);
    const std::string bin = harness::proxyctl_bin();
    const std::string sock = proxy.control_socket_path();
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::setsid();
        ::ioctl(slave_fd, TIOCSCTTY, 0);
        ::dup2(slave_fd, 0);
        ::dup2(slave_fd, 1);
        ::dup2(slave_fd, 2);
        ::execl(bin.c_str(), bin.c_str(), "-s", sock.c_str(), "top", "-d", "0.2",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    // Read until two views were drawn, then press the key.
    std::string screen;
    auto read_some = [&](harness::Millis wait) {
        pollfd pfd{master_fd, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(wait.count())) <= 0) return;
        char buf[4096];
        ssize_t n = ::read(master_fd, buf, sizeof buf);
        if (n > 0) screen.append(buf, static_cast<size_t>(n));
    };
    EXPECT_TRUE(harness::wait_for(
        [&] {
            read_some(100ms);
            return count(screen, "PID  ") >= 2;
        },
        15s))
        << screen;
    ASSERT_EQ(::write(master_fd, &key, 1), 1);
    int status = -1;
    EXPECT_TRUE(harness::wait_for(
        [&] {
            read_some(20ms);
            return ::waitpid(child, &status, WNOHANG) == child;
        },
        10s));
    if (status == -1) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
    }
    read_some(100ms);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_NE(screen.find("\033[?25l"), std::string::npos);  // cursor hidden while drawing
    EXPECT_NE(screen.find("\033[H"), std::string::npos);     // drawn in place
    EXPECT_NE(screen.rfind("\033[?25h"), std::string::npos) << "cursor shown at exit";
    termios after{};
    ASSERT_EQ(::tcgetattr(slave_fd, &after), 0);
    EXPECT_EQ(after.c_lflag & (ICANON | ECHO | ISIG), before.c_lflag & (ICANON | ECHO | ISIG));
    ::close(master_fd);
    ::close(slave_fd);
}

TEST(Proxyctl, TopOnATerminalQuitsOnQAndCtrlC) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    {
        SCOPED_TRACE("q");
        run_top_on_a_terminal(proxy, 'q');
    }
    {
        SCOPED_TRACE("Ctrl-C");
        run_top_on_a_terminal(proxy, '\x03');
    }
}

// `metrics` prints the master's exposition text as is; a master without the
// command answers an error, which proxyctl reports.
TEST(Proxyctl, MetricsPrintsTheTextOrTheError) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    CurlResult r = ctl({"metrics", "-s", proxy.control_socket_path()});
    auto answer = proxy.control_json("metrics");
    if (answer["ok"].boolean()) {
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, answer["text"].str());
        EXPECT_NE(r.out.find("proxyd_workers"), std::string::npos) << r.out;
    } else {
        EXPECT_EQ(r.exit_code, 1);
        EXPECT_EQ(r.err, "proxyctl: " + answer["error"].str() + "\n");
    }
}

}  // namespace
