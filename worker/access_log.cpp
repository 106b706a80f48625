#include "worker/access_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace worker {

namespace {

constexpr size_t kFlushThreshold = 32 * 1024;

std::string now_iso8601() {
    timeval tv;
    gettimeofday(&tv, nullptr);
    tm local;
    localtime_r(&tv.tv_sec, &local);
    char text[64];
    size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &local);
    n += snprintf(text + n, sizeof(text) - n, ".%03d", static_cast<int>(tv.tv_usec / 1000));
    strftime(text + n, sizeof(text) - n, "%z", &local);
    return text;
}

// Control characters and quotes in client-supplied text would let a client
// forge log lines; they are written as \xHH.
void append_escaped(std::string& out, std::string_view text) {
    if (text.empty()) {
        out += '-';
        return;
    }
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            char hex[5];
            snprintf(hex, sizeof(hex), "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
}

}  // namespace

std::string format_access_line(const AccessRecord& r) {
    std::string line = now_iso8601();
    line += ' ';
    append_escaped(line, r.client);
    line += ' ';
    append_escaped(line, r.user);
    line += " \"";
    append_escaped(line, r.method);
    line += ' ';
    append_escaped(line, r.target);
    if (r.version_minor >= 0) line += r.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1";
    line += "\" ";
    line += std::to_string(r.status) + ' ' + std::to_string(r.bytes_from_client) + ' ' +
            std::to_string(r.bytes_to_client) + ' ';
    line +=
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(r.duration).count()) +
        "ms ";
    append_escaped(line, r.upstream);
    line += ' ';
    append_escaped(line, r.route.empty() ? "-" : r.route);
    line += " \"";
    append_escaped(line, r.reason);
    line += '"';
    return line;
}

AccessLog::~AccessLog() {
    flush();
    if (fd_ >= 0) ::close(fd_);
}

bool AccessLog::open(std::string& error) {
    if (path_.empty()) return true;
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = "cannot open access log \"" + path_ + "\": " + std::strerror(errno);
        return false;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    return true;
}

bool AccessLog::reopen(std::string& error) {
    flush();
    return open(error);
}

void AccessLog::write(const AccessRecord& record) {
    if (fd_ < 0) return;
    buffer_ += format_access_line(record);
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
