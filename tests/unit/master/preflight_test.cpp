// What a start needs beyond a valid file, checked without changing anything
// (proxyd -t): paths of logs, pid file and control socket.
#include "master/preflight.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

namespace master {
namespace {

class Preflight : public ::testing::Test {
  protected:
    Preflight() {
        char tmpl[] = "/tmp/proxyd-preflight-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
    }
    ~Preflight() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

    common::Config config() const {
        common::Config c;
        c.path = "test.conf";
        c.master.pid_file = dir_ + "/proxyd.pid";
        c.master.control_socket = dir_ + "/proxyd.sock";
        return c;
    }
    static bool has(const std::vector<std::string>& lines, const std::string& text) {
        for (const std::string& line : lines) {
            if (line.find(text) != std::string::npos) return true;
        }
        return false;
    }

    std::string dir_;
};

TEST_F(Preflight, AppendErrorOfFilesAndDirectories) {
    EXPECT_EQ(append_error(dir_ + "/new.log"), 0);
    EXPECT_EQ(append_error(dir_ + "/missing/new.log"), ENOENT);
    EXPECT_EQ(append_error(dir_), EISDIR);
    std::ofstream(dir_ + "/plain") << "x";
    EXPECT_EQ(append_error(dir_ + "/plain"), 0);
    EXPECT_EQ(append_error(dir_ + "/plain/new.log"), ENOTDIR);
}

TEST_F(Preflight, AGoodConfigurationHasNothingToSay) {
    PreflightReport report = check_files(config());
    EXPECT_TRUE(report.errors.empty()) << report.errors.front();
    // Nothing was created.
    EXPECT_NE(::access((dir_ + "/proxyd.pid").c_str(), F_OK), 0);
}

TEST_F(Preflight, NamesTheFileSectionAndKey) {
    common::Config c = config();
    c.log.error_log = dir_ + "/missing/error.log";
    c.log.access_log = dir_ + "/missing/access.log";
    PreflightReport report = check_files(c);
    ASSERT_EQ(report.errors.size(), 2u);
    EXPECT_EQ(report.errors[0], "test.conf: [log] \"error_log\": cannot open log file \"" + dir_ +
                                    "/missing/error.log\": No such file or directory");
    EXPECT_TRUE(has(report.errors, "test.conf: [log] \"access_log\": cannot open access log"));
}

TEST_F(Preflight, OneMissingRunDirectoryIsMadeByAStart) {
    common::Config c = config();
    c.master.pid_file = dir_ + "/run/proxyd.pid";
    c.master.control_socket = dir_ + "/run/proxyd.sock";
    EXPECT_TRUE(check_files(c).errors.empty());
    c.master.pid_file = dir_ + "/a/run/proxyd.pid";
    c.master.control_socket = dir_ + "/b/run/proxyd.sock";
    PreflightReport report = check_files(c);
    EXPECT_TRUE(has(report.errors, "[master] \"pid_file\": mkdir() \"" + dir_ + "/a/run\""));
    EXPECT_TRUE(has(report.errors, "[master] \"control_socket\": mkdir() \"" + dir_ + "/b/run\""));

    std::string error;
    EXPECT_TRUE(make_runtime_directory(dir_ + "/run/proxyd.pid", error)) << error;
    struct stat st;
    ASSERT_EQ(::stat((dir_ + "/run").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_TRUE(make_runtime_directory(dir_ + "/run/proxyd.sock", error)) << error;  // exists
    EXPECT_FALSE(make_runtime_directory(dir_ + "/a/run/proxyd.pid", error));
    EXPECT_EQ(error, "mkdir() \"" + dir_ + "/a/run\" failed (2: No such file or directory)");
}

TEST_F(Preflight, ControlSocketPathThatIsNoSocket) {
    std::ofstream(dir_ + "/proxyd.sock") << "x";
    PreflightReport report = check_files(config());
    EXPECT_TRUE(has(report.errors, "exists and is not a socket")) << report.errors.size();
}

}  // namespace
}  // namespace master
