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
    Clock::time_point heartbeat{};
    int busy_runs = 0;
};

// Session work that never ends: takes a millisecond, then makes itself
// active again. Gives up after 2 s, so a loop that never returns to its
// timers ends the test instead of hanging it.
void on_busy(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<std::pair<Loop*, event*>*>(arg);
    Loop& loop = *self->first;
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
    event_base_dispatch(base.get());
    ASSERT_NE(loop.heartbeat, Clock::time_point{}) << "the heartbeat never ran";
    auto late =
        std::chrono::duration_cast<std::chrono::milliseconds>(loop.heartbeat - loop.started);
    // Due at 20 ms; one turn of kMaxTurn (10 ms) plus a callback later at
    // most, with room for a busy machine.
    EXPECT_LT(late.count(), 200) << late.count() << " ms";
    EXPECT_GT(loop.busy_runs, 10);
}

}  // namespace
}  // namespace worker
