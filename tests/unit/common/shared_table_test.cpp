#include "common/shared_table.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace common {
namespace {

using Refusal = SharedTable::Refusal;
using namespace std::chrono_literals;

int64_t g_now = 0;
int64_t fake_now() {
    return g_now;
}

std::unique_ptr<SharedTable> make_table(size_t keys = 64, size_t leases = 256,
                                        size_t holders = 64) {
    SharedTable::Capacity capacity;
    capacity.keys = keys;
    capacity.leases = leases;
    capacity.holders = holders;
    auto table = SharedTable::create(capacity, fake_now);
    EXPECT_NE(table, nullptr);
    return table;
}

// Waits for `pid`; returns its wait status.
int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

bool exited_ok(int status) {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A hang (a lock never given back) must fail the run, not stall it.
class Watchdog {
  public:
    explicit Watchdog(unsigned seconds) { ::alarm(seconds); }
    ~Watchdog() { ::alarm(0); }
};

// ---- single process -------------------------------------------------------------

TEST(SharedTable, RefusesAtTheLimitAndReleaseGivesBack) {
    auto table = make_table();
    auto a = table->acquire("user:alice", 2);
    auto b = table->acquire("user:alice", 2);
    auto c = table->acquire("user:alice", 2);
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    EXPECT_FALSE(c);
    EXPECT_EQ(c.refusal(), Refusal::kAtLimit);
    EXPECT_EQ(table->count("user:alice"), 2u);
    EXPECT_EQ(table->count("user:bob"), 0u);

    a.release();
    a.release();  // idempotent
    EXPECT_EQ(table->count("user:alice"), 1u);
    auto d = table->acquire("user:alice", 2);
    EXPECT_TRUE(d);
    EXPECT_EQ(table->stats().refused_at_limit, 1u);
}

TEST(SharedTable, DestructorGivesBack) {
    auto table = make_table();
    {
        auto a = table->acquire("k", 1);
        ASSERT_TRUE(a);
        EXPECT_FALSE(table->acquire("k", 1));
    }
    EXPECT_EQ(table->count("k"), 0u);
    EXPECT_TRUE(table->acquire("k", 1));
    EXPECT_EQ(table->stats().keys, 0u);  // a key with no lease and no bucket is freed
}

TEST(SharedTable, LeasesMove) {
    auto table = make_table();
    auto a = table->acquire("k", 2);
    SharedTable::Lease moved(std::move(a));
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_TRUE(moved);
    EXPECT_EQ(table->count("k"), 1u);

    auto b = table->acquire("k", 2);
    EXPECT_EQ(table->count("k"), 2u);
    moved = std::move(b);  // gives back what `moved` held
    EXPECT_EQ(table->count("k"), 1u);
    std::vector<SharedTable::Lease> held;
    held.push_back(std::move(moved));
    EXPECT_EQ(table->count("k"), 1u);
    held.clear();
    EXPECT_EQ(table->count("k"), 0u);
}

TEST(SharedTable, LimitZeroIsUnlimitedButCounted) {
    auto table = make_table();
    std::vector<SharedTable::Lease> held;
    for (int i = 0; i < 100; ++i) {
        held.push_back(table->acquire("k", 0));
        ASSERT_TRUE(held.back());
    }
    EXPECT_EQ(table->count("k"), 100u);
    // A limit below the count refuses new leases and keeps the old ones.
    EXPECT_EQ(table->acquire("k", 50).refusal(), Refusal::kAtLimit);
    held.resize(10);
    EXPECT_EQ(table->count("k"), 10u);
}

TEST(SharedTable, KeysAreBoundedByteStrings) {
    auto table = make_table();
    EXPECT_EQ(table->acquire("", 1).refusal(), Refusal::kBadKey);
    EXPECT_EQ(table->acquire(std::string(129, 'x'), 1).refusal(), Refusal::kBadKey);
    auto longest = table->acquire(std::string(128, 'x'), 1);
    EXPECT_TRUE(longest);
    // Embedded NULs and prefixes are distinct keys.
    auto a = table->acquire(std::string("a\0b", 3), 1);
    auto b = table->acquire(std::string("a"), 1);
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    EXPECT_EQ(table->count(std::string("a\0b", 3)), 1u);
    EXPECT_FALSE(table->take("", 1, 1));
    EXPECT_EQ(table->stats().refused_bad_key, 3u);
}

TEST(SharedTable, TokenBucketRefillsAtItsRate) {
    auto table = make_table();
    g_now = 1000000000;
    std::chrono::nanoseconds wait{};
    EXPECT_TRUE(table->take("dst", 2.0, 3, &wait));  // starts full: 3 tokens
    EXPECT_TRUE(table->take("dst", 2.0, 3, &wait));
    EXPECT_TRUE(table->take("dst", 2.0, 3, &wait));
    EXPECT_FALSE(table->take("dst", 2.0, 3, &wait));
    EXPECT_EQ(wait, 500ms);
    g_now += 250000000;
    EXPECT_FALSE(table->take("dst", 2.0, 3, &wait));
    EXPECT_EQ(wait, 250ms);
    g_now += 250000000;
    EXPECT_TRUE(table->take("dst", 2.0, 3, &wait));
    EXPECT_EQ(wait, 0ns);
    // Refill stops at burst.
    g_now += 3600 * 1000000000LL;
    int taken = 0;
    while (table->take("dst", 2.0, 3)) ++taken;
    EXPECT_EQ(taken, 3);
    EXPECT_EQ(table->stats().refused_empty, 3u);
}

TEST(SharedTable, TakeRefusesBadArguments) {
    auto table = make_table();
    std::chrono::nanoseconds wait{5};
    EXPECT_FALSE(table->take("k", 0.0, 1, &wait));
    EXPECT_EQ(wait, 0ns);
    EXPECT_FALSE(table->take("k", -1.0, 1));
    EXPECT_FALSE(table->take("k", 1.0, 0));
    EXPECT_FALSE(table->take("k", std::nan(""), 1));
    EXPECT_EQ(table->stats().keys, 0u);
}

TEST(SharedTable, LeasesAndBucketShareAKey) {
    auto table = make_table();
    g_now = 0;
    auto lease = table->acquire("k", 1);
    EXPECT_TRUE(table->take("k", 1.0, 1));
    lease.release();
    EXPECT_EQ(table->stats().keys, 1u);  // the bucket is not full yet: kept
    EXPECT_FALSE(table->take("k", 1.0, 1));
}

TEST(SharedTable, FullTableRefusesAndCounts) {
    auto table = make_table(/*keys=*/4, /*leases=*/6);
    std::vector<SharedTable::Lease> held;
    for (int i = 0; i < 4; ++i) held.push_back(table->acquire("k" + std::to_string(i), 0));
    EXPECT_EQ(table->acquire("k4", 0).refusal(), Refusal::kTableFull);
    EXPECT_FALSE(table->take("k4", 1.0, 1));
    EXPECT_EQ(table->stats().refused_full, 2u);
    // Holdings run out too, on keys that exist.
    held.push_back(table->acquire("k0", 0));
    held.push_back(table->acquire("k0", 0));
    EXPECT_EQ(table->acquire("k0", 0).refusal(), Refusal::kTableFull);
    EXPECT_EQ(table->count("k0"), 3u);
    // Giving back makes room, for another key as well.
    held.erase(held.begin() + 1);  // "k1": its key entry is freed
    held.push_back(table->acquire("k4", 0));
    EXPECT_TRUE(held.back());
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.refused_full, 3u);
    EXPECT_EQ(s.keys, 4u);
}

TEST(SharedTable, FiniteTableServesUnboundedKeys) {
    auto table = make_table(/*keys=*/8, /*leases=*/8);
    for (int i = 0; i < 5000; ++i) {
        auto lease = table->acquire("user:" + std::to_string(i), 1);
        ASSERT_TRUE(lease) << i;
    }
    EXPECT_EQ(table->stats().keys, 0u);

    // Buckets are reused once they have refilled.
    g_now = 0;
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(table->take("dst:" + std::to_string(i), 4.0, 2));
    EXPECT_FALSE(table->take("dst:new", 4.0, 2));
    g_now += 125000000;  // half a token back: 1.5 of 2, not full yet
    EXPECT_FALSE(table->take("dst:new", 4.0, 2));
    g_now += 125000000;  // full: reusable
    EXPECT_TRUE(table->take("dst:new", 4.0, 2));
    EXPECT_EQ(table->stats().keys, 1u);  // the sweep freed all eight
}

TEST(SharedTable, KeysListsEveryKeyInUse) {
    auto table = make_table(/*keys=*/600, /*leases=*/1000);
    std::vector<SharedTable::Lease> held;
    for (int i = 0; i < 300; ++i) held.push_back(table->acquire("u" + std::to_string(i), 0));
    held.push_back(table->acquire("u7", 0));
    ASSERT_TRUE(table->take("bucket", 1.0, 5));
    auto keys = table->keys();
    ASSERT_EQ(keys.size(), 301u);
    std::set<std::string> names;
    for (const auto& k : keys) {
        names.insert(k.key);
        EXPECT_EQ(k.leases, k.key == "u7" ? 2u : k.key == "bucket" ? 0u : 1u) << k.key;
    }
    EXPECT_EQ(names.size(), 301u);
    EXPECT_TRUE(names.count("u299"));
}

TEST(SharedTable, ReclaimGivesBackWhatAProcessHeld) {
    auto table = make_table();
    auto a = table->acquire("k", 3);
    auto b = table->acquire("k", 3);
    auto c = table->acquire("other", 3);
    EXPECT_EQ(table->reclaim(::getpid()), 3u);
    EXPECT_EQ(table->count("k"), 0u);
    EXPECT_EQ(table->reclaim(::getpid()), 0u);
    EXPECT_EQ(table->reclaim(0), 0u);
    // The reclaimed leases' own release must not give back someone else's.
    auto d = table->acquire("k", 3);
    a.release();
    b.release();
    EXPECT_EQ(table->count("k"), 1u);
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.reclaimed, 3u);
    EXPECT_EQ(s.leases, 1u);
    EXPECT_EQ(s.holders, 1u);
}

TEST(SharedTable, CreateRefusesBadCapacities) {
    SharedTable::Capacity capacity;
    capacity.keys = 0;
    EXPECT_EQ(SharedTable::create(capacity), nullptr);
    capacity.keys = 1;
    capacity.leases = size_t{1} << 30;
    EXPECT_EQ(SharedTable::create(capacity), nullptr);
}

// ---- sticky map ---------------------------------------------------------------------

constexpr int64_t kSecond = 1000000000;

TEST(SharedTable, StickStoresKeepsAndRefreshes) {
    auto table = make_table();
    g_now = 0;
    SharedTable::Stick s = table->stick("sticky:alice:s1", 7, 10s);
    EXPECT_TRUE(s.stored);
    EXPECT_EQ(s.value, 7u);
    EXPECT_EQ(s.previous, 0u);
    EXPECT_EQ(table->sticky_value("sticky:alice:s1"), 7u);

    // Another proposal gets the stored value, and the expiry moves to 19 s.
    g_now = 9 * kSecond;
    s = table->stick("sticky:alice:s1", 8, 10s);
    EXPECT_TRUE(s.stored);
    EXPECT_EQ(s.value, 7u);
    g_now = 18 * kSecond;  // past the first expiry (10 s): kept by the refresh
    EXPECT_EQ(table->sticky_value("sticky:alice:s1"), 7u);

    // Reading does not refresh: at 19 s the value has expired.
    g_now = 19 * kSecond;
    EXPECT_EQ(table->sticky_value("sticky:alice:s1"), 0u);
    s = table->stick("sticky:alice:s1", 8, 10s);
    EXPECT_TRUE(s.stored);
    EXPECT_EQ(s.value, 8u);
    EXPECT_EQ(s.previous, 0u);  // an expired value is not reported as replaced

    // The latest call's TTL applies.
    g_now = 20 * kSecond;
    EXPECT_EQ(table->stick("sticky:alice:s1", 9, 1s).value, 8u);
    g_now = 21 * kSecond - 1;
    EXPECT_EQ(table->sticky_value("sticky:alice:s1"), 8u);
    g_now = 21 * kSecond;
    EXPECT_EQ(table->sticky_value("sticky:alice:s1"), 0u);
    EXPECT_EQ(table->sticky_value("sticky:alice:other"), 0u);
    EXPECT_EQ(table->stats().keys, 1u);
}

TEST(SharedTable, StickAvoidReplacesAndReportsPrevious) {
    auto table = make_table();
    g_now = 0;
    ASSERT_EQ(table->stick("sticky:u:s", 7, 10s).value, 7u);
    SharedTable::Stick s = table->stick("sticky:u:s", 9, 10s, /*avoid=*/7);
    EXPECT_TRUE(s.stored);
    EXPECT_EQ(s.value, 9u);
    EXPECT_EQ(s.previous, 7u);
    EXPECT_EQ(table->sticky_value("sticky:u:s"), 9u);

    // Avoiding another value keeps this one.
    s = table->stick("sticky:u:s", 11, 10s, /*avoid=*/7);
    EXPECT_EQ(s.value, 9u);
    EXPECT_EQ(s.previous, 0u);

    // An expired value equal to `avoid` is no longer live: nothing replaced.
    g_now = 10 * kSecond;
    s = table->stick("sticky:u:s", 11, 10s, /*avoid=*/9);
    EXPECT_EQ(s.value, 11u);
    EXPECT_EQ(s.previous, 0u);
}

TEST(SharedTable, StickRefusesBadArguments) {
    auto table = make_table();
    g_now = 0;
    const SharedTable::Stick bad[] = {
        table->stick("", 5, 10s),           table->stick(std::string(129, 'x'), 5, 10s),
        table->stick("sticky:u:s", 0, 10s), table->stick("sticky:u:s", 5, 0s),
        table->stick("sticky:u:s", 5, -1s),
    };
    for (const SharedTable::Stick& s : bad) {
        EXPECT_FALSE(s.stored);
        EXPECT_EQ(s.previous, 0u);
    }
    EXPECT_EQ(bad[0].value, 5u);  // the proposal, to route by
    EXPECT_EQ(bad[1].value, 5u);
    EXPECT_EQ(table->sticky_value(""), 0u);
    SharedTable::Stats stats = table->stats();
    EXPECT_EQ(stats.refused_bad_key, 5u);
    EXPECT_EQ(stats.keys, 0u);
    EXPECT_TRUE(table->stick(std::string(128, 'x'), 5, 10s).stored);
    // A TTL of centuries saturates instead of wrapping into the past.
    g_now = 5 * kSecond;
    EXPECT_TRUE(table->stick("forever", 3, std::chrono::nanoseconds::max()).stored);
    EXPECT_EQ(table->sticky_value("forever"), 3u);
}

TEST(SharedTable, StickOnAFullTableRefusesWithTheProposal) {
    auto table = make_table(/*keys=*/4);
    g_now = 0;
    for (uint32_t i = 1; i <= 4; ++i)
        ASSERT_TRUE(table->stick("s" + std::to_string(i), i, 10s).stored);
    SharedTable::Stick s = table->stick("s5", 5, 10s);
    EXPECT_FALSE(s.stored);
    EXPECT_EQ(s.value, 5u);
    EXPECT_EQ(s.previous, 0u);
    EXPECT_EQ(table->sticky_value("s5"), 0u);
    EXPECT_EQ(table->stats().refused_full, 1u);
    // Keys that exist are still served.
    EXPECT_EQ(table->stick("s2", 9, 10s).value, 2u);
    EXPECT_EQ(table->stick("s3", 9, 10s, /*avoid=*/3).value, 9u);
    EXPECT_EQ(table->stats().keys, 4u);
}

TEST(SharedTable, ExpiredStickyEntriesAreReclaimed) {
    auto table = make_table(/*keys=*/8);
    g_now = 0;
    for (uint32_t i = 1; i <= 8; ++i)
        ASSERT_TRUE(table->stick("s" + std::to_string(i), i, 1s).stored);
    g_now = kSecond - 1;
    EXPECT_FALSE(table->stick("new", 1, 1s).stored);
    g_now = kSecond;  // every one has expired: reusable
    EXPECT_TRUE(table->stick("new", 1, 1s).stored);
    EXPECT_EQ(table->stats().keys, 1u);  // the sweep freed all eight
    EXPECT_EQ(table->sticky_value("s1"), 0u);
}

TEST(SharedTable, LiveStickyEntryIsNeverReclaimed) {
    auto table = make_table(/*keys=*/8);
    g_now = 0;
    ASSERT_TRUE(table->stick("live", 42, 100s).stored);
    for (uint32_t i = 1; i <= 7; ++i)
        ASSERT_TRUE(table->stick("s" + std::to_string(i), i, 1s).stored);
    g_now = 2 * kSecond;
    for (uint32_t i = 1; i <= 7; ++i) {
        EXPECT_TRUE(table->stick("new" + std::to_string(i), i, 100s).stored) << i;
    }
    // Full of live values now: refused rather than evicting one.
    EXPECT_FALSE(table->stick("new8", 8, 100s).stored);
    EXPECT_EQ(table->sticky_value("live"), 42u);
    EXPECT_EQ(table->stats().keys, 8u);
}

// A key entry is in use while it holds a lease, a bucket not yet refilled or
// a live sticky value; losing any one of them must not free it.
TEST(SharedTable, StickyValueSharesAKeyWithLeasesAndBucket) {
    auto table = make_table(/*keys=*/2, /*leases=*/1);
    g_now = 0;
    auto lease = table->acquire("k", 0);
    ASSERT_TRUE(lease);
    ASSERT_TRUE(table->stick("k", 3, 1s).stored);
    ASSERT_TRUE(table->stick("j", 4, 100s).stored);
    // A refused acquire (no holding left) keeps the key it found.
    EXPECT_EQ(table->acquire("j", 0).refusal(), Refusal::kTableFull);
    EXPECT_EQ(table->sticky_value("j"), 4u);
    // An expired sticky value under a held lease: the entry stays.
    g_now = 2 * kSecond;
    EXPECT_FALSE(table->stick("new", 5, 1s).stored);
    EXPECT_EQ(table->count("k"), 1u);
    // The last lease goes while the sticky value lives: the entry stays.
    ASSERT_TRUE(table->stick("k", 6, 100s).stored);
    lease.release();
    EXPECT_EQ(table->sticky_value("k"), 6u);
    EXPECT_EQ(table->stats().keys, 2u);

    // A bucket that is not yet full keeps an entry whose value has expired.
    auto buckets = make_table(/*keys=*/1);
    g_now = 0;
    ASSERT_TRUE(buckets->take("b", 0.1, 1));  // empty; full again in 10 s
    ASSERT_TRUE(buckets->stick("b", 7, 1s).stored);
    g_now = 5 * kSecond;
    EXPECT_FALSE(buckets->stick("new", 8, 1s).stored);
    g_now = 10 * kSecond;
    EXPECT_TRUE(buckets->stick("new", 8, 1s).stored);
}

// ---- several processes --------------------------------------------------------------

// Shared between the test and its children.
struct Shared {
    std::atomic<int> ready;  // children at the start line
    std::atomic<bool> go;
    std::atomic<int> inside;
    std::atomic<int> max_seen[8];
    std::atomic<int> max_counted[8];
    std::atomic<long> granted[8];
    std::atomic<long> taken[8];
    std::atomic<long> tried[8];
};

template <typename T = Shared>
class SharedMemory {
  public:
    SharedMemory() {
        void* m =
            mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) shared_ = new (m) T();
    }
    ~SharedMemory() {
        if (shared_) munmap(shared_, sizeof(T));
    }
    T* operator->() const { return shared_; }
    T& operator*() const { return *shared_; }
    explicit operator bool() const { return shared_ != nullptr; }

  private:
    T* shared_ = nullptr;
};

void raise_max(std::atomic<int>& max, int value) {
    int seen = max.load();
    while (value > seen && !max.compare_exchange_weak(seen, value)) {
    }
}

// Forks `n` children running `body(i)`, then _exit(0). Returns their pids.
template <typename Body>
std::vector<pid_t> fork_children(int n, Body body) {
    std::vector<pid_t> pids;
    for (int i = 0; i < n; ++i) {
        pid_t pid = ::fork();
        if (pid == 0) {
            body(i);
            ::_exit(0);
        }
        if (pid > 0) pids.push_back(pid);
    }
    return pids;
}

// Holds children at a start line until all are forked, so that they run
// together instead of one after the other.
void start_line(Shared& shm) {
    ++shm.ready;
    while (!shm.go.load()) ::sched_yield();
}
void open_start_line(Shared& shm, int children) {
    while (shm.ready.load() < children) ::sched_yield();
    shm.go = true;
}

constexpr int kChildren = 6;
constexpr uint32_t kLimit = 3;

TEST(SharedTableMultiProcess, NeverOverTheLimitNeverLeaked) {
    Watchdog watchdog(60);
    auto table = make_table();
    SharedMemory<> shm;
    ASSERT_TRUE(shm);
    auto pids = fork_children(kChildren, [&](int i) {
        start_line(*shm);
        // Bounded by iterations, and by a deadline far from any test timeout.
        auto deadline = std::chrono::steady_clock::now() + 600ms;
        for (int n = 0; n < 20000 && std::chrono::steady_clock::now() < deadline; ++n) {
            auto lease = table->acquire("hot", kLimit);
            if (!lease) continue;
            ++shm->granted[i];
            raise_max(shm->max_seen[i], ++shm->inside);
            raise_max(shm->max_counted[i], static_cast<int>(table->count("hot")));
            if (n % 4 == 0) ::sched_yield();  // be preempted holding it, now and then
            --shm->inside;
        }
    });
    open_start_line(*shm, static_cast<int>(pids.size()));
    ASSERT_EQ(pids.size(), static_cast<size_t>(kChildren));
    for (pid_t pid : pids) EXPECT_TRUE(exited_ok(wait_for(pid)));

    long granted = 0;
    for (int i = 0; i < kChildren; ++i) {
        EXPECT_LE(shm->max_seen[i].load(), static_cast<int>(kLimit)) << "child " << i;
        EXPECT_LE(shm->max_counted[i].load(), static_cast<int>(kLimit)) << "child " << i;
        granted += shm->granted[i].load();
    }
    // Progress, not fairness: a child may be refused every time while the
    // others hold the leases, so only the total must have moved.
    EXPECT_GT(granted, 0);
    EXPECT_EQ(table->count("hot"), 0u);
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.leases, 0u);
    EXPECT_EQ(s.holders, static_cast<size_t>(kChildren));
    EXPECT_EQ(s.repairs, 0u);
    for (pid_t pid : pids) EXPECT_EQ(table->reclaim(pid), 0u);  // exited clean: nothing held
    EXPECT_EQ(table->stats().holders, 0u);
}

TEST(SharedTableMultiProcess, TokensAreExactAcrossProcesses) {
    Watchdog watchdog(60);
    auto table = make_table();
    SharedMemory<> shm;
    ASSERT_TRUE(shm);
    constexpr long kBurst = 1000;
    g_now = 0;  // a frozen clock: no refill, so exactly kBurst tokens exist
    auto pids = fork_children(kChildren, [&](int i) {
        start_line(*shm);
        auto deadline = std::chrono::steady_clock::now() + 600ms;
        for (int n = 0; n < 2000 && std::chrono::steady_clock::now() < deadline; ++n) {
            ++shm->tried[i];
            if (table->take("dst", 1.0, kBurst)) ++shm->taken[i];
            if (n % 4 == 0) ::sched_yield();
        }
    });
    open_start_line(*shm, static_cast<int>(pids.size()));
    ASSERT_EQ(pids.size(), static_cast<size_t>(kChildren));
    for (pid_t pid : pids) EXPECT_TRUE(exited_ok(wait_for(pid)));
    long taken = 0;
    long tried = 0;
    for (int i = 0; i < kChildren; ++i) {
        taken += shm->taken[i].load();
        tried += shm->tried[i].load();
    }
    // Every try got a token until there were none left, and no more.
    EXPECT_EQ(taken, std::min(tried, kBurst)) << "of " << tried << " tries";
}

TEST(SharedTableMultiProcess, ExhaustedHolderRowsRefuse) {
    Watchdog watchdog(60);
    auto table = make_table(/*keys=*/8, /*leases=*/8, /*holders=*/1);
    auto mine = table->acquire("k", 0);
    ASSERT_TRUE(mine);
    auto pids = fork_children(1, [&](int) {
        mine.release();  // the parent's lease, copied by fork: must do nothing
        auto lease = table->acquire("k", 0);
        ::_exit(lease.refusal() == Refusal::kTableFull ? 0 : 1);
    });
    ASSERT_EQ(pids.size(), 1u);
    EXPECT_TRUE(exited_ok(wait_for(pids[0])));
    EXPECT_EQ(table->count("k"), 1u);
}

// Two processes stick the same new key at the same moment (a barrier per
// key), each with its own proposal: one lookup under one lock means both get
// the same value, whichever proposal won.
TEST(SharedTableMultiProcess, RacingSticksAgree) {
    Watchdog watchdog(60);
    constexpr int kKeys = 1000;
    struct Race {
        std::atomic<int> arrived[kKeys];
        uint32_t seen[2][kKeys];
        bool stored[2][kKeys];
    };
    auto table = make_table(/*keys=*/2 * kKeys);
    SharedMemory<Race> race;
    ASSERT_TRUE(race);
    g_now = 0;
    auto pids = fork_children(2, [&](int i) {
        for (int n = 0; n < kKeys; ++n) {
            ++race->arrived[n];
            while (race->arrived[n].load() < 2) ::sched_yield();
            auto s =
                table->stick("sticky:u:" + std::to_string(n), static_cast<uint32_t>(i + 1), 10s);
            race->seen[i][n] = s.value;
            race->stored[i][n] = s.stored;
        }
    });
    ASSERT_EQ(pids.size(), 2u);
    for (pid_t pid : pids) EXPECT_TRUE(exited_ok(wait_for(pid)));
    int won[2] = {0, 0};
    for (int n = 0; n < kKeys; ++n) {
        const std::string key = "sticky:u:" + std::to_string(n);
        ASSERT_TRUE(race->stored[0][n] && race->stored[1][n]) << key;
        ASSERT_EQ(race->seen[0][n], race->seen[1][n]) << key;
        ASSERT_TRUE(race->seen[0][n] == 1 || race->seen[0][n] == 2) << key;
        EXPECT_EQ(table->sticky_value(key), race->seen[0][n]) << key;
        ++won[race->seen[0][n] - 1];
    }
    // Which proposal wins each race is the scheduler's choice; only the sum is known.
    EXPECT_EQ(won[0] + won[1], kKeys) << "first " << won[0] << ", second " << won[1];
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.keys, static_cast<size_t>(kKeys));
    EXPECT_EQ(s.repairs, 0u);
}

// A pipe a child writes one byte to once it is ready to be killed.
class ReadyPipe {
  public:
    ReadyPipe() { ok_ = ::pipe(fds_) == 0; }
    ~ReadyPipe() {
        if (ok_) {
            ::close(fds_[0]);
            ::close(fds_[1]);
        }
    }
    explicit operator bool() const { return ok_; }
    void signal() const {
        char c = 1;
        (void)!::write(fds_[1], &c, 1);
    }
    bool wait() const {
        char c = 0;
        return ::read(fds_[0], &c, 1) == 1;
    }

  private:
    int fds_[2] = {-1, -1};
    bool ok_ = false;
};

TEST(SharedTableMultiProcess, ReclaimAfterSigkillRestoresCapacity) {
    Watchdog watchdog(60);
    auto table = make_table();
    ReadyPipe ready;
    ASSERT_TRUE(ready);
    auto pids = fork_children(1, [&](int) {
        std::vector<SharedTable::Lease> held;
        for (uint32_t i = 0; i < kLimit; ++i) held.push_back(table->acquire("user:x", kLimit));
        held.push_back(table->acquire("user:y", 0));
        ready.signal();
        for (;;) ::pause();
    });
    ASSERT_EQ(pids.size(), 1u);
    ASSERT_TRUE(ready.wait());
    ::kill(pids[0], SIGKILL);
    int status = wait_for(pids[0]);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    EXPECT_EQ(table->count("user:x"), kLimit);  // dead, but not reaped by the table yet
    EXPECT_EQ(table->acquire("user:x", kLimit).refusal(), Refusal::kAtLimit);
    EXPECT_EQ(table->reclaim(pids[0]), kLimit + 1);
    EXPECT_EQ(table->count("user:x"), 0u);
    EXPECT_EQ(table->count("user:y"), 0u);
    std::vector<SharedTable::Lease> held;
    for (uint32_t i = 0; i < kLimit; ++i) {
        held.push_back(table->acquire("user:x", kLimit));
        EXPECT_TRUE(held.back());
    }
}

// Forks a child that takes one lease of `key` with a limit of 2 and gives it
// back, under its own watchdog: it exits 0 unless it blocks or is refused.
bool another_process_gets_through(SharedTable& table, const char* key) {
    auto pids = fork_children(1, [&](int) {
        ::alarm(10);
        auto lease = table.acquire(key, 2);
        ::_exit(lease ? 0 : 1);
    });
    if (pids.size() != 1) return false;
    bool ok = exited_ok(wait_for(pids[0]));
    table.reclaim(pids[0]);
    return ok;
}

void die(const char*) {
    ::kill(::getpid(), SIGKILL);
}

TEST(SharedTableMultiProcess, DeathInsideAcquireDoesNotBlockOthers) {
    Watchdog watchdog(60);
    auto table = make_table();
    auto pids = fork_children(1, [&](int) {
        auto first = table->acquire("k", 2);
        table->set_test_hook(die);
        auto second = table->acquire("k", 2);  // dies holding the lock, half done
        ::_exit(1);
    });
    ASSERT_EQ(pids.size(), 1u);
    int status = wait_for(pids[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    // The dead child held two (the second one marked in use, not yet
    // counted): the next locker rebuilds and sees both, so the key is full.
    EXPECT_FALSE(another_process_gets_through(*table, "k"));
    EXPECT_EQ(table->stats().repairs, 1u);
    EXPECT_EQ(table->count("k"), 2u);
    EXPECT_EQ(table->reclaim(pids[0]), 2u);
    EXPECT_EQ(table->count("k"), 0u);
    EXPECT_TRUE(another_process_gets_through(*table, "k"));
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.leases, 0u);
    EXPECT_EQ(s.keys, 0u);
    EXPECT_EQ(s.holders, 0u);
}

TEST(SharedTableMultiProcess, DeathInsideReleaseDoesNotBlockOthers) {
    Watchdog watchdog(60);
    auto table = make_table();
    auto pids = fork_children(1, [&](int) {
        auto first = table->acquire("k", 2);
        auto second = table->acquire("k", 2);
        table->set_test_hook(die);
        second.release();  // dies holding the lock with the holding half freed
        ::_exit(1);
    });
    ASSERT_EQ(pids.size(), 1u);
    int status = wait_for(pids[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    EXPECT_TRUE(another_process_gets_through(*table, "k"));
    EXPECT_EQ(table->stats().repairs, 1u);
    EXPECT_EQ(table->count("k"), 1u);
    EXPECT_EQ(table->reclaim(pids[0]), 1u);
    EXPECT_EQ(table->count("k"), 0u);
    EXPECT_EQ(table->stats().leases, 0u);
}

// Forks a child that dies inside stick(), at the test hook, holding the lock
// with the value stored and its expiry not. True when it died there.
bool dies_inside_stick(SharedTable& table, const char* key, uint32_t proposed, uint32_t avoid) {
    auto pids = fork_children(1, [&](int) {
        table.set_test_hook(die);
        table.stick(key, proposed, 10s, avoid);
        ::_exit(1);  // the hook was not reached
    });
    if (pids.size() != 1) return false;
    int status = wait_for(pids[0]);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Whatever the case (replacing a live avoided value, an expired one, or a
// new key), the next locker repairs the table and finds the old value or the
// new one, never another; the entry then works as any other.
TEST(SharedTableMultiProcess, DeathInsideStickIsRepaired) {
    Watchdog watchdog(60);
    auto table = make_table();
    g_now = 0;
    ASSERT_EQ(table->stick("avoided", 7, 100s).value, 7u);
    ASSERT_EQ(table->stick("expired", 7, 1s).value, 7u);
    g_now = 2 * kSecond;
    struct Case {
        const char* key;
        uint32_t old_value;  // live before the death (0: none)
        uint32_t avoid;
    };
    const Case cases[] = {{"avoided", 7, 7}, {"expired", 0, 0}, {"new", 0, 0}};
    uint64_t repairs = 0;
    for (const Case& c : cases) {
        ASSERT_TRUE(dies_inside_stick(*table, c.key, 9, c.avoid)) << c.key;
        const uint32_t after = table->sticky_value(c.key);  // the next locker: repairs
        EXPECT_EQ(table->stats().repairs, ++repairs) << c.key;
        EXPECT_TRUE(after == c.old_value || after == 9) << c.key << ": " << after;
        // The entry works as usual: kept if live, else replaced.
        SharedTable::Stick s = table->stick(c.key, 11, 100s);
        EXPECT_TRUE(s.stored) << c.key;
        EXPECT_EQ(s.value, after != 0 ? after : 11u) << c.key;
        EXPECT_EQ(table->sticky_value(c.key), s.value) << c.key;
    }
    SharedTable::Stats s = table->stats();
    EXPECT_EQ(s.keys, 3u);
    EXPECT_EQ(s.leases, 0u);
    EXPECT_TRUE(another_process_gets_through(*table, "k"));
}

}  // namespace
}  // namespace common
