// The worker metrics, declared once. Every statistic a worker counts is one
// line of PROXYD_WORKER_METRICS; from that line come
//   - its field in worker::Counters, which sessions increment
//     (`context_.counters.requests++`, `counters.errors[kErrDenied]++`),
//   - its place in the channel's Report (common/channel.h), which carries a
//     whole Counters,
//   - its fields in the control socket's `workers` and `stats` answers and in
//     proxyctl's tables (master/supervisor.cpp, master/proxyctl.cpp iterate
//     kMetrics),
//   - and its Prometheus family (master/prometheus.cpp): name, TYPE, HELP and
//     labels.
// The same idea as HAProxy's stats field table: one {name, description}
// declaration feeds every output format.
//
// Adding a counter: one X(...) line below, plus its increment in the worker.
// Nothing in master/ changes; the Report grows and its layout fingerprint
// (kLayout) changes with it, so a master never decodes a record written
// against another table.
//
// Labels: a metric has none, one dimension (errors by class) or two
// (requests by protocol and status class); a two-dimensional metric is
// stored row by row, first dimension outer. A histogram has one dimension,
// its buckets (`le`), counted per bucket (not cumulatively: a worker adds 1
// to one bucket) and followed by one more value, the sum of the
// observations in microseconds; the master sums workers' buckets and makes
// them cumulative only when it renders them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "common/error_class.h"
#include "common/metric_labels.h"

namespace common::metrics {

enum class Type : uint8_t {
    kCounter,    // only goes up while a worker lives; an exited worker's count is kept
    kGauge,      // a current value; gone with the worker
    kHistogram,  // buckets then a sum (see above); kept like a counter
};

// How the master folds one metric over all workers in the `stats` answer.
enum class Fold : uint8_t {
    kSum,   // the total over workers (counters: exited workers included)
    kNone,  // per worker only: a sum would mean nothing (loop lag) or lie (RSS
            // counts the pages the workers share once per worker)
};

// One dimension of a label: its name and its `count` values, which
// `values` names ("denied").
struct Dimension {
    const char* name = nullptr;  // nullptr: no such dimension
    uint32_t count = 1;
    const char* (*values)(uint32_t index) = nullptr;
};

// A metric's labels: none, one dimension, or two. A labelled metric holds
// one value per combination: index = first * second.count + second.
struct Label {
    Dimension first{};
    Dimension second{};

    constexpr bool none() const { return first.name == nullptr; }
    constexpr bool two() const { return second.name != nullptr; }
    // Label combinations: 0 when unlabelled.
    constexpr uint32_t count() const { return none() ? 0 : first.count * second.count; }
};
inline constexpr Label kNoLabel{};
inline constexpr Label kErrorClass{
    {"class", channel::kErrorClassCount, &channel::error_class_name}};
inline constexpr Label kProtocolStatus{{"protocol", kProtocolCount, &protocol_name},
                                       {"class", kStatusClassCount, &status_class_name}};
inline constexpr Label kDirection{{"direction", kDirectionCount, &direction_name}};
inline constexpr Label kConnectError{{"class", kConnectErrorCount, &connect_error_name}};
inline constexpr Label kDurationBuckets{{"le", kDurationBucketCount, &duration_bucket_name}};
inline constexpr Label kRedisLatencyBuckets{
    {"le", kRedisLatencyBucketCount, &redis_latency_bucket_name}};

// The uint64_t values a metric holds; 0 means a single plain uint64_t.
constexpr uint32_t slots(Type type, Label label) {
    return label.count() + (type == Type::kHistogram ? 1 : 0);
}

// A column of proxyctl's worker table, or none.
struct Column {
    const char* heading = nullptr;
    int width = 0;
};
constexpr Column column(const char* heading, int width) {
    return Column{heading, width};
}
inline constexpr Column kNoColumn{};

// X(name, family, Type, Fold, Label, Column, help)
//   name:   C++ field, channel field and JSON field; snake_case.
//   family: the Prometheus family without its "proxyd_" prefix and the
//           "_total" of a counter (total_sessions -> "sessions" ->
//           proxyd_sessions_total), or nullptr: not exported (superseded by
//           a finer metric, or per worker only).
//   help:   one sentence, printed as Prometheus `# HELP`.
// Order is the order of the JSON fields (and so of `proxyctl stats` lines),
// of proxyctl's columns and of the Prometheus families.
#define PROXYD_WORKER_METRICS(X)                                                                   \
    X(active_sessions, "active_sessions", kGauge, kSum, kNoLabel, column("ACTIVE", 7),             \
      "Client connections the workers are serving now.")                                           \
    X(total_sessions, "sessions", kCounter, kSum, kNoLabel, column("TOTAL", 9),                    \
      "Client sessions the workers have opened: connections that passed the client ACL.")          \
    X(requests, nullptr, kCounter, kSum, kNoLabel, kNoColumn,                                      \
      "Requests received from clients: HTTP requests, CONNECT included, and SOCKS connects.")      \
    X(tunnels, "tunnels", kCounter, kSum, kNoLabel, kNoColumn,                                     \
      "Byte tunnels opened to an upstream for HTTP CONNECT or SOCKS.")                             \
    X(accepts, "accepts", kCounter, kSum, kNoLabel, kNoColumn,                                     \
      "Connections accepted on the listeners, including those the client ACL then refused.")       \
    X(bytes_in, nullptr, kCounter, kSum, kNoLabel, kNoColumn,                                      \
      "Bytes read from clients and upstreams.")                                                    \
    X(bytes_out, nullptr, kCounter, kSum, kNoLabel, kNoColumn,                                     \
      "Bytes written to clients and upstreams.")                                                   \
    X(rss_bytes, nullptr, kGauge, kNone, kNoLabel, column("RSS", 8),                               \
      "Resident memory of the worker process, read when it reports.")                              \
    X(loop_lag_us, nullptr, kGauge, kNone, kNoLabel, kNoColumn,                                    \
      "Microseconds the worker's last heartbeat timer fired late: how long its event loop "        \
      "was busy before it could serve an event.")                                                  \
    X(errors, "errors", kCounter, kSum, kErrorClass, kNoColumn,                                    \
      "Errors the workers answered or closed a connection on, by class.")                          \
    X(exchanges, "requests", kCounter, kSum, kProtocolStatus, kNoColumn,                           \
      "Finished requests (HTTP requests, CONNECTs, SOCKS connects) by protocol and status "        \
      "class; SOCKS replies are classed by the status the same outcome gets over HTTP.")           \
    X(exchange_bytes, "bytes", kCounter, kSum, kDirection, kNoColumn,                              \
      "Bytes of finished requests by direction: from and to clients, from and to upstreams.")      \
    X(request_duration, "request_duration_seconds", kHistogram, kSum, kDurationBuckets, kNoColumn, \
      "Duration of finished requests from the first byte of the request to the end of the "        \
      "exchange; for CONNECT and SOCKS that is the tunnel's life.")                                \
    X(upstream_connect_errors, "upstream_connect_errors", kCounter, kSum, kConnectError,           \
      kNoColumn, "Requests that failed to connect to their destination or parent, by class.")      \
    X(redis_up, "redis_up", kGauge, kSum, kNoLabel, kNoColumn,                                     \
      "Workers connected to the cluster's Redis ([cluster] redis); 0 when it is off or down.")     \
    X(redis_commands, "redis_commands", kCounter, kSum, kNoLabel, kNoColumn,                       \
      "Commands sent to the cluster's Redis.")                                                     \
    X(redis_errors, "redis_errors", kCounter, kSum, kNoLabel, kNoColumn,                           \
      "Redis failures: connections refused, lost or timed out, and error replies.")                \
    X(redis_reconnects, "redis_reconnects", kCounter, kSum, kNoLabel, kNoColumn,                   \
      "Connections to the cluster's Redis made again after one was lost.")                         \
    X(cluster_fallbacks, "cluster_fallbacks", kCounter, kSum, kNoLabel, kNoColumn,                 \
      "Decisions taken from this node's table because Redis was down (on_redis_down = local).")    \
    X(cluster_denials, "cluster_denials", kCounter, kSum, kNoLabel, kNoColumn,                     \
      "Requests refused because Redis was down (on_redis_down = deny).")                           \
    X(redis_latency, "redis_latency_seconds", kHistogram, kSum, kRedisLatencyBuckets, kNoColumn,   \
      "Round trip of the commands answered by the cluster's Redis.")

namespace detail {
// A metric without a label is one uint64_t (so `counters.requests++` reads
// naturally); one with a label is an array indexed by the label value (a
// histogram's has its sum last).
template <uint32_t N>
struct Storage {
    using type = uint64_t[N];
};
template <>
struct Storage<0> {
    using type = uint64_t;
};
constexpr uint64_t* first(uint64_t& value) {
    return &value;
}
constexpr const uint64_t* first(const uint64_t& value) {
    return &value;
}
template <size_t N>
constexpr uint64_t* first(uint64_t (&values)[N]) {
    return values;
}
template <size_t N>
constexpr const uint64_t* first(const uint64_t (&values)[N]) {
    return values;
}
}  // namespace detail

// Everything a worker counts; copied whole into each report. Only uint64_t
// fields, so the struct has no padding and the record no uninitialized bytes.
struct Counters {
// (Macro parameters end in _m so that none of them captures `::type`.)
#define PROXYD_METRIC_FIELD(name_m, family_m, type_m, fold_m, label_m, column_m, help_m) \
    detail::Storage<slots(Type::type_m, label_m)>::type name_m{};
    PROXYD_WORKER_METRICS(PROXYD_METRIC_FIELD)
#undef PROXYD_METRIC_FIELD
};

struct Metric {
    std::string_view name;
    const char* family;  // nullptr: not exported to Prometheus
    Type type;
    Fold fold;
    Label label;
    Column column;
    std::string_view help;
    uint64_t* (*field)(Counters&);
    const uint64_t* (*const_field)(const Counters&);

    // How many values: 1, or one per label combination (and a histogram's sum).
    constexpr uint32_t size() const { return label.none() ? 1 : slots(type, label); }
    // How many label combinations: 0 when unlabelled.
    constexpr uint32_t labelled_values() const { return label.count(); }
    // The label values of combination `index` (< labelled_values()): the
    // second is nullptr for a one-dimensional label.
    const char* first_value(uint32_t index) const {
        return label.first.values(index / label.second.count);
    }
    const char* second_value(uint32_t index) const {
        return label.two() ? label.second.values(index % label.second.count) : nullptr;
    }
    // The metric's values inside `counters`: size() of them.
    uint64_t* values(Counters& counters) const { return field(counters); }
    const uint64_t* values(const Counters& counters) const { return const_field(counters); }
    // The sum over the label values (the value itself when unlabelled; a
    // histogram's count of observations).
    uint64_t total(const Counters& counters) const;
};

inline constexpr Metric kMetrics[] = {
#define PROXYD_METRIC_ENTRY(name_m, family_m, type_m, fold_m, label_m, column_m, help_m) \
    Metric{#name_m,                                                                      \
           family_m,                                                                     \
           Type::type_m,                                                                 \
           Fold::fold_m,                                                                 \
           label_m,                                                                      \
           column_m,                                                                     \
           help_m,                                                                       \
           [](Counters& c) -> uint64_t* { return detail::first(c.name_m); },             \
           [](const Counters& c) -> const uint64_t* { return detail::first(c.name_m); }},
    PROXYD_WORKER_METRICS(PROXYD_METRIC_ENTRY)
#undef PROXYD_METRIC_ENTRY
};

// Values over all metrics (a labelled metric counts once per label value).
constexpr size_t value_count() {
    size_t n = 0;
    for (const Metric& m : kMetrics) n += m.size();
    return n;
}
static_assert(sizeof(Counters) == value_count() * sizeof(uint64_t), "Counters must not pad");
static_assert(std::is_trivially_copyable_v<Counters> && std::is_standard_layout_v<Counters>);

// A fingerprint of the table (names, types, sizes, in order). The channel
// checks it, so a report from a binary with another table is refused as a
// version mismatch instead of being read with the fields shifted.
constexpr uint32_t layout_fingerprint() {
    uint32_t hash = 2166136261u;  // FNV-1a
    auto mix = [&hash](uint32_t byte) {
        hash ^= byte & 0xff;
        hash *= 16777619u;
    };
    for (const Metric& m : kMetrics) {
        for (char c : m.name) mix(static_cast<unsigned char>(c));
        mix(static_cast<uint32_t>(m.type));
        mix(m.size());
        mix(m.size() >> 8);
    }
    return hash;
}
inline constexpr uint32_t kLayout = layout_fingerprint();

// Adds the counters and histograms of `from` to `into`: what a worker that
// exited had counted still belongs in the totals; its gauges do not.
void add_counters(Counters& into, const Counters& from);
// Adds every metric folded by Fold::kSum: a live worker's share of `stats`.
void add_summed(Counters& into, const Counters& from);

}  // namespace common::metrics
