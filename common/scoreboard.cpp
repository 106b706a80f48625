#include "common/scoreboard.h"

#include <sys/mman.h>

namespace common {

static_assert(std::atomic<int32_t>::is_always_lock_free &&
                  std::atomic<int64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free to work across processes");

std::unique_ptr<Scoreboard> Scoreboard::create(size_t slots) {
    size_t bytes = sizeof(Header) + slots * sizeof(Row);
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    auto* header = new (memory) Header();
    header->rows_in_use.store(0);
    auto* rows = reinterpret_cast<Row*>(static_cast<char*>(memory) + sizeof(Header));
    for (size_t i = 0; i < slots; ++i) {
        new (&rows[i]) Row();
        rows[i].pid.store(0);
        rows[i].accepting.store(0);
        rows[i].active.store(0);
    }
    return std::unique_ptr<Scoreboard>(new Scoreboard(header, rows, slots));
}

Scoreboard::~Scoreboard() {
    munmap(header_, mapped_bytes());
}

Scoreboard::Row* Scoreboard::row(int slot) const {
    if (slot < 0 || static_cast<size_t>(slot) >= slots_) return nullptr;
    return &rows_[slot];
}

void Scoreboard::claim(int slot, pid_t pid) {
    if (Row* r = row(slot)) {
        r->active.store(0, std::memory_order_relaxed);
        r->accepting.store(0, std::memory_order_relaxed);
        r->pid.store(pid, std::memory_order_release);
        int32_t in_use = header_->rows_in_use.load(std::memory_order_relaxed);
        while (in_use <= slot && !header_->rows_in_use.compare_exchange_weak(
                                     in_use, slot + 1, std::memory_order_release)) {
        }
    }
}

void Scoreboard::release(int slot, pid_t pid) {
    if (Row* r = row(slot)) {
        int32_t expected = pid;
        r->pid.compare_exchange_strong(expected, 0);
    }
}

void Scoreboard::set_active(int slot, pid_t pid, uint64_t active) {
    Row* r = row(slot);
    if (r && r->pid.load(std::memory_order_relaxed) == pid) {
        r->active.store(static_cast<int64_t>(active), std::memory_order_relaxed);
    }
}

void Scoreboard::set_accepting(int slot, pid_t pid, bool accepting) {
    Row* r = row(slot);
    if (r && r->pid.load(std::memory_order_relaxed) == pid) {
        r->accepting.store(accepting ? 1 : 0, std::memory_order_relaxed);
    }
}

int64_t Scoreboard::active_of(int slot, pid_t pid) const {
    const Row* r = row(slot);
    if (r == nullptr || r->pid.load(std::memory_order_acquire) != pid) return -1;
    return r->active.load(std::memory_order_relaxed);
}

int64_t Scoreboard::least_loaded_other(int slot) const {
    int64_t least = -1;
    auto in_use = static_cast<size_t>(header_->rows_in_use.load(std::memory_order_acquire));
    for (size_t i = 0; i < in_use && i < slots_; ++i) {
        if (static_cast<int>(i) == slot || rows_[i].pid.load(std::memory_order_acquire) == 0 ||
            rows_[i].accepting.load(std::memory_order_relaxed) == 0) {
            continue;
        }
        int64_t active = rows_[i].active.load(std::memory_order_relaxed);
        if (least < 0 || active < least) least = active;
    }
    return least;
}

}  // namespace common
