// The exchange record: one per HTTP request, CONNECT or SOCKS connect,
// filled along the way by the protocol and the pipeline (who asked, on which
// listener, for what, by which route, what came of it, how many bytes, how
// long) and consumed once, by finish(), which counts its error class and
// writes its access-log line (in the configured format: access_log.h); its
// metrics are counted there too (exchange_metrics.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "worker/pipeline_types.h"

namespace worker {

struct WorkerContext;

// version_minor of a SOCKS connect, and of an HTTP request line that was
// cut short or had no readable version (its method and target are what
// arrived).
constexpr int kNotHttp = -1;
constexpr int kNoVersion = -2;

struct ExchangeRecord {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    // The session's text and its listener's name, which outlive the record:
    // views, not a copy per request.
    std::string_view client;    // "address:port"
    std::string_view listener;  // the [listen NAME] that accepted the client
    std::string user;           // authenticated user; empty: none
    std::string method;         // "GET", "CONNECT", "SOCKS5", "SOCKS4"; "-" when unreadable
    std::string target;         // as the client wrote it (HTTP) or "host:port" (SOCKS)
    std::string referer;        // the request's Referer and User-Agent, for the access log
    std::string user_agent;
    int version_minor = 1;  // kNotHttp, kNoVersion, or HTTP/1.<minor>
    std::string route;      // Route::name() once routed
    std::string upstream;   // the peer's address once connected
    int status = 0;         // HTTP status (or the status the same outcome gets over HTTP)
    uint64_t bytes_from_client = 0;
    uint64_t bytes_to_client = 0;
    uint64_t bytes_from_upstream = 0;  // heads and bodies read from the upstream
    uint64_t bytes_to_upstream = 0;    // heads and bodies written to it
    std::optional<RefusalCause> refusal;
    std::string reason;  // why it was refused or ended abnormally
    std::optional<uint32_t> error_class;

    // Records a refusal: its status, detail and error class.
    void refuse(const Refusal& refusal);
    // Records an abnormal end of class `error_class` (common::channel).
    void fail(uint32_t error_class, std::string why);
    // Counts the error class (if any) and the exchange's metrics, and writes
    // the access-log line, once; later calls do nothing.
    void finish(WorkerContext& context);

  private:
    bool finished_ = false;
};

}  // namespace worker
