// The HTTP client connection: any number of requests, one at a time.
//
//   state          event                                   next
//   -------------  --------------------------------------  ----------------------------
//   kReadingHead   complete, valid head                    kExchange (http_exchange.cpp)
//   kReadingHead   malformed head                          error response -> kClosing
//   kReadingHead   header_timeout with bytes               408 -> kClosing
//   kReadingHead   idle_timeout, or idle while draining    closed
//   kReadingHead   client EOF                              kClosing (answers still queued
//                                                          go out; a pipelined request
//                                                          already read is served first)
//   kExchange      response complete, keep-alive           kReadingHead (next request)
//   kExchange      response complete, no keep-alive        kClosing
//   kExchange      refused before the response             error response -> kReadingHead,
//                                                          or kClosing when it must close
//   kExchange      broken after the response head          kClosing (truncated: close)
//   kExchange      CONNECT established                     kTunnel
//   kExchange      client EOF after its request            kExchange (answer it and the
//                                                          requests pipelined before the
//                                                          EOF, then close)
//   kExchange      client EOF mid-request, client timeout  closed
//   kTunnel        the tunnel ended                        closed
//   kClosing       output flushed, nothing more can come   closed
//   kClosing       output flushed, the client may still    lingering: SHUT_WR, then its
//                  be sending                              EOF or 2 s -> closed
//
// Pipelined requests wait in the client's input until the current response
// is complete, so responses go out in order.
#include "worker/http_connection.h"

#include <sys/socket.h>

#include <algorithm>

#include "common/log.h"
#include "common/timeval.h"
#include "worker/http_forwarding.h"
#include "worker/refusal.h"
#include "worker/transport.h"

namespace worker {

using common::to_timeval;

namespace http = common::http;
namespace channel = common::channel;

namespace {

constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr std::chrono::milliseconds kDrainIdleTime{1000};

http::Limits parse_limits(const common::LimitsConfig& limits) {
    http::Limits out;
    out.max_header_size = limits.max_header_size;
    out.max_headers = limits.max_headers;
    out.max_target_length = std::min<size_t>(8192, limits.max_header_size);
    return out;
}

size_t output_length(bufferevent* bev) {
    return evbuffer_get_length(bufferevent_get_output(bev));
}

}  // namespace

void HttpConnection::start(WorkerContext& context, const common::ListenConfig& listener,
                           common::BufferEventPtr transport, const common::SocketAddress& client) {
    context.sessions->open(std::unique_ptr<ClientSession>(
        new HttpConnection(context, listener, std::move(transport), client)));
}

bool HttpConnection::ready() const {
    return request_timer_ != nullptr;
}

HttpConnection::HttpConnection(WorkerContext& context, const common::ListenConfig& listener,
                               common::BufferEventPtr transport,
                               const common::SocketAddress& client)
    : ClientSession(context, listener, client),
      limits_(context.config->limits),
      parse_limits_(parse_limits(limits_)),
      client_(std::move(transport)) {
    request_timer_.reset(event_new(context_.base, -1, 0, on_request_timer, this));
}

void HttpConnection::serve() {
    size_t high = std::max<size_t>(limits_.buffer_size, limits_.max_header_size + 1);
    bufferevent_setcb(client_.get(), on_client_read, on_client_write, on_client_event, this);
    bufferevent_setwatermark(client_.get(), EV_READ, 0, high);
    set_io_size(client_.get(), limits_.buffer_size);
    bufferevent_enable(client_.get(), EV_READ);
    enable_writing(client_.get());
    arm_request_timer();
    if (is_plain_tcp(client_.get())) read_first_bytes();
}

namespace {

// One recv() of up to `most` bytes onto the end of `input`: its result.
ssize_t read_into(evbuffer* input, int fd, size_t most) {
    evbuffer_iovec space{};
    if (evbuffer_reserve_space(input, static_cast<ev_ssize_t>(most), &space, 1) < 1) return -1;
    ssize_t n = recv(fd, space.iov_base, std::min(space.iov_len, most), MSG_DONTWAIT);
    space.iov_len = n > 0 ? static_cast<size_t>(n) : 0;
    evbuffer_commit_space(input, &space, n > 0 ? 1 : 0);
    return n;
}

}  // namespace

// The client speaks first, and on a busy listener its request has mostly
// arrived by the time the connection is accepted: one recv() now takes it,
// where the bufferevent would wait a loop turn for the read event and then
// spend an ioctl(FIONREAD) and a readv(). Nothing there (EAGAIN), an EOF or
// an error: the bufferevent finds it when it reads, as it would have.
void HttpConnection::read_first_bytes() {
    constexpr size_t kFirstRead = 4096;  // libevent's own largest single read
    evbuffer* input = bufferevent_get_input(client_.get());
    // A socket bufferevent keeps its input's end frozen but while it reads
    // (bufferevent_sock.c): do as it does.
    evbuffer_unfreeze(input, 0);
    ssize_t n = read_into(input, bufferevent_getfd(client_.get()), kFirstRead);
    evbuffer_freeze(input, 0);
    if (n <= 0) return;
    // Parsed from the loop, as every request is, not from inside the accept.
    bufferevent_trigger(client_.get(), EV_READ,
                        BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

// An idle keep-alive connection is closed only once it has been idle for
// kDrainIdleTime: a client that just got a response may have its next
// request on the wire already, and closing under it would lose that request.
// A busy connection's current response goes out with "Connection: close".
void HttpConnection::on_drain() {
    if (state_ != State::kReadingHead || !client_ || input_length(client_.get()) > 0) return;
    auto idle = std::chrono::steady_clock::now() - idle_since_;
    if (idle >= kDrainIdleTime) {
        close();
        return;
    }
    timeval tv =
        to_timeval(std::chrono::duration_cast<std::chrono::milliseconds>(kDrainIdleTime - idle));
    event_add(request_timer_.get(), &tv);
}

void HttpConnection::on_close() {
    retire_exchange();
}

void HttpConnection::arm_request_timer() {
    bool bytes_waiting = client_ && input_length(client_.get()) > 0;
    timer_is_idle_ = !first_request_ && !bytes_waiting;
    auto timeout = timer_is_idle_ ? limits_.idle_timeout : limits_.header_timeout;
    if (timer_is_idle_ && context_.draining) timeout = std::min(timeout, kDrainIdleTime);
    timeval tv = to_timeval(timeout);
    event_add(request_timer_.get(), &tv);
}

// ---------------------------------------------------------------- requests

void HttpConnection::read_request_head() {
    bufferevent* bev = client_.get();
    if (output_length(bev) >= limits_.buffer_size) {
        // A client that pipelines but never reads: stop until it does.
        bufferevent_setwatermark(bev, EV_WRITE, limits_.buffer_size / 2, 0);
        return;
    }
    size_t available = input_length(bev);
    if (available == 0) return;
    if (timer_is_idle_) arm_request_timer();  // a request began: header_timeout from now
    size_t want = std::min<size_t>(available, limits_.max_header_size);
    const char* data = reinterpret_cast<const char*>(
        evbuffer_pullup(bufferevent_get_input(bev), static_cast<ev_ssize_t>(want)));
    http::RequestHead& head = scratch_head<http::RequestHead>();
    http::ParseResult result = http::parse_request_head({data, want}, parse_limits_, head);
    if (result.status == http::ParseStatus::kNeedMore && want >= limits_.max_header_size) {
        result = {http::ParseStatus::kError, http::ParseError::kHeadersTooLarge};
    }
    if (result.status == http::ParseStatus::kNeedMore) {
        // The client half-closed in the middle of a head: nothing to answer.
        if (client_eof_) close_after_flush();
        return;
    }
    event_del(request_timer_.get());
    exchange_ = new_exchange();
    if (result.status == http::ParseStatus::kError) {
        exchange_->record_unreadable_head({data, want});
        respond_error(make_refusal(RefusalCause::kBadRequest, http::status_for(result.error),
                                   http::describe(result.error)),
                      true);
        return;
    }
    state_ = State::kExchange;
    exchange_->begin(head);  // may end at once (a refusal, a pooled upstream's answer later)
}

// The head that did not arrive whole in time: its request line, as far as
// it came, for the 408's log lines.
void HttpConnection::record_partial_head() {
    if (!exchange_) exchange_ = new_exchange();
    bufferevent* bev = client_.get();
    size_t want = std::min<size_t>(input_length(bev), limits_.max_header_size);
    const char* data = reinterpret_cast<const char*>(
        evbuffer_pullup(bufferevent_get_input(bev), static_cast<ev_ssize_t>(want)));
    if (data != nullptr) exchange_->record_unreadable_head({data, want});
}

std::unique_ptr<HttpExchange> HttpConnection::new_exchange() {
    return std::make_unique<HttpExchange>(context_, *this, listener_, client_address_, client_text_,
                                          parse_limits_);
}

// The exchange is done with: the tunnel keeps only its record and
// admission, not the request's state.
void HttpConnection::on_exchange_tunnel(common::BufferEventPtr upstream, ExchangeRecord record,
                                        Admission admission) {
    state_ = State::kTunnel;
    event_del(request_timer_.get());
    retire_exchange();
    known_credentials_.reset();  // no request follows a tunnel
    tunnel_ = OpenTunnel::start(context_, std::move(client_), std::move(upstream),
                                std::move(record), std::move(admission), [this] { close(); });
}

// ---------------------------------------------------------------- endings

void HttpConnection::on_exchange_complete() {
    // While draining, a connection whose response promised keep-alive still
    // takes one more request (answered with "Connection: close"): the client
    // may have sent it already. It closes after a short idle time otherwise.
    if (!exchange_->keep_alive() || no_more_requests()) {
        close_after_flush();
        return;
    }
    reset_for_next_request();
}

void HttpConnection::remember_credentials(std::string field, const Account& account) {
    if (!known_credentials_) known_credentials_ = std::make_unique<KnownCredentials>();
    known_credentials_->field = std::move(field);
    known_credentials_->account = account;
}

void HttpConnection::on_exchange_refused(const Refusal& refusal, bool close_after) {
    respond_error(refusal, close_after);
}

void HttpConnection::on_exchange_aborted() {
    close_after_flush();
}

void HttpConnection::on_exchange_lost_client() {
    close();
}

// A response made by the proxy, in place of the upstream's. It closes the
// connection when asked to, and whenever the request's end was not read.
void HttpConnection::respond_error(const Refusal& refusal, bool close_after) {
    if (!exchange_) exchange_ = new_exchange();  // a timeout between requests
    exchange_->release_upstream();
    ExchangeRecord& record = exchange_->record();
    record.refuse(refusal);
    LOG_INFO("%d %s, client: %s, request: \"%s %s\"", refusal.http_status, refusal.detail.c_str(),
             client_text_.c_str(), record.method.c_str(), record.target.c_str());
    bool close_now = close_after || !exchange_->client_keep_alive() || !exchange_->request_done() ||
                     no_more_requests() || context_.draining;
    const common::Config& config = *context_.config;
    std::string extra_fields;
    if (refusal.http_status == 407) {
        extra_fields = "Proxy-Authenticate: Basic realm=\"" + config.auth.realm + "\"\r\n";
    }
    if (refusal.retry_after > 0) {
        extra_fields += "Retry-After: " + std::to_string(refusal.retry_after) + "\r\n";
    }
    std::string response =
        build_error_response(refusal.http_status, refusal.detail, close_now, refusal.error_type,
                             config.proxy.name, extra_fields);
    send_or_queue(client_.get(), response.data(), response.size());
    record.bytes_to_client += response.size();
    context_.counters.bytes_out += response.size();
    record.finish(context_);
    if (close_now) {
        close_after_flush();
    } else {
        reset_for_next_request();
    }
}

void HttpConnection::retire_exchange() {
    if (exchange_) context_.graveyard->defer(std::move(exchange_));
}

void HttpConnection::reset_for_next_request() {
    retire_exchange();
    idle_since_ = std::chrono::steady_clock::now();
    state_ = State::kReadingHead;
    first_request_ = false;
    bufferevent* bev = client_.get();
    bufferevent_set_timeouts(bev, nullptr, nullptr);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    // After an EOF reading again would only report it again, and close
    // under the requests still to be answered.
    if (!client_eof_) bufferevent_enable(bev, EV_READ);
    arm_request_timer();
    if (input_length(bev) > 0) {
        // A pipelined request is waiting. Parse it from the loop, not from
        // here, so a long pipeline never deepens the stack.
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

// The client half-closed, and every request it sent before has been taken.
bool HttpConnection::no_more_requests() const {
    return client_eof_ && (!client_ || input_length(client_.get()) == 0);
}

void HttpConnection::close_after_flush() {
    state_ = State::kClosing;
    if (exchange_) exchange_->release_upstream();  // kept: must_linger() asks it
    event_del(request_timer_.get());
    bufferevent* bev = client_.get();
    timeval idle = to_timeval(limits_.idle_timeout);
    bufferevent_set_timeouts(bev, nullptr, &idle);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    // A client that already sent its EOF would only report it again.
    if (!client_eof_) bufferevent_enable(bev, EV_READ);
    enable_writing(bev);
    // The write callback runs once the output is empty; trigger it in case
    // it already is. The connection always ends from a callback of its own.
    bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

// A lingering close (SHUT_WR, then wait for the client's EOF) protects our
// last answer from a reset: closing a socket with unread input makes the
// kernel send RST, and the client may lose the answer. It is needed only
// when the client may still be sending: a request (body) not read to its
// end, or bytes already read and waiting. Otherwise close at once, as nginx
// does (it does not look at the socket either: a client that sends more
// after a request that ends the connection has only itself to blame); that
// saves a shutdown, a loop turn and two reads per connection.
bool HttpConnection::must_linger() const {
    bufferevent* bev = client_.get();
    if (!is_plain_tcp(bev) || !exchange_ || !exchange_->request_done()) return true;
    return input_length(bev) > 0;
}

// The linger timer is made here, not with the connection: most
// connections close without lingering, and an event costs an allocation
// and its release per connection.
void HttpConnection::linger() {
    linger_timer_.reset(event_new(context_.base, -1, 0, on_linger_timer, this));
    if (!linger_timer_) {
        close();  // no bound on the wait: close now rather than linger forever
        return;
    }
    shutdown(bufferevent_getfd(client_.get()), SHUT_WR);
    shut_down_ = true;
    timeval tv = to_timeval(kLingerTime);
    event_add(linger_timer_.get(), &tv);
}

// ---------------------------------------------------------------- callbacks

void HttpConnection::on_client_read(bufferevent* bev, void* arg) noexcept {
    auto* self = live<HttpConnection>(arg);
    if (self == nullptr) return;
    switch (self->state_) {
        case State::kReadingHead:
            self->read_request_head();
            break;
        case State::kExchange:
            self->exchange_->on_client_readable();  // a request body; else it stays buffered
            break;
        case State::kClosing:
            // Lingering close: discard what the client still sends, so that
            // closing does not reset the connection before it read our answer.
            evbuffer_drain(bufferevent_get_input(bev), input_length(bev));
            break;
        case State::kTunnel:
            break;
    }
}

void HttpConnection::on_client_write(bufferevent* bev, void* arg) noexcept {
    auto* self = live<HttpConnection>(arg);
    if (self == nullptr) return;
    switch (self->state_) {
        case State::kClosing:
            if (output_length(bev) > 0 || self->shut_down_) return;
            if (self->client_eof_ || !self->must_linger()) {
                self->close();  // nothing to linger for
                return;
            }
            self->linger();
            return;
        case State::kExchange:
            self->exchange_->on_client_drained();
            return;
        case State::kReadingHead:
            bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
            if (input_length(bev) > 0) self->read_request_head();
            return;
        case State::kTunnel:
            return;
    }
}

void HttpConnection::on_client_event(bufferevent* bev, short events, void* arg) noexcept {
    auto* self = live<HttpConnection>(arg);
    if (self == nullptr || (events & BEV_EVENT_CONNECTED)) return;  // a TLS handshake completed
    if (events == (BEV_EVENT_EOF | BEV_EVENT_READING) && self->state_ == State::kClosing &&
        !self->shut_down_) {
        // The client finished sending before our answer is out: the write
        // callback closes once the output is flushed.
        self->client_eof_ = true;
        return;
    }
    if (events & BEV_EVENT_ERROR) self->note_transport_error(bev);
    if (events == (BEV_EVENT_EOF | BEV_EVENT_READING) && self->state_ == State::kReadingHead) {
        // A half-close between requests: what was sent before it is still
        // answered (a pipelined request, a response not yet flushed).
        self->client_eof_ = true;
        if (input_length(bev) > 0) {
            self->read_request_head();
        } else {
            self->close_after_flush();
        }
        return;
    }
    if ((events & BEV_EVENT_EOF) && self->state_ == State::kExchange) {
        // A client may half-close after sending its request; answer it.
        if (self->exchange_->request_done()) {
            self->client_eof_ = true;
            return;
        }
        self->exchange_->record().reason = "client closed the connection mid-request";
        self->exchange_->record().finish(self->context_);
    } else if ((events & BEV_EVENT_TIMEOUT) && self->exchange_ && self->state_ != State::kClosing) {
        ExchangeRecord& record = self->exchange_->record();
        record.fail(channel::kErrTimeout, (events & BEV_EVENT_READING) ? "client stopped sending"
                                                                       : "client stopped reading");
        record.finish(self->context_);
    }
    self->close();
}

void HttpConnection::on_request_timer(evutil_socket_t, short, void* arg) noexcept {
    auto* self = live<HttpConnection>(arg);
    if (self == nullptr) return;
    if (self->state_ == State::kReadingHead && self->client_ &&
        input_length(self->client_.get()) > 0) {
        self->record_partial_head();
        self->respond_error(
            make_refusal(RefusalCause::kClientTimeout, "timed out reading the request head"), true);
        return;
    }
    // Idle keep-alive (or idle long enough while draining), or a client
    // that never sent a byte.
    self->close();
}

void HttpConnection::on_linger_timer(evutil_socket_t, short, void* arg) noexcept {
    if (auto* self = live<HttpConnection>(arg)) self->close();
}

}  // namespace worker
