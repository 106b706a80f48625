// The scoreboard: one row per worker slot in memory shared by the master and
// every worker (mapped MAP_SHARED before the first fork), for numbers that
// must be current across workers at the instant of a decision, which the
// once-per-heartbeat reports are not. Today: how many sessions each
// accepting worker holds, so a worker that is ahead lets the others take
// the next connection. Rows are plain atomics; nothing blocks.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace common {

class Scoreboard {
  public:
    // Maps room for `slots` rows. Returns nullptr when mmap fails.
    static std::unique_ptr<Scoreboard> create(size_t slots);
    ~Scoreboard();
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;

    size_t slots() const { return slots_; }
    // A worker takes its slot's row as it starts accepting (a replacement in
    // the same slot takes it over from the worker it replaces).
    void claim(int slot, pid_t pid);
    // The row's owner stops accepting (drain) or has exited (the master):
    // the row is cleared if `pid` still owns it.
    void release(int slot, pid_t pid);
    void set_active(int slot, pid_t pid, uint64_t active);
    // Whether the row's worker is watching its listeners right now.
    void set_accepting(int slot, pid_t pid, bool accepting);
    // The fewest sessions held by another worker that is accepting right
    // now; -1 when there is none (then nobody else would take a connection).
    int64_t least_loaded_other(int slot) const;

  private:
    struct Row {
        std::atomic<int32_t> pid;
        std::atomic<int32_t> accepting;
        std::atomic<int64_t> active;
    };
    Scoreboard(Row* rows, size_t slots) : rows_(rows), slots_(slots) {}
    Row* row(int slot) const;

    Row* rows_;
    size_t slots_;
};

}  // namespace common
