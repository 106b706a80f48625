// Unit tests for worker/access_log: the line format (fields in order, "-"
// for empty, escaping that stops log injection) and the buffered file with
// flush and reopen-after-rotation.
#include "worker/access_log.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

namespace worker {
namespace {

using namespace std::chrono_literals;

const std::regex kTimestamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} )");

AccessRecord sample() {
    AccessRecord r;
    r.client = "127.0.0.1:50122";
    r.user = "";
    r.method = "GET";
    r.target = "http://example.com/";
    r.version_minor = 1;
    r.status = 200;
    r.bytes_from_client = 78;
    r.bytes_to_client = 1590;
    r.duration = 12345us;
    r.upstream = "93.184.216.34:80";
    r.route = "a@192.0.2.7";
    r.reason = "";
    return r;
}

// The line without its timestamp (after checking the timestamp's shape).
std::string fields_of(const std::string& line) {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(line, m, kTimestamp)) << line;
    return m.empty() ? line : line.substr(m.length(0));
}

TEST(AccessLogFormat, FieldsInOrder) {
    std::string line = format_access_line(sample());
    EXPECT_EQ(fields_of(line),
              "127.0.0.1:50122 - \"GET http://example.com/ HTTP/1.1\" 200 78 1590 12ms "
              "93.184.216.34:80 a@192.0.2.7 \"-\"");
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(AccessLogFormat, DashForEmptyFields) {
    AccessRecord r;
    r.version_minor = 0;
    r.status = 502;
    r.reason = "host not found";
    EXPECT_EQ(fields_of(format_access_line(r)),
              "- - \"- - HTTP/1.0\" 502 0 0 0ms - - \"host not found\"");
}

TEST(AccessLogFormat, TunnelLine) {
    AccessRecord r = sample();
    r.user = "alice";
    r.method = "CONNECT";
    r.target = "example.com:443";
    r.duration = 2s;
    r.reason = "client closed";
    EXPECT_EQ(fields_of(format_access_line(r)),
              "127.0.0.1:50122 alice \"CONNECT example.com:443 HTTP/1.1\" 200 78 1590 2000ms "
              "93.184.216.34:80 a@192.0.2.7 \"client closed\"");
}

TEST(AccessLogFormat, EscapesControlCharactersAndQuotes) {
    AccessRecord r = sample();
    const std::string target =
        "http://x/\r\n2026-01-01T00:00:00.000+0000 6.6.6.6:1 - \"GET / HTTP/1.1\" 200";
    r.target = target;
    const std::string user = std::string("a\tb\x7f\x01\"\\", 7);
    r.user = user;
    const std::string method = std::string("G\0T", 3);
    r.method = method;
    r.reason = "bad \"quote\"";
    std::string line = format_access_line(r);
    EXPECT_EQ(fields_of(line),
              "127.0.0.1:50122 a\\x09b\\x7f\\x01\\x22\\x5c \"G\\x00T "
              "http://x/\\x0d\\x0a2026-01-01T00:00:00.000+0000 6.6.6.6:1 - \\x22GET / "
              "HTTP/1.1\\x22 200 HTTP/1.1\" 200 78 1590 12ms 93.184.216.34:80 a@192.0.2.7 \"bad "
              "\\x22quote\\x22\"");
    for (char c : line) {
        EXPECT_GE(static_cast<unsigned char>(c), 0x20) << line;
        EXPECT_NE(c, 0x7f);
    }
}

TEST(AccessLogFormat, NonAsciiBytesPassThrough) {
    AccessRecord r = sample();
    r.target = "http://example.com/caf\xc3\xa9";
    EXPECT_NE(format_access_line(r).find("/caf\xc3\xa9 HTTP/1.1\""), std::string::npos);
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
    AccessLog log(path_);
    std::string error;
    ASSERT_TRUE(log.open(error)) << error;
    EXPECT_TRUE(log.enabled());
    AccessRecord r = sample();
    log.write(r);
    r.status = 404;
    log.write(r);
    EXPECT_EQ(read(path_), "");  // buffered
    log.flush();
    std::string text = read(path_);
    ASSERT_EQ(lines(text), 2u) << text;
    size_t first_end = text.find('\n');
    EXPECT_EQ(fields_of(text.substr(0, first_end)),
              "127.0.0.1:50122 - \"GET http://example.com/ HTTP/1.1\" 200 78 1590 12ms "
              "93.184.216.34:80 a@192.0.2.7 \"-\"");
    EXPECT_NE(text.find("HTTP/1.1\" 404 78"), std::string::npos);
    log.flush();  // nothing new: nothing written twice
    EXPECT_EQ(read(path_), text);
}

TEST_F(AccessLogFile, AppendsToExistingFile) {
    {
        std::ofstream out(path_);
        out << "old line\n";
    }
    AccessLog log(path_);
    std::string error;
    ASSERT_TRUE(log.open(error)) << error;
    log.write(sample());
    log.flush();
    std::string text = read(path_);
    EXPECT_EQ(text.rfind("old line\n", 0), 0u);
    EXPECT_EQ(lines(text), 2u);
}

TEST_F(AccessLogFile, FlushesWhenBufferIsLarge) {
    AccessLog log(path_);
    std::string error;
    ASSERT_TRUE(log.open(error)) << error;
    for (int i = 0; i < 1000; ++i) log.write(sample());  // ~100 bytes each
    EXPECT_GE(read(path_).size(), 32u * 1024);
}

TEST_F(AccessLogFile, DestructorFlushes) {
    {
        AccessLog log(path_);
        std::string error;
        ASSERT_TRUE(log.open(error)) << error;
        log.write(sample());
    }
    EXPECT_EQ(lines(read(path_)), 1u);
}

TEST_F(AccessLogFile, ReopenAfterRenameCreatesNewFile) {
    AccessLog log(path_);
    std::string error;
    ASSERT_TRUE(log.open(error)) << error;
    AccessRecord before = sample();
    before.target = "http://before/";
    log.write(before);
    const std::string rotated = path_ + ".1";
    ASSERT_EQ(rename(path_.c_str(), rotated.c_str()), 0);
    ASSERT_TRUE(log.reopen(error)) << error;
    EXPECT_TRUE(std::filesystem::exists(path_));
    AccessRecord after = sample();
    after.target = "http://after/";
    log.write(after);
    log.flush();
    // Lines buffered before the reopen belong to the old file.
    std::string old_text = read(rotated);
    std::string new_text = read(path_);
    EXPECT_EQ(lines(old_text), 1u);
    EXPECT_NE(old_text.find("http://before/"), std::string::npos);
    EXPECT_EQ(lines(new_text), 1u);
    EXPECT_NE(new_text.find("http://after/"), std::string::npos);
}

TEST_F(AccessLogFile, EmptyPathIsOff) {
    AccessLog log("");
    std::string error;
    EXPECT_TRUE(log.open(error));
    EXPECT_FALSE(log.enabled());
    log.write(sample());
    log.flush();
    EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(AccessLogFile, OpenFailureNamesPath) {
    const std::string bad = dir_ + "/missing/access.log";
    AccessLog log(bad);
    std::string error;
    EXPECT_FALSE(log.open(error));
    EXPECT_FALSE(log.enabled());
    EXPECT_EQ(error, "cannot open access log \"" + bad + "\": No such file or directory");
}

}  // namespace
}  // namespace worker
