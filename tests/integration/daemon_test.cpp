// Running proxyd as a daemon, the way a new operator tries it: -s against a
// stale pid file, a failed hot upgrade under -d, the error log of a daemon
// (stderr lost, syslog), a scaled worker count across a reload, and the
// manual's word on degraded slots.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/libevent_handles.h"
#include "master/supervisor.h"
#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConfigBuilder;
using harness::Json;
using harness::ProxydInstance;
using harness::wait_for;

pid_t pid_in_file(const std::string& path) {
    return static_cast<pid_t>(std::atol(harness::read_file(path).c_str()));
}

// `proxyd -d`: the process the test spawned exits 0 once the daemon serves;
// then the daemon, named by the pid file, answers with every worker running.
bool start_daemon(ProxydInstance& proxy) {
    if (!proxy.write_config() || !proxy.spawn({"-d"})) return false;
    std::optional<int> code = proxy.wait_exit_code(15s);
    if (code != 0) {
        ADD_FAILURE() << "proxyd -d exited " << code.value_or(-1) << ": " << proxy.stderr_output();
        return false;
    }
    const int expected = proxy.config().workers().value_or(1);
    return wait_for(
        [&] {
            Json s = proxy.control_json("status");
            if (!s["ok"].boolean() || static_cast<int>(s["workers"].size()) < expected)
                return false;
            for (const Json& w : s["workers"].items()) {
                if (w["state"].str() != "running") return false;
            }
            return true;
        },
        15s, 50ms);
}

// A process that is not proxyd, for a pid file to name.
pid_t start_sleeper() {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::execlp("sleep", "sleep", "60", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

// ---------------------------------------------------------------------------
// proxyd -s

// The pid file names an unrelated live process (a master that died long
// ago, its pid reused): -s must not signal it.
TEST(DaemonSignal, RefusesAPidThatIsNotAProxydMaster) {
    const std::string dir = harness::make_temp_dir("proxyd-daemon-");
    ConfigBuilder config;
    const std::string path = dir + "/proxyd.conf";
    ASSERT_TRUE(harness::write_file(path, config.render(dir)));
    const pid_t sleeper = start_sleeper();
    ASSERT_GT(sleeper, 0);
    ASSERT_TRUE(harness::write_file(dir + "/proxyd.pid", std::to_string(sleeper) + "\n"));
    for (const char* sig : {"stop", "quit", "reload", "reopen"}) {
        harness::CurlResult r =
            harness::run_program({harness::proxyd_bin(), "-s", sig, "-c", path}, 10s);
        EXPECT_EQ(r.exit_code, 1) << sig << ": " << r.err;
        EXPECT_NE(r.err.find("pid " + std::to_string(sleeper) + " in \"" + dir +
                             "/proxyd.pid\" is not a proxyd master"),
                  std::string::npos)
            << r.err;
    }
    // Still alive: no signal reached it (SIGTERM, SIGQUIT, SIGHUP and SIGUSR1
    // would each have ended a sleep).
    EXPECT_TRUE(harness::process_alive(sleeper));
    ::kill(sleeper, SIGKILL);
    ::waitpid(sleeper, nullptr, 0);
    harness::remove_tree(dir);
}

TEST(DaemonSignal, SignalsTheRunningMaster) {
    ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    harness::CurlResult r =
        harness::run_program({harness::proxyd_bin(), "-s", "reopen", "-c", proxy.config_path()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(proxy.wait_for_log("SIGUSR1 received: reopening logs")) << proxy.error_log();
}

// ---------------------------------------------------------------------------
// Hot upgrade under -d

// The new master cannot load the configuration; under -d its stderr is
// /dev/null, so only the old master can tell the operator why.
TEST(DaemonUpgrade, FailedUpgradeLogsTheNewMastersReason) {
    ProxydInstance proxy;
    ASSERT_TRUE(start_daemon(proxy));
    const pid_t master = pid_in_file(proxy.pid_file_path());
    ASSERT_GT(master, 0);
    proxy.config().raw("[no_such_section]\nkey = 1\n");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_EQ(::kill(master, SIGUSR2), 0);
    ASSERT_TRUE(proxy.wait_for_log("hot upgrade failed: new master exited with status 1", 15s))
        << proxy.error_log();
    std::vector<std::string> why = proxy.log_lines_with("could not start: ");
    ASSERT_EQ(why.size(), 1u) << proxy.error_log();
    EXPECT_NE(why[0].find("[error]"), std::string::npos) << why[0];
    EXPECT_NE(why[0].find(proxy.config_path() + ":"), std::string::npos) << why[0];
    EXPECT_NE(why[0].find("unknown section [no_such_section]"), std::string::npos) << why[0];
    // Still the same master, serving.
    EXPECT_EQ(pid_in_file(proxy.pid_file_path()), master);
    EXPECT_EQ(proxy.control_json("status")["master_pid"].as_int(), master);
}

// A successful upgrade reports nothing but its success.
TEST(DaemonUpgrade, SuccessfulUpgradeLogsNoReason) {
    ProxydInstance proxy;
    ASSERT_TRUE(start_daemon(proxy));
    const pid_t master = pid_in_file(proxy.pid_file_path());
    ASSERT_EQ(::kill(master, SIGUSR2), 0);
    ASSERT_TRUE(wait_for([&] { return !harness::process_alive(master); }, 20s))
        << proxy.error_log();
    EXPECT_TRUE(proxy.log_lines_with("could not start").empty()) << proxy.error_log();
    EXPECT_TRUE(proxy.log_lines_with("hot upgrade failed").empty()) << proxy.error_log();
    const pid_t successor = pid_in_file(proxy.pid_file_path());
    EXPECT_NE(successor, master);
    EXPECT_EQ(proxy.control_json("status")["master_pid"].as_int(), successor);
}

// ---------------------------------------------------------------------------
// The error log of a daemon

TEST(DaemonLog, WarnsOnTheTerminalWhenDaemonLogsToStderr) {
    ConfigBuilder config;
    config.set("log", "error_log", "stderr");
    ProxydInstance proxy(config);
    ASSERT_TRUE(start_daemon(proxy));
    const std::string err = proxy.stderr_output();
    EXPECT_NE(err.find("proxyd: warning: " + proxy.config_path() +
                       ": [log] \"error_log\" is stderr, which -d sends to /dev/null"),
              std::string::npos)
        << err;
}

TEST(DaemonLog, NoWarningWithALogFile) {
    ProxydInstance proxy;
    ASSERT_TRUE(start_daemon(proxy));
    EXPECT_EQ(proxy.stderr_output().find("warning"), std::string::npos) << proxy.stderr_output();
}

// error_log = syslog: lines reach /dev/log as syslog datagrams, facility
// daemon (3), ident proxyd with the pid. The test plays the syslog daemon,
// so it needs /dev/log free (no syslog daemon on this machine) and the right
// to bind there.
TEST(DaemonLog, SyslogReceivesTheLinesOfMasterAndWorkers) {
    const char* kDevLog = "/dev/log";
    struct stat st;
    if (::lstat(kDevLog, &st) == 0) {
        GTEST_SKIP() << kDevLog << " exists (a syslog daemon runs): its lines cannot be read here";
    }
    common::UniqueFd syslog_socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, kDevLog);
    if (::bind(syslog_socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        GTEST_SKIP() << "cannot bind " << kDevLog << " (" << std::strerror(errno) << ")";
    }
    struct Unlink {
        const char* path;
        ~Unlink() { ::unlink(path); }
    } unlink_dev_log{kDevLog};

    ConfigBuilder config;
    config.set("log", "error_log", "syslog");
    ProxydInstance proxy(config);
    ASSERT_TRUE(start_daemon(proxy));
    EXPECT_EQ(proxy.stderr_output().find("warning"), std::string::npos) << proxy.stderr_output();
    const pid_t master = pid_in_file(proxy.pid_file_path());
    // A reload: the master logs it, and the old workers log their drain.
    ASSERT_EQ(::kill(master, SIGHUP), 0);

    std::vector<std::string> lines;
    auto has = [&](const std::string& needle) {
        for (const std::string& l : lines)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    };
    const std::string tag = "proxyd[" + std::to_string(master) + "]: master: ";
    ASSERT_TRUE(wait_for(
        [&] {
            char buf[2048];
            ssize_t n;
            while ((n = ::recv(syslog_socket.get(), buf, sizeof buf, MSG_DONTWAIT)) > 0)
                lines.emplace_back(buf, static_cast<size_t>(n));
            return has(tag + "SIGHUP received: reloading") && has("]: worker 0: draining");
        },
        10s))
        << lines.size() << " syslog lines";
    // <30>: facility daemon (3 << 3) + info (6).
    for (const std::string& l : lines) {
        if (l.find(tag + "proxyd master started") != std::string::npos) {
            EXPECT_EQ(l.rfind("<30>", 0), 0u) << l;
        }
    }
    EXPECT_TRUE(has(tag + "proxyd master started"));
    // Nothing was written to a file called "syslog".
    EXPECT_NE(::access("syslog", F_OK), 0);
    EXPECT_NE(::access((proxy.dir() + "/syslog").c_str(), F_OK), 0);
}

// ---------------------------------------------------------------------------
// Worker count across a reload

std::vector<ProxydInstance::Worker> current_workers(ProxydInstance& proxy, int generation) {
    std::vector<ProxydInstance::Worker> out;
    for (const ProxydInstance::Worker& w : proxy.workers()) {
        if (w.generation == generation && w.state == "running") out.push_back(w);
    }
    return out;
}

// Exactly `count` workers listed, all of `generation` and running.
bool settles_at(ProxydInstance& proxy, int generation, size_t count) {
    return wait_for(
        [&] {
            return proxy.workers().size() == count &&
                   current_workers(proxy, generation).size() == count;
        },
        20s, 50ms);
}

TEST(DaemonScale, ScaledCountSurvivesAReloadUnlessWorkersChanged) {
    ProxydInstance proxy;  // workers = 2
    ASSERT_TRUE(proxy.start());
    ASSERT_TRUE(harness::is_ok(proxy.control_json("scale 3")));
    ASSERT_TRUE(settles_at(proxy, 1, 3));

    // Another change (a log level) keeps the scaled count.
    proxy.config().set("log", "level", "debug");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(harness::is_ok(proxy.control_json("reload")));
    EXPECT_TRUE(settles_at(proxy, 2, 3)) << proxy.control("status").value_or("");
    EXPECT_EQ(proxy.status()["target_workers"].as_int(), 3);
    EXPECT_TRUE(proxy.wait_for_log("keeping 3 workers as scaled: \"workers = 2\" did not change"));

    // SIGTTIN, then SIGHUP with nothing changed: 4 stay.
    ASSERT_TRUE(proxy.signal(SIGTTIN));
    ASSERT_TRUE(settles_at(proxy, 2, 4));
    ASSERT_TRUE(proxy.signal(SIGHUP));
    EXPECT_TRUE(settles_at(proxy, 3, 4)) << proxy.control("status").value_or("");

    // The configuration's own count changed: it wins.
    proxy.config().set("master", "workers", "1");
    ASSERT_TRUE(proxy.write_config());
    ASSERT_TRUE(harness::is_ok(proxy.control_json("reload")));
    EXPECT_TRUE(settles_at(proxy, 4, 1)) << proxy.control("status").value_or("");
    EXPECT_EQ(proxy.status()["target_workers"].as_int(), 1);
}

// ---------------------------------------------------------------------------
// The manual

// proxyd.8 states the rule master/supervisor.cpp applies: a slot is degraded
// after kDegradedFailures quick failures in a row, or after one exit of a
// worker that cannot run with the configuration (ExitKind::kFatalConfig).
TEST(DaemonDocs, ManPageStatesWhenASlotIsDegraded) {
    static_assert(master::kDegradedFailures == 3, "the manual says three");
    std::string man = harness::read_file("man/proxyd.8");
    ASSERT_FALSE(man.empty()) << "run from the source tree";
    // The lines of one sentence, joined.
    for (char& c : man)
        if (c == '\n') c = ' ';
    EXPECT_NE(man.find("After three such failures in a row, or at once when a worker exits with "
                       "status 3 because it cannot run with this configuration"),
              std::string::npos);
}

}  // namespace
