// A small load generator for the integration tests: N client threads, each
// sending one fixed request after another through the proxy over a
// keep-alive connection (or a new connection per request), every request
// bounded by a timeout, every outcome counted, so a test can assert "zero
// failed requests" precisely.
//
//   loadgen::Options o;
//   o.port = proxy.listener_port();
//   o.request = loadgen::get_request(origin, "/bytes/100");
//   o.expect_body_size = 100;
//   loadgen::Load load(o);
//   load.start();
//   ... faults ...
//   loadgen::Stats s = load.stop();
//   EXPECT_EQ(s.failed(), 0u) << s.summary();
//
// What counts as a failure: a connect that fails or times out, a send that
// fails, the connection closing or resetting after the request was sent and
// before the full response arrived, the per-request timeout, an unparsable
// response, a status outside 2xx, or a body of the wrong size.
//
// What does not: the proxy answering with "Connection: close" (the client
// closes and reconnects, as every HTTP client does) and a keep-alive
// connection found already closed by the proxy *before* the next request is
// written (checked with a non-blocking peek; a client would reconnect
// silently). Both are counted (server_closes, idle_closes) for the log.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace loadgen {

using harness::Clock;
using harness::Millis;

struct Options {
    uint16_t port = 0;             // the proxy's listener, on 127.0.0.1
    std::string request;           // sent as is, again and again (keep-alive unless it says close)
    int connections = 4;           // concurrent clients, one thread each
    Millis request_timeout{2000};  // connect + send + full response
    bool new_connection_per_request = false;
    // Checked when not SIZE_MAX: a 2xx body of another size is a failure.
    size_t expect_body_size = std::numeric_limits<size_t>::max();
    // Sleep between two requests of one client (0: back to back).
    Millis pause{0};
};

enum class Outcome : uint8_t {
    kOk,
    kConnectError,
    kSendError,
    kClosed,  // EOF or reset after the request was sent, before a full response
    kTimeout,
    kBadResponse,
    kNon2xx,
    kBodyMismatch,
};
const char* outcome_name(Outcome o);

// One request as the client saw it.
struct Record {
    Clock::time_point start;
    uint32_t latency_us = 0;
    uint32_t connection = 0;  // a load-wide serial number of the TCP connection
    uint16_t client = 0;      // the client thread
    Outcome outcome = Outcome::kOk;
    int status = 0;
};

struct Stats {
    uint64_t requests = 0;
    uint64_t by_outcome[8] = {};
    uint64_t connections_opened = 0;
    uint64_t server_closes = 0;        // answered with Connection: close (or HTTP/1.0), reconnected
    uint64_t idle_closes = 0;          // found closed before writing the next request, reconnected
    std::vector<std::string> samples;  // the first few failures, described

    uint64_t ok() const { return by_outcome[0]; }
    uint64_t failed() const { return requests - ok(); }
    std::string summary() const;
};

// p-quantile (0..1) of the latencies in milliseconds; 0 when empty.
double percentile_ms(std::vector<uint32_t> latencies_us, double p);

class Load {
  public:
    explicit Load(Options options);
    ~Load();  // stop()
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;

    void start();
    // Stops every client (each finishes or times out its current request),
    // joins the threads, returns the totals. Safe to call more than once.
    Stats stop();

    // Live counters, while running.
    uint64_t requests() const { return requests_.load(); }
    uint64_t failures() const { return failures_.load(); }
    // Waits until at least n more requests completed successfully.
    bool wait_ok(uint64_t n, Millis timeout);

    // After stop(): every request, ordered by client then time.
    const std::vector<Record>& records() const { return all_records_; }
    // After stop(): records whose request started in [from, to).
    std::vector<Record> window(Clock::time_point from, Clock::time_point to) const;
    // After stop(): totals computed over `records`.
    static Stats stats_of(const std::vector<Record>& records);

  private:
    struct Client;
    void run(Client& c);

    Options options_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> requests_{0}, failures_{0}, ok_{0};
    std::atomic<uint32_t> next_connection_{0};
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<std::thread> threads_;
    std::vector<Record> all_records_;
    Stats totals_;
    bool stopped_ = false;
};

// "GET http://127.0.0.1:PORT<path> HTTP/1.1" with Host, keep-alive.
std::string get_request(const harness::HttpOrigin& origin, const std::string& path);

}  // namespace loadgen
