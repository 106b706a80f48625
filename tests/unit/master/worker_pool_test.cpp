// The elastic pool's decisions (master/worker_pool.h), from the load alone.
#include "master/worker_pool.h"

#include <gtest/gtest.h>

namespace master {
namespace {

using std::chrono::milliseconds;
using Clock = WorkerPool::Clock;

constexpr milliseconds kInterval{1000};

PoolLoad load(int workers, uint64_t sessions, int min = 2, int max = 16) {
    PoolLoad l;
    l.workers = workers;
    l.active_sessions = sessions;
    l.capacity_per_worker = 1000;
    l.min = min;
    l.max = max;
    return l;
}

TEST(WorkerPool, StaysWhileTheLoadFits) {
    WorkerPool pool;
    const Clock::time_point t0 = Clock::now();
    EXPECT_EQ(pool.plan(load(2, 0), t0, kInterval), 2);
    EXPECT_EQ(pool.plan(load(2, 500), t0, kInterval), 2);  // 500 and a rise of 500: 50 %
    WorkerPool full;
    EXPECT_EQ(full.plan(load(2, 1500), t0, kInterval), 2);  // exactly 75 %, no rise seen yet
    EXPECT_EQ(full.plan(load(2, 1500), t0, kInterval), 2);  // and steady
    EXPECT_EQ(pool.plan(load(4, 1600), t0 + kInterval * 100, kInterval), 4);
}

TEST(WorkerPool, GrowsAheadOfAFastRise) {
    WorkerPool pool;
    const Clock::time_point t0 = Clock::now();
    EXPECT_EQ(pool.plan(load(2, 1000), t0, kInterval), 2);
    // 1300 now, 300 more a tick: 1600 at the next tick, past 75 %.
    EXPECT_EQ(pool.plan(load(2, 1300), t0, kInterval), 3);
    // A rise of 1200 in one tick: 2400 expected, which 4 workers hold at 75 %.
    WorkerPool burst;
    EXPECT_EQ(burst.plan(load(2, 0), t0, kInterval), 2);
    EXPECT_EQ(burst.plan(load(2, 1200), t0, kInterval), 4);
}

TEST(WorkerPool, GrowsAtOnceByWhatTheLoadNeeds) {
    const Clock::time_point t0 = Clock::now();
    // A fresh pool each: only what is held counts, no rise.
    auto steady = [&](const PoolLoad& l) { return WorkerPool().plan(l, t0, kInterval); };
    // Past 75 %: one more, or as many as bring the load back under 75 %.
    EXPECT_EQ(steady(load(2, 1501)), 3);
    EXPECT_EQ(steady(load(2, 2000)), 3);
    EXPECT_EQ(steady(load(2, 2251)), 4);
    EXPECT_EQ(steady(load(4, 6000)), 8);
    // Never above the maximum.
    EXPECT_EQ(steady(load(2, 2000, 2, 3)), 3);
    EXPECT_EQ(steady(load(3, 3000, 2, 3)), 3);
}

TEST(WorkerPool, ShrinksOneAtATimeAfterTheLoadStayedLow) {
    WorkerPool pool;
    const Clock::time_point t0 = Clock::now();
    // 6 workers, 1000 sessions: 5 workers would be 20 % full.
    EXPECT_EQ(pool.plan(load(6, 1000), t0, kInterval), 6);
    EXPECT_EQ(pool.plan(load(6, 1000), t0 + kInterval * 29, kInterval), 6);
    EXPECT_EQ(pool.plan(load(6, 1000), t0 + kInterval * 30, kInterval), 5);
    // The next one waits as long again.
    EXPECT_EQ(pool.plan(load(5, 1000), t0 + kInterval * 31, kInterval), 5);
    EXPECT_EQ(pool.plan(load(5, 1000), t0 + kInterval * 60, kInterval), 4);
    // Not below the minimum, however long it stays idle.
    EXPECT_EQ(pool.plan(load(2, 0), t0 + kInterval * 1000, kInterval), 2);
    EXPECT_EQ(pool.plan(load(2, 0), t0 + kInterval * 2000, kInterval), 2);
}

TEST(WorkerPool, ABusyMomentRestartsTheWaitBeforeShrinking) {
    WorkerPool pool;
    const Clock::time_point t0 = Clock::now();
    EXPECT_EQ(pool.plan(load(4, 1400), t0, kInterval), 4);  // 3 workers: 47 %, low
    EXPECT_EQ(pool.plan(load(4, 1400), t0 + kInterval * 20, kInterval), 4);
    // 3 workers would be 53 % full: not low.
    EXPECT_EQ(pool.plan(load(4, 1600), t0 + kInterval * 21, kInterval), 4);
    EXPECT_EQ(pool.plan(load(4, 1400), t0 + kInterval * 22, kInterval), 4);
    EXPECT_EQ(pool.plan(load(4, 1400), t0 + kInterval * 51, kInterval), 4);
    EXPECT_EQ(pool.plan(load(4, 1400), t0 + kInterval * 52, kInterval), 3);
}

TEST(WorkerPool, ACountOutsideTheBoundsIsBroughtInside) {
    WorkerPool pool;
    const Clock::time_point t0 = Clock::now();
    EXPECT_EQ(pool.plan(load(1, 0, 2, 8), t0, kInterval), 2);     // a reload raised the minimum
    EXPECT_EQ(pool.plan(load(12, 0, 2, 8), t0, kInterval), 8);    // or lowered the maximum
    EXPECT_EQ(pool.plan(load(3, 2900, 1, 3), t0, kInterval), 3);  // full, at the maximum
}

}  // namespace
}  // namespace master
