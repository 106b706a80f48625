// systemd: the master's sd_notify datagrams, received on a NOTIFY_SOCKET the
// test binds as systemd would, through a start, reloads and a stop; and the
// shipped unit and logrotate files, judged by systemd-analyze and logrotate
// themselves.
#include <gtest/gtest.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/libevent_handles.h"
#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConfigBuilder;
using harness::Json;
using harness::ProxydInstance;
using harness::wait_for;

uint64_t monotonic_usec_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// systemd's side of the protocol: an abstract SOCK_DGRAM socket, and every
// datagram received on it, in order, read by a thread.
class FakeSystemd {
  public:
    FakeSystemd() {
        static std::atomic<int> counter{0};
        name_ =
            "@proxyd-itest-notify-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path + 1, name_.data() + 1, name_.size() - 1);
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        bound_ = fd_ && ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), len) == 0;
        reader_ = std::thread([this] { read_loop(); });
    }
    ~FakeSystemd() {
        done_ = true;
        reader_.join();
    }
    bool bound() const { return bound_; }
    const std::string& name() const { return name_; }

    std::vector<std::string> messages() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return messages_;
    }
    // Index of the first datagram at or after `from` holding `field`
    // ("READY=1"), waiting up to `timeout`; -1 if none came.
    int wait_field(const std::string& field, size_t from = 0, harness::Millis timeout = 15s) const {
        int found = -1;
        wait_for(
            [&] {
                std::vector<std::string> all = messages();
                for (size_t i = from; i < all.size(); ++i) {
                    if (has_field(all[i], field)) {
                        found = static_cast<int>(i);
                        return true;
                    }
                }
                return false;
            },
            timeout, 10ms);
        return found;
    }
    // "KEY=VALUE" lines, each ended by a newline.
    static bool has_field(const std::string& message, const std::string& field) {
        std::istringstream in(message);
        std::string line;
        while (std::getline(in, line))
            if (line == field || (field.back() == '=' && line.rfind(field, 0) == 0)) return true;
        return false;
    }
    static std::string value(const std::string& message, const std::string& key) {
        std::istringstream in(message);
        std::string line;
        while (std::getline(in, line))
            if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
        return "";
    }

  private:
    void read_loop() {
        while (!done_) {
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, 50) != 1) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) continue;
            std::lock_guard<std::mutex> lock(mutex_);
            messages_.emplace_back(buf, static_cast<size_t>(n));
        }
    }

    std::string name_;
    common::UniqueFd fd_;
    bool bound_ = false;
    std::atomic<bool> done_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> messages_;
    std::thread reader_;
};

// Starts `proxy` with systemd's variables set for it alone.
bool start_under(FakeSystemd& systemd, ProxydInstance& proxy, const char* watchdog_usec) {
    ::setenv("NOTIFY_SOCKET", systemd.name().c_str(), 1);
    if (watchdog_usec != nullptr) ::setenv("WATCHDOG_USEC", watchdog_usec, 1);
    const bool started = proxy.start();
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    return started;
}

// Every listed worker belongs to `generation` and runs.
bool generation_serves(ProxydInstance& proxy, int generation) {
    std::vector<ProxydInstance::Worker> ws = proxy.workers();
    size_t running = 0;
    for (const auto& w : ws)
        if (w.generation == generation && w.state == "running") ++running;
    return running >= static_cast<size_t>(proxy.config().workers().value_or(1));
}

// One reload as systemd sees it: RELOADING=1 with a MONOTONIC_USEC taken
// at the reload, then READY=1 once the new generation serves. Returns the
// index of that READY=1.
int expect_reload(FakeSystemd& systemd, ProxydInstance& proxy, size_t from, int generation,
                  const std::function<void()>& trigger) {
    const uint64_t before = monotonic_usec_now();
    trigger();
    int reloading = systemd.wait_field("RELOADING=1", from);
    EXPECT_GE(reloading, 0) << "no RELOADING=1";
    if (reloading < 0) return -1;
    const std::string message = systemd.messages()[reloading];
    const uint64_t usec =
        std::strtoull(FakeSystemd::value(message, "MONOTONIC_USEC").c_str(), nullptr, 10);
    EXPECT_GE(usec, before) << message;
    EXPECT_LE(usec, monotonic_usec_now()) << message;
    int ready = systemd.wait_field("READY=1", reloading + 1);
    EXPECT_GT(ready, reloading) << "no READY=1 after the reload";
    // READY=1 came once the new generation served.
    EXPECT_TRUE(generation_serves(proxy, generation)) << proxy.control("status").value_or("");
    return ready;
}

TEST(SystemdNotify, ReadyReloadStatusWatchdogAndStopping) {
    FakeSystemd systemd;
    ASSERT_TRUE(systemd.bound());
    ProxydInstance proxy;
    // 1 s: WATCHDOG=1 every half second.
    ASSERT_TRUE(start_under(systemd, proxy, "1000000"));

    int ready = systemd.wait_field("READY=1");
    ASSERT_GE(ready, 0) << "no READY=1";
    std::string first = systemd.messages()[ready];
    EXPECT_NE(FakeSystemd::value(first, "STATUS").find("2 workers running, 0 active sessions"),
              std::string::npos)
        << first;
    // Nothing claimed readiness or a reload before.
    for (int i = 0; i < ready; ++i) {
        EXPECT_FALSE(FakeSystemd::has_field(systemd.messages()[i], "READY=1"));
        EXPECT_FALSE(FakeSystemd::has_field(systemd.messages()[i], "RELOADING=1"));
    }

    // The watchdog, from the master's loop: at least two pings in ~1.5 s.
    int w1 = systemd.wait_field("WATCHDOG=1", ready);
    ASSERT_GE(w1, 0) << "no WATCHDOG=1";
    EXPECT_GE(systemd.wait_field("WATCHDOG=1", w1 + 1, 5s), 0) << "WATCHDOG=1 only once";

    // SIGHUP, then the control socket's reload.
    ready = expect_reload(systemd, proxy, ready + 1, 2, [&] { ASSERT_TRUE(proxy.signal(SIGHUP)); });
    ASSERT_GE(ready, 0);
    ready = expect_reload(systemd, proxy, ready + 1, 3,
                          [&] { EXPECT_TRUE(harness::is_ok(proxy.control_json("reload"))); });
    ASSERT_GE(ready, 0);

    // A refused reload is over at once: READY=1 says why.
    proxy.config().raw("[no_such_section]\nkey = 1\n");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(proxy.signal(SIGHUP));
    int reloading = systemd.wait_field("RELOADING=1", ready + 1);
    ASSERT_GE(reloading, 0);
    int refused = systemd.wait_field("READY=1", reloading + 1);
    ASSERT_GE(refused, 0);
    EXPECT_NE(FakeSystemd::value(systemd.messages()[refused], "STATUS")
                  .find("reload refused: " + proxy.config_path()),
              std::string::npos)
        << systemd.messages()[refused];

    const size_t before_stop = systemd.messages().size();
    proxy.stop();
    EXPECT_GE(systemd.wait_field("STOPPING=1", before_stop, 5s), 0) << "no STOPPING=1";
    // Exactly one STOPPING=1, and no READY=1 after it.
    std::vector<std::string> all = systemd.messages();
    int stopping = 0;
    for (size_t i = before_stop; i < all.size(); ++i) {
        stopping += FakeSystemd::has_field(all[i], "STOPPING=1");
        if (stopping) {
            EXPECT_FALSE(FakeSystemd::has_field(all[i], "READY=1")) << all[i];
        }
    }
    EXPECT_EQ(stopping, 1);
}

// SIGUSR2: the new master, once its workers run, names itself MAINPID with
// READY=1; the old one, stopped by it, says nothing of stopping (the
// service goes on). The new master stops the service later.
TEST(SystemdNotify, HotUpgradeHandsMainPidToTheNewMaster) {
    FakeSystemd systemd;
    ASSERT_TRUE(systemd.bound());
    ProxydInstance proxy;
    ASSERT_TRUE(start_under(systemd, proxy, "2000000"));
    int ready = systemd.wait_field("READY=1");
    ASSERT_GE(ready, 0);
    for (const std::string& m : systemd.messages()) {
        EXPECT_FALSE(FakeSystemd::has_field(m, "MAINPID=")) << "a first start names no MAINPID";
    }
    const pid_t old_master = proxy.master_pid();
    ASSERT_TRUE(proxy.signal(SIGUSR2));
    int handover = systemd.wait_field("MAINPID=", ready + 1, 20s);
    ASSERT_GE(handover, 0) << proxy.error_log();
    const std::string message = systemd.messages()[handover];
    EXPECT_TRUE(FakeSystemd::has_field(message, "READY=1")) << message;
    const pid_t new_master =
        static_cast<pid_t>(std::atol(FakeSystemd::value(message, "MAINPID").c_str()));
    EXPECT_NE(new_master, old_master);
    EXPECT_EQ(proxy.wait_exit_code(15s), 0) << proxy.error_log();
    EXPECT_EQ(std::atol(harness::read_file(proxy.pid_file_path()).c_str()), new_master);
    // The new master keeps the watchdog going.
    const size_t after_old_exit = systemd.messages().size();
    EXPECT_GE(systemd.wait_field("WATCHDOG=1", after_old_exit, 5s), 0);
    for (const std::string& m : systemd.messages()) {
        EXPECT_FALSE(FakeSystemd::has_field(m, "STOPPING=1")) << "the old master said STOPPING";
    }
    const size_t before_stop = systemd.messages().size();
    proxy.stop();
    EXPECT_GE(systemd.wait_field("STOPPING=1", before_stop, 5s), 0);
}

// STATUS= is sent again when what it says changes: a session opened.
TEST(SystemdNotify, StatusFollowsActiveSessions) {
    FakeSystemd systemd;
    ASSERT_TRUE(systemd.bound());
    ConfigBuilder config;
    config.set("master", "workers", "1");
    ProxydInstance proxy(config);
    ASSERT_TRUE(start_under(systemd, proxy, nullptr));
    ASSERT_GE(systemd.wait_field("READY=1"), 0);

    harness::HttpOrigin origin;
    // A CONNECT tunnel held open: one active session until it closes.
    harness::CurlResult held;
    std::thread client([&] {
        held = harness::curl_via(proxy.listener_port(), {"-p", origin.url("/silent")}, 6s);
    });
    bool seen = wait_for(
        [&] {
            for (const std::string& m : systemd.messages())
                if (FakeSystemd::value(m, "STATUS") == "1 worker running, 1 active session")
                    return true;
            return false;
        },
        10s);
    client.join();
    EXPECT_TRUE(seen);
    for (const std::string& m : systemd.messages()) {
        EXPECT_FALSE(FakeSystemd::has_field(m, "WATCHDOG=1")) << "no WATCHDOG_USEC, no pings";
    }
}

// Without NOTIFY_SOCKET nothing is sent and nothing is logged about it.
TEST(SystemdNotify, NothingWithoutNotifySocket) {
    ::unsetenv("NOTIFY_SOCKET");
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    EXPECT_TRUE(proxy.log_lines_with("NOTIFY_SOCKET").empty()) << proxy.error_log();
}

// ---------------------------------------------------------------------------
// The shipped files

bool have_program(const std::string& name) {
    return harness::run_program({"sh", "-c", "command -v " + name}, 5s).exit_code == 0;
}

std::string absolute(const std::string& path) {
    char buf[4096];
    return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// systemd-analyze verify needs ExecStart's binary to exist: a copy of the
// unit runs the binary under test instead of /usr/sbin/proxyd. --man=no:
// the manual pages of Documentation= are installed only by the package.
TEST(SystemdUnit, VerifiesWithSystemdAnalyze) {
    if (!have_program("systemd-analyze")) GTEST_SKIP() << "systemd-analyze is not installed";
    std::string unit = harness::read_file("conf/proxyd.service");
    ASSERT_FALSE(unit.empty()) << "run from the source tree";
    EXPECT_NE(unit.find("\nType=notify\n"), std::string::npos);
    EXPECT_NE(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n"), std::string::npos);
    EXPECT_NE(unit.find("\nExecStart=/usr/sbin/proxyd -c /etc/proxyd/proxyd.conf\n"),
              std::string::npos);
    const std::string bin = absolute(harness::proxyd_bin());
    size_t at;
    while ((at = unit.find("/usr/sbin/proxyd")) != std::string::npos)
        unit.replace(at, std::strlen("/usr/sbin/proxyd"), bin);
    const std::string dir = harness::make_temp_dir("proxyd-unit-");
    ASSERT_TRUE(harness::write_file(dir + "/proxyd.service", unit));
    harness::CurlResult r = harness::run_program(
        {"systemd-analyze", "verify", "--man=no", dir + "/proxyd.service"}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    // Anything it has to say about our unit is a finding.
    EXPECT_EQ((r.out + r.err).find("proxyd.service"), std::string::npos) << r.out << r.err;
    harness::remove_tree(dir);
}

TEST(SystemdUnit, LogrotateAcceptsTheFile) {
    if (!have_program("logrotate")) GTEST_SKIP() << "logrotate is not installed";
    // logrotate refuses a configuration others may write to.
    const std::string dir = harness::make_temp_dir("proxyd-logrotate-");
    const std::string copy = dir + "/proxyd";
    std::string text = harness::read_file("conf/proxyd.logrotate");
    ASSERT_FALSE(text.empty()) << "run from the source tree";
    EXPECT_NE(text.find("\n    create 0640 proxyd adm\n"), std::string::npos);
    EXPECT_NE(text.find("/usr/sbin/proxyd -s reopen -c /etc/proxyd/proxyd.conf"),
              std::string::npos);
    // logrotate looks the owner up; the package creates the proxyd user,
    // a build machine may not have it.
    if (::getpwnam("proxyd") == nullptr) {
        std::printf("[ info     ] no user proxyd here: the copy creates files as root\n");
        const std::string from = "create 0640 proxyd adm";
        text.replace(text.find(from), from.size(), "create 0640 root adm");
    }
    ASSERT_TRUE(harness::write_file(copy, text));
    ::chmod(copy.c_str(), 0644);
    harness::CurlResult r =
        harness::run_program({"logrotate", "-d", "-s", dir + "/status", copy}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string out = r.out + r.err;
    EXPECT_NE(out.find("/var/log/proxyd/*.log"), std::string::npos) << out;
    EXPECT_EQ(out.find("error:"), std::string::npos) << out;
    harness::remove_tree(dir);
}

}  // namespace
