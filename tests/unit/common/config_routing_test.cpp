// Unit tests for the routing part of the configuration: [parent NAME],
// [route] and the destination budgets of [limits].
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/config.h"

namespace common {
namespace {

const char* const kListener = "[listen main]\naddress = 127.0.0.1:3128\n";

class ConfigRouting : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/proxyd-config-routing-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/proxyd.conf";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    ConfigPtr load(const std::string& text) {
        std::ofstream(path_, std::ios::trunc) << text << kListener;
        error_.clear();
        ConfigPtr config = load_config(path_, error_);
        EXPECT_TRUE(config != nullptr) << error_ << "\n--- file:\n" << text;
        return config;
    }
    // The message after "PATH".
    std::string error_for(const std::string& text) {
        std::ofstream(path_, std::ios::trunc) << text << kListener;
        error_.clear();
        EXPECT_EQ(load_config(path_, error_), nullptr) << text;
        EXPECT_EQ(error_.rfind(path_, 0), 0u) << error_;
        return error_.substr(std::min(error_.size(), path_.size()));
    }

    std::string dir_;
    std::string path_;
    std::string error_;
};

TEST_F(ConfigRouting, DefaultsAreDirectFromTheKernelsChoiceWithoutBudget) {
    ConfigPtr config = load("");
    ASSERT_TRUE(config);
    EXPECT_TRUE(config->parents.empty());
    EXPECT_TRUE(config->route.parents.empty());
    EXPECT_TRUE(config->route.source_addresses.empty());
    EXPECT_EQ(config->route.rotation, Rotation::kRoundRobin);
    EXPECT_EQ(config->route.on_failure, OnFailure::kRetryNext);
    EXPECT_EQ(config->route.sticky_ttl, std::chrono::minutes(10));
    EXPECT_EQ(config->limits.destination_rate, 0);
    EXPECT_EQ(config->limits.destination_burst, 10u);
    EXPECT_EQ(config->limits.destination_queue_timeout.count(), 0);
}

TEST_F(ConfigRouting, ParentsRouteAndBudgets) {
    ConfigPtr config = load(
        "[parent a]\nurl = http://u:p%40ss@127.0.0.1:8080\nmax_failures = 5\nretry_after = 30s\n"
        "[parent b]\nurl = socks5://[::1]\n"
        "[route]\nparents = b, a\nsource_addresses = 127.0.0.2, ::1\nrotation = least-connections\n"
        "sticky_ttl = 30m\non_failure = fail\n"
        "[limits]\ndestination_rate = 0.5\ndestination_burst = 3\n"
        "destination_queue_timeout = 2s\n");
    ASSERT_TRUE(config);
    ASSERT_EQ(config->parents.size(), 2u);
    const ParentConfig* a = config->parent("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->scheme, ParentScheme::kHttp);
    EXPECT_EQ(a->authority(), "127.0.0.1:8080");
    ASSERT_TRUE(a->credentials);
    EXPECT_EQ(a->credentials->first, "u");
    EXPECT_EQ(a->credentials->second, "p@ss");
    EXPECT_EQ(a->max_failures, 5u);
    EXPECT_EQ(a->retry_after, std::chrono::seconds(30));
    const ParentConfig* b = config->parent("b");
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->scheme, ParentScheme::kSocks5);
    EXPECT_EQ(b->authority(), "[::1]:1080");
    EXPECT_FALSE(b->credentials);
    EXPECT_EQ(config->route.parents, (std::vector<std::string>{"b", "a"}));
    ASSERT_EQ(config->route.source_addresses.size(), 2u);
    EXPECT_EQ(config->route.source_addresses[1].host_string(), "::1");
    EXPECT_EQ(config->route.rotation, Rotation::kLeastConnections);
    EXPECT_EQ(config->route.on_failure, OnFailure::kFail);
    EXPECT_EQ(config->route.sticky_ttl, std::chrono::minutes(30));
    EXPECT_EQ(config->limits.destination_rate, 0.5);
    EXPECT_EQ(config->limits.destination_burst, 3u);
    EXPECT_EQ(config->limits.destination_queue_timeout, std::chrono::seconds(2));
}

TEST_F(ConfigRouting, HttpsParentLoadsItsCaFile) {
    EXPECT_EQ(error_for("[parent a]\nurl = https://proxy.example:443\nca_file = " + dir_ +
                        "/missing.pem\n[route]\nparents = a\n")
                  .rfind(": [parent a]: cannot load CA file \"" + dir_ + "/missing.pem\"", 0),
              0u)
        << error_;
    EXPECT_EQ(error_for("[parent a]\nurl = http://127.0.0.1:1\nca_file = x.pem\n"
                        "[route]\nparents = a\n"),
              ": [parent a]: \"ca_file\" is for https:// parents only");
}

TEST_F(ConfigRouting, EveryParentIsListedAndEveryListedNameIsAParent) {
    EXPECT_EQ(error_for("[parent a]\nurl = http://127.0.0.1:1\n"),
              ": [parent a]: not used: list it in [route] parents");
    EXPECT_EQ(error_for("[route]\nparents = nope\n"),
              ": [route]: \"parents\" names \"nope\", which is no [parent NAME]");
    EXPECT_EQ(error_for("[parent a]\nurl = http://127.0.0.1:1\n[route]\nparents = a, a\n"),
              ": [route]: \"parents\" names \"a\" twice");
    EXPECT_EQ(error_for("[parent a]\nmax_failures = 2\n[route]\nparents = a\n"),
              ": [parent a]: \"url\" is required");
}

TEST_F(ConfigRouting, BadValuesNameTheirLine) {
    EXPECT_EQ(error_for("[parent a]\nurl = ftp://x\n"),
              ":2: invalid value for \"url\" in [parent a]: a parent URL starts with http://, "
              "https:// or socks5://");
    EXPECT_EQ(error_for("[parent a]\ncolour = red\n"), ":2: unknown key \"colour\" in [parent a]");
    EXPECT_EQ(error_for("[parent]\n"), ":1: [parent] needs a name: [parent NAME]");
    EXPECT_EQ(error_for("[parent a b]\nurl = http://x\n"),
              ":1: [parent a b]: a parent's name is 1-64 letters, digits or !#$%&'*+-.^_`|~");
    EXPECT_EQ(error_for("[parent direct]\nurl = http://x\n"),
              ":1: [parent direct]: \"direct\" names the routes without a parent");
    EXPECT_EQ(error_for("[route]\nsource_addresses = 127.0.0.1:80\n"),
              ":2: invalid value for \"source_addresses\" in [route]: \"127.0.0.1:80\" is not a "
              "numeric IP address (e.g. 192.0.2.7 or 2001:db8::7, no port)");
    EXPECT_EQ(error_for("[route]\nrotation = sometimes\n"),
              ":2: invalid value for \"rotation\" in [route]: \"sometimes\" is not a rotation "
              "(round-robin, random or least-connections)");
    EXPECT_EQ(error_for("[route]\non_failure = shrug\n"),
              ":2: invalid value for \"on_failure\" in [route]: \"shrug\" is not a failure "
              "policy (retry-next or fail)");
    EXPECT_EQ(error_for("[limits]\ndestination_rate = -1\n"),
              ":2: invalid value for \"destination_rate\" in [limits]: \"-1\" is not a rate "
              "(requests per second, e.g. 2 or 0.5)");
    EXPECT_EQ(error_for("[limits]\ndestination_rate = 2\ndestination_burst = 0\n"),
              ": [limits]: \"destination_burst\" must be from 1 to 1000000");
    EXPECT_EQ(error_for("[route]\nsticky_ttl = 0\n"),
              ": [route]: \"sticky_ttl\" must be greater than 0");
}

TEST_F(ConfigRouting, SourceAddressesContinueOnTheNextLine) {
    ConfigPtr config = load("[route]\nsource_addresses = 127.0.0.2,\n  127.0.0.3\n");
    ASSERT_TRUE(config);
    EXPECT_EQ(config->route.source_addresses.size(), 2u);
}

}  // namespace
}  // namespace common
