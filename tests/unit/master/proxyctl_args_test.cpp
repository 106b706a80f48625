// proxyctl's command line: options before or after the command, top's own
// options, and the usage errors.
#include "master/proxyctl_args.h"

#include <gtest/gtest.h>

namespace master::proxyctl {
namespace {

std::optional<Args> parse(std::vector<std::string> words, std::string* error_out = nullptr) {
    std::string error;
    std::optional<Args> args = parse_args(words, error);
    if (error_out != nullptr) *error_out = error;
    return args;
}

TEST(ProxyctlArgs, OptionsBeforeOrAfterTheCommandAreTheSame) {
    auto before = parse({"--json", "-s", "x.sock", "status"});
    auto after = parse({"status", "--json", "-s", "x.sock"});
    ASSERT_TRUE(before);
    ASSERT_TRUE(after);
    for (const Args* a : {&*before, &*after}) {
        EXPECT_TRUE(a->json);
        EXPECT_EQ(a->socket_path, "x.sock");
        EXPECT_EQ(a->command, std::vector<std::string>{"status"});
    }
}

TEST(ProxyctlArgs, LongOptionsTakeEqualsOrTheNextWord) {
    auto a = parse({"--socket=a.sock", "--config", "p.conf", "scale", "3"});
    ASSERT_TRUE(a);
    EXPECT_EQ(a->socket_path, "a.sock");
    EXPECT_EQ(a->config_path, "p.conf");
    EXPECT_EQ(a->command, (std::vector<std::string>{"scale", "3"}));
    auto b = parse({"-sb.sock", "-cq.conf", "workers"});
    ASSERT_TRUE(b);
    EXPECT_EQ(b->socket_path, "b.sock");
    EXPECT_EQ(b->config_path, "q.conf");
}

TEST(ProxyctlArgs, DoubleDashEndsOptions) {
    auto a = parse({"drain", "--", "-5"});
    ASSERT_TRUE(a);
    EXPECT_EQ(a->command, (std::vector<std::string>{"drain", "-5"}));
}

TEST(ProxyctlArgs, VersionAndHelpNeedNoCommand) {
    auto v = parse({"--version"});
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->version);
    auto v2 = parse({"status", "-V"});
    ASSERT_TRUE(v2);
    EXPECT_TRUE(v2->version);
    auto h = parse({"-h"});
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->help);
}

TEST(ProxyctlArgs, TopTakesDelayAndIterations) {
    auto a = parse({"top", "-d", "0.2", "-n", "2"});
    ASSERT_TRUE(a);
    EXPECT_DOUBLE_EQ(a->delay_s, 0.2);
    EXPECT_EQ(a->iterations, 2);
    auto b = parse({"-n3", "--delay=5", "top"});
    ASSERT_TRUE(b);
    EXPECT_DOUBLE_EQ(b->delay_s, 5);
    EXPECT_EQ(b->iterations, 3);
    auto c = parse({"top"});
    ASSERT_TRUE(c);
    EXPECT_DOUBLE_EQ(c->delay_s, 1.0);
    EXPECT_EQ(c->iterations, 0);
}

TEST(ProxyctlArgs, UsageErrorsSayWhatIsWrong) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{}, "no command given"},
        {{"--json"}, "no command given"},
        {{"-x", "status"}, "unknown option \"-x\""},
        {{"--frob", "status"}, "unknown option \"--frob\""},
        {{"-jV", "status"}, "unknown option \"-jV\""},
        {{"--json=yes", "status"}, "option --json takes no value"},
        {{"status", "-s"}, "option -s needs a value"},
        {{"top", "-d", "0"}, "bad delay \"0\""},
        {{"top", "-d", "abc"}, "bad delay \"abc\""},
        {{"top", "-d", "nan"}, "bad delay \"nan\""},
        {{"top", "-n", "0"}, "bad iteration count \"0\""},
        {{"top", "-n", "2x"}, "bad iteration count \"2x\""},
        {{"status", "-n", "2"}, "-d and -n are options of top only"},
        {{"top", "--json"}, "top has no --json"},
        {{"top", "now"}, "top takes no arguments"},
    };
    for (const auto& [words, expected] : cases) {
        std::string error;
        EXPECT_FALSE(parse(words, &error)) << ::testing::PrintToString(words);
        EXPECT_NE(error.find(expected), std::string::npos)
            << ::testing::PrintToString(words) << ": " << error;
    }
}

TEST(ProxyctlArgs, ALoneDashIsACommandWord) {
    auto a = parse({"status", "-"});
    ASSERT_TRUE(a);
    EXPECT_EQ(a->command, (std::vector<std::string>{"status", "-"}));
}

}  // namespace
}  // namespace master::proxyctl
