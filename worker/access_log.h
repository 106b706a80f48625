// The access log: one line per HTTP request, CONNECT and SOCKS connect,
// made from the exchange record (exchange_record.h), buffered in memory and
// written when the buffer passes 32 KiB, on every heartbeat and at exit, so
// a slow disk costs one write(2) per heartbeat, never a wait per request.
// Two formats (proxyd.conf(5), README "Access logs"):
//
// combined, NCSA Combined as Apache and nginx write it and goaccess, AWStats
// and the like read it (`goaccess --log-format=COMBINED`):
//
//   127.0.0.1 - alice [01/Dec/2026:23:15:25 +0000] "GET http://example.com/ HTTP/1.1" 200 1590
//   "http://example.com/" "curl/8.5.0"
//
// client address without port, "-" (ident), user or "-", local time, the
// request line, status, bytes sent to the client, Referer, User-Agent. A
// tunnel's request line is "CONNECT host:port HTTP/1.1"; a SOCKS connect's
// is "CONNECT host:port SOCKS5" (or SOCKS4), so log tools read it as the
// CONNECT it is. Every byte below 0x20, from 0x7f up, '"' and '\' is
// written \xHH, as nginx does: a client cannot forge a line or a field.
//
// json: one object per line, every string escaped by the JSON writer, so
// every line parses (bytes that are not UTF-8 become U+FFFD).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/config.h"

namespace worker {

struct AccessRecord {
    std::chrono::system_clock::time_point time;  // when the exchange ended
    std::string_view client;                     // "address:port", "[v6]:port"
    std::string_view user;                       // empty: none
    std::string_view listener;
    std::string_view method;  // "GET", "CONNECT", "SOCKS5", "SOCKS4"
    std::string_view target;
    int version_minor = 1;  // -1: not HTTP (SOCKS); -2: the line had no version
    int status = 0;
    uint64_t bytes_from_client = 0;
    uint64_t bytes_to_client = 0;
    std::chrono::steady_clock::duration duration{};
    std::string_view upstream;  // the peer's address; empty: none
    std::string_view route;     // "direct", "NAME@192.0.2.7"...; empty: none chosen
    std::string_view refusal;   // cause_name() of a refusal; empty: none
    std::string_view reason;    // why it was refused or ended abnormally
    std::string_view referer;
    std::string_view user_agent;
    pid_t pid = 0;
};

class AccessLog {
  public:
    // `fd` is the open log (the master opened it: see master/log_files.h),
    // owned from here; -1 turns the log off. `path` is what a reopen opens.
    AccessLog(std::string path, int fd, common::AccessLogFormat format);
    ~AccessLog();
    AccessLog(const AccessLog&) = delete;
    AccessLog& operator=(const AccessLog&) = delete;

    // Opens the path again (logrotate, SIGUSR1). False (and `error`) when
    // it cannot; the old descriptor stays in use then.
    bool reopen(std::string& error);
    bool enabled() const { return fd_ >= 0; }
    // The worker's, taken when the log was made (after the fork).
    pid_t pid() const { return pid_; }
    void write(const AccessRecord& record);
    void flush();

  private:
    std::string path_;
    int fd_ = -1;
    common::AccessLogFormat format_;
    pid_t pid_;
    std::string buffer_;
};

// Open an access log for appending, creating it 0644: the descriptor, or -1
// with `error` naming the path.
int open_access_log(const std::string& path, std::string& error);

// One line of each format, without the newline; exposed for tests.
std::string format_combined(const AccessRecord& record);
void append_combined(std::string& line, const AccessRecord& record);
std::string format_json(const AccessRecord& record);
// The client's address without its port (brackets dropped from IPv6).
std::string_view client_address(std::string_view client);

}  // namespace worker
