// The access log: one line per HTTP request and per tunnel, buffered in
// memory and written when the buffer passes 32 KiB, on every heartbeat, and
// at exit. Format (documented in proxyd.conf(5)):
//
//   2026-11-28T13:45:01.123+0000 127.0.0.1:50122 - "GET http://example.com/ HTTP/1.1" 200 78 1590
//   12ms 93.184.216.34:80 "-"
//
// time, client, user, request line, status, bytes received from the client,
// bytes sent to the client, duration, upstream address ("-" when none), and
// the reason for a proxy-made error or an abnormal end ("-" otherwise).
// SOCKS sessions log "SOCKS5 host:port" or "SOCKS4 host:port" as the request,
// with the HTTP status that the same outcome gets on an HTTP CONNECT.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace worker {

struct AccessRecord {
    std::string_view client;
    std::string_view user;
    std::string_view method;
    std::string_view target;
    int version_minor = 1;  // -1: not HTTP (SOCKS), no version in the line
    int status = 0;
    uint64_t bytes_from_client = 0;
    uint64_t bytes_to_client = 0;
    std::chrono::steady_clock::duration duration{};
    std::string_view upstream;
    std::string_view route;  // "direct", "NAME@192.0.2.7"...; "-" when none was chosen
    std::string_view reason;
};

class AccessLog {
  public:
    // An empty path turns the log off.
    explicit AccessLog(std::string path) : path_(std::move(path)) {}
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // Opens the file; false (and `error`) when it cannot.
    bool open(std::string& error);
    bool reopen(std::string& error);
    bool enabled() const { return fd_ >= 0; }
    void write(const AccessRecord& record);
    void flush();

  private:
    std::string path_;
    int fd_ = -1;
    std::string buffer_;
};

// Formats one record (no newline); exposed for tests.
std::string format_access_line(const AccessRecord& record);

}  // namespace worker
