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
    // The sessions of `slot`'s row if `pid` owns it, else -1: the master
    // reads the current load from here, not from reports a heartbeat old.
    int64_t active_of(int slot, pid_t pid) const;
    // The fewest sessions held by another worker that is accepting right
    // now; -1 when there is none (then nobody else would take a connection).
    int64_t least_loaded_other(int slot) const;

  private:
    // One cache line per row: a worker writes its own row on every session
    // start and end, and must not invalidate the line its peers read.
    struct alignas(64) Row {
        std::atomic<int32_t> pid;
        std::atomic<int32_t> accepting;
        std::atomic<int64_t> active;
    };
    // Rows [0, rows_in_use) have ever been claimed: readers scan only those,
    // not all 1024 slots, on every accept.
    struct alignas(64) Header {
        std::atomic<int32_t> rows_in_use;
    };
    Scoreboard(Header* header, Row* rows, size_t slots)
        : header_(header), rows_(rows), slots_(slots) {}
    Row* row(int slot) const;
    size_t mapped_bytes() const { return sizeof(Header) + slots_ * sizeof(Row); }

    Header* header_;
    Row* rows_;
    size_t slots_;
};

}  // namespace common
