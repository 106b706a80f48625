// The shared table: keyed counters that must be exact across workers, in
// memory mapped MAP_SHARED | MAP_ANONYMOUS by the master before the first
// fork. Three kinds of number live under a key (a byte string, "user:alice",
// "dst:example.com|192.0.2.7", "sticky:alice:s1"):
//   - leases: how many units of the key are held right now (concurrent
//     sessions of a user). acquire() hands out a move-only Lease whose
//     destructor gives the unit back, so no exit path can forget it.
//   - a token bucket (a destination's rate budget): take() removes a token
//     that refills at `rate_per_second` up to `burst`.
//   - a sticky value (a session ID's route): stick() returns the 32-bit value
//     the key holds, or stores the caller's proposal, and keeps it until a
//     TTL passes without a stick() naming the key. Lookup and store are one
//     step under the lock, so every worker sees the same value for a key.
//
// Why one lock and not atomics: a lease decision is "look up the key,
// compare with the limit, add one, record who holds it", which must be one
// step or two workers both see room for the last unit. The table therefore
// has one process-shared *robust* mutex (PTHREAD_PROCESS_SHARED +
// PTHREAD_MUTEX_ROBUST). Critical sections are a hash lookup and a few
// stores: no syscall, no allocation, no logging inside. A worker killed
// (SIGKILL, OOM) while it holds the lock does not deadlock the others: the
// kernel hands the next locker EOWNERDEAD, which rebuilds every derived
// field (hash chains, free lists, per-key and per-holder counts) from the
// authoritative ones (which entries are in use, and which holding belongs to
// which holder and key; a key's bucket and sticky value are kept as they
// are) and marks the mutex consistent. Writes are ordered so that an entry
// is marked in use only once its fields are written and marked free before
// it is unlinked, so a death at any instruction leaves a state that rebuild
// turns into a consistent one. Rebuild is O(capacity), and only ever runs
// after such a death.
//
// Attribution: every lease held is recorded as a holding attributed to a
// holder row, claimed on the process's first acquire() and identified by
// its pid. Not by worker slot: during a reload or a recycle a draining
// worker and its replacement share a slot number. A pid is unique among the
// table's users while they live, and the master reaps a worker (waitpid)
// before it calls reclaim(pid), so the pid cannot have been reused by
// another user of the table in between (only the master forks them).
// reclaim(pid) walks that holder's list and gives back everything it held.
//
// Capacity is fixed at creation (keys, holdings, holder rows): the table
// never allocates after create(). When the table is full, acquire(), take()
// and stick() fail closed: they refuse (Refusal::kTableFull, false, a Stick
// not stored) and count it in stats().refused_full; memory is never
// overrun. A key entry is freed as soon as it holds no lease and has neither
// a bucket nor a sticky value; a key that holds no lease, whose bucket (if
// any) has refilled to `burst` and whose sticky value (if any) has expired
// is reclaimable and is swept (a bounded number of entries per insertion,
// from a rotating cursor) when a new key finds the free list empty. So a
// table of finite size serves an unbounded number of distinct keys over
// time, as long as the live ones fit: a live sticky value is never evicted
// to make room (its session would silently change route); the new key is
// refused instead. Keys are 1 to kMaxKeyBytes bytes; an empty or longer key
// is refused (Refusal::kBadKey) rather than truncated or hashed, so two keys
// never share a count. Callers that may have longer keys hash them first.
//
// Lifetime: the master creates the table once, at first start, before the
// first fork, so every worker of every reload generation shares the same
// mapping; a reload asking for another size keeps the existing table (the
// master logs that the new size needs a restart or a hot upgrade). A hot
// upgrade execs a new master binary and the mapping does not survive exec:
// the new master creates a fresh, empty table for its workers, while the
// old generation keeps the old table until its workers exit. During the
// hand-over each table is exact for its own workers, but a user may hold up
// to `limit` sessions in each (at most twice the limit, until the old
// workers have drained), buckets start full in the new table, and sticky
// values start empty there (a session ID may move to another route once).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace common {

// The key of a user's concurrent sessions ("user:alice"); user names are at
// most 64 bytes, so the key always fits kMaxKeyBytes.
inline std::string user_lease_key(std::string_view name) {
    std::string key = "user:";
    key.append(name);
    return key;
}

namespace shared_table_detail {
struct Region;  // the shared mapping; defined in the .cpp
}

class SharedTable {
  public:
    static constexpr size_t kMaxKeyBytes = 128;

    struct Capacity {
        // Distinct keys in use at once: holding a lease, a bucket not yet
        // refilled, or a sticky value not yet expired.
        size_t keys = 16384;
        size_t leases = 65536;  // leases held at once, over all keys
        size_t holders = 4096;  // processes holding leases at once
    };

    // Why a lease or a take was refused.
    enum class Refusal : uint8_t {
        kNone,       // granted
        kAtLimit,    // the key holds `limit` leases already
        kTableFull,  // no room for another key, holding or holder
        kBadKey,     // empty key, or longer than kMaxKeyBytes
        kBroken,     // the lock is unusable (ENOTRECOVERABLE): fail closed
    };

    // One unit of a key, held until the Lease is released or destroyed.
    // Move-only; an empty Lease (a refusal) is falsy and says why.
    class Lease {
      public:
        Lease() = default;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&& other) noexcept;
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { release(); }

        explicit operator bool() const { return table_ != nullptr; }
        Refusal refusal() const { return refusal_; }
        // Gives the unit back now; later calls do nothing. A lease inherited
        // across fork() is the parent's: the child's release does nothing.
        void release() noexcept;

      private:
        friend class SharedTable;
        Lease(SharedTable* table, int32_t holding, uint32_t serial)
            : table_(table), holding_(holding), serial_(serial) {}
        explicit Lease(Refusal refusal) : refusal_(refusal) {}

        SharedTable* table_ = nullptr;  // not owned; null when empty
        int32_t holding_ = -1;
        uint32_t serial_ = 0;
        Refusal refusal_ = Refusal::kNone;
    };

    struct KeyCount {
        std::string key;
        uint32_t leases = 0;
    };

    struct Stats {
        Capacity capacity;
        size_t keys = 0;     // key entries in use (leases, a bucket or a sticky value)
        size_t leases = 0;   // leases held
        size_t holders = 0;  // holder rows claimed
        uint64_t refused_at_limit = 0;
        uint64_t refused_full = 0;     // acquire(), take() or stick() found no room
        uint64_t refused_bad_key = 0;  // and bad take() or stick() arguments
        uint64_t refused_empty = 0;    // take() found the bucket empty
        uint64_t reclaimed = 0;        // leases given back by reclaim()
        uint64_t repairs = 0;          // rebuilds after a lock owner died
    };

    // Nanoseconds on a monotonic clock shared by all processes; injectable
    // for tests. The default reads CLOCK_MONOTONIC.
    using NowFn = int64_t (*)();
    // Called at the points named in the .cpp while the lock is held and an
    // operation is half done; tests use it to die there. Null in production.
    using TestHook = void (*)(const char* where);

    // Maps and initializes a table of `capacity` (each field 1 to 2^24).
    // Returns nullptr when a capacity is out of range, or mmap() or the
    // mutex initialization fails (errno tells which).
    static std::unique_ptr<SharedTable> create(const Capacity& capacity, NowFn now = nullptr);
    ~SharedTable();
    SharedTable(const SharedTable&) = delete;
    SharedTable& operator=(const SharedTable&) = delete;

    // One unit of `key` for the calling process, unless the key holds
    // `limit` leases already; limit 0 means unlimited (still counted).
    // A refusal is an empty Lease whose refusal() says why (kAtLimit,
    // kTableFull, kBadKey, kBroken).
    Lease acquire(std::string_view key, uint32_t limit);

    // Takes one token from `key`'s bucket, which holds at most `burst`
    // tokens (a new bucket starts full) and refills at `rate_per_second`
    // (the latest call's rate and burst apply). True when a token was taken.
    // False when the bucket is empty, and then `*wait` (if given) is the time
    // until the next token; also false with `*wait` zero when the table is
    // full, the key is bad, rate_per_second is not a positive finite number
    // or burst is 0.
    bool take(std::string_view key, double rate_per_second, uint32_t burst,
              std::chrono::nanoseconds* wait = nullptr);

    struct Stick {
        uint32_t value = 0;     // the value now stored for the key (`proposed` when not stored)
        uint32_t previous = 0;  // the live value replaced because it was `avoid`; 0 when none
        bool stored = false;    // false: table full, bad arguments or lock unusable
    };

    // The sticky map: `key` keeps a value until `ttl` passes without a
    // stick() naming it. A live value that is not `avoid` is returned and its
    // expiry pushed to now + ttl; otherwise (no value, expired, or equal to
    // `avoid`) `proposed` is stored with expiry now + ttl. One lock, one
    // lookup: two workers sticking the same new key at once agree on one
    // value. `proposed` must be non-zero; `avoid` 0 avoids nothing.
    // Not stored (stored false, value `proposed`, previous 0) when the key is
    // bad, `proposed` is 0 or `ttl` is not positive (refused_bad_key), when
    // the table has no room for a new key (refused_full), or when the lock
    // is unusable; the caller then routes by its proposal alone.
    Stick stick(std::string_view key, uint32_t proposed, std::chrono::nanoseconds ttl,
                uint32_t avoid = 0);
    // The live (stored and not expired) sticky value of `key`; 0 for none,
    // a bad key or an unusable lock. Does not refresh the expiry.
    uint32_t sticky_value(std::string_view key) const;

    // Leases held on `key` now; 0 for an unknown or bad key.
    uint32_t count(std::string_view key) const;
    // Every key in use with its leases (0 for a key that has only a bucket or
    // a sticky value), in no particular order. Read in chunks (the lock is
    // never held for the whole table), so it is not one instant's snapshot.
    // Empty when the lock is unusable.
    std::vector<KeyCount> keys() const;

    // Gives back every lease held by process `holder` and frees its holder
    // row. Called by the master once it has reaped that process. Returns
    // how many leases were given back; 0 when it held none (or the lock is
    // unusable).
    size_t reclaim(pid_t holder);

    // Zeroed counters (with the capacity) when the lock is unusable.
    Stats stats() const;
    const Capacity& capacity() const { return capacity_; }

    void set_test_hook(TestHook hook) { test_hook_ = hook; }

  private:
    using Region = shared_table_detail::Region;
    SharedTable(Region* region, size_t bytes, const Capacity& capacity, NowFn now)
        : region_(region), bytes_(bytes), capacity_(capacity), now_(now) {}
    void release(int32_t holding, uint32_t serial) noexcept;

    Region* region_;
    size_t bytes_;
    Capacity capacity_;
    NowFn now_;
    TestHook test_hook_ = nullptr;
    // Process-local (each process has its own copy after fork): the holder
    // row this process claimed, valid while `self_pid_` is its pid. Read and
    // written only under the lock.
    pid_t self_pid_ = 0;
    int32_t self_holder_ = -1;
};

}  // namespace common
