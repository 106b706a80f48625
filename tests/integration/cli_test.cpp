// The command line of the real binary (CONTRACT.md, "Command line"): -t, -v,
// -h, usage errors, and configuration errors that name their line and key.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::CurlResult;

std::string proxyd_bin() {
    const char* env = std::getenv("PROXYD_BIN");
    return env != nullptr && *env != '\0' ? env : "build/proxyd";
}

class Cli : public ::testing::Test {
  protected:
    ~Cli() override { harness::remove_tree(dir_); }

    CurlResult proxyd(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {proxyd_bin()};
        argv.insert(argv.end(), args.begin(), args.end());
        return harness::run_program(argv, 10s);
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
