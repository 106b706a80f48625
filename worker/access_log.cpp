#include "worker/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/json_util.h"

namespace worker {

namespace {

constexpr size_t kFlushThreshold = 32 * 1024;

// Local time, and its offset from UTC in minutes (east positive).
tm local_time(std::chrono::system_clock::time_point time, long& offset_minutes) {
    time_t seconds = std::chrono::system_clock::to_time_t(time);
    tm local;
    localtime_r(&seconds, &local);
    offset_minutes = local.tm_gmtoff / 60;
    return local;
}

// "01/Dec/2026:23:15:25 +0000", local time: Apache's %t without brackets.
// The month is English whatever the locale, as log parsers expect.
void append_clf_time(std::string& out, std::chrono::system_clock::time_point time) {
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    long offset = 0;
    const tm local = local_time(time, offset);
    char sign = offset < 0 ? '-' : '+';
    if (offset < 0) offset = -offset;
    char text[64];
    snprintf(text, sizeof(text), "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", local.tm_mday,
             kMonths[local.tm_mon % 12], local.tm_year + 1900, local.tm_hour, local.tm_min,
             local.tm_sec, sign, offset / 60, offset % 60);
    out += text;
}

// "2026-12-01T23:15:25.123+00:00" (RFC 3339, local time, milliseconds).
std::string rfc3339(std::chrono::system_clock::time_point time) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()) % 1000;
    long offset = 0;
    const tm local = local_time(time, offset);
    char sign = offset < 0 ? '-' : '+';
    if (offset < 0) offset = -offset;
    char text[64];
    size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &local);
    snprintf(text + n, sizeof(text) - n, ".%03d%c%02ld:%02ld", static_cast<int>(ms.count()), sign,
             offset / 60, offset % 60);
    return text;
}

// nginx's escaping of its default log format: '"', '\', control bytes and
// everything from 0x7f up as \xHH. The line stays printable ASCII, a client
// cannot end a field or a line, and the same bytes always read the same.
void append_escaped(std::string& out, std::string_view text) {
    static const char kHex[] = "0123456789ABCDEF";
    for (unsigned char c : text) {
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
}

// A field: "-" when empty, escaped otherwise.
void append_field(std::string& out, std::string_view text) {
    if (text.empty()) {
        out += '-';
    } else {
        append_escaped(out, text);
    }
}

// version_minor: -1 for SOCKS, -2 for an HTTP request line without a
// version (ExchangeRecord's kNotHttp, kNoVersion).
bool is_socks(const AccessRecord& r) {
    return r.version_minor == -1;
}

// SOCKS connects log as what they are, a CONNECT, with the SOCKS version
// where HTTP puts its own.
std::string_view method_of(const AccessRecord& r) {
    return is_socks(r) ? std::string_view("CONNECT") : r.method;
}

// Empty for a request line that ended before its version.
std::string_view protocol_of(const AccessRecord& r) {
    if (is_socks(r)) return r.method;
    if (r.version_minor < 0) return {};
    return r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

// A request nothing could be read of logs as "-", like Apache's 408s.
void append_request_line(std::string& out, const AccessRecord& r) {
    if (r.method.empty() || r.method == "-") {
        out += '-';
        return;
    }
    append_escaped(out, method_of(r));
    if (r.target.empty() && protocol_of(r).empty()) return;
    out += ' ';
    append_field(out, r.target);
    if (protocol_of(r).empty()) return;
    out += ' ';
    append_escaped(out, protocol_of(r));
}

// Absent values are null in JSON, not "-": a query tests for null.
common::Json text_or_null(std::string_view text) {
    if (text.empty()) return nullptr;
    return std::string(text);
}

uint16_t client_port(std::string_view client) {
    size_t colon = client.rfind(':');
    if (colon == std::string_view::npos) return 0;
    unsigned port = 0;
    for (char c : client.substr(colon + 1)) {
        if (c < '0' || c > '9' || port > 65535) return 0;
        port = port * 10 + static_cast<unsigned>(c - '0');
    }
    return port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

}  // namespace

std::string_view client_address(std::string_view client) {
    if (!client.empty() && client.front() == '[') {
        size_t close = client.find(']');
        return close == std::string_view::npos ? client.substr(1) : client.substr(1, close - 1);
    }
    size_t colon = client.rfind(':');
    // Two colons and no brackets: an IPv6 address without a port.
    if (colon == std::string_view::npos || client.find(':') != colon) return client;
    return client.substr(0, colon);
}

std::string format_combined(const AccessRecord& r) {
    std::string line;
    append_combined(line, r);
    return line;
}

// Appended to `line` in place: the worker's buffer, with no line copied.
void append_combined(std::string& line, const AccessRecord& r) {
    append_field(line, client_address(r.client));
    line += " - ";
    append_field(line, r.user);
    line += " [";
    append_clf_time(line, r.time);
    line += "] \"";
    append_request_line(line, r);
    line += "\" ";
    line += std::to_string(r.status);
    line += ' ';
    line += std::to_string(r.bytes_to_client);
    line += " \"";
    append_field(line, r.referer);
    line += "\" \"";
    append_field(line, r.user_agent);
    line += '"';
}

std::string format_json(const AccessRecord& r) {
    common::Json j = common::Json::object();
    j["time"] = rfc3339(r.time);
    j["client"] = text_or_null(client_address(r.client));
    j["client_port"] = client_port(r.client);
    j["user"] = text_or_null(r.user);
    j["listener"] = text_or_null(r.listener);
    j["method"] = r.method.empty() || r.method == "-" ? nullptr : text_or_null(method_of(r));
    j["target"] = text_or_null(r.target);
    j["protocol"] = r.method.empty() || r.method == "-" ? nullptr : text_or_null(protocol_of(r));
    j["status"] = r.status;
    j["bytes_from_client"] = r.bytes_from_client;
    j["bytes_to_client"] = r.bytes_to_client;
    j["duration"] = std::chrono::duration<double>(r.duration).count();
    j["upstream"] = text_or_null(r.upstream);
    j["route"] = text_or_null(r.route);
    j["refusal"] = text_or_null(r.refusal);
    j["reason"] = text_or_null(r.reason);
    j["referer"] = text_or_null(r.referer);
    j["user_agent"] = text_or_null(r.user_agent);
    j["pid"] = static_cast<int64_t>(r.pid);
    return common::to_line(j);
}

int open_access_log(const std::string& path, std::string& error) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) error = "cannot open access log \"" + path + "\": " + std::strerror(errno);
    return fd;
}

AccessLog::AccessLog(std::string path, int fd, common::AccessLogFormat format)
    : path_(std::move(path)), fd_(fd), format_(format), pid_(::getpid()) {}

AccessLog::~AccessLog() {
    flush();
    if (fd_ >= 0) ::close(fd_);
}

bool AccessLog::reopen(std::string& error) {
    flush();
    if (fd_ < 0 || path_.empty()) return true;
    int fd = open_access_log(path_, error);
    if (fd < 0) return false;
    ::close(fd_);
    fd_ = fd;
    return true;
}

void AccessLog::write(const AccessRecord& record) {
    if (fd_ < 0) return;
    if (format_ == common::AccessLogFormat::kJson) {
        buffer_ += format_json(record);
    } else {
        append_combined(buffer_, record);
    }
    buffer_ += '\n';
    if (buffer_.size() >= kFlushThreshold) flush();
}

void AccessLog::flush() {
    if (fd_ < 0 || buffer_.empty()) return;
    size_t done = 0;
    while (done < buffer_.size()) {
        ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // a full disk must not stop the proxy; lines are dropped
        done += static_cast<size_t>(n);
    }
    buffer_.clear();
}

}  // namespace worker
