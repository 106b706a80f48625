#include "worker/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

namespace worker {

std::optional<Pipe> PipePool::take() {
    if (!idle_.empty()) {
        Pipe pipe = std::move(idle_.back());
        idle_.pop_back();
        return pipe;
    }
    if (live_ >= max_pipes_) return std::nullopt;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::nullopt;
    Pipe pipe{common::UniqueFd(fds[0]), common::UniqueFd(fds[1]), 0, PipeCount(&live_)};
    // Growing the pipe may be refused (pipe-user-pages limits); the default
    // size then serves, with more splices per chunk.
    fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
    int capacity = fcntl(fds[1], F_GETPIPE_SZ);
    pipe.capacity = capacity > 0 ? static_cast<size_t>(capacity) : 4096;
    return pipe;
}

void PipePool::give_back(Pipe pipe) {
    if (idle_.size() < max_idle_) idle_.push_back(std::move(pipe));
}

size_t PipePool::drop_idle() {
    size_t dropped = idle_.size();
    idle_.clear();
    return dropped;
}

}  // namespace worker
