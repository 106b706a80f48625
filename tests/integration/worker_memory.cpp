#include "tests/integration/worker_memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace harness {

std::vector<pid_t> sorted_worker_pids(ProxydInstance& proxy) {
    std::vector<pid_t> pids = proxy.worker_pids();
    std::sort(pids.begin(), pids.end());
    return pids;
}

WorkerMemory::WorkerMemory(ProxydInstance& proxy)
    : proxy_(proxy), pids_(sorted_worker_pids(proxy)) {
    if (pids_.empty()) ADD_FAILURE() << "no worker listed by status";
}

uint64_t WorkerMemory::resident() const {
    uint64_t sum = 0;
    for (pid_t pid : pids_) {
        const uint64_t bytes = resident_bytes(pid);
        if (bytes == 0) ADD_FAILURE() << "worker " << pid << " is gone: its RSS reads 0";
        sum += bytes;
    }
    return sum;
}

uint64_t WorkerMemory::settled_resident(Millis timeout, uint64_t tolerance, Millis poll) const {
    const auto deadline = Clock::now() + timeout;
    uint64_t last = resident();
    int stable = 0;  // consecutive polls within tolerance
    while (Clock::now() < deadline && stable < 2) {
        std::this_thread::sleep_for(poll);
        const uint64_t now = resident();
        const uint64_t change = now > last ? now - last : last - now;
        stable = change <= tolerance ? stable + 1 : 0;
        last = now;
    }
    return last;
}

bool WorkerMemory::expect_same_workers() const {
    const std::vector<pid_t> now = sorted_worker_pids(proxy_);
    EXPECT_EQ(now, pids_) << "a worker died or was replaced during the measurement: "
                          << proxy_.control("status").value_or("(no answer)");
    return now == pids_;
}

}  // namespace harness
