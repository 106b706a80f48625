// Unit tests for common/config: every key type, every error message the
// loader produces (with the file and line it names), defaults, and the
// shipped conf/proxyd.conf. Each test writes its own file into a temp dir.
#include "common/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace common {
namespace {

// A listener that every otherwise-valid file needs. Appended at the end so
// the line numbers of the text under test are unchanged.
constexpr const char* kListener = "\n[listen main]\naddress = 127.0.0.1:0\n";

class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/proxyd-config-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write(const std::string& text, const std::string& name = "proxyd.conf") {
        std::string path = dir_ + "/" + name;
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
        return path;
    }

    // Loads `text`; on failure the test fails with the loader's message.
    ConfigPtr load(const std::string& text) {
        path_ = write(text);
        error_.clear();
        ConfigPtr config = load_config(path_, error_);
        EXPECT_TRUE(config != nullptr) << error_ << "\n--- file:\n" << text;
        return config;
    }
    ConfigPtr load_with_listener(const std::string& text) { return load(text + kListener); }

    // Loads `text`, expects failure, returns the message without the path
    // prefix (after checking that the path is there).
    std::string error_for(const std::string& text) {
        path_ = write(text);
        error_.clear();
        ConfigPtr config = load_config(path_, error_);
        EXPECT_TRUE(config == nullptr) << "--- file:\n" << text;
        EXPECT_EQ(error_.rfind(path_ + ":", 0), 0u) << error_;
        return error_.substr(std::min(error_.size(), path_.size()));
    }
    std::string error_with_listener(const std::string& text) { return error_for(text + kListener); }

    std::string dir_;
    std::string path_;
    std::string error_;
};

// --- value parsers --------------------------------------------------------

TEST(ConfigValues, Durations) {
    std::string error;
    EXPECT_EQ(parse_duration("500ms", error), Duration(500));
    EXPECT_EQ(parse_duration("10s", error), Duration(10000));
    EXPECT_EQ(parse_duration("5m", error), Duration(300000));
    EXPECT_EQ(parse_duration("1h", error), Duration(3600000));
    EXPECT_EQ(parse_duration("7", error), Duration(7000));  // bare number: seconds
    EXPECT_EQ(parse_duration("0", error), Duration(0));
    EXPECT_EQ(parse_duration("8760h", error), Duration(8760LL * 3600000));  // one year
}

TEST(ConfigValues, DurationErrors) {
    std::string error;
    EXPECT_FALSE(parse_duration("10x", error));
    EXPECT_EQ(error, "\"10x\" is not a duration (e.g. 500ms, 10s, 5m, 1h)");
    EXPECT_FALSE(parse_duration("ms", error));
    EXPECT_EQ(error, "\"ms\" is not a duration (e.g. 500ms, 10s, 5m, 1h)");
    EXPECT_FALSE(parse_duration("-1s", error));
    EXPECT_FALSE(parse_duration("1.5s", error));
    EXPECT_FALSE(parse_duration("10 s", error));
    EXPECT_FALSE(parse_duration("10S", error));
    EXPECT_FALSE(parse_duration("", error));
    error.clear();
    EXPECT_FALSE(parse_duration("8761h", error));
    EXPECT_EQ(error, "\"8761h\" is too long a duration");
    EXPECT_FALSE(parse_duration("18446744073709551615h", error));  // multiply overflows
    EXPECT_EQ(error, "\"18446744073709551615h\" is too long a duration");
    EXPECT_FALSE(parse_duration("99999999999999999999", error));  // digits overflow
    EXPECT_EQ(error, "\"99999999999999999999\" is not a duration (e.g. 500ms, 10s, 5m, 1h)");
}

TEST(ConfigValues, Sizes) {
    std::string error;
    EXPECT_EQ(parse_size("4096", error), 4096u);
    EXPECT_EQ(parse_size("0", error), 0u);
    EXPECT_EQ(parse_size("32k", error), 32u * 1024);
    EXPECT_EQ(parse_size("32K", error), 32u * 1024);
    EXPECT_EQ(parse_size("512M", error), 512ull << 20);
    EXPECT_EQ(parse_size("512m", error), 512ull << 20);
    EXPECT_EQ(parse_size("1G", error), 1ull << 30);
    EXPECT_EQ(parse_size("1g", error), 1ull << 30);
}

TEST(ConfigValues, SizeErrors) {
    std::string error;
    EXPECT_FALSE(parse_size("1T", error));
    EXPECT_EQ(error, "\"1T\" is not a size (e.g. 4096, 32k, 512M, 1G)");
    EXPECT_FALSE(parse_size("32kb", error));
    EXPECT_EQ(error, "\"32kb\" is not a size (e.g. 4096, 32k, 512M, 1G)");
    EXPECT_FALSE(parse_size("k", error));
    EXPECT_FALSE(parse_size("-1", error));
    EXPECT_FALSE(parse_size("", error));
    EXPECT_FALSE(parse_size("17179869184G", error));  // 2^34 GiB = 2^64 bytes
    EXPECT_EQ(error, "\"17179869184G\" is not a size (e.g. 4096, 32k, 512M, 1G)");
    EXPECT_FALSE(parse_size("99999999999999999999", error));
}

TEST(ConfigValues, Booleans) {
    std::string error;
    for (const char* yes : {"yes", "on", "true", "1"})
        EXPECT_EQ(parse_bool(yes, error), true) << yes;
    for (const char* no : {"no", "off", "false", "0"})
        EXPECT_EQ(parse_bool(no, error), false) << no;
    EXPECT_FALSE(parse_bool("maybe", error));
    EXPECT_EQ(error, "\"maybe\" is not a boolean (yes or no)");
    EXPECT_FALSE(parse_bool("", error));
    EXPECT_FALSE(parse_bool("2", error));
}

TEST(ConfigValues, Counts) {
    std::string error;
    EXPECT_EQ(parse_count("0", error), 0u);
    EXPECT_EQ(parse_count("18446744073709551615", error), UINT64_MAX);
    EXPECT_FALSE(parse_count("18446744073709551616", error));
    EXPECT_EQ(error, "\"18446744073709551616\" is not a whole number");
    EXPECT_FALSE(parse_count("-1", error));
    EXPECT_EQ(error, "\"-1\" is not a whole number");
    EXPECT_FALSE(parse_count("1.5", error));
    EXPECT_FALSE(parse_count("10k", error));
    EXPECT_FALSE(parse_count("", error));
}

// --- keys through the loader ---------------------------------------------

TEST_F(ConfigTest, DurationKeys) {
    ConfigPtr c = load_with_listener(
        "[master]\n"
        "heartbeat_interval = 500ms\n"
        "heartbeat_timeout = 10s\n"
        "graceful_timeout = 5m\n"
        "[limits]\n"
        "connect_timeout = 1h\n"
        "header_timeout = 7\n"
        "idle_timeout = 2m\n"
        "tunnel_idle_timeout = 3m\n"
        "upstream_timeout = 4s\n"
        "upstream_keepalive_timeout = 90s\n"
        "dns_timeout = 250ms\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.heartbeat_interval, Duration(500));
    EXPECT_EQ(c->master.heartbeat_timeout, Duration(10000));
    EXPECT_EQ(c->master.graceful_timeout, Duration(300000));
    EXPECT_EQ(c->limits.connect_timeout, Duration(3600000));
    EXPECT_EQ(c->limits.header_timeout, Duration(7000));
    EXPECT_EQ(c->limits.idle_timeout, Duration(120000));
    EXPECT_EQ(c->limits.tunnel_idle_timeout, Duration(180000));
    EXPECT_EQ(c->limits.upstream_timeout, Duration(4000));
    EXPECT_EQ(c->limits.upstream_keepalive_timeout, Duration(90000));
    EXPECT_EQ(c->limits.dns_timeout, Duration(250));
}

TEST_F(ConfigTest, BadDurationNamesLineKeyAndValue) {
    EXPECT_EQ(error_with_listener("[master]\ngraceful_timeout = 10x\n"),
              ":2: invalid value for \"graceful_timeout\" in [master]: \"10x\" is not a "
              "duration (e.g. 500ms, 10s, 5m, 1h)");
    EXPECT_EQ(error_with_listener("[limits]\nidle_timeout = 9000h\n"),
              ":2: invalid value for \"idle_timeout\" in [limits]: \"9000h\" is too long a "
              "duration");
}

TEST_F(ConfigTest, SizeKeys) {
    ConfigPtr c = load_with_listener(
        "[master]\nworker_max_rss = 512M\n"
        "[limits]\nmax_header_size = 32k\nbuffer_size = 4096\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.worker_max_rss, 512ull << 20);
    EXPECT_EQ(c->limits.max_header_size, 32u * 1024);
    EXPECT_EQ(c->limits.buffer_size, 4096u);
    c = load_with_listener("[master]\nworker_max_rss = 1G\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.worker_max_rss, 1ull << 30);
    EXPECT_EQ(error_with_listener("[master]\nworker_max_rss = 1T\n"),
              ":2: invalid value for \"worker_max_rss\" in [master]: \"1T\" is not a size (e.g. "
              "4096, 32k, 512M, 1G)");
}

TEST_F(ConfigTest, BooleanKey) {
    for (const char* yes : {"yes", "on", "true", "1"}) {
        ConfigPtr c =
            load_with_listener(std::string("[acl]\ndeny_private_destinations = ") + yes + "\n");
        ASSERT_NE(c, nullptr);
        EXPECT_TRUE(c->acl.deny_private_destinations) << yes;
    }
    for (const char* no : {"no", "off", "false", "0"}) {
        ConfigPtr c =
            load_with_listener(std::string("[acl]\ndeny_private_destinations = ") + no + "\n");
        ASSERT_NE(c, nullptr);
        EXPECT_FALSE(c->acl.deny_private_destinations) << no;
    }
    EXPECT_EQ(error_with_listener("[acl]\ndeny_private_destinations = maybe\n"),
              ":2: invalid value for \"deny_private_destinations\" in [acl]: \"maybe\" is not a "
              "boolean (yes or no)");
}

// What one worker may hold at once: the master raises RLIMIT_NOFILE to it.
TEST_F(ConfigTest, DescriptorBudgetCountsEveryHolder) {
    ConfigPtr c = load_with_listener("[limits]\nmax_connections = 100\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.upstream_keepalive_max_idle, 1024u);
    EXPECT_EQ(idle_upstream_limit(c->limits), 100u);  // never above max_connections
    DescriptorBudget budget = descriptor_budget(*c);
    EXPECT_EQ(budget.sessions, 200u);
    EXPECT_EQ(budget.idle_upstreams, 100u);
    EXPECT_EQ(budget.splice_pipes, 2 * kMaxSplicePipes);
    EXPECT_EQ(budget.listeners, 1u);
    EXPECT_EQ(budget.fixed, kFixedDescriptors);
    EXPECT_EQ(budget.total(), 200u + 100u + 128u + 1u + 64u);

    c = load_with_listener("[limits]\nmax_connections = 10000\nupstream_keepalive_max_idle = 50\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.upstream_keepalive_max_idle, 50u);
    EXPECT_EQ(descriptor_budget(*c).total(), 20000u + 50u + 128u + 1u + 64u);
    c = load_with_listener("[limits]\nupstream_keepalive_max_idle = 0\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(idle_upstream_limit(c->limits), 0u);
    EXPECT_EQ(error_with_listener("[limits]\nupstream_keepalive_max_idle = many\n"),
              ":2: invalid value for \"upstream_keepalive_max_idle\" in [limits]: \"many\" is not "
              "a whole number");
}

// upstream_keepalive_per_destination: auto (the default, issue 18) or a
// fixed count; anything else is refused with its line.
TEST_F(ConfigTest, KeepalivePerDestinationIsAutoOrACount) {
    ConfigPtr c = load_with_listener("");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.upstream_keepalive_per_destination, std::nullopt);
    c = load_with_listener("[limits]\nupstream_keepalive_per_destination = 64\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.upstream_keepalive_per_destination, 64u);
    c = load_with_listener(
        "[limits]\nmax_connections = 10000\nupstream_keepalive_per_destination = auto ; follows "
        "demand\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.upstream_keepalive_per_destination, std::nullopt);
    // The pool's bound as a whole, and so the descriptor budget, is the same.
    EXPECT_EQ(descriptor_budget(*c).idle_upstreams, 1024u);
    for (const char* bad : {"Auto", "-1", "8x", "auto8", "many"}) {
        EXPECT_EQ(error_with_listener(
                      std::string("[limits]\nupstream_keepalive_per_destination = ") + bad + "\n"),
                  std::string(":2: invalid value for \"upstream_keepalive_per_destination\" in "
                              "[limits]: \"") +
                      bad + "\" is not a whole number or auto")
            << bad;
    }
}

TEST_F(ConfigTest, CountKeys) {
    ConfigPtr c = load_with_listener(
        "[master]\nworker_max_sessions = 1000\nmax_draining_generations = 16\n"
        "[limits]\nmax_connections = 5\nmax_headers = 256\n"
        "upstream_keepalive_per_destination = 0\n"
        "shared_table_keys = 16\nshared_table_leases = 4194304\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.shared_table_keys, 16u);
    EXPECT_EQ(c->limits.shared_table_leases, 4194304u);
    EXPECT_EQ(c->master.worker_max_sessions, 1000u);
    EXPECT_EQ(c->master.max_draining_generations, 16);
    EXPECT_EQ(c->limits.max_connections, 5u);
    EXPECT_EQ(c->limits.max_headers, 256u);
    EXPECT_EQ(c->limits.upstream_keepalive_per_destination, 0u);
    EXPECT_EQ(error_with_listener("[master]\nworker_max_sessions = -1\n"),
              ":2: invalid value for \"worker_max_sessions\" in [master]: \"-1\" is not a whole "
              "number");
    EXPECT_EQ(error_with_listener("[master]\nmax_draining_generations = 0\n"),
              ":2: invalid value for \"max_draining_generations\" in [master]: must be a number "
              "from 1 to 16");
    EXPECT_EQ(error_with_listener("[master]\nmax_draining_generations = 17\n"),
              ":2: invalid value for \"max_draining_generations\" in [master]: must be a number "
              "from 1 to 16");
}

TEST_F(ConfigTest, StringKeysAndLogLevel) {
    ConfigPtr c = load_with_listener(
        "[master]\npid_file = /tmp/p.pid\ncontrol_socket = /tmp/p.sock\nuser = nobody\n"
        "group = nogroup\n"
        "[log]\nerror_log = /tmp/error.log\nlevel = debug\naccess_log = /tmp/access.log\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.pid_file, "/tmp/p.pid");
    EXPECT_EQ(c->master.control_socket, "/tmp/p.sock");
    EXPECT_EQ(c->master.user, "nobody");
    EXPECT_EQ(c->master.group, "nogroup");
    EXPECT_EQ(c->log.error_log, "/tmp/error.log");
    EXPECT_EQ(c->log.level, LogLevel::kDebug);
    EXPECT_EQ(c->log.access_log, "/tmp/access.log");
    c = load_with_listener("[log]\naccess_log = off\nlevel = warn\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->log.access_log, "");
    EXPECT_EQ(c->log.level, LogLevel::kWarn);
    EXPECT_EQ(error_with_listener("[log]\nlevel = verbose\n"),
              ":2: invalid value for \"level\" in [log]: \"verbose\" is not a log level (error, "
              "warn, info, debug)");
}

TEST_F(ConfigTest, AccessLogFormat) {
    ConfigPtr c = load_with_listener("[log]\naccess_log = /tmp/access.log\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->log.access_log_format, AccessLogFormat::kCombined);
    c = load_with_listener("[log]\naccess_log_format = json\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->log.access_log_format, AccessLogFormat::kJson);
    c = load_with_listener("[log]\naccess_log_format = combined\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->log.access_log_format, AccessLogFormat::kCombined);
    EXPECT_EQ(error_with_listener("[log]\naccess_log_format = common\n"),
              ":2: invalid value for \"access_log_format\" in [log]: \"common\" is not an "
              "access log format (combined or json)");
}

TEST_F(ConfigTest, InlineCommentsAreStripped) {
    ConfigPtr c = load_with_listener("[master]\nworkers = 3 ; three\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.workers, 3);
}

TEST_F(ConfigTest, WorkersAutoIsCpuCount) {
    ConfigPtr c = load_with_listener("[master]\nworkers = auto\n");
    ASSERT_NE(c, nullptr);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ASSERT_GT(cpus, 0);
    EXPECT_EQ(c->master.workers, static_cast<int>(std::min<long>(cpus, 1024)));
}

TEST_F(ConfigTest, WorkersNumbers) {
    ConfigPtr c = load_with_listener("[master]\nworkers = 1\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.workers, 1);
    c = load_with_listener("[master]\nworkers = 1024\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.workers, 1024);
}

TEST_F(ConfigTest, WorkersAutoIsAnElasticPoolWithBounds) {
    ConfigPtr c =
        load_with_listener("[master]\nworkers = auto\nworkers_min = 2\nworkers_max = 12\n");
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->master.workers_auto);
    EXPECT_EQ(c->master.workers_min, 2);
    EXPECT_EQ(c->master.workers_max, 12);
    EXPECT_EQ(c->master.workers, 2);  // the pool starts at its minimum
    c = load_with_listener("[master]\nworkers = 3\n");
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->master.workers_auto);
    // A minimum above the default maximum raises the maximum with it.
    c = load_with_listener("[master]\nworkers_min = 40\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.workers_max, 40);
}

TEST_F(ConfigTest, WorkerPoolBoundsAreChecked) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 4\nworkers_max = 8\n"),
              ": [master]: \"workers_min\" and \"workers_max\" apply only to \"workers = auto\"");
    EXPECT_EQ(error_with_listener("[master]\nworkers_min = 9\nworkers_max = 8\n"),
              ": [master]: \"workers_min\" (9) is above \"workers_max\" (8)");
    EXPECT_EQ(error_with_listener("[master]\nworkers_max = 0\n"),
              ":2: invalid value for \"workers_max\" in [master]: \"0\" is not a worker count "
              "(1-1024 or auto)");
}

TEST_F(ConfigTest, MaxConnectionsAutoFitsTheDescriptorLimit) {
    ConfigPtr c = load_with_listener("");
    ASSERT_NE(c, nullptr);
    // The hard limit seen on this project's machines: 20000 open files hold
    // (20000 - 128 splice - 1 listener - 64 fixed - 1024 idle) / 2 sessions.
    EXPECT_EQ(max_connections_within(*c, 20000), 9391u);
    // Below three times the idle pool, each session counts three.
    EXPECT_EQ(max_connections_within(*c, 300), 35u);
    EXPECT_EQ(max_connections_within(*c, 100), 0u);
    std::string note;
    ConfigPtr resolved = resolve_max_connections(c, 20000, note);
    EXPECT_EQ(resolved->limits.max_connections, 9391u);
    EXPECT_EQ(note, "");
    EXPECT_LE(descriptor_budget(*resolved).total(), 20000u);
    EXPECT_EQ(resolve_max_connections(c, 1u << 30, note)->limits.max_connections,
              kAutoMaxConnectionsCeiling);
}

TEST_F(ConfigTest, MaxConnectionsAboveTheDescriptorLimitIsLowered) {
    ConfigPtr c = load_with_listener("[limits]\nmax_connections = 30000\n");
    ASSERT_NE(c, nullptr);
    std::string note;
    ConfigPtr resolved = resolve_max_connections(c, 20000, note);
    EXPECT_EQ(resolved->limits.max_connections, 9391u);
    EXPECT_NE(note.find("max_connections = 30000"), std::string::npos) << note;
    EXPECT_NE(note.find("at most 9391"), std::string::npos) << note;
    EXPECT_EQ(c->limits.max_connections, 30000u);  // the loaded one is untouched
    // A number that fits stands, and is the same configuration.
    c = load_with_listener("[limits]\nmax_connections = 500\n");
    EXPECT_EQ(resolve_max_connections(c, 20000, note), c);
    EXPECT_EQ(note, "");
}

TEST_F(ConfigTest, WorkersErrorsNameTheKey) {
    for (const char* bad : {"0", "1025", "lots"}) {
        EXPECT_EQ(error_with_listener(std::string("[master]\nworkers = ") + bad + "\n"),
                  std::string(":2: invalid value for \"workers\" in [master]: \"") + bad +
                      "\" is not a worker count (1-1024 or auto)");
    }
}

TEST_F(ConfigTest, Defaults) {
    ConfigPtr c = load(kListener);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->path, path_);
    ASSERT_EQ(c->acl.allow_clients.size(), 2u);
    EXPECT_EQ(c->acl.allow_clients[0].to_string(), "127.0.0.0/8");
    EXPECT_EQ(c->acl.allow_clients[1].to_string(), "::1/128");
    ASSERT_EQ(c->acl.connect_ports.size(), 1u);
    EXPECT_EQ(c->acl.connect_ports[0].first, 443);
    EXPECT_EQ(c->acl.connect_ports[0].last, 443);
    EXPECT_TRUE(c->acl.deny_private_destinations);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    EXPECT_EQ(c->master.workers, static_cast<int>(std::min<long>(cpus, 1024)));
    EXPECT_EQ(c->master.pid_file, "run/proxyd.pid");
    EXPECT_EQ(c->master.control_socket, "run/proxyd.sock");
    EXPECT_EQ(c->master.heartbeat_interval, Duration(1000));
    EXPECT_EQ(c->master.heartbeat_timeout, Duration(5000));
    EXPECT_EQ(c->master.graceful_timeout, Duration(30000));
    EXPECT_EQ(c->master.max_draining_generations, 3);
    EXPECT_EQ(c->log.error_log, "stderr");
    EXPECT_EQ(c->log.level, LogLevel::kInfo);
    EXPECT_EQ(c->log.access_log, "");
    EXPECT_EQ(c->limits.max_connections, 0u);  // auto: resolved by the master
    EXPECT_TRUE(c->master.workers_auto);
    EXPECT_EQ(c->master.workers, c->master.workers_min);
    EXPECT_EQ(c->master.workers_max, std::max(kDefaultWorkersMax, c->master.workers_min));
    EXPECT_EQ(c->limits.max_header_size, 32u * 1024);
    EXPECT_EQ(c->limits.max_headers, 100u);
    EXPECT_EQ(c->limits.buffer_size, 64u * 1024);
    EXPECT_EQ(c->limits.shared_table_keys, 16384u);
    EXPECT_EQ(c->limits.shared_table_leases, 65536u);
    ASSERT_EQ(c->listeners.size(), 1u);
    EXPECT_EQ(c->listeners[0].name, "main");
    EXPECT_EQ(c->listeners[0].address.host, "127.0.0.1");
    EXPECT_EQ(c->listeners[0].address.port, 0);
    EXPECT_EQ(c->listeners[0].protocol, ListenProtocol::kHttp);
    EXPECT_EQ(c->listeners[0].backlog, 511);
    EXPECT_FALSE(c->listeners[0].tls());
}

// --- lists ----------------------------------------------------------------

TEST_F(ConfigTest, ListReplacesDefaultAndContinues) {
    ConfigPtr c = load_with_listener(
        "[acl]\n"
        "allow_clients = 10.0.0.0/8,\n"
        "    192.168.0.0/16, fd00::/8,\n"
        "    203.0.113.7\n"
        "connect_ports = 443, 8443,\n"
        "  8000-8080\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->acl.allow_clients.size(), 4u);
    EXPECT_EQ(c->acl.allow_clients[0].to_string(), "10.0.0.0/8");
    EXPECT_EQ(c->acl.allow_clients[1].to_string(), "192.168.0.0/16");
    EXPECT_EQ(c->acl.allow_clients[2].to_string(), "fd00::/8");
    EXPECT_EQ(c->acl.allow_clients[3].to_string(), "203.0.113.7/32");
    ASSERT_EQ(c->acl.connect_ports.size(), 3u);
    EXPECT_EQ(c->acl.connect_ports[0].first, 443);
    EXPECT_EQ(c->acl.connect_ports[1].first, 8443);
    EXPECT_EQ(c->acl.connect_ports[2].first, 8000);
    EXPECT_EQ(c->acl.connect_ports[2].last, 8080);
}

TEST_F(ConfigTest, ListTrailingCommaOnLastLine) {
    ConfigPtr c = load_with_listener("[acl]\nconnect_ports = 443, 1-65535,\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->acl.connect_ports.size(), 2u);
    EXPECT_EQ(c->acl.connect_ports[1].first, 1);
    EXPECT_EQ(c->acl.connect_ports[1].last, 65535);
}

TEST_F(ConfigTest, ListEmptyElement) {
    EXPECT_EQ(error_with_listener("[acl]\nallow_clients = 10.0.0.0/8,, 192.168.0.0/16\n"),
              ":2: invalid value for \"allow_clients\" in [acl]: empty element in list");
    EXPECT_EQ(error_with_listener("[acl]\nconnect_ports = , 443\n"),
              ":2: invalid value for \"connect_ports\" in [acl]: empty element in list");
}

TEST_F(ConfigTest, ListErrorOnContinuationNamesThatLine) {
    EXPECT_EQ(error_with_listener("[acl]\nallow_clients = 10.0.0.0/8,\n    10.1.0.0/8\n"),
              ":3: invalid value for \"allow_clients\" in [acl]: \"10.1.0.0/8\" has host bits "
              "set");
}

TEST_F(ConfigTest, CidrErrors) {
    EXPECT_EQ(error_with_listener("[acl]\nallow_clients = 10.1.0.0/8\n"),
              ":2: invalid value for \"allow_clients\" in [acl]: \"10.1.0.0/8\" has host bits set");
    EXPECT_EQ(error_with_listener("[acl]\nallow_clients = 10.0.0.0/33\n"),
              ":2: invalid value for \"allow_clients\" in [acl]: bad prefix length in "
              "\"10.0.0.0/33\"");
    EXPECT_EQ(error_with_listener("[acl]\nallow_clients = localhost\n"),
              ":2: invalid value for \"allow_clients\" in [acl]: \"localhost\" is not an IP "
              "address or CIDR range");
}

TEST_F(ConfigTest, PortRanges) {
    ConfigPtr c = load_with_listener("[acl]\nconnect_ports = 1-65535\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->acl.connect_ports.size(), 1u);
    EXPECT_EQ(c->acl.connect_ports[0].first, 1);
    EXPECT_EQ(c->acl.connect_ports[0].last, 65535);
    for (const char* bad : {"0", "70000", "9-3"}) {
        EXPECT_EQ(error_with_listener(std::string("[acl]\nconnect_ports = ") + bad + "\n"),
                  std::string(":2: invalid value for \"connect_ports\" in [acl]: \"") + bad +
                      "\" is not a port or port range (1-65535)");
    }
}

// --- resolver -------------------------------------------------------------

TEST_F(ConfigTest, NameserversDefaultToResolvConf) {
    ConfigPtr c = load(kListener);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->resolver.nameservers.empty());
}

TEST_F(ConfigTest, NameserversInOrderWithContinuation) {
    ConfigPtr c = load_with_listener(
        "[resolver]\n"
        "nameservers = 127.0.0.1:5353, [::1]:5353,\n"
        "    192.0.2.53\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->resolver.nameservers.size(), 3u);
    EXPECT_EQ(c->resolver.nameservers[0].to_string(), "127.0.0.1:5353");
    EXPECT_EQ(c->resolver.nameservers[1].to_string(), "[::1]:5353");
    EXPECT_EQ(c->resolver.nameservers[2].to_string(), "192.0.2.53:53");  // bare: port 53
}

TEST_F(ConfigTest, NameserverErrorsNameTheLineAndEntry) {
    EXPECT_EQ(error_with_listener("[resolver]\nnameservers = localhost:53\n"),
              ":2: invalid value for \"nameservers\" in [resolver]: \"localhost:53\": a "
              "nameserver must be a numeric IP address (e.g. 127.0.0.1:53 or [::1]:53)");
    EXPECT_EQ(error_with_listener("[resolver]\nnameservers = 127.0.0.1:5353,\n  ::1:5353\n"),
              ":3: invalid value for \"nameservers\" in [resolver]: \"::1:5353\": an IPv6 "
              "address needs brackets: [addr]:port");
    EXPECT_EQ(error_with_listener("[resolver]\nnameservers = 127.0.0.1:0\n"),
              ":2: invalid value for \"nameservers\" in [resolver]: \"127.0.0.1:0\": port must "
              "be a number from 1 to 65535");
    EXPECT_EQ(error_with_listener("[resolver]\nnameservers = 127.0.0.1:53,, 10.0.0.1:53\n"),
              ":2: invalid value for \"nameservers\" in [resolver]: empty element in list");
    EXPECT_EQ(error_with_listener("[resolver]\nnameserver = 127.0.0.1:53\n"),
              ":2: unknown key \"nameserver\" in [resolver]");
}

TEST_F(ConfigTest, NameserversAtMostEight) {
    std::string nine;
    for (int i = 1; i <= 9; ++i) nine += "127.0.0." + std::to_string(i) + ":53, ";
    EXPECT_EQ(error_with_listener("[resolver]\nnameservers = " + nine + "\n"),
              ": [resolver]: \"nameservers\" lists more than 8 servers");
    ConfigPtr eight = load_with_listener(
        "[resolver]\nnameservers = " + nine.substr(0, nine.rfind("127.")) + "\n");
    ASSERT_NE(eight, nullptr);
    EXPECT_EQ(eight->resolver.nameservers.size(), 8u);
}

// --- listeners ------------------------------------------------------------

TEST_F(ConfigTest, ListenAddresses) {
    ConfigPtr c = load(
        "[listen v4]\naddress = 127.0.0.1:0\nbacklog = 16\nprotocol = http\n"
        "[listen v6]\naddress = [::1]:3128\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->listeners.size(), 2u);
    EXPECT_EQ(c->listeners[0].name, "v4");
    EXPECT_EQ(c->listeners[0].address.host, "127.0.0.1");
    EXPECT_EQ(c->listeners[0].address.port, 0);
    EXPECT_EQ(c->listeners[0].backlog, 16);
    EXPECT_EQ(c->listeners[1].name, "v6");
    EXPECT_EQ(c->listeners[1].address.host, "::1");
    EXPECT_EQ(c->listeners[1].address.port, 3128);
}

TEST_F(ConfigTest, ListenAddressMustBeNumeric) {
    EXPECT_EQ(error_for("[listen main]\naddress = localhost:3128\n"),
              ":2: invalid value for \"address\" in [listen main]: host must be a numeric IP "
              "address (e.g. 127.0.0.1:3128 or [::1]:3128)");
}

TEST_F(ConfigTest, ListenAddressErrors) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1\n"),
              ":2: invalid value for \"address\" in [listen main]: expected host:port");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:70000\n"),
              ":2: invalid value for \"address\" in [listen main]: port must be a number from 1 "
              "to 65535");
    EXPECT_EQ(error_for("[listen main]\naddress = ::1:3128\n"),
              ":2: invalid value for \"address\" in [listen main]: an IPv6 address needs "
              "brackets: [addr]:port");
}

TEST_F(ConfigTest, ListenOtherKeyErrors) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nprotocol = gopher\n"),
              ":3: invalid value for \"protocol\" in [listen main]: \"gopher\" is not a protocol "
              "(http or socks5)");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nbacklog = 0\n"),
              ":3: invalid value for \"backlog\" in [listen main]: must be a number from 1 to "
              "65535");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nbacklog = 65536\n"),
              ":3: invalid value for \"backlog\" in [listen main]: must be a number from 1 to "
              "65535");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\ncolour = blue\n"),
              ":3: unknown key \"colour\" in [listen main]");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\naddress = 127.0.0.1:1\n"),
              ":3: duplicate key \"address\" in [listen main]");
}

TEST_F(ConfigTest, ListenWithoutName) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 1\n[listen]\naddress = 127.0.0.1:1\n"),
              ":3: [listen] needs a name: [listen NAME]");
    EXPECT_EQ(error_with_listener("[listen ]\n"), ":1: [listen] needs a name: [listen NAME]");
}

TEST_F(ConfigTest, NoListener) {
    EXPECT_EQ(error_for("[master]\nworkers = 1\n"), ": no [listen NAME] section: nothing to serve");
    EXPECT_EQ(error_for(""), ": no [listen NAME] section: nothing to serve");
}

TEST_F(ConfigTest, ListenerNeedsAddress) {
    EXPECT_EQ(error_for("[listen main]\nbacklog = 5\n"),
              ": [listen main]: \"address\" is required");
}

TEST_F(ConfigTest, EmptyListenSectionIsAnError) {
    EXPECT_EQ(error_for("[listen a]\naddress = 127.0.0.1:0\n[listen b]\n"),
              ": [listen b]: \"address\" is required");
}

TEST_F(ConfigTest, DuplicateListenerAddress) {
    EXPECT_EQ(error_for("[listen a]\naddress = 127.0.0.1:3128\n"
                        "[listen b]\naddress = 127.0.0.1:3128\n"),
              ": [listen b]: address 127.0.0.1:3128 is used by another listener");
    // Port 0 picks a fresh ephemeral port each time: not a conflict.
    EXPECT_NE(load("[listen a]\naddress = 127.0.0.1:0\n[listen b]\naddress = 127.0.0.1:0\n"),
              nullptr);
}

TEST_F(ConfigTest, DuplicateListenerAddressSpelledDifferently) {
    EXPECT_EQ(error_for("[listen a]\naddress = [::1]:3128\n[listen b]\naddress = [0:0::1]:3128\n"),
              ": [listen b]: address [::1]:3128 is used by another listener");
}

TEST_F(ConfigTest, ProxyProtocolIsOffByDefault) {
    ConfigPtr c = load("[listen main]\naddress = 127.0.0.1:0\n");
    ASSERT_NE(c, nullptr);
    EXPECT_FALSE(c->listeners[0].proxy_protocol);
    EXPECT_TRUE(c->listeners[0].proxy_protocol_from.empty());
}

TEST_F(ConfigTest, ProxyProtocolFromDefaultsToLoopbackV4) {
    ConfigPtr c = load("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = yes\n");
    ASSERT_NE(c, nullptr);
    const ListenConfig& l = c->listeners[0];
    EXPECT_TRUE(l.proxy_protocol);
    ASSERT_EQ(l.proxy_protocol_from.size(), 1u);
    EXPECT_EQ(l.proxy_protocol_from[0].to_string(), "127.0.0.1/32");
}

TEST_F(ConfigTest, ProxyProtocolFromList) {
    ConfigPtr c = load(
        "[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = on\n"
        "proxy_protocol_from = 10.0.0.0/8, ::1, 192.0.2.7\n");
    ASSERT_NE(c, nullptr);
    const ListenConfig& l = c->listeners[0];
    ASSERT_EQ(l.proxy_protocol_from.size(), 3u);
    EXPECT_EQ(l.proxy_protocol_from[0].to_string(), "10.0.0.0/8");
    EXPECT_EQ(l.proxy_protocol_from[1].to_string(), "::1/128");
    EXPECT_EQ(l.proxy_protocol_from[2].to_string(), "192.0.2.7/32");
}

TEST_F(ConfigTest, ProxyProtocolErrors) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = v2\n"),
              ":3: invalid value for \"proxy_protocol\" in [listen main]: \"v2\" is not a "
              "boolean (yes or no)");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = yes\n"
                        "proxy_protocol_from = 10.1.0.0/8\n"),
              ":4: invalid value for \"proxy_protocol_from\" in [listen main]: \"10.1.0.0/8\" "
              "has host bits set");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = yes\n"
                        "proxy_protocol_from = balancer.local\n"),
              ":4: invalid value for \"proxy_protocol_from\" in [listen main]: "
              "\"balancer.local\" is not an IP address or CIDR range");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = yes\n"
                        "proxy_protocol_from =\n"),
              ":4: invalid value for \"proxy_protocol_from\" in [listen main]: needs at least "
              "one address or CIDR (e.g. 127.0.0.1, 10.0.0.0/8, ::1)");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = yes\n"
                        "proxy_protocol = no\n"),
              ":4: duplicate key \"proxy_protocol\" in [listen main]");
}

TEST_F(ConfigTest, ProxyProtocolFromNeedsProxyProtocol) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol_from = ::1\n"),
              ": [listen main]: \"proxy_protocol_from\" needs \"proxy_protocol = yes\"");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nproxy_protocol = no\n"
                        "proxy_protocol_from = ::1\n"),
              ": [listen main]: \"proxy_protocol_from\" needs \"proxy_protocol = yes\"");
}

TEST_F(ConfigTest, TlsCertificateWithoutKey) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\ntls_certificate = /x.crt\n"),
              ": [listen main]: \"tls_certificate\" and \"tls_key\" must be set together");
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\ntls_key = /x.key\n"),
              ": [listen main]: \"tls_certificate\" and \"tls_key\" must be set together");
}

// TLS contexts are made at load time: unreadable files refuse the file.
TEST_F(ConfigTest, TlsListenerWithMissingCertificate) {
    std::string cert = dir_ + "/missing.crt";
    std::string error =
        error_for("[listen main]\naddress = 127.0.0.1:0\ntls_certificate = " + cert +
                  "\ntls_key = " + dir_ + "/missing.key\n");
    EXPECT_EQ(error.rfind(": [listen main]: cannot load certificate \"" + cert + "\"", 0), 0u)
        << error;
}

TEST_F(ConfigTest, Socks5Listener) {
    ConfigPtr c = load("[listen socks]\naddress = 127.0.0.1:1080\nprotocol = socks5\n");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->listeners.size(), 1u);
    EXPECT_EQ(c->listeners[0].protocol, ListenProtocol::kSocks5);
    EXPECT_EQ(c->listeners[0].address.port, 1080);
}

// --- structure errors -----------------------------------------------------

TEST_F(ConfigTest, UnknownKeyNamesLineAndKey) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 2\nbogus = 1\n"),
              ":3: unknown key \"bogus\" in [master]");
    EXPECT_EQ(error_with_listener("# comment\n[limits]\nmax_conections = 5\n"),
              ":3: unknown key \"max_conections\" in [limits]");
}

TEST_F(ConfigTest, UnknownSectionNamesLine) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 2\n[bogus]\nkey = 1\n"),
              ":3: unknown section [bogus]");
    // A section with no keys under it is never seen by inih's handler.
    EXPECT_EQ(error_with_listener("[master]\nworkers = 2\n\n[empty]\n"),
              ":4: unknown section [empty]");
}

TEST_F(ConfigTest, KeyOutsideSection) {
    std::string error = error_with_listener("workers = 2\n");
    EXPECT_EQ(error.rfind(":1: ", 0), 0u) << error;
}

TEST_F(ConfigTest, DuplicateScalarKey) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 2\nworkers = 3\n"),
              ":3: duplicate key \"workers\" in [master] (or a continuation line for a "
              "single-valued key)");
    // Also across two headers of the same section.
    EXPECT_EQ(error_with_listener("[log]\nlevel = info\n[master]\nworkers = 1\n[log]\nlevel = "
                                  "debug\n"),
              ":6: duplicate key \"level\" in [log] (or a continuation line for a single-valued "
              "key)");
}

TEST_F(ConfigTest, ContinuationOfScalarKey) {
    EXPECT_EQ(error_with_listener("[master]\npid_file = /a\n    /b\n"),
              ":3: duplicate key \"pid_file\" in [master] (or a continuation line for a "
              "single-valued key)");
}

TEST_F(ConfigTest, LongLineNamesLine) {
    std::string long_line = "# " + std::string(198, 'x');  // 200 bytes
    EXPECT_EQ(error_with_listener("[master]\n" + long_line + "\n"),
              ":2: line longer than 198 bytes");
}

TEST_F(ConfigTest, LineOf198BytesIsAccepted) {
    std::string value = "/" + std::string(198 - 11 - 1, 'p');
    std::string line = "pid_file = " + value;
    ASSERT_EQ(line.size(), 198u);
    ConfigPtr c = load_with_listener("[master]\n" + line + "\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.pid_file, value);
}

// inih counts the newline after a 199-byte line as a line of its own, so
// such a line is refused rather than letting later line numbers drift.
TEST_F(ConfigTest, LineOf199BytesIsRefusedAndLongestLineKeepsLineNumbers) {
    std::string comment199 = "#" + std::string(198, 'c');
    EXPECT_EQ(error_with_listener(comment199 + "\n[master]\nbogus = 1\n"),
              ":1: line longer than 198 bytes");
    std::string comment198 = "#" + std::string(197, 'c');
    EXPECT_EQ(error_with_listener(comment198 + "\n[master]\nbogus = 1\n"),
              ":3: unknown key \"bogus\" in [master]");
}

TEST_F(ConfigTest, SyntaxErrorNamesLine) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 2\nthis is not ini\n"),
              ":3: syntax error (expected \"[section]\" or \"key = value\")");
    EXPECT_EQ(error_with_listener("[master\nworkers = 2\n"),
              ":1: syntax error (expected \"[section]\" or \"key = value\")");
}

TEST_F(ConfigTest, FirstErrorWins) {
    EXPECT_EQ(error_with_listener("[master]\nworkers = 0\nbogus = 1\n"),
              ":2: invalid value for \"workers\" in [master]: \"0\" is not a worker count "
              "(1-1024 or auto)");
}

TEST_F(ConfigTest, MissingFileNamesFile) {
    std::string path = dir_ + "/does-not-exist.conf";
    std::string error;
    EXPECT_EQ(load_config(path, error), nullptr);
    EXPECT_EQ(error, path + ": cannot open configuration file: No such file or directory");
}

// --- relations between keys -----------------------------------------------

TEST_F(ConfigTest, HeartbeatTimeoutMoreThanTwiceInterval) {
    const std::string message =
        ": [master]: \"heartbeat_timeout\" must be more than twice \"heartbeat_interval\"";
    EXPECT_EQ(error_with_listener("[master]\nheartbeat_interval = 1s\nheartbeat_timeout = 2s\n"),
              message);
    EXPECT_EQ(error_with_listener("[master]\nheartbeat_interval = 3s\n"), message);  // default 5s
    ConfigPtr c =
        load_with_listener("[master]\nheartbeat_interval = 1s\nheartbeat_timeout = 2001ms\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.heartbeat_timeout, Duration(2001));
    EXPECT_EQ(error_with_listener("[master]\nheartbeat_interval = 0\n"),
              ": [master]: \"heartbeat_interval\" must be greater than 0");
}

TEST_F(ConfigTest, LimitRanges) {
    EXPECT_EQ(error_with_listener("[limits]\nmax_header_size = 1023\n"),
              ": [limits]: \"max_header_size\" must be from 1k to 1M");
    EXPECT_EQ(error_with_listener("[limits]\nmax_header_size = 1025k\n"),
              ": [limits]: \"max_header_size\" must be from 1k to 1M");
    EXPECT_EQ(error_with_listener("[limits]\nmax_headers = 0\n"),
              ": [limits]: \"max_headers\" must be from 1 to 256");
    EXPECT_EQ(error_with_listener("[limits]\nmax_headers = 257\n"),
              ": [limits]: \"max_headers\" must be from 1 to 256");
    EXPECT_EQ(error_with_listener("[limits]\nshared_table_keys = 15\n"),
              ": [limits]: \"shared_table_keys\" must be from 16 to 1048576");
    EXPECT_EQ(error_with_listener("[limits]\nshared_table_keys = 1048577\n"),
              ": [limits]: \"shared_table_keys\" must be from 16 to 1048576");
    EXPECT_EQ(error_with_listener("[limits]\nshared_table_leases = 4194305\n"),
              ": [limits]: \"shared_table_leases\" must be from 16 to 4194304");
    EXPECT_EQ(error_with_listener("[limits]\nbuffer_size = 4095\n"),
              ": [limits]: \"buffer_size\" must be from 4k to 64M");
    EXPECT_EQ(error_with_listener("[limits]\nbuffer_size = 65537k\n"),
              ": [limits]: \"buffer_size\" must be from 4k to 64M");
    EXPECT_EQ(error_with_listener("[limits]\nmax_connections = 0\n"),
              ":2: invalid value for \"max_connections\" in [limits]: \"0\" is not a "
              "connection count (at least 1, or auto)");
    for (const char* key :
         {"connect_timeout", "header_timeout", "idle_timeout", "tunnel_idle_timeout",
          "upstream_timeout", "upstream_keepalive_timeout", "dns_timeout"}) {
        EXPECT_EQ(error_with_listener(std::string("[limits]\n") + key + " = 0ms\n"),
                  ": [limits]: timeouts must be greater than 0")
            << key;
    }
    ConfigPtr c =
        load_with_listener("[limits]\nmax_header_size = 1k\nmax_headers = 1\nbuffer_size = 4k\n");
    ASSERT_NE(c, nullptr);
    c = load_with_listener("[limits]\nmax_header_size = 1M\nbuffer_size = 64M\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->limits.max_header_size, 1u << 20);
    EXPECT_EQ(c->limits.buffer_size, 64u << 20);
}

TEST_F(ConfigTest, CrlfLineEndings) {
    ConfigPtr c = load("[master]\r\nworkers = 2\r\n[listen main]\r\naddress = 127.0.0.1:0\r\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->master.workers, 2);
    EXPECT_EQ(c->listeners[0].address.host, "127.0.0.1");
}

// --- accounts: [proxy], [auth], [user NAME], listen auth ------------------

// Real hashes (`htpasswd -nbB -C 4 alice secret`, `mkpasswd -m sha512crypt
// hunter2`): test data, not secrets.
constexpr const char* kUsers =
    "alice:$2y$04$rxlxlYgfPllmY1UMf.B94./kLTIMKyryhFPINttAdHkEZPonZd5zW\n"
    "bob:$6$pLwPxCPKLRzFBDl7$4OPyuCHmEpoluP8/Hh45aokt1qrt8BH5gKtAXDS3zu/"
    "lhni.sDpPqCKPVncM5KB3RdZ9oMCeW3sbWBEVNZITh/\n";

TEST_F(ConfigTest, AccountsDefaults) {
    ConfigPtr c = load_with_listener("");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->proxy.name, "proxyd");
    EXPECT_EQ(c->auth.realm, "proxyd");
    EXPECT_EQ(c->auth.users_file, "");
    EXPECT_TRUE(c->auth.users.empty());
    EXPECT_EQ(c->listeners[0].auth, ListenAuth::kNone);
}

TEST_F(ConfigTest, UsersFileLimitsAndPasswordListener) {
    std::string users = write(kUsers, "users");
    ConfigPtr c = load("[proxy]\nname = edge-1\n[auth]\nusers_file = " + users +
                       "\nrealm = Team proxy\nmax_sessions_per_user = 7\n[user bob]\n"
                       "max_sessions = 2\n[listen main]\naddress = 127.0.0.1:0\nauth = password\n");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->proxy.name, "edge-1");
    EXPECT_EQ(c->auth.realm, "Team proxy");
    EXPECT_EQ(c->listeners[0].auth, ListenAuth::kPassword);
    ASSERT_EQ(c->auth.users.size(), 2u);
    EXPECT_EQ(c->auth.users.at("alice").max_sessions, 7u);  // the default
    EXPECT_EQ(c->auth.users.at("bob").max_sessions, 2u);    // its own
    EXPECT_EQ(c->auth.users.at("alice").hash.rfind("$2y$04$", 0), 0u);
}

TEST_F(ConfigTest, AccountsErrors) {
    EXPECT_EQ(error_for("[listen main]\naddress = 127.0.0.1:0\nauth = password\n"),
              ": [listen main]: \"auth = password\" needs a users file ([auth] users_file)");
    EXPECT_EQ(error_with_listener("[listen x]\naddress = 127.0.0.1:1\nauth = basic\n"),
              ":3: invalid value for \"auth\" in [listen x]: \"basic\" is not an authentication "
              "(none or password)");
    EXPECT_EQ(error_with_listener("[proxy]\nname = my proxy\n"),
              ":2: invalid value for \"name\" in [proxy]: \"my proxy\" is not a name (1-64 "
              "letters, digits or !#$%&'*+-.^_`|~, no spaces)");
    EXPECT_NE(error_with_listener("[auth]\nrealm = say \"hi\"\n")
                  .find(":2: invalid value for "
                        "\"realm\" in [auth]"),
              std::string::npos);
    EXPECT_EQ(error_with_listener("[user bob]\nmax_sessions = 2\n"),
              ": [user bob]: there is no users file ([auth] users_file)");
    EXPECT_EQ(error_with_listener("[user bob]\nlimit = 2\n"),
              ":2: unknown key \"limit\" in [user bob]");
    EXPECT_EQ(error_with_listener("[user]\nmax_sessions = 2\n"),
              ":1: [user] needs a name: [user NAME]");
    std::string users = write(kUsers, "users");
    EXPECT_EQ(
        error_with_listener("[auth]\nusers_file = " + users + "\n[user carol]\nmax_sessions = 1\n"),
        ": [user carol]: no user \"carol\" in " + users);
}

// The users file's own errors name that file and its line, not ours.
TEST_F(ConfigTest, UsersFileErrorNamesItsFileAndLine) {
    std::string users = write(std::string(kUsers) + "carol:$apr1$abc$def\n", "users");
    path_ = write("[auth]\nusers_file = " + users + "\n" + kListener);
    std::string error;
    EXPECT_EQ(load_config(path_, error), nullptr);
    EXPECT_EQ(error.rfind(users + ":3: ", 0), 0u) << error;
    EXPECT_NE(error.find("unsupported"), std::string::npos) << error;

    std::string missing = dir_ + "/no-such-users";
    path_ = write("[auth]\nusers_file = " + missing + "\n" + kListener);
    EXPECT_EQ(load_config(path_, error), nullptr);
    EXPECT_EQ(error.rfind(missing + ":", 0), 0u) << error;
}

TEST(ConfigShipped, DefaultConfLoads) {
    std::string error;
    ConfigPtr c = load_config("conf/proxyd.conf", error);
    ASSERT_NE(c, nullptr) << error;
    ASSERT_EQ(c->listeners.size(), 1u);
    EXPECT_EQ(c->listeners[0].name, "main");
    EXPECT_EQ(c->listeners[0].address.host, "127.0.0.1");
    EXPECT_EQ(c->listeners[0].address.port, 3128);
    ASSERT_EQ(c->acl.allow_clients.size(), 2u);
    EXPECT_EQ(c->acl.allow_clients[0].to_string(), "127.0.0.0/8");
    EXPECT_EQ(c->acl.allow_clients[1].to_string(), "::1/128");
    ASSERT_EQ(c->acl.connect_ports.size(), 1u);
    EXPECT_EQ(c->acl.connect_ports[0].first, 443);
    EXPECT_TRUE(c->acl.deny_private_destinations);
    EXPECT_EQ(c->log.access_log, "");
    EXPECT_TRUE(c->resolver.nameservers.empty());
}

// --- [metrics] --------------------------------------------------------------

class MetricsConfigTest : public ConfigTest {};

TEST_F(MetricsConfigTest, OffByDefaultOrAnAddress) {
    EXPECT_FALSE(load_with_listener("")->metrics.listen);
    EXPECT_FALSE(load_with_listener("[metrics]\nlisten = off\n")->metrics.listen);
    ConfigPtr c = load_with_listener("[metrics]\nlisten = 127.0.0.1:9145\n");
    ASSERT_TRUE(c && c->metrics.listen);
    EXPECT_EQ(c->metrics.listen->host, "127.0.0.1");
    EXPECT_EQ(c->metrics.listen->port, 9145);
    c = load_with_listener("[metrics]\nlisten = [::1]:0\n");
    ASSERT_TRUE(c && c->metrics.listen);
    EXPECT_EQ(c->metrics.listen->host, "::1");
}

TEST_F(MetricsConfigTest, ErrorsNameFileAndLine) {
    EXPECT_EQ(error_with_listener("[metrics]\nlisten = localhost:9145\n"),
              ":2: invalid value for \"listen\" in [metrics]: \"localhost:9145\" is not off or "
              "a numeric address and port (e.g. 127.0.0.1:9145 or [::1]:9145)");
    EXPECT_NE(error_with_listener("[metrics]\nlisten = 127.0.0.1\n").find(":2: invalid value"),
              std::string::npos);
    EXPECT_NE(error_with_listener("[metrics]\nlisten = 127.0.0.1:70000\n").find(":2: invalid"),
              std::string::npos);
    EXPECT_NE(error_with_listener("[metrics]\nport = 1\n").find(":2: unknown key"),
              std::string::npos);
}

TEST_F(MetricsConfigTest, MayNotTakeAListenersAddress) {
    const std::string listener = "[listen main]\naddress = 127.0.0.1:3128\n";
    EXPECT_EQ(error_for(listener + "[metrics]\nlisten = 127.0.0.1:3128\n"),
              ": [metrics]: \"listen\" 127.0.0.1:3128 is the address of [listen main]");
    EXPECT_NE(error_for(listener + "[metrics]\nlisten = 0.0.0.0:3128\n").find("[listen main]"),
              std::string::npos);
    EXPECT_TRUE(load(listener + "[metrics]\nlisten = 127.0.0.1:3129\n"));
}

// [cluster]: off by default, a numeric host:port, local | deny, a token node
// name that defaults to the host name.
TEST_F(ConfigTest, ClusterSection) {
    ConfigPtr defaults = load_with_listener("");
    ASSERT_TRUE(defaults);
    EXPECT_FALSE(defaults->cluster.redis);
    EXPECT_EQ(defaults->cluster.on_redis_down, OnRedisDown::kLocal);
    EXPECT_FALSE(defaults->cluster.node.empty());

    ConfigPtr set = load_with_listener(
        "[cluster]\nredis = 127.0.0.1:6379\non_redis_down = deny\nnode = web-1\n");
    ASSERT_TRUE(set);
    ASSERT_TRUE(set->cluster.redis);
    EXPECT_EQ(set->cluster.redis->to_string(), "127.0.0.1:6379");
    EXPECT_EQ(set->cluster.on_redis_down, OnRedisDown::kDeny);
    EXPECT_EQ(set->cluster.node, "web-1");

    ConfigPtr off = load_with_listener("[cluster]\nredis = off\n");
    ASSERT_TRUE(off);
    EXPECT_FALSE(off->cluster.redis);

    EXPECT_NE(error_with_listener("[cluster]\nredis = redis.example:6379\n").find("numeric"),
              std::string::npos);
    EXPECT_NE(error_with_listener("[cluster]\non_redis_down = maybe\n").find("local or deny"),
              std::string::npos);
    EXPECT_NE(error_with_listener("[cluster]\nnode = two words\n").find("not a name"),
              std::string::npos);
}

}  // namespace
}  // namespace common
