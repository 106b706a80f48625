// The sd_notify datagram protocol: the address forms of $NOTIFY_SOCKET, the
// message texts, and real datagrams received on sockets the test binds.
#include "master/sd_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "common/libevent_handles.h"

namespace master {
namespace {

using namespace std::chrono_literals;

// A SOCK_DGRAM socket bound to `name` ("@abstract" or a path), as systemd
// binds its notification socket.
class Receiver {
  public:
    explicit Receiver(const std::string& name) : name_(name) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        socklen_t length = 0;
        std::string error;
        bound_ = fd_ && parse_notify_address(name, address, length, error) &&
                 ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), length) == 0;
    }
    ~Receiver() {
        if (name_[0] == '/') ::unlink(name_.c_str());
    }
    bool bound() const { return bound_; }
    // The next datagram, or "" after `timeout_ms`.
    std::string receive(int timeout_ms = 2000) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) != 1) return "";
        char buf[4096];
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }

  private:
    std::string name_;
    common::UniqueFd fd_;
    bool bound_ = false;
};

std::string abstract_name() {
    return "@proxyd-sd-notify-test-" + std::to_string(::getpid());
}

// Sets the variables for one notifier, then restores an empty environment.
SystemdNotifier notifier_for(const std::string& socket, const char* usec = nullptr,
                             const char* pid = nullptr, pid_t upgrade_from = 0) {
    ::setenv(kNotifySocketEnv, socket.c_str(), 1);
    if (usec != nullptr) ::setenv(kWatchdogUsecEnv, usec, 1);
    if (pid != nullptr) ::setenv(kWatchdogPidEnv, pid, 1);
    return SystemdNotifier::from_environment(upgrade_from);
}

TEST(SdNotifyAddress, AbstractNameGetsALeadingNulAndNoTrailingOne) {
    sockaddr_un a{};
    socklen_t len = 0;
    std::string error;
    ASSERT_TRUE(parse_notify_address("@sys/notify", a, len, error)) << error;
    EXPECT_EQ(a.sun_family, AF_UNIX);
    EXPECT_EQ(a.sun_path[0], '\0');
    EXPECT_EQ(std::string(a.sun_path + 1, 10), "sys/notify");
    EXPECT_EQ(len, offsetof(sockaddr_un, sun_path) + 11);
}

TEST(SdNotifyAddress, PathKeepsItsBytes) {
    sockaddr_un a{};
    socklen_t len = 0;
    std::string error;
    ASSERT_TRUE(parse_notify_address("/run/systemd/notify", a, len, error)) << error;
    EXPECT_STREQ(a.sun_path, "/run/systemd/notify");
    EXPECT_EQ(len, offsetof(sockaddr_un, sun_path) + 19);
}

TEST(SdNotifyAddress, RefusesWhatIsNeitherPathNorAbstract) {
    sockaddr_un a{};
    socklen_t len = 0;
    std::string error;
    for (const char* bad : {"", "@", "relative/notify", "vsock:2:1234"}) {
        EXPECT_FALSE(parse_notify_address(bad, a, len, error)) << bad;
    }
    EXPECT_FALSE(parse_notify_address("/" + std::string(sizeof(a.sun_path), 'x'), a, len, error));
    EXPECT_TRUE(
        parse_notify_address("@" + std::string(sizeof(a.sun_path) - 1, 'x'), a, len, error));
}

TEST(SdNotifyMessage, ReloadingCarriesTheMonotonicTime) {
    EXPECT_EQ(reloading_message(123456789), "RELOADING=1\nMONOTONIC_USEC=123456789\n");
    uint64_t before = monotonic_usec();
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t direct = static_cast<uint64_t>(ts.tv_sec) * 1000000u + ts.tv_nsec / 1000u;
    EXPECT_LE(before, direct);
    EXPECT_LT(direct - before, 1000000u);
}

TEST(SdNotifyMessage, StatusStaysOneField) {
    EXPECT_EQ(status_message("2 workers, 5 active sessions"),
              "STATUS=2 workers, 5 active sessions\n");
    EXPECT_EQ(status_message("a\nb"), "STATUS=a b\n");
}

TEST(SdNotify, UnsetEnvironmentIsANoOp) {
    ::unsetenv(kNotifySocketEnv);
    ::setenv(kWatchdogUsecEnv, "1000000", 1);
    SystemdNotifier n = SystemdNotifier::from_environment(0);
    EXPECT_FALSE(n.enabled());
    EXPECT_FALSE(n.send("READY=1\n"));
    EXPECT_EQ(n.watchdog_interval().count(), 0);
    n.watchdog_tick(std::chrono::steady_clock::now());
    EXPECT_TRUE(n.environment_for_successor().empty());
    EXPECT_EQ(std::getenv(kWatchdogUsecEnv), nullptr);
}

TEST(SdNotify, SendsToAnAbstractSocketAndClearsTheEnvironment) {
    Receiver r(abstract_name());
    ASSERT_TRUE(r.bound());
    SystemdNotifier n = notifier_for(abstract_name());
    ASSERT_TRUE(n.enabled());
    // The workers, forked later, must not find the socket.
    EXPECT_EQ(std::getenv(kNotifySocketEnv), nullptr);
    EXPECT_TRUE(n.send("READY=1\nSTATUS=ok\n"));
    EXPECT_EQ(r.receive(), "READY=1\nSTATUS=ok\n");
    ASSERT_EQ(n.environment_for_successor().size(), 1u);
    EXPECT_EQ(n.environment_for_successor()[0], "NOTIFY_SOCKET=" + abstract_name());
}

TEST(SdNotify, SendsToAPathSocket) {
    char tmpl[] = "/tmp/proxyd-sd-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string path = std::string(tmpl) + "/notify";
    {
        Receiver r(path);
        ASSERT_TRUE(r.bound());
        SystemdNotifier n = notifier_for(path);
        EXPECT_TRUE(n.send("STOPPING=1\n"));
        EXPECT_EQ(r.receive(), "STOPPING=1\n");
    }
    ::rmdir(tmpl);
}

// Nobody listens: the send fails at once (never blocks), and it is false
// every time without further ado.
TEST(SdNotify, AbsentListenerFailsWithoutBlocking) {
    SystemdNotifier n = notifier_for(abstract_name() + "-nobody");
    ASSERT_TRUE(n.enabled());
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(n.send("READY=1\n"));
    EXPECT_FALSE(n.send("READY=1\n"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(SdNotify, InvalidSocketDisables) {
    SystemdNotifier n = notifier_for("relative/notify");
    EXPECT_FALSE(n.enabled());
    EXPECT_EQ(std::getenv(kNotifySocketEnv), nullptr);
}

TEST(SdNotifyWatchdog, PingsAtHalfTheInterval) {
    Receiver r(abstract_name());
    ASSERT_TRUE(r.bound());
    SystemdNotifier n = notifier_for(abstract_name(), "2000000");
    ASSERT_EQ(n.watchdog_interval().count(), 2000000);
    auto t0 = std::chrono::steady_clock::now();
    n.watchdog_tick(t0);
    EXPECT_EQ(r.receive(), "WATCHDOG=1\n");
    n.watchdog_tick(t0 + 999ms);
    EXPECT_EQ(r.receive(50), "");
    n.watchdog_tick(t0 + 1000ms);
    EXPECT_EQ(r.receive(), "WATCHDOG=1\n");
    std::vector<std::string> env = n.environment_for_successor();
    ASSERT_EQ(env.size(), 2u);
    EXPECT_EQ(env[1], "WATCHDOG_USEC=2000000");
}

TEST(SdNotifyWatchdog, HonoursWatchdogPid) {
    const std::string self = std::to_string(::getpid());
    EXPECT_EQ(notifier_for(abstract_name(), "1000000", self.c_str()).watchdog_interval().count(),
              1000000);
    EXPECT_EQ(notifier_for(abstract_name(), "1000000", "1").watchdog_interval().count(), 0);
    // A hot upgrade's new master takes the watchdog over from the old one.
    EXPECT_EQ(notifier_for(abstract_name(), "1000000", "4242", 4242).watchdog_interval().count(),
              1000000);
    EXPECT_EQ(std::getenv(kWatchdogPidEnv), nullptr);
}

}  // namespace
}  // namespace master
