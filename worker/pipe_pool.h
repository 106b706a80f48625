// Kernel pipes for splice(2), kept per worker. A relay holds a pipe only
// while bytes are in it (between the splice in and the splice out), so an
// idle tunnel or keep-alive connection costs no descriptors; a short list of
// empty pipes saves the pipe2()/close() pair on the next chunk.
//
// The pipes alive at once, busy or idle, are capped (`max_pipes`): they are
// one line of the worker's descriptor budget (common/config.h), and past the
// cap a relay copies through user space, as it does when pipe2() fails.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "common/libevent_handles.h"

namespace worker {

// Counts one live pipe in its pool while it exists; moves with the pipe.
class PipeCount {
  public:
    PipeCount() = default;
    explicit PipeCount(size_t* live) : live_(live) { ++*live_; }
    PipeCount(PipeCount&& other) noexcept : live_(other.live_) { other.live_ = nullptr; }
    PipeCount& operator=(PipeCount&& other) noexcept {
        if (this != &other) {
            release();
            live_ = other.live_;
            other.live_ = nullptr;
        }
        return *this;
    }
    ~PipeCount() { release(); }

  private:
    void release() {
        if (live_) --*live_;
        live_ = nullptr;
    }
    size_t* live_ = nullptr;
};

struct Pipe {
    common::UniqueFd read_end;
    common::UniqueFd write_end;
    size_t capacity = 0;  // bytes the pipe holds before a splice into it stops
    PipeCount count;      // the pool's count of live pipes
};

class PipePool {
  public:
    // `pipe_size` is asked of the kernel with F_SETPIPE_SZ (it may give
    // less); at most `max_idle` empty pipes are kept, and at most
    // `max_pipes` exist at once. The pool must outlive every pipe it made.
    PipePool(size_t pipe_size, size_t max_idle, size_t max_pipes)
        : pipe_size_(pipe_size), max_idle_(max_idle), max_pipes_(max_pipes) {}
    PipePool(const PipePool&) = delete;
    PipePool& operator=(const PipePool&) = delete;

    // An empty pipe, or nullopt when none may or can be made (max_pipes
    // reached, descriptor limit): the caller then copies through user space.
    std::optional<Pipe> take();
    // `pipe` must be empty; it is kept or closed.
    void give_back(Pipe pipe);
    // Closes every idle pipe (descriptors ran short). Returns how many.
    size_t drop_idle();

    size_t idle() const { return idle_.size(); }
    // Pipes alive now, busy or idle.
    size_t live() const { return live_; }

  private:
    size_t pipe_size_;
    size_t max_idle_;
    size_t max_pipes_;
    size_t live_ = 0;
    std::vector<Pipe> idle_;
};

}  // namespace worker
