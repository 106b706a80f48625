#include "worker/socket_relay.h"

#include <event2/buffer.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>

namespace worker {

namespace {

constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// Chunks moved per wakeup before the loop serves other connections: a fast
// source and sink could otherwise keep one relay spinning.
constexpr int kChunksPerWakeup = 4;
// The copy fallback reads at most this much at a time.
constexpr size_t kCopyChunk = 64 * 1024;

bool would_block(int error) {
    return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

}  // namespace

SocketRelay::SocketRelay(event_base* base, PipePool& pipes, evutil_socket_t source,
                         evutil_socket_t sink, uint64_t limit, ProgressCallback progress,
                         EndCallback end)
    : base_(base),
      pipes_(pipes),
      source_(source),
      sink_(sink),
      remaining_(limit),
      progress_(std::move(progress)),
      end_(std::move(end)) {}

SocketRelay::~SocketRelay() {
    release_pipe();
}

void SocketRelay::send_first_input_of(bufferevent* bev) {
    send_first(bufferevent_get_input(bev));
}

// A socket bufferevent freezes the front of its output (only it may drain
// it); it is disabled by now, so the bytes may be taken for a moment.
void SocketRelay::send_first_output_of(bufferevent* bev) {
    evbuffer* output = bufferevent_get_output(bev);
    evbuffer_unfreeze(output, 1);
    send_first(output);
    evbuffer_freeze(output, 1);
}

void SocketRelay::send_first(evbuffer* buffer) {
    if (evbuffer_get_length(buffer) == 0) return;
    if (!copy_buffer_) copy_buffer_.reset(evbuffer_new());
    if (!copy_buffer_) {
        out_of_memory_ = true;  // start() ends the relay: these bytes must not be skipped
        return;
    }
    evbuffer_add_buffer(copy_buffer_.get(), buffer);
}

void SocketRelay::start() {
    read_event_.reset(event_new(base_, source_, EV_READ | EV_PERSIST, on_readable_cb, this));
    write_event_.reset(event_new(base_, sink_, EV_WRITE | EV_PERSIST, on_writable_cb, this));
    if (!read_event_ || !write_event_ || out_of_memory_) {
        end(End::kSourceError, ENOMEM);  // may destroy this
        return;
    }
    if (copy_buffer_ && evbuffer_get_length(copy_buffer_.get()) > 0) {
        wait_for_sink();
    } else {
        event_add(read_event_.get(), nullptr);
    }
}

void SocketRelay::on_readable() {
    for (int chunk = 0; chunk < kChunksPerWakeup; ++chunk) {
        ssize_t n = fill();
        if (n < 0) {
            int error = errno;
            release_pipe();
            if (!would_block(error)) end(End::kSourceError, error);
            return;
        }
        if (n == 0) {
            end(End::kSourceEof, 0);  // nothing is in flight when we read
            return;
        }
        remaining_ -= static_cast<uint64_t>(n);
        last_activity_ = std::chrono::steady_clock::now();
        progress_(static_cast<size_t>(n));
        if (!flush()) return;
        if (remaining_ == 0) {
            end(End::kLimitReached, 0);
            return;
        }
    }
}

void SocketRelay::on_writable() {
    if (!flush()) return;
    if (remaining_ == 0) end(End::kLimitReached, 0);
}

ssize_t SocketRelay::fill() {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining_, SIZE_MAX));
    if (!pipe_) pipe_ = pipes_.take();
    if (pipe_) {
        ssize_t n = splice(source_, nullptr, pipe_->write_end.get(), nullptr,
                           std::min(want, pipe_->capacity), kSpliceFlags);
        if (n > 0) in_pipe_ = static_cast<size_t>(n);
        return n;
    }
    if (!copy_buffer_) copy_buffer_.reset(evbuffer_new());
    if (!copy_buffer_) {
        errno = ENOMEM;
        return -1;
    }
    return evbuffer_read(copy_buffer_.get(), source_, static_cast<int>(std::min(want, kCopyChunk)));
}

bool SocketRelay::flush() {
    while (copy_buffer_ && evbuffer_get_length(copy_buffer_.get()) > 0) {
        if (evbuffer_write(copy_buffer_.get(), sink_) < 0) {
            if (would_block(errno)) {
                wait_for_sink();
            } else {
                end(End::kSinkError, errno);
            }
            return false;
        }
        last_activity_ = std::chrono::steady_clock::now();
    }
    while (in_pipe_ > 0) {
        ssize_t n = splice(pipe_->read_end.get(), nullptr, sink_, nullptr, in_pipe_, kSpliceFlags);
        if (n > 0) {
            in_pipe_ -= static_cast<size_t>(n);
            last_activity_ = std::chrono::steady_clock::now();
            continue;
        }
        if (n < 0 && would_block(errno)) {
            wait_for_sink();
        } else {
            end(End::kSinkError, n < 0 ? errno : EPIPE);
        }
        return false;
    }
    release_pipe();
    if (waiting_for_sink_) {
        waiting_for_sink_ = false;
        event_del(write_event_.get());
        if (remaining_ > 0) event_add(read_event_.get(), nullptr);
    }
    return true;
}

void SocketRelay::wait_for_sink() {
    if (waiting_for_sink_) return;
    waiting_for_sink_ = true;
    event_del(read_event_.get());
    event_add(write_event_.get(), nullptr);
}

// An empty pipe goes back to the pool; one with bytes in it (the relay ended
// or was destroyed mid-flight) is closed with them.
void SocketRelay::release_pipe() {
    if (!pipe_) return;
    if (in_pipe_ == 0) pipes_.give_back(std::move(*pipe_));
    pipe_.reset();
    in_pipe_ = 0;
}

void SocketRelay::end(End how, int error) {
    event_del(read_event_.get());
    event_del(write_event_.get());
    release_pipe();
    EndCallback done = std::move(end_);
    done(how, error);  // may destroy this
}

void SocketRelay::on_readable_cb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<SocketRelay*>(arg)->on_readable();
}

void SocketRelay::on_writable_cb(evutil_socket_t, short, void* arg) noexcept {
    static_cast<SocketRelay*>(arg)->on_writable();
}

}  // namespace worker
