// proxyctl: the control socket's client. Sends one command line, reads the
// one JSON line back and prints it as a table (or unchanged with --json).
//
// Exit status: 0 when the answer says ok, 1 when it does not or proxyd cannot
// be reached, 2 on a usage error.
#include <getopt.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/channel.h"
#include "common/config.h"
#include "common/json_util.h"
#include "common/libevent_handles.h"
#include "common/metrics.h"

namespace {

using common::Json;

constexpr int kTimeoutMs = 10000;
// Far above any real answer (a status with 1024 workers is ~400 KiB); a peer
// that sends more without a newline is not proxyd.
constexpr size_t kMaxAnswer = 16 << 20;
constexpr const char* kLocalSocket = "run/proxyd.sock";
constexpr const char* kSystemSocket = "/run/proxyd/proxyd.sock";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: proxyctl [-s SOCKET | -c FILE] [--json] COMMAND [ARGS]\n"
                 "\n"
                 "  -s, --socket SOCKET  control socket (default: %s when it exists,\n"
                 "                       else %s)\n"
                 "  -c, --config FILE    read control_socket from this proxyd configuration\n"
                 "  -j, --json           print the answer's JSON line unchanged\n"
                 "  -h, --help           print this help\n"
                 "\n"
                 "commands: status, workers, stats, users, routes, reload, scale N, drain PID,\n"
                 "          reopen, quit, stop, help\n",
                 kLocalSocket, kSystemSocket);
}

// Connects and exchanges one line. Returns false with `error` set.
bool exchange(const std::string& path, const std::string& command, std::string& answer,
              std::string& error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        error = "control socket path too long: " + path;
        return false;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        error = "cannot connect to " + path + ": " + std::strerror(errno) + " (is proxyd running?)";
        return false;
    }
    std::string line = command + "\n";
    if (::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(line.size())) {
        error = "cannot send to " + path + ": " + std::strerror(errno);
        return false;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    for (;;) {
        size_t nl = answer.find('\n');
        if (nl != std::string::npos) {
            answer.resize(nl);
            return true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        pollfd pfd{fd.get(), POLLIN, 0};
        int ready = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            error = "no answer from " + path + " within 10 s";
            return false;
        }
        char buf[4096];
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (!answer.empty()) return true;
            error = "connection to " + path + " closed without an answer";
            return false;
        }
        answer.append(buf, static_cast<size_t>(n));
        if (answer.size() > kMaxAnswer && answer.find('\n') == std::string::npos) {
            error = "answer from " + path + " is longer than 16 MiB";
            return false;
        }
    }
}

// The answer comes from a socket: it is read without trusting its shape.
// A missing key, a wrong type or an out-of-range number reads as null, 0,
// "" or false, never as an exception (nlohmann's own accessors would throw,
// or assert on a missing key of a const object).
const Json& null_json() {
    static const Json kNull;
    return kNull;
}

const Json& at(const Json& object, std::string_view key) {
    if (!object.is_object()) return null_json();
    auto it = object.find(key);
    return it == object.end() ? null_json() : *it;
}

// The elements of an array; nothing for anything else.
const Json& elements(const Json& array) {
    static const Json kEmpty = Json::array();
    return array.is_array() ? array : kEmpty;
}

int64_t as_int(const Json& v) {
    if (v.is_number_unsigned()) {
        return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
        double d = v.get<double>();
        // Out of range (or NaN) would make the conversion undefined.
        return d > -9.2e18 && d < 9.2e18 ? static_cast<int64_t>(d) : 0;
    }
    return 0;
}

std::string as_string(const Json& v) {
    return v.is_string() ? v.get<std::string>() : std::string();
}

bool as_bool(const Json& v) {
    return v.is_boolean() && v.get<bool>();
}

std::string scalar(const Json& v) {
    if (v.is_string()) return as_string(v);
    if (v.is_null()) return "-";
    return common::to_line(v);
}

std::string human_bytes(int64_t bytes) {
    const char* units[] = {"B", "K", "M", "G", "T"};
    double value = static_cast<double>(bytes);
    int unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        ++unit;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f%s" : "%.1f%s", value, units[unit]);
    return buf;
}

// One cell of a metric column: sizes for *_bytes metrics, a labelled
// metric as the sum over its label values.
std::string metric_cell(const common::metrics::Metric& m, const Json& value) {
    int64_t n = as_int(value);
    if (value.is_object()) {
        n = 0;
        for (const Json& count : value) n += as_int(count);
    }
    if (m.name.ends_with("_bytes")) return human_bytes(n);
    return std::to_string(n);
}

// The columns between STATE and LAST are the metrics the table marks with a
// column (common/metrics.h), so a new one needs no edit here.
void print_workers(const Json& workers) {
    std::printf("%-8s %4s %4s %-9s", "PID", "SLOT", "GEN", "STATE");
    for (const common::metrics::Metric& m : common::metrics::kMetrics) {
        if (m.column.heading != nullptr) std::printf(" %*s", m.column.width, m.column.heading);
    }
    std::printf(" %7s\n", "LAST");
    for (const Json& w : elements(workers)) {
        const Json& last_ms = at(w, "last_report_ms");
        std::string last = last_ms.is_null() ? "-" : std::to_string(as_int(last_ms)) + "ms";
        std::printf("%-8lld %4lld %4lld %-9s", static_cast<long long>(as_int(at(w, "pid"))),
                    static_cast<long long>(as_int(at(w, "slot"))),
                    static_cast<long long>(as_int(at(w, "generation"))),
                    as_string(at(w, "state")).c_str());
        for (const common::metrics::Metric& m : common::metrics::kMetrics) {
            if (m.column.heading == nullptr) continue;
            std::printf(" %*s", m.column.width, metric_cell(m, at(w, m.name)).c_str());
        }
        std::printf(" %7s\n", last.c_str());
    }
}

// One line per user; a limit of 0 reads "-" (none).
void print_users(const Json& users) {
    std::printf("%-24s %8s %10s %8s\n", "USER", "ACTIVE", "TOTAL", "LIMIT");
    for (const Json& u : elements(users)) {
        int64_t limit = as_int(at(u, "max_sessions"));
        std::printf("%-24s %8lld %10lld %8s\n", as_string(at(u, "name")).c_str(),
                    static_cast<long long>(as_int(at(u, "active_sessions"))),
                    static_cast<long long>(as_int(at(u, "total_sessions"))),
                    limit == 0 ? "-" : std::to_string(limit).c_str());
    }
}

// "up", or "down (2 of 4 workers)": health is each worker's own.
std::string route_state(const Json& route) {
    const std::string state = as_string(at(route, "state"));
    const int64_t down = as_int(at(route, "down_workers"));
    const int64_t workers = as_int(at(route, "workers"));
    if (state != "down" || down <= 0) return state;
    const int64_t of = std::max(down, workers);
    return "down (" + std::to_string(down) + " of " + std::to_string(of) +
           (of == 1 ? " worker)" : " workers)");
}

// One line per route, the name column as wide as the longest name.
void print_routes(const Json& routes) {
    int width = 5;
    for (const Json& r : elements(routes)) {
        width = std::max(width, static_cast<int>(std::min(as_string(at(r, "name")).size(),
                                                          common::channel::kMaxRouteName)));
    }
    std::printf("%-*s %8s %10s %8s  %s\n", width, "ROUTE", "ACTIVE", "TOTAL", "FAILURES", "STATE");
    for (const Json& r : elements(routes)) {
        std::printf("%-*s %8lld %10lld %8lld  %s\n", width, as_string(at(r, "name")).c_str(),
                    static_cast<long long>(as_int(at(r, "active"))),
                    static_cast<long long>(as_int(at(r, "total"))),
                    static_cast<long long>(as_int(at(r, "failures"))), route_state(r).c_str());
    }
}

// key: value lines; nested objects flatten to "a.b: value". The recursion is
// bounded by the depth limit of parse_untrusted().
void print_fields(const Json& object, const std::string& prefix) {
    for (const auto& [key, value] : object.items()) {
        if (prefix.empty() && key == "ok") continue;
        if (value.is_object()) {
            print_fields(value, prefix + key + ".");
        } else if (value.is_array()) {
            std::string items;
            for (const Json& item : value) {
                if (!items.empty()) items += ", ";
                items += item.is_object() ? common::to_line(item) : scalar(item);
            }
            std::printf("%s%s: %s\n", prefix.c_str(), key.c_str(), items.c_str());
        } else {
            std::printf("%s%s: %s\n", prefix.c_str(), key.c_str(), scalar(value).c_str());
        }
    }
}

void print_status(const Json& answer) {
    for (const auto& [key, value] : answer.items()) {
        if (key == "ok" || key == "workers" || key == "listeners" || key == "slots") continue;
        std::printf("%s: %s\n", key.c_str(), scalar(value).c_str());
    }
    for (const Json& l : elements(at(answer, "listeners"))) {
        std::printf("listener %s: %s %s%s\n", as_string(at(l, "name")).c_str(),
                    as_string(at(l, "address")).c_str(), as_string(at(l, "protocol")).c_str(),
                    as_bool(at(l, "tls")) ? " tls" : "");
    }
    for (const Json& s : elements(at(answer, "slots"))) {
        std::printf("slot %lld: %lld failures, backoff %lld ms%s\n",
                    static_cast<long long>(as_int(at(s, "slot"))),
                    static_cast<long long>(as_int(at(s, "failures"))),
                    static_cast<long long>(as_int(at(s, "backoff_ms"))),
                    as_bool(at(s, "degraded")) ? ", degraded" : "");
    }
    std::printf("\n");
    print_workers(at(answer, "workers"));
}

std::string default_socket() {
    return ::access(kLocalSocket, F_OK) == 0 ? kLocalSocket : kSystemSocket;
}

}  // namespace

int main(int argc, char** argv) {
    static const option kOptions[] = {
        {"socket", required_argument, nullptr, 's'},
        {"config", required_argument, nullptr, 'c'},
        {"json", no_argument, nullptr, 'j'},
        {"help", no_argument, nullptr, 'h'},
        {nullptr, 0, nullptr, 0},
    };
    std::string socket_path;
    std::string config_path;
    bool json = false;
    opterr = 0;
    int c;
    // '+': options end at the command, so "proxyctl drain 123" never parses
    // the command's arguments as options.
    while ((c = getopt_long(argc, argv, "+:s:c:jh", kOptions, nullptr)) != -1) {
        switch (c) {
            case 's':
                socket_path = optarg;
                break;
            case 'c':
                config_path = optarg;
                break;
            case 'j':
                json = true;
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                std::fprintf(stderr, "proxyctl: bad option or missing argument: '%s'\n",
                             argv[optind - 1]);
                usage(stderr);
                return 2;
        }
    }
    if (optind >= argc) {
        std::fprintf(stderr, "proxyctl: no command given\n");
        usage(stderr);
        return 2;
    }
    std::string command;
    for (int i = optind; i < argc; ++i) {
        if (!command.empty()) command += ' ';
        command += argv[i];
    }
    if (socket_path.empty() && !config_path.empty()) {
        std::string error;
        common::ConfigPtr config = common::load_config(config_path, error);
        if (!config) {
            std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
            return 1;
        }
        socket_path = config->master.control_socket;
    }
    if (socket_path.empty()) socket_path = default_socket();

    std::string line;
    std::string error;
    if (!exchange(socket_path, command, line, error)) {
        std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
        return 1;
    }
    const Json answer = common::parse_untrusted(line);
    if (json) {
        std::printf("%s\n", line.c_str());
        return as_bool(at(answer, "ok")) ? 0 : 1;
    }
    if (!answer.is_object()) {
        std::fprintf(stderr, "proxyctl: malformed answer: %s\n", line.c_str());
        return 1;
    }
    if (!as_bool(at(answer, "ok"))) {
        std::fprintf(stderr, "proxyctl: %s\n", as_string(at(answer, "error")).c_str());
        return 1;
    }
    if (command == "status") {
        print_status(answer);
    } else if (command == "workers") {
        print_workers(at(answer, "workers"));
    } else if (command == "users") {
        print_users(at(answer, "users"));
    } else if (command == "routes") {
        print_routes(at(answer, "routes"));
    } else {
        print_fields(answer, "");
    }
    return 0;
}
