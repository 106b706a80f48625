#include "master/proxyctl_top.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "master/control_client.h"

namespace master::proxyctl {

namespace {

WorkerSample sample_from(const Json& w, double taken_ms) {
    WorkerSample s;
    s.pid = as_int(at(w, "pid"));
    s.slot = as_int(at(w, "slot"));
    s.generation = as_int(at(w, "generation"));
    s.state = as_string(at(w, "state"));
    s.sessions = as_total(at(w, "active_sessions"));
    s.requests = as_total(at(w, "requests"));
    s.bytes_in = as_total(at(w, "bytes_in"));
    s.bytes_out = as_total(at(w, "bytes_out"));
    s.rss_bytes = as_total(at(w, "rss_bytes"));
    const Json& age = at(w, "last_report_ms");
    if (age.is_number()) {
        s.report_age_ms = as_int(age);
        s.reported_ms = taken_ms - static_cast<double>(*s.report_age_ms);
    }
    return s;
}

const WorkerSample* find(const Snapshot& snapshot, int64_t pid) {
    for (const WorkerSample& w : snapshot.workers)
        if (w.pid == pid) return &w;
    return nullptr;
}

// Did `later` come from a newer report than `earlier`?
bool newer_report(const WorkerSample& earlier, const WorkerSample& later) {
    return earlier.reported_ms && later.reported_ms &&
           *later.reported_ms - *earlier.reported_ms >= kSameReportMs;
}

struct Rates {
    double requests = 0;
    double bytes_in = 0;
    double bytes_out = 0;
};

// Per second between two reports of one worker; nullopt without an earlier
// report, or when a counter went back (not the same worker's counters).
std::optional<Rates> rates(const WorkerSample* before, const WorkerSample& now) {
    if (before == nullptr || !newer_report(*before, now)) return std::nullopt;
    if (now.requests < before->requests || now.bytes_in < before->bytes_in ||
        now.bytes_out < before->bytes_out) {
        return std::nullopt;
    }
    const double seconds = (*now.reported_ms - *before->reported_ms) / 1000;
    return Rates{static_cast<double>(now.requests - before->requests) / seconds,
                 static_cast<double>(now.bytes_in - before->bytes_in) / seconds,
                 static_cast<double>(now.bytes_out - before->bytes_out) / seconds};
}

// Requests per second with one decimal.
std::string per_second(double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", value);
    return buf;
}

std::string age_cell(const std::optional<int64_t>& age_ms) {
    if (!age_ms) return "-";
    if (*age_ms < 10000) return std::to_string(*age_ms) + "ms";
    return std::to_string(*age_ms / 1000) + "s";
}

std::string worker_line(const WorkerSample& w, const std::optional<Rates>& r) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf, "%-8lld %4lld %4lld %-9s %7lld %8s %8s %8s %8s %7s",
        static_cast<long long>(w.pid), static_cast<long long>(w.slot),
        static_cast<long long>(w.generation), w.state.c_str(), static_cast<long long>(w.sessions),
        r ? per_second(r->requests).c_str() : "-", r ? human_bytes(r->bytes_in).c_str() : "-",
        r ? human_bytes(r->bytes_out).c_str() : "-",
        human_bytes(static_cast<double>(w.rss_bytes)).c_str(), age_cell(w.report_age_ms).c_str());
    return buf;
}

std::string summary_line(const Snapshot& now, int64_t sessions, const std::optional<Rates>& total) {
    char clock[16] = "--:--:--";
    std::tm tm{};
    if (now.wall != 0 && ::localtime_r(&now.wall, &tm) != nullptr) {
        std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    }
    const size_t n = now.workers.size();
    std::string line = "proxyd " + std::string(clock) + "  " + std::to_string(n) +
                       (n == 1 ? " worker  " : " workers  ") + std::to_string(sessions) +
                       " sessions  ";
    if (!total) return line + "- req/s  in - /s  out - /s";
    return line + per_second(total->requests) + " req/s  in " + human_bytes(total->bytes_in) +
           "/s  out " + human_bytes(total->bytes_out) + "/s";
}

}  // namespace

Snapshot snapshot_from_answer(const Json& answer, double taken_ms, std::time_t wall) {
    Snapshot s;
    s.taken_ms = taken_ms;
    s.wall = wall;
    for (const Json& w : elements(at(answer, "workers")))
        s.workers.push_back(sample_from(w, taken_ms));
    return s;
}

Snapshot advance_baseline(const Snapshot& baseline, const Snapshot& previous,
                          const Snapshot& current) {
    Snapshot next;
    next.taken_ms = previous.taken_ms;
    next.wall = previous.wall;
    for (const WorkerSample& w : current.workers) {
        const WorkerSample* prev = find(previous, w.pid);
        const WorkerSample* kept = find(baseline, w.pid);
        if (prev != nullptr && newer_report(*prev, w)) {
            next.workers.push_back(*prev);
        } else if (kept != nullptr) {
            next.workers.push_back(*kept);
        } else if (prev != nullptr) {
            next.workers.push_back(*prev);
        }
    }
    return next;
}

std::vector<std::string> render(const Snapshot& before, const Snapshot& now) {
    std::vector<std::string> rows;
    std::optional<Rates> total;
    int64_t sessions = 0;
    for (const WorkerSample& w : now.workers) {
        std::optional<Rates> r = rates(find(before, w.pid), w);
        sessions += w.sessions;
        if (r) {
            if (!total) total = Rates{};
            total->requests += r->requests;
            total->bytes_in += r->bytes_in;
            total->bytes_out += r->bytes_out;
        }
        rows.push_back(worker_line(w, r));
    }
    char heading[128];
    std::snprintf(heading, sizeof heading, "%-8s %4s %4s %-9s %7s %8s %8s %8s %8s %7s", "PID",
                  "SLOT", "GEN", "STATE", "SESS", "REQ/S", "IN/S", "OUT/S", "RSS", "LAST");
    std::vector<std::string> lines{summary_line(now, sessions, total), "", heading};
    lines.insert(lines.end(), rows.begin(), rows.end());
    return lines;
}

// ---- the terminal ------------------------------------------------------------------

namespace {

volatile sig_atomic_t g_quit = 0;

void on_quit_signal(int) {
    g_quit = 1;
}

// Ctrl-C, kill and a closed terminal end the view through the loop, so the
// terminal is restored on every way out. No SA_RESTART: poll() returns.
void catch_quit_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_quit_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// The terminal while the view runs: keys arrive one at a time without echo
// (so q quits without Enter), the cursor is hidden. The destructor puts
// both back. Without a terminal it does nothing and prints plainly.
class Screen {
  public:
    explicit Screen(bool tty) : tty_(tty) {
        if (!tty_) return;
        keys_ = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0;
        if (keys_) {
            termios raw = saved_;
            raw.c_lflag &= ~(ICANON | ECHO);
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
        }
        std::fputs("\033[?25l\033[H\033[2J", stdout);
    }
    ~Screen() {
        if (!tty_) return;
        if (keys_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
        std::fputs("\033[?25h\n", stdout);
        std::fflush(stdout);
    }
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;

    void draw(const std::vector<std::string>& lines, bool first) {
        if (!tty_) {
            if (!first) std::fputs("\n", stdout);
            for (const std::string& l : lines) std::printf("%s\n", l.c_str());
            std::fflush(stdout);
            return;
        }
        winsize ws{};
        const bool sized = ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0;
        const size_t rows = sized ? ws.ws_row : 24;
        const size_t cols = sized && ws.ws_col > 0 ? ws.ws_col : 80;
        std::string out = "\033[H";
        for (size_t i = 0; i < lines.size() && i + 1 < rows; ++i) {
            out += lines[i].substr(0, cols) + "\033[K\n";
        }
        out += "\033[J";
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
    }

    // Waits `ms`; true when the operator asked to quit (q, or a signal).
    bool wait(double ms) {
        const double deadline = now_ms() + ms;
        for (;;) {
            if (g_quit) return true;
            const double left = deadline - now_ms();
            if (left <= 0) return false;
            pollfd pfd{STDIN_FILENO, POLLIN, 0};
            int ready = ::poll(keys_ ? &pfd : nullptr, keys_ ? 1 : 0, static_cast<int>(left) + 1);
            if (ready > 0 && quit_key()) return true;
        }
    }

  private:
    bool quit_key() {
        char buf[64];
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        for (ssize_t i = 0; i < n; ++i)
            if (buf[i] == 'q' || buf[i] == 'Q') return true;
        return false;
    }

    bool tty_;
    bool keys_ = false;
    termios saved_{};
};

// One refresh's question. False with `error`.
bool ask_workers(const std::string& socket, Snapshot& out, std::string& error) {
    std::string line;
    if (!exchange(socket, "workers", line, error)) return false;
    const Json answer = common::parse_untrusted(line);
    if (!as_bool(at(answer, "ok"))) {
        error = answer.is_object() ? explain_refusal(socket, as_string(at(answer, "error")))
                                   : "malformed answer: " + line;
        return false;
    }
    out = snapshot_from_answer(answer, now_ms(), std::time(nullptr));
    return true;
}

int top_loop(Screen& screen, const std::string& socket, double delay_s, long iterations,
             std::string& error) {
    Snapshot baseline;
    Snapshot previous;
    for (long i = 0; iterations == 0 || i < iterations; ++i) {
        Snapshot current;
        if (!ask_workers(socket, current, error)) return 1;
        if (i > 0) baseline = advance_baseline(baseline, previous, current);
        screen.draw(render(baseline, current), i == 0);
        previous = std::move(current);
        if (iterations != 0 && i + 1 == iterations) break;
        if (screen.wait(delay_s * 1000)) break;
    }
    return 0;
}

}  // namespace

int run_top(const std::string& socket, double delay_s, long iterations) {
    catch_quit_signals();
    std::string error;
    int status;
    {
        Screen screen(::isatty(STDOUT_FILENO) != 0);
        status = top_loop(screen, socket, delay_s, iterations, error);
    }
    if (status != 0) std::fprintf(stderr, "proxyctl: %s\n", error.c_str());
    return status;
}

}  // namespace master::proxyctl
