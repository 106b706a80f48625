// Folding counters over workers; the table itself is in common/metrics.h.
#include "common/metrics.h"

namespace common::metrics {

uint64_t Metric::total(const Counters& counters) const {
    const uint64_t* v = values(counters);
    uint64_t sum = 0;
    // A histogram's last value is its sum of observations, not a count.
    const uint32_t n = label.none() ? 1 : labelled_values();
    for (uint32_t i = 0; i < n; ++i) sum += v[i];
    return sum;
}

namespace {

template <typename Predicate>
void add_if(Counters& into, const Counters& from, Predicate wanted) {
    for (const Metric& m : kMetrics) {
        if (!wanted(m)) continue;
        uint64_t* to = m.values(into);
        const uint64_t* add = m.values(from);
        for (uint32_t i = 0; i < m.size(); ++i) to[i] += add[i];
    }
}

}  // namespace

void add_counters(Counters& into, const Counters& from) {
    add_if(into, from, [](const Metric& m) { return m.type != Type::kGauge; });
}

void add_summed(Counters& into, const Counters& from) {
    add_if(into, from, [](const Metric& m) { return m.fold == Fold::kSum; });
}

}  // namespace common::metrics
