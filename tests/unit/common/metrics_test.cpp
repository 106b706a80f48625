// The metric table: complete, consistent, and enough for a Prometheus
// exposition (names, types, help, label names and values).
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cctype>
#include <regex>
#include <set>
#include <string>

#include "common/channel.h"

namespace common::metrics {
namespace {

const Metric* find(std::string_view name) {
    for (const Metric& m : kMetrics) {
        if (m.name == name) return &m;
    }
    return nullptr;
}

// Distinct values everywhere: metric k, label value i holds 1000 * (k + 1) + i.
Counters distinct() {
    Counters c;
    uint64_t k = 0;
    for (const Metric& m : kMetrics) {
        ++k;
        for (uint32_t i = 0; i < m.size(); ++i) m.values(c)[i] = 1000 * k + i;
    }
    return c;
}

TEST(Metrics, NamesAreUniqueAndValidPrometheusNames) {
    const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
    const std::regex label_name("[a-zA-Z_][a-zA-Z0-9_]*");
    std::set<std::string_view> names;
    std::set<std::string_view> families;
    for (const Metric& m : kMetrics) {
        EXPECT_TRUE(std::regex_match(std::string(m.name), metric_name)) << m.name;
        EXPECT_TRUE(names.insert(m.name).second) << "duplicate " << m.name;
        if (m.family != nullptr) {
            EXPECT_TRUE(std::regex_match(m.family, label_name)) << m.name;
            EXPECT_TRUE(families.insert(m.family).second) << "duplicate family " << m.family;
        }
        for (const Dimension& d : {m.label.first, m.label.second}) {
            if (d.name == nullptr) continue;
            // "__" starts the names Prometheus reserves for itself.
            EXPECT_TRUE(std::regex_match(d.name, label_name)) << m.name;
            EXPECT_NE(std::string(d.name).rfind("__", 0), 0u) << m.name;
        }
        // A histogram's buckets are its `le` label and nothing else.
        if (m.type == Type::kHistogram) {
            EXPECT_STREQ(m.label.first.name, "le") << m.name;
            EXPECT_FALSE(m.label.two()) << m.name;
        }
    }
}

TEST(Metrics, EveryMetricIsDescribed) {
    for (const Metric& m : kMetrics) {
        // A sentence for `# HELP`: capitalized, ends with a period, one line.
        ASSERT_GT(m.help.size(), 10u) << m.name;
        EXPECT_TRUE(std::isupper(static_cast<unsigned char>(m.help.front()))) << m.name;
        EXPECT_EQ(m.help.back(), '.') << m.name;
        EXPECT_EQ(m.help.find('\n'), std::string_view::npos) << m.name;
        for (const Dimension& d : {m.label.first, m.label.second}) {
            if (d.name == nullptr) continue;
            ASSERT_GT(d.count, 0u) << m.name;
            ASSERT_NE(d.values, nullptr) << m.name;
            std::set<std::string> values;
            for (uint32_t i = 0; i < d.count; ++i) {
                EXPECT_TRUE(values.insert(d.values(i)).second) << m.name << " " << i;
            }
        }
        if (m.column.heading != nullptr) {
            EXPECT_GT(m.column.width, 0) << m.name;
        }
    }
}

TEST(Metrics, HoldsTodaysWorkerCounters) {
    struct Expected {
        const char* name;
        Type type;
    };
    for (Expected e : {Expected{"active_sessions", Type::kGauge},
                       {"total_sessions", Type::kCounter},
                       {"requests", Type::kCounter},
                       {"tunnels", Type::kCounter},
                       {"bytes_in", Type::kCounter},
                       {"bytes_out", Type::kCounter},
                       {"accepts", Type::kCounter},
                       {"rss_bytes", Type::kGauge},
                       {"loop_lag_us", Type::kGauge},
                       {"errors", Type::kCounter}}) {
        const Metric* m = find(e.name);
        ASSERT_NE(m, nullptr) << e.name;
        EXPECT_EQ(m->type, e.type) << e.name;
    }
    const Metric* errors = find("errors");
    EXPECT_STREQ(errors->label.first.name, "class");
    EXPECT_EQ(errors->size(), channel::kErrorClassCount);
    EXPECT_STREQ(errors->first_value(channel::kErrDenied), "denied");
}

// The finished exchanges: two dimensions stored row by row, the histogram
// with its sum after the buckets.
TEST(Metrics, HoldsTheExchangeMetrics) {
    const Metric* exchanges = find("exchanges");
    ASSERT_NE(exchanges, nullptr);
    EXPECT_EQ(exchanges->size(), kProtocolCount * kStatusClassCount);
    const uint32_t socks_5xx = kProtocolSocks * kStatusClassCount + kStatus5xx;
    EXPECT_STREQ(exchanges->first_value(socks_5xx), "socks");
    EXPECT_STREQ(exchanges->second_value(socks_5xx), "5xx");
    Counters c;
    c.exchanges[socks_5xx] = 4;
    EXPECT_EQ(exchanges->values(c)[socks_5xx], 4u);

    const Metric* duration = find("request_duration");
    ASSERT_NE(duration, nullptr);
    EXPECT_EQ(duration->type, Type::kHistogram);
    EXPECT_EQ(duration->size(), kDurationBucketCount + 1);
    c.request_duration[0] = 2;
    c.request_duration[kDurationBucketCount - 1] = 1;
    c.request_duration[kDurationBucketCount] = 999'999;  // the sum, not a count
    EXPECT_EQ(duration->total(c), 3u);
    EXPECT_STREQ(duration->first_value(kDurationBucketCount - 1), "+Inf");
    EXPECT_EQ(duration->second_value(0), nullptr);
}

TEST(Metrics, ClassesStatusesAndDurations) {
    EXPECT_EQ(status_class(0), kStatusOther);
    EXPECT_EQ(status_class(99), kStatusOther);
    EXPECT_EQ(status_class(100), kStatus1xx);
    EXPECT_EQ(status_class(204), kStatus2xx);
    EXPECT_EQ(status_class(308), kStatus3xx);
    EXPECT_EQ(status_class(407), kStatus4xx);
    EXPECT_EQ(status_class(599), kStatus5xx);
    EXPECT_EQ(status_class(600), kStatusOther);
    // "less than or equal": 5 ms exactly is in the first bucket.
    EXPECT_EQ(duration_bucket(0), 0u);
    EXPECT_EQ(duration_bucket(5'000), 0u);
    EXPECT_EQ(duration_bucket(5'001), 1u);
    EXPECT_EQ(duration_bucket(300'000'000), kDurationBucketCount - 2);
    EXPECT_EQ(duration_bucket(300'000'001), kDurationBucketCount - 1);
}

// The table's accessors cover every byte of Counters exactly once, so a
// field is neither missed nor aliased by the loops that copy and fold.
TEST(Metrics, AccessorsCoverCountersExactly) {
    Counters c;
    std::set<const uint64_t*> seen;
    for (const Metric& m : kMetrics) {
        for (uint32_t i = 0; i < m.size(); ++i) {
            const uint64_t* p = m.values(c) + i;
            EXPECT_TRUE(seen.insert(p).second) << m.name;
            EXPECT_GE(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(&c));
            EXPECT_LT(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(&c + 1));
        }
    }
    EXPECT_EQ(seen.size() * sizeof(uint64_t), sizeof(Counters));
    // The named fields the worker increments are the table's.
    c.requests = 7;
    c.errors[channel::kErrTimeout] = 9;
    EXPECT_EQ(find("requests")->values(c)[0], 7u);
    EXPECT_EQ(find("errors")->values(c)[channel::kErrTimeout], 9u);
    EXPECT_EQ(find("errors")->total(c), 9u);
}

TEST(Metrics, FoldsCountersAndSummedGauges) {
    const Counters a = distinct();
    Counters retired;
    add_counters(retired, a);
    Counters live;
    add_summed(live, a);
    add_summed(live, a);
    for (const Metric& m : kMetrics) {
        for (uint32_t i = 0; i < m.size(); ++i) {
            const uint64_t v = m.values(a)[i];
            EXPECT_EQ(m.values(retired)[i], m.type != Type::kGauge ? v : 0) << m.name;
            EXPECT_EQ(m.values(live)[i], m.fold == Fold::kSum ? 2 * v : 0) << m.name;
        }
    }
}

TEST(Metrics, TheReportCarriesEveryMetric) {
    channel::Report r = channel::make_report();
    r.pid = 1;
    r.counters = distinct();
    channel::Report out{};
    ASSERT_EQ(channel::decode_report(&r, sizeof r, out), channel::DecodeStatus::kOk);
    for (const Metric& m : kMetrics) {
        for (uint32_t i = 0; i < m.size(); ++i) {
            EXPECT_EQ(m.values(out.counters)[i], m.values(r.counters)[i]) << m.name;
        }
    }
    EXPECT_EQ(r.layout, kLayout);
}

}  // namespace
}  // namespace common::metrics
