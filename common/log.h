// The error log: one line per event, written with a single write(2) so lines
// from the master and every worker never interleave mid-line.
//
//   2026-11-28 13:45:01.123 [error] 1234 worker 0: connect() to 10.0.0.1:80 failed (111: Connection
//   refused) while connecting to upstream, client: 127.0.0.1:5012
//
// Levels: debug < info < warn < error < alert. alert is always written; it
// marks what must never happen (a crash, an impossible state), and the tests
// fail on any alert line they did not cause on purpose.
#pragma once

#include <string>

namespace common {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kAlert };

// Parses "debug", "info", "warn", "error"; false when unknown.
bool parse_log_level(const std::string& text, LogLevel& level);
const char* log_level_name(LogLevel level);

namespace log {

// Sends the log to `target`: "stderr", "syslog" (syslog(3), facility
// daemon, ident proxyd; the level becomes the priority) or a file path,
// opened for append. Returns false and sets `error` when the file cannot be
// opened; the previous target stays in use then.
bool open(const std::string& target, LogLevel level, std::string& error);
// Reopens the current file (logrotate, SIGUSR1). False if that failed; the
// old descriptor stays in use.
bool reopen(std::string& error);
// The descriptor of the log file; -1 when the log goes to stderr.
int file_descriptor();
// "master", "worker 3": the role part of every line of this process.
void set_role(const std::string& role);
bool enabled(LogLevel level);

void write(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace log
}  // namespace common

// The macros skip formatting entirely when the level is off, which keeps
// debug logging free on the data path.
#define LOG_AT(level, ...)                                                           \
    do {                                                                             \
        if (::common::log::enabled(level)) ::common::log::write(level, __VA_ARGS__); \
    } while (0)
#define LOG_DEBUG(...) LOG_AT(::common::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(::common::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(::common::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) LOG_AT(::common::LogLevel::kError, __VA_ARGS__)
#define LOG_ALERT(...) LOG_AT(::common::LogLevel::kAlert, __VA_ARGS__)
