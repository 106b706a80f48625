// The worker metrics, declared once. Every statistic a worker counts is one
// line of PROXYD_WORKER_METRICS; from that line come
//   - its field in worker::Counters, which sessions increment
//     (`context_.counters.requests++`, `counters.errors[kErrDenied]++`),
//   - its place in the channel's Report (common/channel.h), which carries a
//     whole Counters,
//   - its fields in the control socket's `workers` and `stats` answers and in
//     proxyctl's tables (master/supervisor.cpp, master/proxyctl.cpp iterate
//     kMetrics),
//   - and, later, its Prometheus family: name, TYPE, HELP and label.
// The same idea as HAProxy's stats field table: one {name, description}
// declaration feeds every output format.
//
// Adding a counter: one X(...) line below, plus its increment in the worker.
// Nothing in master/ changes; the Report grows and its layout fingerprint
// (kLayout) changes with it, so a master never decodes a record written
// against another table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "common/error_class.h"

namespace common::metrics {

enum class Type : uint8_t {
    kCounter,  // only goes up while a worker lives; an exited worker's count is kept
    kGauge,    // a current value; gone with the worker
};

// How the master folds one metric over all workers in the `stats` answer.
enum class Fold : uint8_t {
    kSum,   // the total over workers (counters: exited workers included)
    kNone,  // per worker only: a sum would mean nothing (loop lag) or lie (RSS
            // counts the pages the workers share once per worker)
};

// A metric with a label holds one value per label value, e.g. errors by
// class; `values` names them ("denied").
struct Label {
    const char* name = nullptr;  // nullptr: the metric has a single value
    uint32_t count = 0;
    const char* (*values)(uint32_t index) = nullptr;
};
inline constexpr Label kNoLabel{};
inline constexpr Label kErrorClass{"class", channel::kErrorClassCount, &channel::error_class_name};

// A column of proxyctl's worker table, or none.
struct Column {
    const char* heading = nullptr;
    int width = 0;
};
constexpr Column column(const char* heading, int width) {
    return Column{heading, width};
}
inline constexpr Column kNoColumn{};

// X(name, Type, Fold, Label, Column, help)
//   name:   C++ field, channel field and JSON field; snake_case, a valid
//           Prometheus name; a name ending in _bytes is shown as a size.
//   help:   one sentence, printed as Prometheus `# HELP`.
// Order is the order of the JSON fields (and so of `proxyctl stats` lines)
// and of proxyctl's columns.
#define PROXYD_WORKER_METRICS(X)                                                                 \
    X(active_sessions, kGauge, kSum, kNoLabel, column("ACTIVE", 7),                              \
      "Client connections the worker is serving now.")                                           \
    X(total_sessions, kCounter, kSum, kNoLabel, column("TOTAL", 9),                              \
      "Client sessions the worker has opened: connections that passed the client ACL.")          \
    X(requests, kCounter, kSum, kNoLabel, kNoColumn,                                             \
      "Requests received from clients: HTTP requests, CONNECT included, and SOCKS connects.")    \
    X(tunnels, kCounter, kSum, kNoLabel, kNoColumn,                                              \
      "Byte tunnels opened to an upstream for HTTP CONNECT or SOCKS.")                           \
    X(accepts, kCounter, kSum, kNoLabel, kNoColumn,                                              \
      "Connections accepted on the listeners, including those the client ACL then refused.")     \
    X(bytes_in, kCounter, kSum, kNoLabel, kNoColumn, "Bytes read from clients and upstreams.")   \
    X(bytes_out, kCounter, kSum, kNoLabel, kNoColumn, "Bytes written to clients and upstreams.") \
    X(rss_bytes, kGauge, kNone, kNoLabel, column("RSS", 8),                                      \
      "Resident memory of the worker process, read when it reports.")                            \
    X(loop_lag_us, kGauge, kNone, kNoLabel, kNoColumn,                                           \
      "Microseconds the worker's last heartbeat timer fired late: how long its event loop "      \
      "was busy before it could serve an event.")                                                \
    X(errors, kCounter, kSum, kErrorClass, kNoColumn,                                            \
      "Errors the worker answered or closed a connection on, by class.")

namespace detail {
// A metric without a label is one uint64_t (so `counters.requests++` reads
// naturally); one with a label is an array indexed by the label value.
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
#define PROXYD_METRIC_FIELD(name_m, type_m, fold_m, label_m, column_m, help_m) \
    detail::Storage<label_m.count>::type name_m{};
    PROXYD_WORKER_METRICS(PROXYD_METRIC_FIELD)
#undef PROXYD_METRIC_FIELD
};

struct Metric {
    std::string_view name;
    Type type;
    Fold fold;
    Label label;
    Column column;
    std::string_view help;
    uint64_t* (*field)(Counters&);
    const uint64_t* (*const_field)(const Counters&);

    // How many values: 1, or one per label value.
    constexpr uint32_t size() const { return label.name == nullptr ? 1 : label.count; }
    // The metric's values inside `counters`: size() of them.
    uint64_t* values(Counters& counters) const { return field(counters); }
    const uint64_t* values(const Counters& counters) const { return const_field(counters); }
    // The sum over the label values (the value itself when unlabelled).
    uint64_t total(const Counters& counters) const;
};

inline constexpr Metric kMetrics[] = {
#define PROXYD_METRIC_ENTRY(name_m, type_m, fold_m, label_m, column_m, help_m) \
    Metric{#name_m,                                                            \
           Type::type_m,                                                       \
           Fold::fold_m,                                                       \
           label_m,                                                            \
           column_m,                                                           \
           help_m,                                                             \
           [](Counters& c) -> uint64_t* { return detail::first(c.name_m); },   \
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

// Adds the counters (Type::kCounter) of `from` to `into`: what a worker that
// exited had counted still belongs in the totals; its gauges do not.
void add_counters(Counters& into, const Counters& from);
// Adds every metric folded by Fold::kSum: a live worker's share of `stats`.
void add_summed(Counters& into, const Counters& from);

}  // namespace common::metrics
