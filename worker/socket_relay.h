// One direction of a byte stream between two plain TCP sockets, moved by
// the kernel: splice(2) from the source socket into a pipe and from the
// pipe into the sink socket, so no byte is copied through user space and
// no event is re-armed while the sink keeps up.
//
// Flow control is the pipe itself: the source is read only when nothing is
// in flight; when the sink cannot take everything, reading stops and the
// relay waits for the sink to become writable. At most one pipe's worth
// (buffer_size) is ever held per direction, and only while it is held is a
// pipe (two descriptors) borrowed from the worker's PipePool. Without a
// pipe (descriptor limit) the relay copies through a small evbuffer.
//
// Used for CONNECT tunnels and for large response bodies whose length is
// known or delimited by the close. TLS connections keep bufferevents.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "common/libevent_handles.h"
#include "worker/pipe_pool.h"

namespace worker {

class SocketRelay {
  public:
    enum class End {
        kLimitReached,  // `limit` bytes were read and all of them written
        kSourceEof,     // the source closed; everything before it was written
        kSourceError,   // reading failed (errno in `error`)
        kSinkError,     // writing failed (errno in `error`)
    };
    // Called for every chunk read from the source. It must not destroy the
    // relay.
    using ProgressCallback = std::function<void(size_t bytes)>;
    // Called once; it may destroy the relay.
    using EndCallback = std::function<void(End end, int error)>;

    SocketRelay(event_base* base, PipePool& pipes, evutil_socket_t source, evutil_socket_t sink,
                uint64_t limit, ProgressCallback progress, EndCallback end);
    ~SocketRelay();
    SocketRelay(const SocketRelay&) = delete;
    SocketRelay& operator=(const SocketRelay&) = delete;

    // Bytes that must reach the sink before anything read from the source,
    // taken from a disabled bufferevent: what it has not written yet (a
    // response head), what it read ahead. Call before start().
    void send_first_output_of(bufferevent* bev);
    void send_first_input_of(bufferevent* bev);
    // Arms the events; everything else happens from the event loop. When
    // libevent is out of memory the relay ends at once (kSourceError,
    // ENOMEM).
    void start();

    // True while bytes wait for the sink, false while waiting for the source.
    bool waiting_for_sink() const { return waiting_for_sink_; }
    // When a byte last moved either way.
    std::chrono::steady_clock::time_point last_activity() const { return last_activity_; }

  private:
    void send_first(evbuffer* buffer);
    void on_readable();
    void on_writable();
    // Reads one chunk from the source into the pipe (or the copy buffer).
    // Returns bytes read, 0 at EOF, -1 with errno set.
    ssize_t fill();
    // Writes what is in flight. False when the sink would block (the relay
    // now waits for it) or the relay ended.
    bool flush();
    void wait_for_sink();
    void release_pipe();
    void end(End how, int error);
    static void on_readable_cb(evutil_socket_t, short, void* arg) noexcept;
    static void on_writable_cb(evutil_socket_t, short, void* arg) noexcept;

    event_base* base_;
    PipePool& pipes_;
    evutil_socket_t source_;
    evutil_socket_t sink_;
    uint64_t remaining_;
    ProgressCallback progress_;
    EndCallback end_;
    common::EventPtr read_event_;
    common::EventPtr write_event_;
    std::optional<Pipe> pipe_;
    size_t in_pipe_ = 0;
    bool out_of_memory_ = false;
    common::EvBufferPtr copy_buffer_;  // send_first() bytes, or the no-pipe fallback
    bool waiting_for_sink_ = false;
    std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
};

}  // namespace worker
