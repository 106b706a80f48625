// The HTTP proxy session: one client connection, any number of requests.
//
//   state          event                                   next
//   -------------  --------------------------------------  ----------------------------
//   kReadingHead   complete head, valid, http:// target     kConnecting
//   kReadingHead   complete head, valid CONNECT             kConnecting
//   kReadingHead   malformed/denied head                    error response -> kClosing
//                                                           (or kReadingHead if safe)
//   kReadingHead   header_timeout with bytes / idle timeout 408 -> kClosing / destroyed
//   kConnecting    upstream connected (or taken from pool)  kForwarding / kTunnel
//   kConnecting    resolve/deny/refuse/timeout              error response -> kReadingHead
//                                                           or kClosing
//   kForwarding    response complete, keep-alive            kReadingHead (next request)
//   kForwarding    response complete, no keep-alive         kClosing
//   kForwarding    upstream broken before response head     502/504 -> as above
//   kForwarding    upstream broken mid-response             kClosing (truncated: close)
//   kTunnel        either side closes, error, idle timeout  destroyed
//   kClosing       output flushed, then SHUT_WR, then EOF   destroyed
//                  or 2 s of lingering
//
// The request body goes upstream while the response comes back, each with
// backpressure: when the receiving side's output passes buffer_size, the
// sending side stops reading until the output drains to half of it.
// Pipelined requests wait in the client's input until the current response
// is complete, so responses go out in order. A response body of at least
// buffer_size whose end is known (Content-Length) or is the close, between
// plain TCP sockets, is spliced by a SocketRelay instead (see
// socket_relay.h); chunked bodies and TLS clients stay on the bufferevents.
#include "worker/http_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "common/timeval.h"
#include "worker/destination_policy.h"
#include "worker/transport.h"

namespace worker {

using common::to_timeval;

namespace http = common::http;
namespace channel = common::channel;

namespace {

constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kFramingPeek = 256;
constexpr std::chrono::milliseconds kDrainIdleTime{1000};
// How often a spliced body is checked for a stalled side, at most.
constexpr std::chrono::milliseconds kRelayCheckInterval{1000};

// The parser's head structures are large (room for every field view) and a
// worker is single-threaded, so one of each serves every session: a head is
// fully consumed before the callback that parsed it returns.
http::RequestHead& scratch_request_head() {
    static http::RequestHead head;
    return head;
}

http::ResponseHead& scratch_response_head() {
    static http::ResponseHead head;
    return head;
}

// A response head waiting to go out together with the first bytes of its
// body: one write instead of two for a small response. Shared like the
// scratch heads: it is always empty again before the loop runs.
evbuffer* staged_response_head() {
    static common::EvBufferPtr head(evbuffer_new());
    return head.get();
}

http::Limits parse_limits(const common::LimitsConfig& limits) {
    http::Limits out;
    out.max_header_size = limits.max_header_size;
    out.max_headers = limits.max_headers;
    out.max_target_length = std::min<size_t>(8192, limits.max_header_size);
    return out;
}

size_t input_length(bufferevent* bev) {
    return evbuffer_get_length(bufferevent_get_input(bev));
}
size_t output_length(bufferevent* bev) {
    return evbuffer_get_length(bufferevent_get_output(bev));
}

// True when a byte, an EOF or an error waits on `fd`; reads nothing.
bool socket_has_input(evutil_socket_t fd) {
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

}  // namespace

void HttpSession::start(WorkerContext& context, common::BufferEventPtr transport,
                        const common::SocketAddress& client) {
    new HttpSession(context, std::move(transport), client);  // owns itself; see destroy()
}

HttpSession::HttpSession(WorkerContext& context, common::BufferEventPtr client,
                         const common::SocketAddress& address)
    : ClientSession(context),
      limits_(context.config->limits),
      parse_limits_(parse_limits(limits_)),
      client_(std::move(client)),
      client_address_(address.to_string()) {
    timer_.reset(event_new(context_.base, -1, 0, on_timer, this));
    size_t high = std::max<size_t>(limits_.buffer_size, limits_.max_header_size + 1);
    bufferevent_setcb(client_.get(), on_client_read, on_client_write, on_client_event, this);
    bufferevent_setwatermark(client_.get(), EV_READ, 0, high);
    set_io_size(client_.get(), limits_.buffer_size);
    bufferevent_enable(client_.get(), EV_READ);
    enable_writing(client_.get());
    arm_head_timer();
}

HttpSession::~HttpSession() {
    body_relay_.reset();
    tunnel_.reset();
    connect_.reset();
    upstream_.reset();
    client_.reset();
    timer_.reset();
}

// An idle keep-alive connection is closed only once it has been idle for
// kDrainIdleTime: a client that just got a response may have its next
// request on the wire already, and closing under it would lose that request.
// A busy session's current response goes out with "Connection: close".
void HttpSession::on_drain() {
    if (state_ != State::kReadingHead || !client_ || input_length(client_.get()) > 0) return;
    auto idle = std::chrono::steady_clock::now() - idle_since_;
    if (idle >= kDrainIdleTime) {
        destroy();
        return;
    }
    timeval tv =
        to_timeval(std::chrono::duration_cast<std::chrono::milliseconds>(kDrainIdleTime - idle));
    event_add(timer_.get(), &tv);
}

void HttpSession::arm_head_timer() {
    bool bytes_waiting = client_ && input_length(client_.get()) > 0;
    timer_is_idle_ = !first_request_ && !bytes_waiting;
    auto timeout = timer_is_idle_ ? limits_.idle_timeout : limits_.header_timeout;
    if (timer_is_idle_ && context_.draining) timeout = std::min(timeout, kDrainIdleTime);
    timeval tv = to_timeval(timeout);
    event_add(timer_.get(), &tv);
}

// ---------------------------------------------------------------- requests

void HttpSession::read_request_head() {
    bufferevent* bev = client_.get();
    if (output_length(bev) >= limits_.buffer_size) {
        // A client that pipelines but never reads: stop until it does.
        bufferevent_setwatermark(bev, EV_WRITE, limits_.buffer_size / 2, 0);
        return;
    }
    size_t available = input_length(bev);
    if (available == 0) return;
    if (timer_is_idle_) arm_head_timer();  // a request began: header_timeout from now
    size_t want = std::min<size_t>(available, limits_.max_header_size);
    const char* data = reinterpret_cast<const char*>(
        evbuffer_pullup(bufferevent_get_input(bev), static_cast<ev_ssize_t>(want)));
    http::RequestHead& head = scratch_request_head();
    http::ParseResult result = http::parse_request_head({data, want}, parse_limits_, head);
    if (result.status == http::ParseStatus::kNeedMore && want >= limits_.max_header_size) {
        result = {http::ParseStatus::kError, http::ParseError::kHeadersTooLarge};
    }
    if (result.status == http::ParseStatus::kNeedMore) return;
    event_del(timer_.get());
    if (result.status == http::ParseStatus::kError) {
        exchange_ = std::make_unique<Exchange>();
        exchange_->started = std::chrono::steady_clock::now();
        exchange_->method = "-";
        respond_error(http::status_for(result.error), http::describe(result.error),
                      "http_request_error", channel::kErrClientProtocol, true);
        return;
    }
    handle_request(head);
}

void HttpSession::handle_request(const http::RequestHead& head) {
    context_.counters.requests++;
    exchange_ = std::make_unique<Exchange>();
    Exchange& ex = *exchange_;
    ex.started = std::chrono::steady_clock::now();
    ex.method = head.method;
    ex.target = head.target;
    ex.version_minor = head.version_minor;
    ex.client_keep_alive = client_wants_keep_alive(head);
    ex.request_chunks = http::ChunkedDecoder(parse_limits_);
    ex.response_chunks = http::ChunkedDecoder(parse_limits_);
    ex.connect = head.method == "CONNECT";  // methods are case-sensitive
    bool ok = ex.connect ? prepare_connect(head) : prepare_forward(head);
    ex.bytes_from_client += head.head_length;
    context_.counters.bytes_in += head.head_length;
    // The head's views die here; everything needed was copied above.
    evbuffer_drain(bufferevent_get_input(client_.get()), head.head_length);
    if (!ok) {
        respond_error(pending_error_.status, pending_error_.detail, pending_error_.type,
                      pending_error_.error_class, pending_error_.close);
        return;
    }
    connect_upstream();
}

bool HttpSession::refuse(int status, std::string detail, const char* type, uint32_t error_class,
                         bool close) {
    pending_error_ = {status, std::move(detail), type, error_class, close};
    return false;
}

bool HttpSession::prepare_forward(const http::RequestHead& head) {
    Exchange& ex = *exchange_;
    http::BodyFraming framing = http::request_body_framing(head);
    if (framing.error != http::ParseError::kNone) {
        return refuse(http::status_for(framing.error), http::describe(framing.error),
                      "http_request_error", channel::kErrClientProtocol, true);
    }
    bool has_body = framing.kind != http::BodyKind::kNone;
    std::string error;
    if (!common::parse_absolute_target(head.target, ex.destination, error)) {
        return refuse(400, error, "http_request_error", channel::kErrClientProtocol, has_body);
    }
    if (has_our_via(head)) {
        return refuse(508, "request loops back to the proxy (Via)", "http_request_denied",
                      channel::kErrDenied, has_body);
    }
    ex.pool_key = ex.destination.authority() + " direct";
    ex.upstream_head.reserve(512);
    build_upstream_request(head, ex.destination, framing, ex.upstream_head);
    ex.destination.path = {};  // pointed into the head
    ex.request_framing = framing;
    ex.request_left = framing.kind == http::BodyKind::kContentLength ? framing.length : 0;
    ex.request_done =
        !has_body || (framing.kind == http::BodyKind::kContentLength && framing.length == 0);
    return true;
}

bool HttpSession::prepare_connect(const http::RequestHead& head) {
    Exchange& ex = *exchange_;
    std::string error;
    // Anything after a CONNECT head may be tunnel data: every refusal closes.
    if (!common::parse_authority_target(head.target, ex.destination, error)) {
        return refuse(400, error, "http_request_error", channel::kErrClientProtocol, true);
    }
    if (auto refusal = check_tunnel_port(context_.config->acl, ex.destination.port)) {
        return refuse(refusal->http_status, refusal->detail, refusal->error_type,
                      refusal->error_class, true);
    }
    if (has_our_via(head)) {
        return refuse(508, "request loops back to the proxy (Via)", "http_request_denied",
                      channel::kErrDenied, true);
    }
    ex.request_done = true;
    return true;
}

void HttpSession::connect_upstream() {
    state_ = State::kConnecting;
    Exchange& ex = *exchange_;
    if (!ex.connect && !retried_) {
        if (auto pooled = context_.pool->take(ex.pool_key)) {
            upstream_ = std::move(pooled->connection);
            ex.upstream_peer = pooled->peer;
            ex.upstream_address = pooled->peer.to_string();
            ex.reused_upstream = true;
            start_forwarding();
            return;
        }
    }
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy);
    connect_->start(ex.destination.host, ex.destination.port,
                    [this](ConnectResult&& result) { on_connected(std::move(result)); });
}

void HttpSession::on_connected(ConnectResult&& result) {
    if (result.error != ConnectError::kNone) {
        Refusal refusal = refusal_for(result.error, result.detail);
        respond_error(refusal.http_status, refusal.detail, refusal.error_type, refusal.error_class,
                      false);
        return;
    }
    upstream_ = std::move(result.connection);
    exchange_->upstream_peer = result.peer;
    exchange_->upstream_address = result.peer.to_string();
    if (exchange_->connect) {
        start_tunnel();
    } else {
        start_forwarding();
    }
}

void HttpSession::start_forwarding() {
    state_ = State::kForwarding;
    Exchange& ex = *exchange_;
    bufferevent* up = upstream_.get();
    size_t high = std::max<size_t>(limits_.buffer_size, limits_.max_header_size + 1);
    bufferevent_setcb(up, on_upstream_read, on_upstream_write, on_upstream_event, this);
    bufferevent_setwatermark(up, EV_READ, 0, high);
    set_io_size(up, limits_.buffer_size);
    bufferevent_setwatermark(up, EV_WRITE, 0, 0);
    if (!ex.request_done) {
        // While a body streams up; pump_request_body() sets the timeouts
        // for waiting on the response once it is all sent.
        timeval upstream_timeout = to_timeval(limits_.upstream_timeout);
        bufferevent_set_timeouts(up, nullptr, &upstream_timeout);
        timeval idle = to_timeval(limits_.idle_timeout);
        bufferevent_set_timeouts(client_.get(), &idle, &idle);
    }
    send_or_queue(up, ex.upstream_head.data(), ex.upstream_head.size());
    context_.counters.bytes_out += ex.upstream_head.size();
    // A reused connection may turn out to be closed by the origin; the head
    // is kept so the request can be retried once on a fresh connection, as
    // long as no body byte went out (see upstream_failed()).
    if (!ex.reused_upstream || !ex.request_done) std::string().swap(ex.upstream_head);
    bufferevent_enable(up, EV_READ);
    enable_writing(up);
    pump_request_body();
}

void HttpSession::pump_request_body() {
    Exchange& ex = *exchange_;
    if (!ex.request_done) {
        bool done = false;
        if (ex.request_framing.kind == http::BodyKind::kContentLength) {
            ex.request_left -= move_body(client_.get(), upstream_.get(), ex.request_left);
            done = ex.request_left == 0;
        } else if (!move_chunked(client_.get(), upstream_.get(), ex.request_chunks, true, done)) {
            pending_error_ = {};
            respond_error(400, "malformed chunked request body", "http_request_error",
                          channel::kErrClientProtocol, true);
            return;
        }
        if (!done) return;
        if (ex.request_framing.kind == http::BodyKind::kChunked) {
            send_or_queue(upstream_.get(), "0\r\n\r\n", 5);
        }
        ex.request_done = true;
    }
    // Waiting for the response starts once the whole request went out.
    timeval upstream_timeout = to_timeval(limits_.upstream_timeout);
    bufferevent_set_timeouts(upstream_.get(), &upstream_timeout, &upstream_timeout);
    timeval idle = to_timeval(limits_.idle_timeout);
    bufferevent_set_timeouts(client_.get(), nullptr, &idle);
}

size_t HttpSession::move_body(bufferevent* from, bufferevent* to, uint64_t limit) {
    evbuffer* input = bufferevent_get_input(from);
    size_t n = static_cast<size_t>(std::min<uint64_t>(evbuffer_get_length(input), limit));
    evbuffer* head = staged_response_head();
    if (to == client_.get() && evbuffer_get_length(head) > 0) {
        evbuffer_remove_buffer(input, head, n);  // head and body in one write
        send_or_queue(to, head, evbuffer_get_length(head));
    } else if (n > 0) {
        send_or_queue(to, input, n);
    }
    if (n == 0) return 0;
    count_moved(from, n);
    if (output_length(to) > limits_.buffer_size) {
        bufferevent_disable(from, EV_READ);
        bufferevent_setwatermark(to, EV_WRITE, limits_.buffer_size / 2, 0);
    }
    return n;
}

void HttpSession::send_staged_head() {
    evbuffer* head = staged_response_head();
    size_t n = evbuffer_get_length(head);
    if (n > 0) send_or_queue(client_.get(), head, n);
}

void HttpSession::count_moved(bufferevent* from, size_t n) {
    context_.counters.bytes_in += n;
    context_.counters.bytes_out += n;
    if (from == client_.get()) {
        exchange_->bytes_from_client += n;
    } else {
        exchange_->bytes_to_client += n;
    }
}

// Decodes chunked framing from `from` and forwards the data, re-encoded as
// chunks of our own (extensions and trailers are not passed on) or plain
// when the receiver is an HTTP/1.0 client. Returns false on bad framing.
bool HttpSession::move_chunked(bufferevent* from, bufferevent* to, http::ChunkedDecoder& decoder,
                               bool reencode, bool& done) {
    evbuffer* input = bufferevent_get_input(from);
    evbuffer* output = bufferevent_get_output(to);
    while (!done) {
        size_t available = evbuffer_get_length(input);
        if (available == 0) return true;
        if (decoder.data_remaining() > 0) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(available, decoder.data_remaining()));
            if (reencode) {
                std::string size_line;
                append_chunk_header(size_line, n);
                evbuffer_add(output, size_line.data(), size_line.size());
            }
            evbuffer_remove_buffer(input, output, n);
            if (reencode) evbuffer_add(output, "\r\n", 2);
            decoder.consume_data(n);
            count_moved(from, n);
            if (evbuffer_get_length(output) > limits_.buffer_size) {
                bufferevent_disable(from, EV_READ);
                bufferevent_setwatermark(to, EV_WRITE, limits_.buffer_size / 2, 0);
                return true;
            }
            continue;
        }
        // Framing lines are short; peek a little first, more only if needed.
        size_t peek = std::min(available, kFramingPeek);
        http::ChunkedDecoder::Step step{};
        while (true) {
            const char* data = reinterpret_cast<const char*>(
                evbuffer_pullup(input, static_cast<ev_ssize_t>(peek)));
            step = decoder.parse_framing({data, peek});
            bool stuck = step.status == http::ParseStatus::kNeedMore && step.consumed == 0 &&
                         decoder.data_remaining() == 0;
            if (!stuck || peek == available) break;
            peek = std::min(available, peek * 8);
        }
        evbuffer_drain(input, step.consumed);
        if (from == client_.get()) {
            exchange_->bytes_from_client += step.consumed;
        } else {
            exchange_->bytes_to_client += step.consumed;
        }
        if (step.status == http::ParseStatus::kError) return false;
        if (step.status == http::ParseStatus::kComplete) done = true;
        if (step.status == http::ParseStatus::kNeedMore && step.consumed == 0 &&
            decoder.data_remaining() == 0) {
            return true;  // wait for more input
        }
    }
    return true;
}

// ---------------------------------------------------------------- responses

void HttpSession::read_response() {
    if (!exchange_->response_started) {
        read_response_head();
        return;
    }
    pump_response_body();
}

void HttpSession::read_response_head() {
    Exchange& ex = *exchange_;
    evbuffer* input = bufferevent_get_input(upstream_.get());
    // Once the upstream answered anything, resending the request elsewhere
    // could run it twice.
    if (evbuffer_get_length(input) > 0) std::string().swap(ex.upstream_head);
    while (!ex.response_started) {
        size_t available = evbuffer_get_length(input);
        if (available == 0) return;
        size_t want = std::min<size_t>(available, limits_.max_header_size);
        const char* data =
            reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(want)));
        http::ResponseHead& head = scratch_response_head();
        http::ParseResult result = http::parse_response_head({data, want}, parse_limits_, head);
        if (result.status == http::ParseStatus::kNeedMore) {
            if (want < limits_.max_header_size) return;
            upstream_failed("response head from upstream is too large", false);
            return;
        }
        if (result.status == http::ParseStatus::kError) {
            upstream_failed(
                std::string("malformed response from upstream: ") + http::describe(result.error),
                false);
            return;
        }
        if (head.status < 200) {
            if (!relay_interim(head)) return;
            evbuffer_drain(input, head.head_length);
            continue;
        }
        if (!start_response(head)) return;
        evbuffer_drain(input, head.head_length);
    }
    pump_response_body();
}

bool HttpSession::relay_interim(const http::ResponseHead& head) {
    if (head.status == 101) {
        upstream_failed("upstream switched protocols without being asked", false);
        return false;
    }
    if (exchange_->version_minor >= 1) {
        std::string out;
        build_interim_response(head, out);
        send_or_queue(client_.get(), out.data(), out.size());
        exchange_->bytes_to_client += out.size();
        context_.counters.bytes_out += out.size();
    }
    return true;
}

bool HttpSession::start_response(const http::ResponseHead& head) {
    Exchange& ex = *exchange_;
    http::BodyFraming framing = http::response_body_framing(head, ex.method);
    if (framing.error != http::ParseError::kNone) {
        upstream_failed(
            std::string("invalid response framing from upstream: ") + http::describe(framing.error),
            false);
        return false;
    }
    ex.response_framing = framing;
    switch (framing.kind) {
        case http::BodyKind::kNone:
            ex.client_body = OutgoingBody::kNone;
            break;
        case http::BodyKind::kContentLength:
            ex.client_body = OutgoingBody::kLength;
            ex.response_left = framing.length;
            break;
        case http::BodyKind::kChunked:
            // An HTTP/1.0 client can't read chunked: it gets the data and a close.
            ex.client_body =
                ex.version_minor >= 1 ? OutgoingBody::kChunked : OutgoingBody::kUntilClose;
            break;
        case http::BodyKind::kUntilClose:
            ex.client_body = OutgoingBody::kUntilClose;
            break;
    }
    ex.response_keep_alive = ex.client_keep_alive && ex.request_done && !context_.draining &&
                             !client_eof_ && ex.client_body != OutgoingBody::kUntilClose;
    ex.upstream_reusable = head.version_minor >= 1 && !connection_info(head).close &&
                           framing.kind != http::BodyKind::kUntilClose;
    ex.status = head.status;
    ex.response_started = true;
    std::string out;
    out.reserve(head.head_length + 64);
    build_client_response(head, ex.client_body, ex.response_left, ex.response_keep_alive,
                          ex.version_minor, out);
    // Staged until pump_response_body(), which always follows.
    evbuffer_add(staged_response_head(), out.data(), out.size());
    ex.bytes_to_client += out.size();
    context_.counters.bytes_in += head.head_length;
    context_.counters.bytes_out += out.size();
    return true;
}

void HttpSession::pump_response_body() {
    Exchange& ex = *exchange_;
    bool done = false;
    http::BodyKind kind = ex.response_framing.kind;
    if (kind != http::BodyKind::kContentLength && kind != http::BodyKind::kUntilClose) {
        send_staged_head();  // move_body() sends it with the first body bytes
    }
    switch (kind) {
        case http::BodyKind::kNone:
            done = true;
            break;
        case http::BodyKind::kContentLength:
            ex.response_left -= move_body(upstream_.get(), client_.get(), ex.response_left);
            done = ex.response_left == 0;
            if (!done && ex.response_left >= limits_.buffer_size) start_body_relay();
            break;
        case http::BodyKind::kChunked: {
            bool reencode = ex.client_body == OutgoingBody::kChunked;
            if (!move_chunked(upstream_.get(), client_.get(), ex.response_chunks, reencode, done)) {
                abort_exchange("malformed chunked response from upstream",
                               channel::kErrUpstreamProtocol);
                return;
            }
            if (done && reencode) {
                send_or_queue(client_.get(), "0\r\n\r\n", 5);
                ex.bytes_to_client += 5;
            }
            break;
        }
        case http::BodyKind::kUntilClose:
            move_body(upstream_.get(), client_.get(), UINT64_MAX);
            start_body_relay();
            break;  // done at upstream EOF
    }
    if (done) finish_exchange();
}

// The upstream's bufferevent stops reading and the client's stops writing
// (what it still holds, the response head included, goes out first); both
// keep their sockets. The client's may go on reading: pipelined requests
// and an EOF are noticed as before.
bool HttpSession::start_body_relay() {
    Exchange& ex = *exchange_;
    if (body_relay_ || context_.pipes == nullptr || !ex.request_done ||
        !is_plain_tcp(client_.get()) || input_length(upstream_.get()) > 0) {
        return false;
    }
    bool length_known = ex.response_framing.kind == http::BodyKind::kContentLength;
    bufferevent_disable(upstream_.get(), EV_READ);
    bufferevent_disable(client_.get(), EV_WRITE);
    body_relay_ = std::make_unique<SocketRelay>(
        context_.base, *context_.pipes, bufferevent_getfd(upstream_.get()),
        bufferevent_getfd(client_.get()), length_known ? ex.response_left : UINT64_MAX,
        [this, length_known](size_t n) {
            if (length_known) exchange_->response_left -= n;
            count_moved(upstream_.get(), n);
        },
        [this](SocketRelay::End end, int error) { on_body_relay_end(end, error); });
    body_relay_->send_first_output_of(client_.get());
    body_relay_->start();
    // The bufferevents' timeouts went with their events: one timer watches
    // for a stalled upstream (upstream_timeout) or client (idle_timeout).
    timeval tv = to_timeval(std::min({limits_.idle_timeout, limits_.upstream_timeout,
                                      std::chrono::milliseconds(kRelayCheckInterval)}));
    event_add(timer_.get(), &tv);
    return true;
}

void HttpSession::stop_body_relay() {
    body_relay_.reset();
    event_del(timer_.get());
    bufferevent_setwatermark(client_.get(), EV_WRITE, 0, 0);
    bufferevent_enable(client_.get(), EV_WRITE);
}

void HttpSession::on_body_relay_end(SocketRelay::End end, int error) {
    stop_body_relay();
    Exchange& ex = *exchange_;
    switch (end) {
        case SocketRelay::End::kLimitReached:
            // The relay read no byte past the body; anything the origin sent
            // after it is not a response to anything: never pool it.
            if (socket_has_input(bufferevent_getfd(upstream_.get()))) ex.upstream_reusable = false;
            finish_exchange();
            return;
        case SocketRelay::End::kSourceEof:
            if (ex.response_framing.kind == http::BodyKind::kUntilClose) {
                ex.upstream_reusable = false;
                finish_exchange();
                return;
            }
            abort_exchange("upstream connection closed mid-response",
                           channel::kErrUpstreamProtocol);
            return;
        case SocketRelay::End::kSourceError:
            abort_exchange("upstream connection failed mid-response",
                           channel::kErrUpstreamProtocol);
            return;
        case SocketRelay::End::kSinkError:
            ex.reason =
                std::string("client connection failed mid-response (") + std::strerror(error) + ")";
            log_exchange();
            destroy();
            return;
    }
}

void HttpSession::check_body_relay() {
    bool waiting_for_client = body_relay_->waiting_for_sink();
    auto limit = waiting_for_client ? limits_.idle_timeout : limits_.upstream_timeout;
    auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - body_relay_->last_activity());
    if (idle < limit) {
        timeval tv = to_timeval(std::min(limit - idle, kRelayCheckInterval));
        event_add(timer_.get(), &tv);
        return;
    }
    stop_body_relay();
    if (!waiting_for_client) {
        abort_exchange("upstream timed out mid-response", channel::kErrTimeout);
        return;
    }
    context_.counters.errors[channel::kErrTimeout]++;
    exchange_->reason = "client stopped reading";
    log_exchange();
    destroy();
}

void HttpSession::finish_exchange() {
    Exchange& ex = *exchange_;
    log_exchange();
    bool reusable =
        ex.upstream_reusable && ex.request_done && upstream_ && input_length(upstream_.get()) == 0;
    if (reusable) {
        context_.pool->put(ex.pool_key, PooledConnection{std::move(upstream_), ex.upstream_peer});
    }
    upstream_.reset();
    // While draining, a connection whose response promised keep-alive still
    // takes one more request (answered with "Connection: close"): the client
    // may have sent it already. It closes after a short idle time otherwise.
    if (!ex.response_keep_alive || client_eof_) {
        close_after_flush();
        return;
    }
    reset_for_next_request();
}

void HttpSession::reset_for_next_request() {
    exchange_.reset();
    idle_since_ = std::chrono::steady_clock::now();
    state_ = State::kReadingHead;
    first_request_ = false;
    retried_ = false;
    bufferevent* bev = client_.get();
    bufferevent_set_timeouts(bev, nullptr, nullptr);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    bufferevent_enable(bev, EV_READ);
    arm_head_timer();
    if (input_length(bev) > 0) {
        // A pipelined request is waiting. Parse it from the loop, not from
        // here, so a long pipeline never deepens the stack.
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

// ---------------------------------------------------------------- tunnels

void HttpSession::start_tunnel() {
    state_ = State::kTunnel;
    context_.counters.tunnels++;
    exchange_->status = 200;
    static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
    send_or_queue(client_.get(), kEstablished.data(), kEstablished.size());
    context_.counters.bytes_out += kEstablished.size();
    bufferevent_set_timeouts(client_.get(), nullptr, nullptr);
    event_del(timer_.get());
    tunnel_ = std::make_unique<Tunnel>(
        context_.base, context_.pipes, std::move(client_), std::move(upstream_),
        limits_.buffer_size, limits_.tunnel_idle_timeout, [this](const TunnelTotals& totals) {
            Exchange& ex = *exchange_;
            ex.bytes_from_client += totals.client_to_upstream;
            ex.bytes_to_client += kEstablished.size() + totals.upstream_to_client;
            count_tunnel(totals);
            if (std::strcmp(totals.end_reason, "closed") != 0) ex.reason = totals.end_reason;
            log_exchange();
            destroy();
        });
    tunnel_->start();
}

// ---------------------------------------------------------------- endings

void HttpSession::respond_error(int status, const std::string& detail, const char* error_type,
                                uint32_t error_class, bool close) {
    context_.counters.errors[error_class]++;
    connect_.reset();
    upstream_.reset();
    if (exchange_ == nullptr) {
        exchange_ = std::make_unique<Exchange>();
        exchange_->started = std::chrono::steady_clock::now();
    }
    Exchange& ex = *exchange_;
    ex.status = status;
    ex.reason = detail;
    LOG_INFO("%d %s, client: %s, request: \"%s %s\"", status, detail.c_str(),
             client_address_.c_str(), ex.method.c_str(), ex.target.c_str());
    bool close_now =
        close || !ex.client_keep_alive || !ex.request_done || client_eof_ || context_.draining;
    std::string response = build_error_response(status, detail, close_now, error_type);
    send_or_queue(client_.get(), response.data(), response.size());
    ex.bytes_to_client += response.size();
    context_.counters.bytes_out += response.size();
    log_exchange();
    if (close_now) {
        close_after_flush();
    } else {
        reset_for_next_request();
    }
}

// Something broke after the response head went out: the client can only
// learn it from the connection closing before the body is complete.
void HttpSession::abort_exchange(const char* reason, uint32_t error_class) {
    context_.counters.errors[error_class]++;
    exchange_->reason = reason;
    LOG_INFO("%s, client: %s, request: \"%s %s\", upstream: %s", reason, client_address_.c_str(),
             exchange_->method.c_str(), exchange_->target.c_str(),
             exchange_->upstream_address.c_str());
    log_exchange();
    upstream_.reset();
    close_after_flush();
}

void HttpSession::upstream_failed(const std::string& what, bool connection_broken) {
    Exchange& ex = *exchange_;
    if (ex.response_started) {
        abort_exchange(connection_broken ? "upstream connection closed mid-response"
                                         : "malformed response body from upstream",
                       channel::kErrUpstreamProtocol);
        return;
    }
    if (connection_broken && ex.reused_upstream && !ex.upstream_head.empty() && !retried_) {
        // The origin closed a kept-alive connection as we reused it; nothing
        // of the request was consumed, so it is safe to send it again.
        retried_ = true;
        ex.reused_upstream = false;
        upstream_.reset();
        connect_upstream();
        return;
    }
    respond_error(502, what, connection_broken ? "http_response_incomplete" : "http_protocol_error",
                  channel::kErrUpstreamProtocol, false);
}

void HttpSession::close_after_flush() {
    state_ = State::kClosing;
    connect_.reset();
    upstream_.reset();
    event_del(timer_.get());
    bufferevent* bev = client_.get();
    timeval idle = to_timeval(limits_.idle_timeout);
    bufferevent_set_timeouts(bev, nullptr, &idle);
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    // A client that already sent its EOF would only report it again.
    if (!client_eof_) bufferevent_enable(bev, EV_READ);
    enable_writing(bev);
    // The write callback runs once the output is empty; trigger it in case
    // it already is. Destruction always happens from a callback of our own.
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
bool HttpSession::must_linger() const {
    bufferevent* bev = client_.get();
    if (!is_plain_tcp(bev) || !exchange_ || !exchange_->request_done) return true;
    return input_length(bev) > 0;
}

void HttpSession::log_exchange() {
    if (!exchange_ || exchange_->logged) return;
    Exchange& ex = *exchange_;
    ex.logged = true;
    if (!context_.access_log->enabled()) return;
    AccessRecord record;
    record.client = client_address_;
    record.method = ex.method;
    record.target = ex.target;
    record.version_minor = ex.version_minor;
    record.status = ex.status;
    record.bytes_from_client = ex.bytes_from_client;
    record.bytes_to_client = ex.bytes_to_client;
    record.duration = std::chrono::steady_clock::now() - ex.started;
    record.upstream = ex.upstream_address;
    record.reason = ex.reason;
    context_.access_log->write(record);
}

// ---------------------------------------------------------------- callbacks

void HttpSession::on_client_read(bufferevent* bev, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    switch (self->state_) {
        case State::kReadingHead:
            self->read_request_head();
            break;
        case State::kForwarding:
            if (!self->exchange_->request_done) self->pump_request_body();
            break;
        case State::kClosing:
            // Lingering close: discard what the client still sends, so that
            // closing does not reset the connection before it read our answer.
            evbuffer_drain(bufferevent_get_input(bev), input_length(bev));
            break;
        case State::kConnecting:
        case State::kTunnel:
            break;  // stays buffered until it can be used
    }
}

void HttpSession::on_client_write(bufferevent* bev, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    switch (self->state_) {
        case State::kClosing:
            if (output_length(bev) > 0 || self->shut_down_) return;
            if (self->client_eof_ || !self->must_linger()) {
                self->destroy();  // nothing to linger for
                return;
            }
            shutdown(bufferevent_getfd(bev), SHUT_WR);
            self->shut_down_ = true;
            {
                timeval linger = to_timeval(kLingerTime);
                event_add(self->timer_.get(), &linger);
            }
            return;
        case State::kForwarding:
            if (self->body_relay_) return;  // the relay owns both sockets' I/O
            // The client drained below the low mark: read the upstream again.
            bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
            if (self->upstream_) {
                bufferevent_enable(self->upstream_.get(), EV_READ);
                if (self->exchange_->response_started) self->pump_response_body();
            }
            return;
        case State::kReadingHead:
            bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
            if (input_length(bev) > 0) self->read_request_head();
            return;
        default:
            return;
    }
}

void HttpSession::on_client_event(bufferevent* bev, short events, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    if (events & BEV_EVENT_CONNECTED) return;  // a TLS handshake completed
    if (events == (BEV_EVENT_EOF | BEV_EVENT_READING) && self->state_ == State::kClosing &&
        !self->shut_down_) {
        // The client finished sending before our answer is out: the write
        // callback closes once the output is flushed.
        self->client_eof_ = true;
        return;
    }
    if (events & BEV_EVENT_ERROR) self->note_transport_error(bev, self->client_address_);
    if ((events & BEV_EVENT_EOF) &&
        (self->state_ == State::kConnecting || self->state_ == State::kForwarding)) {
        // A client may half-close after sending its request; answer it.
        if (self->exchange_->request_done) {
            self->client_eof_ = true;
            return;
        }
        self->exchange_->reason = "client closed the connection mid-request";
        self->log_exchange();
    } else if ((events & BEV_EVENT_TIMEOUT) && self->exchange_ && self->state_ != State::kClosing) {
        self->context_.counters.errors[channel::kErrTimeout]++;
        self->exchange_->reason =
            (events & BEV_EVENT_READING) ? "client stopped sending" : "client stopped reading";
        self->log_exchange();
    }
    self->destroy();
}

void HttpSession::on_upstream_read(bufferevent*, void* arg) noexcept {
    static_cast<HttpSession*>(arg)->read_response();
}

void HttpSession::on_upstream_write(bufferevent* bev, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    // The upstream drained below the low mark: read the client again.
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (self->exchange_ && !self->exchange_->request_done) {
        bufferevent_enable(self->client_.get(), EV_READ);
        self->pump_request_body();
    }
}

void HttpSession::on_upstream_event(bufferevent*, short events, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    if (events & BEV_EVENT_TIMEOUT) {
        self->upstream_timed_out();
    } else {
        self->upstream_closed(events);
    }
}

void HttpSession::upstream_timed_out() {
    Exchange& ex = *exchange_;
    if (ex.response_started) {
        abort_exchange("upstream timed out mid-response", channel::kErrTimeout);
        return;
    }
    respond_error(504, "upstream " + ex.upstream_address + " did not answer in time",
                  "connection_timeout", channel::kErrTimeout, false);
}

// EOF or an error on the upstream. Whatever arrived before it is still ours
// to forward; a body delimited by the close ends here normally.
void HttpSession::upstream_closed(short events) {
    int error = EVUTIL_SOCKET_ERROR();
    Exchange* ex = exchange_.get();
    if (ex->response_started) {
        pump_response_body();
    } else {
        read_response_head();
    }
    if (exchange_.get() != ex || state_ != State::kForwarding) return;  // finished or failed
    if (ex->response_started && ex->response_framing.kind == http::BodyKind::kUntilClose &&
        (events & BEV_EVENT_EOF)) {
        ex->upstream_reusable = false;
        finish_exchange();
        return;
    }
    std::string what = "upstream " + ex->upstream_address;
    what += (events & BEV_EVENT_EOF)
                ? " closed the connection"
                : std::string(" connection failed (") + std::strerror(error) + ")";
    if (!ex->response_started) what += " without a response";
    upstream_failed(what, true);
}

void HttpSession::on_timer(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<HttpSession*>(arg);
    if (self->body_relay_) {
        self->check_body_relay();
        return;
    }
    if (self->state_ == State::kReadingHead && self->client_ &&
        input_length(self->client_.get()) > 0) {
        self->respond_error(408, "timed out reading the request head", "", channel::kErrTimeout,
                            true);
        return;
    }
    // Idle keep-alive (or idle long enough while draining), a client that
    // never sent a byte, or a lingering close that is over.
    self->destroy();
}

}  // namespace worker
