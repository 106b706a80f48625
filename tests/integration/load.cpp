#include "tests/integration/load.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <sstream>

namespace loadgen {

namespace {

constexpr size_t kMaxSamples = 8;

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Does the response end the connection (RFC 9112 §9.3)?
bool closes_connection(const harness::HttpResponse& r) {
    std::string connection = lower(r.header("Connection").value_or(""));
    if (connection.find("close") != std::string::npos) return true;
    if (r.version == "HTTP/1.0") return connection.find("keep-alive") == std::string::npos;
    return false;
}

// True when the peer already closed (or reset) an idle connection: a client
// would notice before writing and reconnect.
bool closed_while_idle(int fd, bool* unexpected_data) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    char c;
    ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        *unexpected_data = true;
        return false;
    }
    return n == 0 || (errno != EAGAIN && errno != EINTR);
}

}  // namespace

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::kOk:
            return "ok";
        case Outcome::kConnectError:
            return "connect error";
        case Outcome::kSendError:
            return "send error";
        case Outcome::kClosed:
            return "closed before the response";
        case Outcome::kTimeout:
            return "timeout";
        case Outcome::kBadResponse:
            return "bad response";
        case Outcome::kNon2xx:
            return "non-2xx";
        case Outcome::kBodyMismatch:
            return "body size mismatch";
    }
    return "?";
}

std::string Stats::summary() const {
    std::ostringstream out;
    out << requests << " requests, " << ok() << " ok, " << failed() << " failed";
    for (int i = 1; i < 8; ++i) {
        if (by_outcome[i] != 0) {
            out << " (" << outcome_name(static_cast<Outcome>(i)) << ": " << by_outcome[i] << ")";
        }
    }
    out << "; " << connections_opened << " connections, " << server_closes
        << " closed by Connection: close, " << idle_closes << " found closed while idle";
    for (const auto& s : samples) out << "\n    " << s;
    return out.str();
}

double percentile_ms(std::vector<uint32_t> latencies_us, double p) {
    if (latencies_us.empty()) return 0;
    std::sort(latencies_us.begin(), latencies_us.end());
    size_t index = static_cast<size_t>(p * static_cast<double>(latencies_us.size() - 1) + 0.5);
    return latencies_us[std::min(index, latencies_us.size() - 1)] / 1000.0;
}

struct Load::Client {
    uint16_t id = 0;
    std::vector<Record> records;
    uint64_t connections_opened = 0, server_closes = 0, idle_closes = 0;
    std::vector<std::string> samples;
};

Load::Load(Options options) : options_(std::move(options)) {}

Load::~Load() {
    stop();
}

void Load::start() {
    for (int i = 0; i < options_.connections; ++i) {
        auto c = std::make_unique<Client>();
        c->id = static_cast<uint16_t>(i);
        c->records.reserve(1 << 14);
        clients_.push_back(std::move(c));
    }
    for (auto& c : clients_) threads_.emplace_back([this, client = c.get()] { run(*client); });
}

bool Load::wait_ok(uint64_t n, Millis timeout) {
    uint64_t target = ok_.load() + n;
    return harness::wait_for([&] { return ok_.load() >= target; }, timeout, Millis(5));
}

void Load::run(Client& c) {
    harness::RawClient conn;
    uint32_t connection = 0;
    const auto started = Clock::now();
    while (!stop_.load()) {
        Record r;
        r.start = Clock::now();
        r.client = c.id;
        const auto deadline = r.start + options_.request_timeout;
        auto left = [&] {
            return std::max(Millis(1), std::chrono::duration_cast<Millis>(deadline - Clock::now()));
        };
        std::string detail;

        bool unexpected = false;
        if (conn.connected() && !options_.new_connection_per_request &&
            closed_while_idle(conn.fd(), &unexpected)) {
            ++c.idle_closes;
            conn.close();
        }
        if (unexpected) {
            r.outcome = Outcome::kBadResponse;
            detail = "bytes arrived on an idle keep-alive connection";
        } else if (!conn.connected() || options_.new_connection_per_request) {
            connection = next_connection_.fetch_add(1) + 1;
            ++c.connections_opened;
            if (!conn.connect(options_.port, left())) {
                r.outcome = Outcome::kConnectError;
                detail = "connect refused, failed or timed out";
            }
        }
        r.connection = connection;
        std::optional<harness::HttpResponse> resp;
        if (r.outcome == Outcome::kOk) {
            if (!conn.send(options_.request, left())) {
                r.outcome = Outcome::kSendError;
                detail = "send failed: " + std::string(std::strerror(errno));
            } else {
                resp = conn.read_response(left());
                if (!resp) {
                    if (conn.eof()) {
                        r.outcome = Outcome::kClosed;
                        detail = "closed with " + std::to_string(conn.buffered().size()) +
                                 " bytes of a response";
                    } else if (Clock::now() >= deadline) {
                        r.outcome = Outcome::kTimeout;
                        detail = "no full response within " +
                                 std::to_string(options_.request_timeout.count()) + " ms (" +
                                 std::to_string(conn.buffered().size()) + " bytes)";
                    } else {
                        r.outcome = Outcome::kBadResponse;
                        detail = "unparsable: " + conn.buffered().substr(0, 80);
                    }
                }
            }
        }
        if (resp) {
            r.status = resp->status;
            if (resp->status < 200 || resp->status > 299) {
                r.outcome = Outcome::kNon2xx;
                detail = "status " + std::to_string(resp->status) + ": " + resp->body.substr(0, 80);
            } else if (options_.expect_body_size != std::numeric_limits<size_t>::max() &&
                       resp->body.size() != options_.expect_body_size) {
                r.outcome = Outcome::kBodyMismatch;
                detail = "body of " + std::to_string(resp->body.size()) + " bytes";
            }
        }
        const auto end = Clock::now();
        r.latency_us = static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(end - r.start).count());
        c.records.push_back(r);
        ++requests_;
        if (r.outcome == Outcome::kOk) {
            ++ok_;
        } else {
            ++failures_;
            if (c.samples.size() < kMaxSamples) {
                c.samples.push_back(
                    "client " + std::to_string(c.id) + " connection " + std::to_string(connection) +
                    " at +" +
                    std::to_string(std::chrono::duration_cast<Millis>(r.start - started).count()) +
                    " ms: " + outcome_name(r.outcome) + ": " + detail);
            }
        }
        const bool keep = r.outcome == Outcome::kOk || r.outcome == Outcome::kNon2xx ||
                          r.outcome == Outcome::kBodyMismatch;
        if (!keep || options_.new_connection_per_request) {
            conn.close();
        } else if (resp && closes_connection(*resp)) {
            ++c.server_closes;
            conn.close();
        }
        if (r.outcome == Outcome::kConnectError) std::this_thread::sleep_for(Millis(10));
        if (options_.pause.count() > 0) std::this_thread::sleep_for(options_.pause);
    }
}

Stats Load::stop() {
    if (stopped_) return totals_;
    stop_ = true;
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
    stopped_ = true;
    for (auto& c : clients_) {
        all_records_.insert(all_records_.end(), c->records.begin(), c->records.end());
    }
    totals_ = stats_of(all_records_);
    for (auto& c : clients_) {
        totals_.connections_opened += c->connections_opened;
        totals_.server_closes += c->server_closes;
        totals_.idle_closes += c->idle_closes;
        for (auto& s : c->samples) {
            if (totals_.samples.size() < kMaxSamples) totals_.samples.push_back(s);
        }
    }
    return totals_;
}

std::vector<Record> Load::window(Clock::time_point from, Clock::time_point to) const {
    std::vector<Record> out;
    for (const Record& r : all_records_) {
        if (r.start >= from && r.start < to) out.push_back(r);
    }
    return out;
}

Stats Load::stats_of(const std::vector<Record>& records) {
    Stats s;
    for (const Record& r : records) {
        ++s.requests;
        ++s.by_outcome[static_cast<int>(r.outcome)];
    }
    return s;
}

std::string get_request(const harness::HttpOrigin& origin, const std::string& path) {
    return "GET " + origin.url(path) + " HTTP/1.1\r\nHost: " + origin.host_port() + "\r\n\r\n";
}

}  // namespace loadgen
