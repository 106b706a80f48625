#include "worker/tunnel.h"

#include <sys/socket.h>

#include <algorithm>

#include "common/timeval.h"
#include "worker/transport.h"

namespace worker {

using common::to_timeval;

Tunnel::Tunnel(event_base* base, PipePool* pipes, common::BufferEventPtr client,
               common::BufferEventPtr upstream, size_t high_watermark,
               std::chrono::milliseconds idle_timeout, DoneCallback done)
    : base_(base),
      pipes_(pipes),
      client_{this, std::move(client), &upstream_, &totals_.client_to_upstream},
      upstream_{this, std::move(upstream), &client_, &totals_.upstream_to_client},
      high_watermark_(high_watermark),
      idle_timeout_(idle_timeout),
      done_(std::move(done)) {}

Tunnel::~Tunnel() = default;

void Tunnel::start() {
    // One coarse timer per tunnel instead of re-arming a timeout on every
    // read: it wakes every idle_timeout and checks the last activity.
    last_activity_ = std::chrono::steady_clock::now();
    idle_timer_.reset(event_new(base_, -1, 0, on_idle_check, this));
    if (!idle_timer_) {
        finish("out of memory");
        return;
    }
    timeval tv = to_timeval(idle_timeout_);
    event_add(idle_timer_.get(), &tv);
    if (pipes_ && is_plain_tcp(client_.bev.get()) && is_plain_tcp(upstream_.bev.get())) {
        start_relays();
    } else {
        start_bufferevents();
    }
}

// The bufferevents keep their sockets (and close them at the end) but move
// no more bytes; whatever they hold goes first: the client's output has
// the 200 line, its input any bytes sent before it, the upstream's input
// what a parent sent after its answer to our CONNECT or SOCKS request.
void Tunnel::start_relays() {
    for (Side* side : {&client_, &upstream_}) {
        bufferevent_disable(side->bev.get(), EV_READ | EV_WRITE);
    }
    for (Side* from : {&client_, &upstream_}) {
        bufferevent* to = from->peer->bev.get();
        from->relay = std::make_unique<SocketRelay>(
            base_, *pipes_, bufferevent_getfd(from->bev.get()), bufferevent_getfd(to), UINT64_MAX,
            [from](size_t n) { *from->counter += n; },
            [from](SocketRelay::End end, int) { from->tunnel->on_relay_end(*from, end); });
        from->relay->send_first_output_of(to);
        from->relay->send_first_input_of(from->bev.get());
    }
    client_.relay->start();
    upstream_.relay->start();
}

void Tunnel::on_relay_end(Side& from, SocketRelay::End end) {
    switch (end) {
        case SocketRelay::End::kSourceEof:
        case SocketRelay::End::kLimitReached:
            from.eof = true;
            shutdown(bufferevent_getfd(from.peer->bev.get()), SHUT_WR);
            from.shut_down = true;
            if (client_.shut_down && upstream_.shut_down) finish("closed");
            return;
        case SocketRelay::End::kSourceError:
            finish(&from == &client_ ? "client connection error" : "upstream connection error");
            return;
        case SocketRelay::End::kSinkError:
            finish(&from == &client_ ? "upstream connection error" : "client connection error");
            return;
    }
}

void Tunnel::start_bufferevents() {
    for (Side* side : {&client_, &upstream_}) {
        bufferevent_setcb(side->bev.get(), on_read, on_write, on_event, side);
        bufferevent_set_timeouts(side->bev.get(), nullptr, nullptr);
        bufferevent_setwatermark(side->bev.get(), EV_READ, 0, high_watermark_);
        set_io_size(side->bev.get(), high_watermark_);
        bufferevent_enable(side->bev.get(), EV_READ | EV_WRITE);
    }
    // Bytes read before the tunnel: the client's sent before the 200, a
    // parent's sent after its own answer to our CONNECT or SOCKS request.
    for (Side* side : {&client_, &upstream_}) {
        if (evbuffer_get_length(bufferevent_get_input(side->bev.get())) > 0) relay(*side);
    }
}

std::chrono::steady_clock::time_point Tunnel::latest_activity() const {
    auto latest = last_activity_;
    for (const Side* side : {&client_, &upstream_}) {
        if (side->relay) latest = std::max(latest, side->relay->last_activity());
    }
    return latest;
}

// Moves everything readable from `from` to its peer; applies backpressure.
void Tunnel::relay(Side& from) {
    evbuffer* input = bufferevent_get_input(from.bev.get());
    size_t n = evbuffer_get_length(input);
    if (n == 0) return;
    last_activity_ = std::chrono::steady_clock::now();
    bufferevent* to = from.peer->bev.get();
    evbuffer_add_buffer(bufferevent_get_output(to), input);
    *from.counter += n;
    // Pausing only past the mark (one more read's worth may queue: at most
    // twice the mark per direction) halves the pause/resume churn when reads
    // arrive in buffer-sized pieces.
    if (evbuffer_get_length(bufferevent_get_output(to)) > high_watermark_) {
        bufferevent_disable(from.bev.get(), EV_READ);
        bufferevent_setwatermark(to, EV_WRITE, high_watermark_ / 2, 0);
    }
}

// After EOF on `from`, shut down the peer's write side once its output is
// empty, so the far end sees the half-close only after every byte.
void Tunnel::maybe_shutdown(Side& from) {
    if (!from.eof || from.shut_down) return;
    bufferevent* to = from.peer->bev.get();
    if (evbuffer_get_length(bufferevent_get_output(to)) > 0) {
        bufferevent_setwatermark(to, EV_WRITE, 0, 0);
        return;
    }
    shutdown(bufferevent_getfd(to), SHUT_WR);
    from.shut_down = true;
    if (client_.shut_down && upstream_.shut_down) finish("closed");
}

void Tunnel::finish(const char* reason) {
    totals_.end_reason = reason;
    bufferevent_disable(client_.bev.get(), EV_READ | EV_WRITE);
    bufferevent_disable(upstream_.bev.get(), EV_READ | EV_WRITE);
    idle_timer_.reset();
    DoneCallback done = std::move(done_);
    done(totals_);  // destroys this
}

void Tunnel::on_read(bufferevent*, void* arg) noexcept {
    auto* side = static_cast<Side*>(arg);
    side->tunnel->relay(*side);
}

void Tunnel::on_write(bufferevent* bev, void* arg) noexcept {
    auto* side = static_cast<Side*>(arg);  // `bev` is this side; its peer feeds it
    Side& feeder = *side->peer;
    if (feeder.eof) {
        side->tunnel->maybe_shutdown(feeder);
        return;
    }
    if (!(bufferevent_get_enabled(feeder.bev.get()) & EV_READ)) {
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        bufferevent_enable(feeder.bev.get(), EV_READ);
    }
}

void Tunnel::on_event(bufferevent*, short events, void* arg) noexcept {
    auto* side = static_cast<Side*>(arg);
    Tunnel* self = side->tunnel;
    // A TLS side's reset arrives as an EOF (a dirty shutdown): it ends the
    // tunnel like any connection error, rather than pass on a half-close.
    bool reset = (events & BEV_EVENT_EOF) && !side->peer->shut_down &&
                 !is_plain_tcp(side->bev.get()) && reset_by_peer(side->bev.get());
    if ((events & BEV_EVENT_EOF) && !reset) {
        self->relay(*side);
        side->eof = true;
        bufferevent_disable(side->bev.get(), EV_READ);
        self->maybe_shutdown(*side);
        return;
    }
    self->finish(side == &self->client_ ? "client connection error" : "upstream connection error");
}

void Tunnel::on_idle_check(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<Tunnel*>(arg);
    auto idle = std::chrono::steady_clock::now() - self->latest_activity();
    if (idle >= self->idle_timeout_) {
        self->finish("idle timeout");
        return;
    }
    auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(self->idle_timeout_ - idle);
    timeval tv = to_timeval(remaining);
    event_add(self->idle_timer_.get(), &tv);
}

}  // namespace worker
