// The command line of the real binary (CONTRACT.md, "Command line"): -t, -v,
// -h, usage errors, and configuration errors that name their line and key.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::CurlResult;

class Cli : public ::testing::Test {
  protected:
    ~Cli() override { harness::remove_tree(dir_); }

    CurlResult proxyd(const std::vector<std::string>& args, harness::Millis timeout = 10s) {
        std::vector<std::string> argv = {harness::proxyd_bin()};
        argv.insert(argv.end(), args.begin(), args.end());
        return harness::run_program(argv, timeout);
    }
    // `config` is one a start refuses, saying `words`: proxyd -t must refuse
    // it too, saying the same.
    void expect_start_and_test_refuse(const harness::ConfigBuilder& config,
                                      const std::string& words) {
        std::string path = write_config(config.render(dir_));
        CurlResult start = proxyd({"-c", path}, 5s);
        EXPECT_EQ(start.exit_code, 1) << output(start);
        EXPECT_NE(output(start).find(words), std::string::npos) << output(start);
        CurlResult test = proxyd({"-t", "-c", path});
        EXPECT_EQ(test.exit_code, 1) << output(test);
        EXPECT_NE(output(test).find(words), std::string::npos) << output(test);
        EXPECT_NE(output(test).find(path + ": "), std::string::npos) << output(test);
        EXPECT_NE(output(test).find("test failed"), std::string::npos) << output(test);
    }
    // Writes `text` as a config file in the temp dir and returns its path.
    std::string write_config(const std::string& text, const std::string& name = "test.conf") {
        std::string path = dir_ + "/" + name;
        EXPECT_TRUE(harness::write_file(path, text));
        return path;
    }
    // A valid config from the harness defaults plus `extra` raw text.
    std::string valid_config_with(const std::string& extra) {
        harness::ConfigBuilder config;
        if (!extra.empty()) config.raw(extra);
        return write_config(config.render(dir_));
    }
    static std::string output(const CurlResult& r) { return r.out + r.err; }

    std::string dir_ = harness::make_temp_dir("proxyd-cli-");
};

TEST_F(Cli, TestsShippedConfigSuccessfully) {
    CurlResult r = proxyd({"-t", "-c", "conf/proxyd.conf"});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    EXPECT_NE(output(r).find("proxyd: configuration file conf/proxyd.conf test is successful"),
              std::string::npos)
        << output(r);
}

TEST_F(Cli, TestsHarnessConfigSuccessfully) {
    std::string path = valid_config_with("");
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    EXPECT_NE(output(r).find("test is successful"), std::string::npos) << output(r);
}

TEST_F(Cli, UnknownKeyFailsNamingLineAndKey) {
    std::string path = write_config(
        "[master]\n"
        "workers = 1\n"
        "frobnicate_level = 3\n");
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    std::string text = output(r);
    EXPECT_NE(text.find("frobnicate_level"), std::string::npos) << text;
    bool names_line = text.find(":3:") != std::string::npos ||
                      text.find("line 3") != std::string::npos ||
                      text.find(":3 ") != std::string::npos;
    EXPECT_TRUE(names_line) << text;
    EXPECT_NE(text.find(path), std::string::npos) << "should name the file: " << text;
}

TEST_F(Cli, NonNumericWorkersFailsNamingKey) {
    harness::ConfigBuilder config;
    config.set("master", "workers", "lots");
    std::string path = write_config(config.render(dir_));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("workers"), std::string::npos) << output(r);
}

TEST_F(Cli, UnknownSectionFails) {
    std::string path = write_config(
        "[master]\n"
        "workers = 1\n"
        "[nonsense]\n"
        "key = value\n");
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("nonsense"), std::string::npos) << output(r);
}

TEST_F(Cli, BadDurationFailsNamingKey) {
    harness::ConfigBuilder config;
    config.set("limits", "header_timeout", "5 fortnights");
    std::string path = write_config(config.render(dir_));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("header_timeout"), std::string::npos) << output(r);
}

TEST_F(Cli, BadSizeFailsNamingKey) {
    harness::ConfigBuilder config;
    config.set("limits", "max_header_size", "32 parsecs");
    std::string path = write_config(config.render(dir_));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("max_header_size"), std::string::npos) << output(r);
}

TEST_F(Cli, BadListenAddressFails) {
    harness::ConfigBuilder config;
    config.add_listener("main", "127.0.0.1:99999");
    std::string path = write_config(config.render(dir_));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("address"), std::string::npos) << output(r);
}

// ---- What a start refuses, proxyd -t refuses too ----------------------------

TEST_F(Cli, ErrorLogInAMissingDirectory) {
    harness::ConfigBuilder config;
    config.set("log", "error_log", "${dir}/missing/error.log");
    expect_start_and_test_refuse(config, "[log] \"error_log\": cannot open log file \"" + dir_ +
                                             "/missing/error.log\": No such file or directory");
}

TEST_F(Cli, AccessLogInAMissingDirectory) {
    harness::ConfigBuilder config;
    config.set("log", "access_log", "${dir}/missing/access.log");
    expect_start_and_test_refuse(config, "[log] \"access_log\": cannot open access log \"" + dir_ +
                                             "/missing/access.log\": No such file");
}

TEST_F(Cli, PidFileTwoMissingDirectoriesDeep) {
    harness::ConfigBuilder config;
    config.set("master", "pid_file", "${dir}/missing/run/proxyd.pid");
    expect_start_and_test_refuse(config, "[master] \"pid_file\": mkdir() \"" + dir_ +
                                             "/missing/run\" failed (2: No such file");
}

TEST_F(Cli, ControlSocketTwoMissingDirectoriesDeep) {
    harness::ConfigBuilder config;
    config.set("master", "control_socket", "${dir}/missing/run/proxyd.sock");
    expect_start_and_test_refuse(config, "[master] \"control_socket\": mkdir() \"" + dir_ +
                                             "/missing/run\" failed (2: No such file");
}

TEST_F(Cli, PidFileInAFileNotADirectory) {
    ASSERT_TRUE(harness::write_file(dir_ + "/plain", "a file\n"));
    harness::ConfigBuilder config;
    config.set("master", "pid_file", "${dir}/plain/proxyd.pid");
    expect_start_and_test_refuse(
        config, "open() \"" + dir_ + "/plain/proxyd.pid.tmp\" failed (20: Not a directory)");
}

// One missing level is made by a start (a fresh tree has no run/), so the
// test passes too.
TEST_F(Cli, StartMakesAMissingRunDirectory) {
    harness::ConfigBuilder config;
    config.set("master", "pid_file", "${dir}/run/proxyd.pid");
    config.set("master", "control_socket", "${dir}/sock/proxyd.sock");
    std::string path = write_config(config.render(dir_));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    // (The harness talks to the control socket at its usual place.)
    config.unset("master", "control_socket").set("master", "control_socket", "${dir}/proxyd.sock");
    harness::ProxydInstance proxy(config);
    ASSERT_TRUE(proxy.start());
    EXPECT_EQ(access((proxy.dir() + "/run/proxyd.pid").c_str(), F_OK), 0);
}

TEST_F(Cli, ControlSocketPathTooLong) {
    harness::ConfigBuilder config;
    config.set("master", "control_socket", "${dir}/" + std::string(120, 's') + ".sock");
    expect_start_and_test_refuse(config, "is empty or too long");
}

TEST_F(Cli, ControlSocketPathIsARegularFile) {
    ASSERT_TRUE(harness::write_file(dir_ + "/proxyd.sock", "not a socket\n"));
    expect_start_and_test_refuse(harness::ConfigBuilder(), "exists and is not a socket");
}

TEST_F(Cli, ControlSocketInUseByAnotherProcess) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = dir_ + "/proxyd.sock";
    std::memcpy(sun.sun_path, path.data(), path.size());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
    ASSERT_EQ(listen(fd, 4), 0);
    expect_start_and_test_refuse(harness::ConfigBuilder(), "is in use by another process");
    close(fd);
}

TEST_F(Cli, ListenAddressNotOnThisHost) {
    harness::ConfigBuilder config;
    config.add_listener("main", "192.0.2.1:0");  // TEST-NET-1, never local
    expect_start_and_test_refuse(config, "bind() to 192.0.2.1:0 failed (99: ");
}

TEST_F(Cli, ListenPortInUseByAnotherProgram) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    ASSERT_EQ(listen(fd, 4), 0);
    socklen_t len = sizeof sin;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len), 0);
    harness::ConfigBuilder config;
    config.add_listener("main", "127.0.0.1:" + std::to_string(ntohs(sin.sin_port)));
    expect_start_and_test_refuse(config, "Address already in use) for listener \"main\"");
    close(fd);
}

TEST_F(Cli, WildcardListenerOverlapsAnother) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    socklen_t len = sizeof sin;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len), 0);
    const std::string port = std::to_string(ntohs(sin.sin_port));
    close(fd);  // a free port, most likely
    harness::ConfigBuilder config;
    config.add_listener("any", "0.0.0.0:" + port);
    config.add_listener("local", "127.0.0.1:" + port);
    expect_start_and_test_refuse(config, "[listen local]: address 127.0.0.1:" + port +
                                             " overlaps 0.0.0.0:" + port + " of [listen any]");
}

TEST_F(Cli, UnknownUserOrGroup) {
    if (geteuid() != 0) GTEST_SKIP() << "user and group apply only to a master started as root";
    harness::ConfigBuilder user;
    user.set("master", "user", "no-such-user-proxyd");
    expect_start_and_test_refuse(user, "unknown user \"no-such-user-proxyd\"");
    harness::ConfigBuilder group;
    group.set("master", "group", "no-such-group-proxyd");
    expect_start_and_test_refuse(group, "unknown group \"no-such-group-proxyd\"");
}

// A running master holds its listeners and its control socket: testing its
// own configuration must still pass, as before a reload.
TEST_F(Cli, TestsTheRunningMastersConfigSuccessfully) {
    harness::ProxydInstance proxy;
    ASSERT_TRUE(proxy.start());
    harness::ConfigBuilder fixed = proxy.config();
    fixed.add_listener("main", proxy.listener_address("main"));
    std::string path = write_config(fixed.render(proxy.dir()));
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    EXPECT_NE(output(r).find("test is successful"), std::string::npos) << output(r);
    EXPECT_EQ(output(r).find("in use"), std::string::npos) << output(r);
}

TEST_F(Cli, VersionExitsZero) {
    CurlResult r = proxyd({"-v"});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    EXPECT_NE(output(r).find("proxyd"), std::string::npos) << output(r);
}

TEST_F(Cli, HelpExitsZeroWithUsage) {
    CurlResult r = proxyd({"-h"});
    EXPECT_EQ(r.exit_code, 0) << output(r);
    EXPECT_NE(output(r).find("-c"), std::string::npos) << output(r);
}

TEST_F(Cli, BadOptionExitsTwoWithUsage) {
    CurlResult r = proxyd({"-Z"});
    EXPECT_EQ(r.exit_code, 2) << output(r);
    std::string text = output(r);
    bool usage = text.find("usage") != std::string::npos || text.find("Usage") != std::string::npos;
    EXPECT_TRUE(usage) << text;
}

TEST_F(Cli, MissingOptionArgumentExitsTwo) {
    CurlResult r = proxyd({"-c"});
    EXPECT_EQ(r.exit_code, 2) << output(r);
}

TEST_F(Cli, MissingConfigFileFailsNamingIt) {
    std::string path = dir_ + "/does-not-exist.conf";
    CurlResult r = proxyd({"-t", "-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find(path), std::string::npos) << output(r);
}

TEST_F(Cli, RunWithBadConfigExitsOneWithoutStarting) {
    std::string path = valid_config_with("[bogus]\nx = 1\n");
    CurlResult r = proxyd({"-c", path});
    EXPECT_EQ(r.exit_code, 1) << output(r);
    EXPECT_NE(output(r).find("bogus"), std::string::npos) << output(r);
}

}  // namespace
