// Control-command parsing, the pid file and the control socket file itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "common/json_util.h"
#include "master/control_socket.h"
#include "master/master.h"
#include "master/pid_file.h"

namespace master {
namespace {

class TempDir : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/proxyd-unit-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::string cmd = "rm -rf " + dir_;
        (void)std::system(cmd.c_str());
    }
    std::string dir_;
};

TEST(Commands, SplitsOnSpaces) {
    auto w = split_command("  scale   4 ");
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0], "scale");
    EXPECT_EQ(w[1], "4");
    EXPECT_TRUE(split_command("").empty());
    EXPECT_TRUE(split_command("   ").empty());
}

TEST(Commands, ParsesBoundedIntegers) {
    EXPECT_EQ(parse_integer("4", 1, 1024), 4);
    EXPECT_EQ(parse_integer("1024", 1, 1024), 1024);
    EXPECT_FALSE(parse_integer("0", 1, 1024));
    EXPECT_FALSE(parse_integer("1025", 1, 1024));
    EXPECT_FALSE(parse_integer("-1", 1, 1024));
    EXPECT_FALSE(parse_integer("4x", 1, 1024));
    EXPECT_FALSE(parse_integer("", 1, 1024));
    EXPECT_FALSE(parse_integer("99999999999999999999", 1, 1024));
}

TEST(Commands, ErrorAnswerIsJson) {
    std::string line = error_answer("unknown command \"x\"");
    EXPECT_EQ(line, R"({"ok":false,"error":"unknown command \"x\""})");
    common::Json v = common::parse_untrusted(line);
    ASSERT_TRUE(v.is_object()) << line;
    EXPECT_EQ(v["ok"], false);
    EXPECT_EQ(v["error"], "unknown command \"x\"");
}

// The protocol is one answer per line: whatever a message holds (a config
// error quoting a line, a path that is not UTF-8), the answer stays one
// line, and building it never throws.
TEST(Commands, ErrorAnswerIsOneLineWhateverTheMessage) {
    const std::string message = "line 3: \"a\nb\"\r\t\x01 \xff\xfe";
    std::string line;
    ASSERT_NO_THROW(line = error_answer(message));
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << line;
    common::Json v = common::parse_untrusted(line);
    ASSERT_TRUE(v.is_object()) << line;
    EXPECT_EQ(v["error"].get<std::string>().rfind("line 3: \"a\nb\"\r\t\x01 ", 0), 0u);
}

using PidFile = TempDir;

TEST_F(PidFile, WritesReadsAndRemovesOnlyItsOwn) {
    std::string path = dir_ + "/proxyd.pid";
    std::string error;
    ASSERT_TRUE(write_pid_file(path, 4242, error)) << error;
    EXPECT_EQ(read_pid_file(path, error), 4242);
    EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
    remove_pid_file_if_ours(path, 1111);
    EXPECT_EQ(access(path.c_str(), F_OK), 0);
    remove_pid_file_if_ours(path, 4242);
    EXPECT_NE(access(path.c_str(), F_OK), 0);
    EXPECT_FALSE(read_pid_file(path, error));
    EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST_F(PidFile, RejectsGarbage) {
    std::string path = dir_ + "/proxyd.pid";
    FILE* f = fopen(path.c_str(), "w");
    fputs("12ab\n", f);
    fclose(f);
    std::string error;
    EXPECT_FALSE(read_pid_file(path, error));
}

TEST_F(PidFile, StalePidDoesNotBlockAStart) {
    std::string path = dir_ + "/proxyd.pid";
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, nullptr, 0);  // a pid that is certainly gone
    std::string error;
    ASSERT_TRUE(write_pid_file(path, child, error));
    EXPECT_TRUE(check_not_running(path, error)) << error;
    EXPECT_FALSE(is_live_master(child));
}

TEST_F(PidFile, LiveMasterBlocksAStart) {
    std::string path = dir_ + "/proxyd.pid";
    std::string error;
    // A fork of the test binary stands in for a live master: same executable.
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    ASSERT_TRUE(write_pid_file(path, child, error));
    EXPECT_FALSE(check_not_running(path, error));
    EXPECT_NE(error.find("already running"), std::string::npos) << error;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
}

using ControlSocketFile = TempDir;

TEST_F(ControlSocketFile, IsCreatedWithMode0600) {
    ControlSocket control;
    std::string error;
    std::string path = dir_ + "/proxyd.sock";
    ASSERT_TRUE(control.open(path, false, error)) << error;
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    control.remove();
    EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST_F(ControlSocketFile, RefusesASocketInUseButReplacesAStaleOne) {
    std::string path = dir_ + "/proxyd.sock";
    std::string error;
    {
        ControlSocket first;
        ASSERT_TRUE(first.open(path, false, error)) << error;
        ControlSocket second;
        EXPECT_FALSE(second.open(path, false, error));
        EXPECT_NE(error.find("in use"), std::string::npos) << error;
        // A hot upgrade takes it over; the first one must then leave it be.
        ControlSocket successor;
        ASSERT_TRUE(successor.open(path, true, error)) << error;
        first.remove();
        EXPECT_EQ(access(path.c_str(), F_OK), 0);
    }
    // Nobody listens now: the file is stale and gets replaced.
    ControlSocket third;
    EXPECT_TRUE(third.open(path, false, error)) << error;
}

TEST_F(ControlSocketFile, RefusesANonSocketFile) {
    std::string path = dir_ + "/proxyd.sock";
    FILE* f = fopen(path.c_str(), "w");
    fclose(f);
    ControlSocket control;
    std::string error;
    EXPECT_FALSE(control.open(path, false, error));
    EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
}

}  // namespace
}  // namespace master
