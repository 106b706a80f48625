// The worker's event loop: a flood of session work never holds back the
// worker's own events (its heartbeat), since a loop turn is bounded in time.
#include "worker/worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace worker {
namespace {

using Clock = std::chrono::steady_clock;

struct Loop {
    event_base* base = nullptr;
    Clock::time_point started = Clock::now();
    Clock::time_point heartbeat_due{};
    Clock::time_point heartbeat{};
    int busy_runs = 0;
    int busy_runs_when_due = -1;  // busy_runs when the heartbeat fell due
    int busy_runs_at_heartbeat = -1;
};

// Session work that never ends: takes a millisecond, then makes itself
// active again. Gives up after 2 s, so a loop that never returns to its
// timers ends the test instead of hanging it.
void on_busy(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<std::pair<Loop*, event*>*>(arg);
    Loop& loop = *self->first;
    if (loop.busy_runs_when_due < 0 && Clock::now() >= loop.heartbeat_due)
        loop.busy_runs_when_due = loop.busy_runs;
    ++loop.busy_runs;
    auto until = Clock::now() + std::chrono::milliseconds(1);
    while (Clock::now() < until) {
    }
    if (Clock::now() - loop.started > std::chrono::seconds(2)) {
        event_base_loopbreak(loop.base);
        return;
    }
    event_active(self->second, EV_TIMEOUT, 0);
}

void on_heartbeat(evutil_socket_t, short, void* arg) noexcept {
    Loop& loop = *static_cast<Loop*>(arg);
    loop.heartbeat = Clock::now();
    loop.busy_runs_at_heartbeat = loop.busy_runs;
    event_base_loopbreak(loop.base);
}

TEST(WorkerBase, AFloodOfSessionWorkDoesNotHoldBackTheHeartbeat) {
    common::EventBasePtr base = make_worker_base();
    ASSERT_TRUE(base);
    Loop loop;
    loop.base = base.get();
    std::vector<common::EventPtr> busy;
    std::vector<std::pair<Loop*, event*>> args(50);
    for (auto& arg : args) {
        event* ev = event_new(base.get(), -1, 0, on_busy, &arg);
        ASSERT_NE(ev, nullptr);
        EXPECT_EQ(event_get_priority(ev), kSessionPriority);
        arg = {&loop, ev};
        busy.emplace_back(ev);
        event_active(ev, EV_TIMEOUT, 0);
    }
    common::EventPtr heartbeat(event_new(base.get(), -1, 0, on_heartbeat, &loop));
    ASSERT_EQ(event_priority_set(heartbeat.get(), kOwnPriority), 0);
    const timeval due{0, 20 * 1000};
    ASSERT_EQ(event_add(heartbeat.get(), &due), 0);
    loop.started = Clock::now();
    loop.heartbeat_due = loop.started + std::chrono::milliseconds(20);
    event_base_dispatch(base.get());
    ASSERT_NE(loop.heartbeat, Clock::time_point{}) << "the heartbeat never ran";
    // Lateness is counted in session callbacks, not in milliseconds, so a
    // loaded machine that takes the CPU away mid-turn cannot fail the test:
    // each callback spins for at least 1 ms of wall time, so a turn bounded
    // to kMaxTurn (10 ms) runs at most 10 of them past the due time, plus
    // the one that crossed it. An unbounded turn runs all 50 again and
    // again until the 2 s limit.
    ASSERT_GE(loop.busy_runs_at_heartbeat, 1) << "no session work ran before the heartbeat";
    // No session callback after the due time at all: a turn ended right at
    // it (on an idle machine, turns of 10 callbacks of 1 ms end at 10 and
    // 20 ms) and the heartbeat ran first. That is the best case, not a failure.
    const int past_due =
        loop.busy_runs_when_due < 0 ? 0 : loop.busy_runs_at_heartbeat - loop.busy_runs_when_due;
    EXPECT_LE(past_due, 12) << "session callbacks ran after the heartbeat fell due";
}

}  // namespace
}  // namespace worker
