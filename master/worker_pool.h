// The elastic worker pool of "workers = auto": how many workers the current
// generation runs, between workers_min and workers_max, decided from the
// session counts the workers already report and the capacity of each
// (max_connections, resolved from the descriptor limit).
//
// Like Apache prefork's spare servers, but by session capacity rather than
// by idle processes: proxyd's workers are event loops, and what runs out is
// descriptors, not threads. The pool grows at once, and shrinks
// one worker at a time after the load has stayed low for a while, so a
// burst that comes and goes does not make workers come and go with it.
// Retiring is the supervisor's ordinary drain; adding is an ordinary spawn.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace master {

struct PoolLoad {
    int workers = 0;                   // the current count (all running)
    uint64_t active_sessions = 0;      // summed over them, from their reports
    uint64_t capacity_per_worker = 0;  // max_connections in force
    int min = 1;
    int max = 1;
};

// Grow when the sessions pass this share of the pool's capacity, to the
// fewest workers that hold them below it again, and at least one more.
// Growing by more would leave the new workers emptier than the old ones
// for good when the load stops there (held tunnels do not move), and a
// worker is ready within milliseconds of the decision.
constexpr double kGrowAbove = 0.75;
// The sessions the next decision will find, by the rise since the last one:
// a burst fills workers within the tick a decision waits for, and a worker
// the pool adds too late stays emptier than the rest for as long as the old
// sessions are held. One tick ahead, not more: a worker added for a burst
// that stops stays nearly empty too (two ticks added a third worker to a
// burst of 10,000 tunnels that two hold).
constexpr uint64_t kTicksAhead = 1;
// Shrink by one when one worker fewer would still be at most this full...
constexpr double kShrinkBelow = 0.5;
// ...and has been for this many heartbeat intervals.
constexpr int kShrinkAfterIntervals = 30;

class WorkerPool {
  public:
    using Clock = std::chrono::steady_clock;

    // The count the pool should have now: load.workers when nothing is to
    // change. Called once per tick with the current load; `interval` is
    // heartbeat_interval, the unit of the wait before shrinking.
    int plan(const PoolLoad& load, Clock::time_point now, std::chrono::milliseconds interval);
    // Forgets a low load seen so far (the count was changed from outside).
    void reset() { low_since_.reset(); }

  private:
    std::optional<Clock::time_point> low_since_;
    std::optional<uint64_t> last_sessions_;  // at the last plan(), none before the first
};

}  // namespace master
