// Unit tests for worker/access_log: the combined and json formats (fields
// in order, "-" or null for empty, escaping that stops log injection and
// keeps every line parseable) and the buffered file with flush and
// reopen-after-rotation.
#include "worker/access_log.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>

namespace worker {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// [01/Dec/2026:23:15:25 +0000]
const std::regex kClfTime(R"( \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] )");

AccessRecord sample() {
    AccessRecord r;
    r.time = std::chrono::system_clock::now();
    r.client = "127.0.0.1:50122";
    r.user = "";
    r.listener = "main";
    r.method = "GET";
    r.target = "http://example.com/";
    r.version_minor = 1;
    r.status = 200;
    r.bytes_from_client = 78;
    r.bytes_to_client = 1590;
    r.duration = 12345us;
    r.upstream = "93.184.216.34:80";
    r.route = "a@192.0.2.7";
    r.referer = "http://example.com/start";
    r.user_agent = "curl/8.5.0";
    r.pid = 4242;
    return r;
}

// The line with its timestamp replaced by [T] (after checking its shape).
std::string without_time(const std::string& line) {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(line, m, kClfTime)) << line;
    return m.empty() ? line : std::regex_replace(line, kClfTime, " [T] ");
}

TEST(AccessLogFormatCombined, FieldsInOrder) {
    std::string line = format_combined(sample());
    EXPECT_EQ(without_time(line),
              "127.0.0.1 - - [T] \"GET http://example.com/ HTTP/1.1\" 200 1590 "
              "\"http://example.com/start\" \"curl/8.5.0\"");
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(AccessLogFormatCombined, TimeIsLocalWithEnglishMonthAndOffset) {
    AccessRecord r = sample();
    // 2026-12-01 23:15:25 UTC.
    r.time = std::chrono::system_clock::from_time_t(1796166925);
    setenv("TZ", "UTC", 1);
    tzset();
    EXPECT_NE(format_combined(r).find(" [01/Dec/2026:23:15:25 +0000] "), std::string::npos)
        << format_combined(r);
    setenv("TZ", "XST-5:30", 1);  // POSIX form: no tzdata needed
    tzset();
    EXPECT_NE(format_combined(r).find(" [02/Dec/2026:04:45:25 +0530] "), std::string::npos)
        << format_combined(r);
    unsetenv("TZ");
    tzset();
}

TEST(AccessLogFormatCombined, DashForEmptyFieldsAndUnreadRequest) {
    AccessRecord r;
    r.method = "-";
    r.version_minor = 0;
    r.status = 400;
    EXPECT_EQ(without_time(format_combined(r)), "- - - [T] \"-\" 400 0 \"-\" \"-\"");
}

TEST(AccessLogFormatCombined, ClientWithoutPort) {
    EXPECT_EQ(client_address("127.0.0.1:50122"), "127.0.0.1");
    EXPECT_EQ(client_address("[::1]:50122"), "::1");
    EXPECT_EQ(client_address("[2001:db8::7]:1"), "2001:db8::7");
    EXPECT_EQ(client_address("2001:db8::7"), "2001:db8::7");
    EXPECT_EQ(client_address("127.0.0.1"), "127.0.0.1");
    AccessRecord r = sample();
    r.client = "[::1]:4000";
    EXPECT_EQ(format_combined(r).rfind("::1 - - [", 0), 0u) << format_combined(r);
}

TEST(AccessLogFormatCombined, TunnelAndSocksRequestLines) {
    AccessRecord r = sample();
    r.user = "alice";
    r.method = "CONNECT";
    r.target = "example.com:443";
    r.referer = "";
    r.user_agent = "";
    EXPECT_EQ(without_time(format_combined(r)),
              "127.0.0.1 - alice [T] \"CONNECT example.com:443 HTTP/1.1\" 200 1590 \"-\" \"-\"");
    r.method = "SOCKS5";
    r.version_minor = -1;
    EXPECT_EQ(without_time(format_combined(r)),
              "127.0.0.1 - alice [T] \"CONNECT example.com:443 SOCKS5\" 200 1590 \"-\" \"-\"");
    r.method = "SOCKS4";
    EXPECT_NE(format_combined(r).find("\"CONNECT example.com:443 SOCKS4\""), std::string::npos);
}

TEST(AccessLogFormatCombined, CutShortRequestLineKeepsWhatArrived) {
    AccessRecord r = sample();
    r.status = 414;
    r.target = "http://example.com/aaaa";
    r.version_minor = -2;  // the line ended before its version
    EXPECT_NE(format_combined(r).find("\"GET http://example.com/aaaa\" 414 "), std::string::npos)
        << format_combined(r);
}

// Quotes, backslashes, control bytes and bytes from 0x7f up (UTF-8
// included) become \xHH, as nginx writes them: no field or line can be
// ended by a client, and the line is printable ASCII.
TEST(AccessLogFormatCombined, EscapesQuotesBackslashesControlAndHighBytes) {
    AccessRecord r = sample();
    const std::string target = "http://x/\r\n1.2.3.4 - - [x] \"GET / HTTP/1.1\" 200";
    r.target = target;
    const std::string user = std::string("a\tb\x7f\x01\"\\", 7);
    r.user = user;
    const std::string method = std::string("G\0T", 3);
    r.method = method;
    r.user_agent = "Mozilla/5.0 \"quoted\" back\\slash caf\xc3\xa9 \x1b[31m";
    r.referer = "\"";
    std::string line = format_combined(r);
    EXPECT_EQ(without_time(line),
              "127.0.0.1 - a\\x09b\\x7F\\x01\\x22\\x5C [T] \"G\\x00T "
              "http://x/\\x0D\\x0A1.2.3.4 - - [x] \\x22GET / HTTP/1.1\\x22 200 HTTP/1.1\" 200 1590 "
              "\"\\x22\" \"Mozilla/5.0 \\x22quoted\\x22 back\\x5Cslash caf\\xC3\\xA9 \\x1B[31m\"");
    for (char c : line) {
        EXPECT_GE(static_cast<unsigned char>(c), 0x20) << line;
        EXPECT_LT(static_cast<unsigned char>(c), 0x7f) << line;
    }
    // Exactly the six quotes of the three quoted fields.
    EXPECT_EQ(std::count(line.begin(), line.end(), '"'), 6) << line;
}

TEST(AccessLogFormatJson, EveryField) {
    json j = json::parse(format_json(sample()));
    EXPECT_TRUE(
        std::regex_match(j["time"].get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d)")))
        << j["time"];
    EXPECT_EQ(j["client"], "127.0.0.1");
    EXPECT_EQ(j["client_port"], 50122);
    EXPECT_TRUE(j["user"].is_null());
    EXPECT_EQ(j["listener"], "main");
    EXPECT_EQ(j["method"], "GET");
    EXPECT_EQ(j["target"], "http://example.com/");
    EXPECT_EQ(j["protocol"], "HTTP/1.1");
    EXPECT_EQ(j["status"], 200);
    EXPECT_EQ(j["bytes_from_client"], 78);
    EXPECT_EQ(j["bytes_to_client"], 1590);
    EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 0.012345);
    EXPECT_EQ(j["upstream"], "93.184.216.34:80");
    EXPECT_EQ(j["route"], "a@192.0.2.7");
    EXPECT_TRUE(j["refusal"].is_null());
    EXPECT_TRUE(j["reason"].is_null());
    EXPECT_EQ(j["referer"], "http://example.com/start");
    EXPECT_EQ(j["user_agent"], "curl/8.5.0");
    EXPECT_EQ(j["pid"], 4242);
    EXPECT_EQ(format_json(sample()).find('\n'), std::string::npos);
}

TEST(AccessLogFormatJson, RefusalAndSocks) {
    AccessRecord r = sample();
    r.method = "SOCKS5";
    r.version_minor = -1;
    r.target = "example.com:443";
    r.status = 403;
    r.upstream = "";
    r.route = "";
    r.refusal = "port_denied";
    r.reason = "port 25 is not in connect_ports";
    json j = json::parse(format_json(r));
    EXPECT_EQ(j["method"], "CONNECT");
    EXPECT_EQ(j["protocol"], "SOCKS5");
    EXPECT_EQ(j["target"], "example.com:443");
    EXPECT_TRUE(j["upstream"].is_null());
    EXPECT_TRUE(j["route"].is_null());
    EXPECT_EQ(j["refusal"], "port_denied");
    EXPECT_EQ(j["reason"], "port 25 is not in connect_ports");
}

// Whatever the bytes, the line parses and gives them back: JSON escapes
// for quotes, backslashes and control bytes, UTF-8 as it is; bytes that
// are not UTF-8 are replaced (U+FFFD), never a line that does not parse.
TEST(AccessLogFormatJson, EscapesSoEveryLineParses) {
    AccessRecord r = sample();
    const std::string agent = std::string("a\"b\\c\r\n\t\x01\x7f caf\xc3\xa9 \0end", 22);
    r.user_agent = agent;
    const std::string bad_utf8 = "http://x/\xff\xfe";
    r.target = bad_utf8;
    std::string line = format_json(r);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    json j = json::parse(line);
    EXPECT_EQ(j["user_agent"], agent);
    EXPECT_EQ(j["target"].get<std::string>().rfind("http://x/", 0), 0u);
    EXPECT_NE(j["target"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);
}

class AccessLogFile : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/proxyd-access-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        path_ = dir_ + "/access.log";
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<AccessLog> open_log(
        common::AccessLogFormat format = common::AccessLogFormat::kCombined) {
        std::string error;
        int fd = open_access_log(path_, error);
        EXPECT_GE(fd, 0) << error;
        return std::make_unique<AccessLog>(path_, fd, format);
    }

    static std::string read(const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    static size_t lines(const std::string& text) {
        return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    }

    std::string dir_;
    std::string path_;
};

TEST_F(AccessLogFile, WritesAfterFlush) {
    auto log = open_log();
    EXPECT_TRUE(log->enabled());
    AccessRecord r = sample();
    log->write(r);
    r.status = 404;
    log->write(r);
    EXPECT_EQ(read(path_), "");  // buffered
    log->flush();
    std::string text = read(path_);
    ASSERT_EQ(lines(text), 2u) << text;
    EXPECT_EQ(without_time(text.substr(0, text.find('\n'))),
              "127.0.0.1 - - [T] \"GET http://example.com/ HTTP/1.1\" 200 1590 "
              "\"http://example.com/start\" \"curl/8.5.0\"");
    EXPECT_NE(text.find("HTTP/1.1\" 404 1590"), std::string::npos);
    log->flush();  // nothing new: nothing written twice
    EXPECT_EQ(read(path_), text);
}

TEST_F(AccessLogFile, JsonFormatWritesOneObjectPerLine) {
    auto log = open_log(common::AccessLogFormat::kJson);
    log->write(sample());
    log->write(sample());
    log->flush();
    std::istringstream text(read(path_));
    std::string line;
    int n = 0;
    while (std::getline(text, line)) {
        EXPECT_EQ(json::parse(line)["status"], 200);
        ++n;
    }
    EXPECT_EQ(n, 2);
}

TEST_F(AccessLogFile, AppendsToExistingFile) {
    {
        std::ofstream out(path_);
        out << "old line\n";
    }
    auto log = open_log();
    log->write(sample());
    log->flush();
    std::string text = read(path_);
    EXPECT_EQ(text.rfind("old line\n", 0), 0u);
    EXPECT_EQ(lines(text), 2u);
}

TEST_F(AccessLogFile, FlushesWhenBufferIsLarge) {
    auto log = open_log();
    for (int i = 0; i < 1000; ++i) log->write(sample());  // ~130 bytes each
    EXPECT_GE(read(path_).size(), 32u * 1024);
}

TEST_F(AccessLogFile, DestructorFlushes) {
    open_log()->write(sample());
    EXPECT_EQ(lines(read(path_)), 1u);
}

TEST_F(AccessLogFile, ReopenAfterRenameCreatesNewFile) {
    auto log = open_log();
    std::string error;
    AccessRecord before = sample();
    before.target = "http://before/";
    log->write(before);
    const std::string rotated = path_ + ".1";
    ASSERT_EQ(rename(path_.c_str(), rotated.c_str()), 0);
    ASSERT_TRUE(log->reopen(error)) << error;
    EXPECT_TRUE(std::filesystem::exists(path_));
    AccessRecord after = sample();
    after.target = "http://after/";
    log->write(after);
    log->flush();
    // Lines buffered before the reopen belong to the old file.
    std::string old_text = read(rotated);
    std::string new_text = read(path_);
    EXPECT_EQ(lines(old_text), 1u);
    EXPECT_NE(old_text.find("http://before/"), std::string::npos);
    EXPECT_EQ(lines(new_text), 1u);
    EXPECT_NE(new_text.find("http://after/"), std::string::npos);
}

TEST_F(AccessLogFile, NoDescriptorIsOff) {
    AccessLog log(path_, -1, common::AccessLogFormat::kCombined);
    EXPECT_FALSE(log.enabled());
    log.write(sample());
    log.flush();
    std::string error;
    EXPECT_TRUE(log.reopen(error));
    EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(AccessLogFile, OpenFailureNamesPath) {
    const std::string bad = dir_ + "/missing/access.log";
    std::string error;
    EXPECT_LT(open_access_log(bad, error), 0);
    EXPECT_EQ(error, "cannot open access log \"" + bad + "\": No such file or directory");
}

}  // namespace
}  // namespace worker
