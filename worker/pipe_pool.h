// Kernel pipes for splice(2), kept per worker. A relay holds a pipe only
// while bytes are in it (between the splice in and the splice out), so an
// idle tunnel or keep-alive connection costs no descriptors; a short list of
// empty pipes saves the pipe2()/close() pair on the next chunk.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "common/libevent_handles.h"

namespace worker {

struct Pipe {
    common::UniqueFd read_end;
    common::UniqueFd write_end;
    size_t capacity = 0;  // bytes the pipe holds before a splice into it stops
};

class PipePool {
  public:
    // `pipe_size` is asked of the kernel with F_SETPIPE_SZ (it may give
    // less); at most `max_idle` empty pipes are kept.
    PipePool(size_t pipe_size, size_t max_idle) : pipe_size_(pipe_size), max_idle_(max_idle) {}

    // An empty pipe, or nullopt when none can be made (descriptor limit):
    // the caller then copies through user space instead.
    std::optional<Pipe> take();
    // `pipe` must be empty; it is kept or closed.
    void give_back(Pipe pipe);

    size_t idle() const { return idle_.size(); }

  private:
    size_t pipe_size_;
    size_t max_idle_;
    std::vector<Pipe> idle_;
};

}  // namespace worker
