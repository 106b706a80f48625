#include "master/worker_pool.h"

#include <algorithm>
#include <cmath>

namespace master {

namespace {

double capacity(int workers, uint64_t per_worker) {
    return static_cast<double>(workers) * static_cast<double>(per_worker);
}

// The fewest workers that hold `sessions` at kGrowAbove of their capacity.
int workers_for(uint64_t sessions, uint64_t per_worker) {
    const double needed =
        static_cast<double>(sessions) / (kGrowAbove * static_cast<double>(per_worker));
    return static_cast<int>(std::min(std::ceil(needed), 1e6));
}

}  // namespace

int WorkerPool::plan(const PoolLoad& load, Clock::time_point now,
                     std::chrono::milliseconds interval) {
    const uint64_t rise = last_sessions_ && load.active_sessions > *last_sessions_
                              ? load.active_sessions - *last_sessions_
                              : 0;
    last_sessions_ = load.active_sessions;
    const int count = std::clamp(load.workers, load.min, load.max);
    if (count != load.workers || load.capacity_per_worker == 0) {
        low_since_.reset();
        return count;
    }
    const uint64_t expected = load.active_sessions + rise * kTicksAhead;
    if (static_cast<double>(expected) > kGrowAbove * capacity(count, load.capacity_per_worker)) {
        low_since_.reset();
        const int wanted = workers_for(expected, load.capacity_per_worker);
        return std::clamp(std::max(wanted, count + 1), load.min, load.max);
    }
    const auto sessions = static_cast<double>(load.active_sessions);
    const bool low = count > load.min &&
                     sessions <= kShrinkBelow * capacity(count - 1, load.capacity_per_worker);
    if (!low) {
        low_since_.reset();
        return count;
    }
    if (!low_since_) low_since_ = now;
    if (now - *low_since_ < interval * kShrinkAfterIntervals) return count;
    low_since_ = now;  // the next one waits as long again
    return count - 1;
}

}  // namespace master
