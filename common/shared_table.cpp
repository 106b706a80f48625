#include "common/shared_table.h"

#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <random>

namespace common {

namespace shared_table_detail {

// The mapping, in one block:
//   Region | bucket heads (int32, a power of two) | KeyEntry[keys]
//          | Holding[leases] | Holder[holders]
// Entries refer to each other by index, never by pointer: an index is easy
// to check for range during a rebuild, and it means the same thing in any
// process whatever address the mapping sits at.
constexpr int32_t kNil = -1;
constexpr uint8_t kFree = 0;
constexpr uint8_t kUsed = 1;

// The bucket (burst, rate, tokens, refilled_ns) and the sticky value
// (value, expires_ns) are authoritative too: a rebuild keeps them as they
// are, since nothing else could recompute them.
struct KeyEntry {
    uint8_t state;  // authoritative
    uint8_t unused;
    uint16_t len;     // authoritative
    uint32_t hash;    // authoritative
    int32_t next;     // derived: hash chain while used, free list while free
    uint32_t leases;  // derived: holdings that name this key
    uint32_t burst;   // 0: no bucket
    uint32_t value;   // the sticky value; 0: none
    double rate;      // tokens per second
    double tokens;
    int64_t refilled_ns;
    int64_t expires_ns;                     // the sticky value is live while now < expires_ns
    char bytes[SharedTable::kMaxKeyBytes];  // authoritative
};

struct Holding {
    uint8_t state;  // authoritative
    uint8_t unused[3];
    uint32_t serial;  // authoritative: tells a Lease whether it is still this holding
    int32_t holder;   // authoritative
    int32_t key;      // authoritative
    int32_t prev;     // derived: the holder's list (next: or the free list)
    int32_t next;
};

struct Holder {
    int32_t pid;    // authoritative; 0 = free
    int32_t head;   // derived: first holding
    uint32_t held;  // derived
    int32_t next_free;
};

struct Region {
    pthread_mutex_t mutex;
    uint64_t seed;
    uint32_t key_capacity;
    uint32_t lease_capacity;
    uint32_t holder_capacity;
    uint32_t bucket_mask;
    size_t buckets_at, keys_at, holdings_at, holders_at;  // byte offsets
    // Derived, under the lock.
    int32_t free_key, free_holding, free_holder;
    uint32_t keys_in_use, leases_in_use, holders_in_use;
    uint32_t holders_high;  // rows [0, holders_high) have ever been claimed
    uint32_t sweep_cursor;
    uint32_t next_serial;
    // Statistics, bumped without the lock where no lock is taken.
    std::atomic<uint64_t> refused_at_limit, refused_full, refused_bad_key, refused_empty;
    std::atomic<uint64_t> reclaimed, repairs;
};

}  // namespace shared_table_detail

namespace {

using namespace shared_table_detail;

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free to work across processes");

// How many key entries one insertion may inspect for reuse when the free
// list is empty: bounds the time the lock is held on a full table.
constexpr uint32_t kSweepBudget = 1024;
constexpr size_t kMaxCapacity = size_t{1} << 24;
constexpr size_t kKeysChunk = 256;  // entries copied per lock in keys()

template <typename T>
T* at(Region* r, size_t offset) {
    return reinterpret_cast<T*>(reinterpret_cast<char*>(r) + offset);
}
int32_t* buckets(Region* r) {
    return at<int32_t>(r, r->buckets_at);
}
KeyEntry* key_rows(Region* r) {
    return at<KeyEntry>(r, r->keys_at);
}
Holding* holding_rows(Region* r) {
    return at<Holding>(r, r->holdings_at);
}
Holder* holder_rows(Region* r) {
    return at<Holder>(r, r->holders_at);
}

// Keeps the compiler from moving stores across it: a process killed between
// two steps must have done the first completely (see the header). The
// kernel's handling of the death orders memory for the next locker.
inline void step() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// FNV-1a with a per-table random basis, then a final mix so the low bits
// (the bucket index) depend on every byte.
uint32_t hash_key(uint64_t seed, std::string_view key) {
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return static_cast<uint32_t>(h);
}

bool valid_key(std::string_view key) {
    return !key.empty() && key.size() <= SharedTable::kMaxKeyBytes;
}

double tokens_at(const KeyEntry& k, int64_t now) {
    double elapsed = now > k.refilled_ns ? static_cast<double>(now - k.refilled_ns) / 1e9 : 0.0;
    return std::min(static_cast<double>(k.burst), k.tokens + elapsed * k.rate);
}

bool sticky_live(const KeyEntry& k, int64_t now) {
    return k.value != 0 && now < k.expires_ns;
}

// Holds nothing at all: freed at once when its last lease goes. Checked
// without the clock (release() does not read it): a full bucket or an
// expired sticky value keeps the entry until a sweep finds it reclaimable.
bool holds_nothing(const KeyEntry& k) {
    return k.leases == 0 && k.burst == 0 && k.value == 0;
}

// Free for reuse: no lease, no bucket or a full one, and no sticky value or
// an expired one (the same state as a key never seen).
bool reclaimable(const KeyEntry& k, int64_t now) {
    return k.leases == 0 && (k.burst == 0 || tokens_at(k, now) >= k.burst) && !sticky_live(k, now);
}

// now + ttl (ttl > 0), saturated: a TTL of centuries must not wrap into the
// past.
int64_t expiry(int64_t now, std::chrono::nanoseconds ttl) {
    const int64_t max = std::numeric_limits<int64_t>::max();
    return ttl.count() > max - std::max<int64_t>(now, 0) ? max : now + ttl.count();
}

// ---- keys (lock held) --------------------------------------------------------

int32_t find_key(Region* r, std::string_view key, uint32_t hash) {
    KeyEntry* k = key_rows(r);
    int32_t i = buckets(r)[hash & r->bucket_mask];
    for (uint32_t steps = 0; i != kNil && steps < r->key_capacity; ++steps, i = k[i].next) {
        if (k[i].hash == hash && k[i].len == key.size() &&
            std::memcmp(k[i].bytes, key.data(), key.size()) == 0) {
            return i;
        }
    }
    return kNil;
}

void free_key(Region* r, int32_t i) {
    KeyEntry& k = key_rows(r)[i];
    k.state = kFree;
    step();
    int32_t* link = &buckets(r)[k.hash & r->bucket_mask];
    while (*link != kNil && *link != i) link = &key_rows(r)[*link].next;
    if (*link == i) *link = k.next;
    k.next = r->free_key;
    r->free_key = i;
    --r->keys_in_use;
}

// Frees reclaimable keys among the next kSweepBudget entries after the
// cursor. Returns whether the free list now has an entry.
bool sweep_keys(Region* r, int64_t now) {
    uint32_t budget = std::min(kSweepBudget, r->key_capacity);
    for (uint32_t n = 0; n < budget; ++n) {
        auto i = static_cast<int32_t>(r->sweep_cursor);
        r->sweep_cursor = (r->sweep_cursor + 1) % r->key_capacity;
        const KeyEntry& k = key_rows(r)[i];
        if (k.state == kUsed && reclaimable(k, now)) free_key(r, i);
    }
    return r->free_key != kNil;
}

int32_t insert_key(Region* r, std::string_view key, uint32_t hash, int64_t now) {
    if (r->free_key == kNil && !sweep_keys(r, now)) return kNil;
    int32_t i = r->free_key;
    KeyEntry& k = key_rows(r)[i];
    r->free_key = k.next;
    std::memcpy(k.bytes, key.data(), key.size());
    k.len = static_cast<uint16_t>(key.size());
    k.hash = hash;
    k.leases = 0;
    k.burst = 0;
    k.rate = 0;
    k.tokens = 0;
    k.refilled_ns = now;
    k.value = 0;
    k.expires_ns = 0;
    step();
    k.state = kUsed;
    step();
    int32_t& head = buckets(r)[hash & r->bucket_mask];
    k.next = head;
    head = i;
    ++r->keys_in_use;
    return i;
}

// ---- holdings (lock held) ------------------------------------------------------

void unlink_holding(Region* r, int32_t g) {
    Holding& h = holding_rows(r)[g];
    Holder& owner = holder_rows(r)[h.holder];
    if (h.prev != kNil)
        holding_rows(r)[h.prev].next = h.next;
    else
        owner.head = h.next;
    if (h.next != kNil) holding_rows(r)[h.next].prev = h.prev;
    --owner.held;
}

// Gives back holding `g` (already unlinked from its holder's list, or about
// to be forgotten with the whole list) to its key and the free list.
void drop_holding(Region* r, int32_t g) {
    Holding& h = holding_rows(r)[g];
    KeyEntry& k = key_rows(r)[h.key];
    --k.leases;
    if (holds_nothing(k)) free_key(r, h.key);
    h.next = r->free_holding;
    r->free_holding = g;
    --r->leases_in_use;
}

// ---- rebuild after a lock owner died ---------------------------------------------

// Recomputes every derived field from the authoritative ones. Holdings that
// name a free key or a free holder (a half-done acquire or reclaim) are
// freed; keys in use keep their bucket and their sticky value.
void rebuild(Region* r) {
    std::fill_n(buckets(r), r->bucket_mask + 1, kNil);
    r->free_key = kNil;
    r->keys_in_use = 0;
    for (auto i = static_cast<int32_t>(r->key_capacity) - 1; i >= 0; --i) {
        KeyEntry& k = key_rows(r)[i];
        k.leases = 0;
        if (k.state == kUsed && k.len >= 1 && k.len <= SharedTable::kMaxKeyBytes) {
            int32_t& head = buckets(r)[k.hash & r->bucket_mask];
            k.next = head;
            head = i;
            ++r->keys_in_use;
        } else {
            k.state = kFree;
            k.next = r->free_key;
            r->free_key = i;
        }
    }
    r->free_holder = kNil;
    r->holders_in_use = 0;
    for (auto i = static_cast<int32_t>(r->holder_capacity) - 1; i >= 0; --i) {
        Holder& o = holder_rows(r)[i];
        o.head = kNil;
        o.held = 0;
        if (o.pid != 0) {
            ++r->holders_in_use;
        } else {
            o.next_free = r->free_holder;
            r->free_holder = i;
        }
    }
    r->free_holding = kNil;
    r->leases_in_use = 0;
    for (auto i = static_cast<int32_t>(r->lease_capacity) - 1; i >= 0; --i) {
        Holding& h = holding_rows(r)[i];
        bool valid = h.state == kUsed && h.holder >= 0 &&
                     static_cast<uint32_t>(h.holder) < r->holder_capacity &&
                     holder_rows(r)[h.holder].pid != 0 && h.key >= 0 &&
                     static_cast<uint32_t>(h.key) < r->key_capacity &&
                     key_rows(r)[h.key].state == kUsed;
        if (valid) {
            Holder& o = holder_rows(r)[h.holder];
            h.prev = kNil;
            h.next = o.head;
            if (o.head != kNil) holding_rows(r)[o.head].prev = i;
            o.head = i;
            ++o.held;
            ++key_rows(r)[h.key].leases;
            ++r->leases_in_use;
        } else {
            h.state = kFree;
            h.next = r->free_holding;
            r->free_holding = i;
        }
    }
}

// The table's lock. False only when the mutex is unusable (a previous
// owner died and nobody made it consistent: cannot happen here, since every
// EOWNERDEAD is repaired); callers then fail closed.
class Locked {
  public:
    explicit Locked(Region* r) : r_(r) {
        int rc = pthread_mutex_lock(&r->mutex);
        if (rc == EOWNERDEAD) {
            rebuild(r);
            r->repairs.fetch_add(1, std::memory_order_relaxed);
            rc = pthread_mutex_consistent(&r->mutex);
        }
        locked_ = rc == 0;
    }
    ~Locked() {
        if (locked_) pthread_mutex_unlock(&r_->mutex);
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    explicit operator bool() const { return locked_; }

  private:
    Region* r_;
    bool locked_ = false;
};

void bump(std::atomic<uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

// ---- create -------------------------------------------------------------------

std::unique_ptr<SharedTable> SharedTable::create(const Capacity& capacity, NowFn now) {
    for (size_t n : {capacity.keys, capacity.leases, capacity.holders}) {
        if (n < 1 || n > kMaxCapacity) {
            errno = EINVAL;
            return nullptr;
        }
    }
    size_t bucket_count = 16;
    while (bucket_count < capacity.keys) bucket_count *= 2;
    size_t buckets_at = round_up(sizeof(Region), 64);
    size_t keys_at = round_up(buckets_at + bucket_count * sizeof(int32_t), 64);
    size_t holdings_at = round_up(keys_at + capacity.keys * sizeof(KeyEntry), 64);
    size_t holders_at = round_up(holdings_at + capacity.leases * sizeof(Holding), 64);
    size_t bytes = holders_at + capacity.holders * sizeof(Holder);

    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    auto* r = new (memory) Region();
    pthread_mutexattr_t attr;
    bool ok = pthread_mutexattr_init(&attr) == 0 &&
              pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0 &&
              pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0 &&
              pthread_mutex_init(&r->mutex, &attr) == 0;
    pthread_mutexattr_destroy(&attr);
    if (!ok) {
        munmap(memory, bytes);
        errno = ENOMEM;
        return nullptr;
    }
    r->seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
    r->key_capacity = static_cast<uint32_t>(capacity.keys);
    r->lease_capacity = static_cast<uint32_t>(capacity.leases);
    r->holder_capacity = static_cast<uint32_t>(capacity.holders);
    r->bucket_mask = static_cast<uint32_t>(bucket_count - 1);
    r->buckets_at = buckets_at;
    r->keys_at = keys_at;
    r->holdings_at = holdings_at;
    r->holders_at = holders_at;
    // Mapped zero-filled: every entry is free; the rebuild links the lists.
    rebuild(r);
    return std::unique_ptr<SharedTable>(
        new SharedTable(r, bytes, capacity, now ? now : monotonic_ns));
}

SharedTable::~SharedTable() {
    munmap(region_, bytes_);
}

// ---- leases ---------------------------------------------------------------------

namespace {

// getpid() is a system call every time (glibc no longer caches it) and a
// lease is taken and given back per request. The pid only changes across
// fork(), so it is cached, and each child refreshes it in a pthread_atfork()
// handler before any of its code runs.
pid_t cached_pid = 0;

void refresh_cached_pid() {
    cached_pid = ::getpid();
}

pid_t current_pid() {
    static const bool registered = [] {
        refresh_cached_pid();
        return pthread_atfork(nullptr, nullptr, refresh_cached_pid) == 0;
    }();
    return registered ? cached_pid : ::getpid();
}

}  // namespace

SharedTable::Lease SharedTable::acquire(std::string_view key, uint32_t limit) {
    Region* r = region_;
    if (!valid_key(key)) {
        bump(r->refused_bad_key);
        return Lease(Refusal::kBadKey);
    }
    const pid_t me = current_pid();
    const int64_t now = now_();
    const uint32_t hash = hash_key(r->seed, key);
    Locked lock(r);
    if (!lock) return Lease(Refusal::kBroken);

    // This process's holder row: claimed once, re-claimed if it was taken
    // from us (reclaim() of a live pid is a caller's error, but harmless).
    if (self_pid_ != me || self_holder_ == kNil || holder_rows(r)[self_holder_].pid != me) {
        self_pid_ = me;
        self_holder_ = r->free_holder;
        if (self_holder_ == kNil) {
            bump(r->refused_full);
            return Lease(Refusal::kTableFull);
        }
        Holder& o = holder_rows(r)[self_holder_];
        r->free_holder = o.next_free;
        o.head = kNil;
        o.held = 0;
        step();
        o.pid = me;
        ++r->holders_in_use;
        r->holders_high = std::max(r->holders_high, static_cast<uint32_t>(self_holder_) + 1);
    }

    int32_t k = find_key(r, key, hash);
    if (k != kNil && limit != 0 && key_rows(r)[k].leases >= limit) {
        bump(r->refused_at_limit);
        return Lease(Refusal::kAtLimit);
    }
    if (k == kNil) k = insert_key(r, key, hash, now);
    if (k == kNil || r->free_holding == kNil) {
        if (k != kNil && holds_nothing(key_rows(r)[k])) free_key(r, k);
        bump(r->refused_full);
        return Lease(Refusal::kTableFull);
    }

    const int32_t g = r->free_holding;
    Holding& h = holding_rows(r)[g];
    Holder& owner = holder_rows(r)[self_holder_];
    r->free_holding = h.next;
    h.serial = ++r->next_serial;
    h.holder = self_holder_;
    h.key = k;
    h.prev = kNil;
    h.next = owner.head;
    step();
    h.state = kUsed;
    step();
    if (test_hook_) test_hook_("acquire: holding in use, not yet counted");
    if (owner.head != kNil) holding_rows(r)[owner.head].prev = g;
    owner.head = g;
    ++owner.held;
    ++key_rows(r)[k].leases;
    ++r->leases_in_use;
    return Lease(this, g, h.serial);
}

void SharedTable::release(int32_t g, uint32_t serial) noexcept {
    Region* r = region_;
    const pid_t me = current_pid();
    Locked lock(r);
    if (!lock) return;
    Holding& h = holding_rows(r)[g];
    // Gone already (reclaimed), or not ours (a lease copied by fork()).
    if (h.state != kUsed || h.serial != serial || holder_rows(r)[h.holder].pid != me) return;
    h.state = kFree;
    step();
    if (test_hook_) test_hook_("release: holding free, not yet unlinked");
    unlink_holding(r, g);
    drop_holding(r, g);
}

size_t SharedTable::reclaim(pid_t holder) {
    Region* r = region_;
    if (holder <= 0) return 0;
    Locked lock(r);
    if (!lock) return 0;
    int32_t row = kNil;
    for (uint32_t i = 0; i < r->holders_high; ++i) {
        if (holder_rows(r)[i].pid == holder) {
            row = static_cast<int32_t>(i);
            break;
        }
    }
    if (row == kNil) return 0;
    Holder& o = holder_rows(r)[row];
    // Free the row first: should we die half-way, the rebuild frees every
    // holding that still names it.
    o.pid = 0;
    step();
    size_t given = 0;
    for (int32_t g = o.head; g != kNil && given < r->lease_capacity; ++given) {
        Holding& h = holding_rows(r)[g];
        const int32_t next = h.next;
        h.state = kFree;
        step();
        drop_holding(r, g);
        g = next;
    }
    o.head = kNil;
    o.held = 0;
    o.next_free = r->free_holder;
    r->free_holder = row;
    --r->holders_in_use;
    if (row == self_holder_) self_holder_ = kNil;
    r->reclaimed.fetch_add(given, std::memory_order_relaxed);
    return given;
}

// ---- token buckets -----------------------------------------------------------------

bool SharedTable::take(std::string_view key, double rate_per_second, uint32_t burst,
                       std::chrono::nanoseconds* wait) {
    Region* r = region_;
    if (wait) *wait = std::chrono::nanoseconds(0);
    if (!valid_key(key) || !std::isfinite(rate_per_second) || rate_per_second <= 0 || burst == 0) {
        bump(r->refused_bad_key);
        return false;
    }
    const int64_t now = now_();
    const uint32_t hash = hash_key(r->seed, key);
    Locked lock(r);
    if (!lock) return false;
    int32_t i = find_key(r, key, hash);
    if (i == kNil) i = insert_key(r, key, hash, now);
    if (i == kNil) {
        bump(r->refused_full);
        return false;
    }
    KeyEntry& k = key_rows(r)[i];
    if (k.burst == 0) {  // a new bucket starts full
        k.tokens = burst;
        k.refilled_ns = now;
    }
    k.rate = rate_per_second;
    k.burst = burst;
    k.tokens = tokens_at(k, now);
    k.refilled_ns = std::max(k.refilled_ns, now);
    if (k.tokens >= 1.0) {
        k.tokens -= 1.0;
        return true;
    }
    bump(r->refused_empty);
    if (wait) {
        // Capped at a day: a rate near zero must not overflow nanoseconds.
        double ns = std::ceil((1.0 - k.tokens) / rate_per_second * 1e9);
        *wait = std::chrono::nanoseconds(static_cast<int64_t>(std::min(ns, 86400e9)));
    }
    return false;
}

// ---- sticky map ---------------------------------------------------------------------

SharedTable::Stick SharedTable::stick(std::string_view key, uint32_t proposed,
                                      std::chrono::nanoseconds ttl, uint32_t avoid) {
    Region* r = region_;
    Stick out;
    out.value = proposed;
    if (!valid_key(key) || proposed == 0 || ttl.count() <= 0) {
        bump(r->refused_bad_key);
        return out;
    }
    const int64_t now = now_();
    const uint32_t hash = hash_key(r->seed, key);
    Locked lock(r);
    if (!lock) return out;
    int32_t i = find_key(r, key, hash);
    if (i == kNil) i = insert_key(r, key, hash, now);
    if (i == kNil) {
        bump(r->refused_full);
        return out;
    }
    KeyEntry& k = key_rows(r)[i];
    out.stored = true;
    const bool live = sticky_live(k, now);
    if (live && k.value != avoid) {
        k.expires_ns = expiry(now, ttl);
        out.value = k.value;
        return out;
    }
    if (live) out.previous = k.value;
    // The value before its expiry: a death between the two leaves the new
    // value under the old expiry (live only if the old one was: an avoided
    // value is replaced either way), never an expired value revived by the
    // new expiry. A process dies between instructions and each field is one
    // aligned store, so neither is ever half written.
    k.value = proposed;
    step();
    if (test_hook_) test_hook_("stick: value stored, expiry not yet");
    k.expires_ns = expiry(now, ttl);
    return out;
}

uint32_t SharedTable::sticky_value(std::string_view key) const {
    Region* r = region_;
    if (!valid_key(key)) return 0;
    const int64_t now = now_();
    const uint32_t hash = hash_key(r->seed, key);
    Locked lock(r);
    if (!lock) return 0;
    int32_t i = find_key(r, key, hash);
    return i != kNil && sticky_live(key_rows(r)[i], now) ? key_rows(r)[i].value : 0;
}

// ---- reading ---------------------------------------------------------------------------

uint32_t SharedTable::count(std::string_view key) const {
    Region* r = region_;
    if (!valid_key(key)) return 0;
    const uint32_t hash = hash_key(r->seed, key);
    Locked lock(r);
    if (!lock) return 0;
    int32_t i = find_key(r, key, hash);
    return i == kNil ? 0 : key_rows(r)[i].leases;
}

std::vector<SharedTable::KeyCount> SharedTable::keys() const {
    Region* r = region_;
    struct Copy {
        uint16_t len;
        uint32_t leases;
        char bytes[kMaxKeyBytes];
    };
    std::vector<Copy> chunk(kKeysChunk);  // allocated outside the lock
    std::vector<KeyCount> out;
    for (uint32_t first = 0; first < r->key_capacity; first += kKeysChunk) {
        size_t copied = 0;
        {
            Locked lock(r);
            if (!lock) return {};
            uint32_t last = std::min<uint32_t>(r->key_capacity, first + kKeysChunk);
            for (uint32_t i = first; i < last; ++i) {
                const KeyEntry& k = key_rows(r)[i];
                if (k.state != kUsed) continue;
                Copy& c = chunk[copied++];
                c.len = k.len;
                c.leases = k.leases;
                std::memcpy(c.bytes, k.bytes, k.len);
            }
        }
        for (size_t i = 0; i < copied; ++i)
            out.push_back({std::string(chunk[i].bytes, chunk[i].len), chunk[i].leases});
    }
    return out;
}

SharedTable::Stats SharedTable::stats() const {
    Region* r = region_;
    Stats s;
    s.capacity = capacity_;
    Locked lock(r);
    if (!lock) return s;
    s.keys = r->keys_in_use;
    s.leases = r->leases_in_use;
    s.holders = r->holders_in_use;
    s.refused_at_limit = r->refused_at_limit.load(std::memory_order_relaxed);
    s.refused_full = r->refused_full.load(std::memory_order_relaxed);
    s.refused_bad_key = r->refused_bad_key.load(std::memory_order_relaxed);
    s.refused_empty = r->refused_empty.load(std::memory_order_relaxed);
    s.reclaimed = r->reclaimed.load(std::memory_order_relaxed);
    s.repairs = r->repairs.load(std::memory_order_relaxed);
    return s;
}

// ---- Lease ------------------------------------------------------------------------------

SharedTable::Lease::Lease(Lease&& other) noexcept
    : table_(other.table_),
      holding_(other.holding_),
      serial_(other.serial_),
      refusal_(other.refusal_) {
    other.table_ = nullptr;
}

SharedTable::Lease& SharedTable::Lease::operator=(Lease&& other) noexcept {
    if (this != &other) {
        release();
        table_ = other.table_;
        holding_ = other.holding_;
        serial_ = other.serial_;
        refusal_ = other.refusal_;
        other.table_ = nullptr;
    }
    return *this;
}

void SharedTable::Lease::release() noexcept {
    if (table_ == nullptr) return;
    SharedTable* table = table_;
    table_ = nullptr;
    table->release(holding_, serial_);
}

}  // namespace common
