// One HTTP request and its response (or its CONNECT tunnel).
//
//   state                  event                                  next
//   ---------------------  -------------------------------------  -------------------------
//   begin()                target or framing unreadable           refused (error response)
//   begin()                valid                                  pipeline
//   pipeline               refused by policy (ports, Via loop)    refused, connection closes
//   pipeline               refused by DNS, address, connect       refused (502/403/508/504);
//                                                                 a CONNECT closes
//   pipeline               pooled or new upstream, forward        forwarding
//   pipeline               new upstream, CONNECT                  tunnel
//   forwarding             request body up, response head and     complete (keep-alive or not)
//                          body down, concurrently
//   forwarding             body >= buffer_size, plain TCP,        spliced (SocketRelay; a
//                          length known or until close            timer watches for stalls)
//   spliced                body done / upstream EOF (until close) complete
//   spliced                upstream EOF or error mid-body,        aborted (close after flush)
//                          upstream silent for upstream_timeout
//   spliced                client write error or not reading      client lost (close now)
//                          for idle_timeout
//   forwarding             stale pooled upstream breaks before    pipeline again, once, on a
//                          any response byte (idempotent method,  new connection
//                          no body)
//   forwarding             upstream broken/silent/malformed       refused (502/504)
//                          before the final response head
//   forwarding             1xx heads fill the client's output     upstream paused until the
//                                                                 client drains
//   forwarding             more than 8 1xx heads, or bigger       refused (502)
//                          than max_header_size together
//   forwarding             upstream broken mid-response           aborted
//   forwarding             malformed chunked request body         refused (400), closes
//   tunnel                 either side ends, error, idle timeout  client lost (record done)
//
// The request body goes upstream while the response comes back, each with
// backpressure (body_pump.h). A response body of at least buffer_size whose
// end is known (Content-Length) or is the close, between plain TCP sockets,
// is spliced by a SocketRelay (socket_relay.h); chunked bodies and TLS
// clients stay on the bufferevents.
#include "worker/http_exchange.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "common/credentials.h"
#include "common/log.h"
#include "common/timeval.h"
#include "worker/refusal.h"
#include "worker/transport.h"
#include "worker/upstream_pool.h"

namespace worker {

using common::to_timeval;

namespace http = common::http;
namespace channel = common::channel;

namespace {

// How often a spliced body is checked for a stalled side, at most.
constexpr std::chrono::milliseconds kRelayCheckInterval{1000};

// Interim (1xx) responses one request may get before its final response;
// their heads together must also fit in max_header_size. An origin that
// sends more is broken or hostile.
constexpr int kMaxInterimResponses = 8;

// RFC 9110 §9.2.2. Only these may be sent again on another connection
// without the client asking (RFC 9112 §9.3.1.1): a proxy must not retry
// the others, whose effect may already have happened.
bool is_idempotent(std::string_view method) {
    for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
        if (method == m) return true;
    }
    return false;
}

// A response head waiting to go out together with the first bytes of its
// body: one write instead of two for a small response. Shared like the
// scratch head: it is always empty again before the loop runs.
evbuffer* staged_response_head() {
    static common::EvBufferPtr head(evbuffer_new());
    return head.get();
}

// True when a byte, an EOF or an error waits on `fd`; reads nothing.
bool socket_has_input(evutil_socket_t fd) {
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

}  // namespace

HttpExchange::HttpExchange(WorkerContext& context, Owner& owner,
                           const common::ListenConfig& listener,
                           const common::SocketAddress& client, const std::string& client_text,
                           const http::Limits& parse_limits)
    : context_(context),
      owner_(owner),
      limits_(context.config->limits),
      parse_limits_(parse_limits),
      request_chunks_(parse_limits),
      response_chunks_(parse_limits),
      pipeline_(context) {
    record_.client = client_text;
    record_.listener = listener.name;
    // The connection's, which outlive the exchange.
    intent_.listener = &listener;
    intent_.client = &client;
}

HttpExchange::~HttpExchange() {
    body_relay_.reset();
    upstream_.reset();
    upstream_in_use_.reset();
}

// ---------------------------------------------------------------- requests

// At most this much of an unreadable request line goes to the logs: enough
// to recognise it, not a copy of a 32 KiB attack in every log line.
constexpr size_t kMaxLoggedRequestLine = 4096;

// Referer and User-Agent, for the access log only: not copied when it is off.
void HttpExchange::record_header_fields(const http::RequestHead& head) {
    if (!context_.access_log->enabled()) return;
    for (size_t i = 0; i < head.header_count; ++i) {
        const http::Header& h = head.headers[i];
        if (http::iequals(h.name, "referer")) {
            record_.referer = h.value.substr(0, kMaxLoggedRequestLine);
        } else if (http::iequals(h.name, "user-agent")) {
            record_.user_agent = h.value.substr(0, kMaxLoggedRequestLine);
        }
    }
}

void HttpExchange::record_unreadable_head(std::string_view received) {
    std::string_view line = received.substr(0, received.find_first_of("\r\n"));
    line = line.substr(0, kMaxLoggedRequestLine);
    size_t space = line.find(' ');
    record_.method = std::string(line.substr(0, space));
    if (record_.method.empty()) record_.method = "-";
    record_.version_minor = kNoVersion;
    if (space == std::string_view::npos) return;
    // Everything after the method is the target unless it ends in a
    // version: a malformed line is logged as it came.
    std::string_view rest = line.substr(space + 1);
    size_t last = rest.rfind(' ');
    std::string_view version =
        last == std::string_view::npos ? std::string_view() : rest.substr(last + 1);
    if (version == "HTTP/1.0" || version == "HTTP/1.1") {
        record_.version_minor = version.back() - '0';
        rest = rest.substr(0, last);
    }
    record_.target = std::string(rest);
}

void HttpExchange::begin(const http::RequestHead& head) {
    context_.counters.requests++;
    record_.method = head.method;
    record_.target = head.target;
    record_.version_minor = head.version_minor;
    record_header_fields(head);
    record_.bytes_from_client += head.head_length;
    context_.counters.bytes_in += head.head_length;
    client_keep_alive_ = client_wants_keep_alive(head);
    connect_ = head.method == "CONNECT";  // methods are case-sensitive
    intent_.mode = connect_ ? Intent::Mode::kTunnel : Intent::Mode::kForward;
    intent_.via_names_us = has_our_via(head, context_.config->proxy.name);
    if (intent_.listener->auth == common::ListenAuth::kPassword) read_credentials(head);
    std::optional<Refusal> unreadable = connect_ ? prepare_connect(head) : prepare_forward(head);
    // The head's views die here; everything needed was copied above.
    evbuffer_drain(bufferevent_get_input(owner_.client()), head.head_length);
    if (unreadable) {
        // What follows a head that could not be read (a body, tunnel data)
        // cannot be told from a next request: close.
        refuse(*unreadable, true);
        return;
    }
    run_pipeline(true);
}

// Proxy-Authorization, for the pipeline's authenticate stage. Copied: the
// head's views die with begin(). Never forwarded (http_forwarding.cpp).
void HttpExchange::read_credentials(const http::RequestHead& head) {
    const http::Header* field = nullptr;
    for (size_t i = 0; i < head.header_count; ++i) {
        if (!http::iequals(head.headers[i].name, "proxy-authorization")) continue;
        if (field != nullptr) {
            intent_.credentials_error = "more than one Proxy-Authorization field";
            return;
        }
        field = &head.headers[i];
    }
    if (field == nullptr) return;
    const KnownCredentials* known = owner_.known_credentials();
    if (known != nullptr && known->field == field->value) {
        intent_.account = known->account;
        return;
    }
    credentials_field_ = field->value;
    std::string error;
    auto credentials = common::accounts::parse_basic_credentials(field->value, error);
    if (!credentials) {
        intent_.credentials_error = std::move(error);
        return;
    }
    intent_.credentials.emplace(std::move(credentials->user), std::move(credentials->password));
}

std::optional<Refusal> HttpExchange::prepare_forward(const http::RequestHead& head) {
    http::BodyFraming framing = http::request_body_framing(head);
    if (framing.error != http::ParseError::kNone) {
        return make_refusal(RefusalCause::kBadRequest, http::status_for(framing.error),
                            http::describe(framing.error));
    }
    std::string error;
    common::ProxyTarget& destination = intent_.destination;
    if (!common::parse_absolute_target(head.target, destination, error)) {
        return make_refusal(RefusalCause::kBadRequest, error);
    }
    // Built now, while the head's views are alive; sent once connected.
    upstream_head_.reserve(512);
    build_upstream_request(head, destination, framing, upstream_head_, context_.config->proxy.name);
    destination.path = {};  // pointed into the head
    request_framing_ = framing;
    request_left_ = framing.kind == http::BodyKind::kContentLength ? framing.length : 0;
    request_done_ = framing.kind == http::BodyKind::kNone ||
                    (framing.kind == http::BodyKind::kContentLength && framing.length == 0);
    return std::nullopt;
}

// The head rules are the same as for any request (Host, framing fields);
// a CONNECT request has no content (RFC 9110 §9.3.6), so a body length
// other than zero is refused: those bytes could only be tunnel data.
std::optional<Refusal> HttpExchange::prepare_connect(const http::RequestHead& head) {
    http::BodyFraming framing = http::request_body_framing(head);
    if (framing.error != http::ParseError::kNone) {
        return make_refusal(RefusalCause::kBadRequest, http::status_for(framing.error),
                            http::describe(framing.error));
    }
    if (framing.kind != http::BodyKind::kNone &&
        !(framing.kind == http::BodyKind::kContentLength && framing.length == 0)) {
        return make_refusal(RefusalCause::kBadRequest, "CONNECT request with content");
    }
    std::string error;
    if (!common::parse_authority_target(head.target, intent_.destination, error)) {
        return make_refusal(RefusalCause::kBadRequest, error);
    }
    request_done_ = true;
    return std::nullopt;
}

void HttpExchange::run_pipeline(bool may_reuse) {
    pipeline_.start(intent_, may_reuse, [this](PipelineResult&& result) {
        if (!retired()) on_pipeline_done(std::move(result));
    });
}

void HttpExchange::on_pipeline_done(PipelineResult&& result) {
    record_.user = std::move(result.user);
    if (result.route) record_.route = result.route->name;
    if (result.refusal) {
        // A policy refusal closes: after a CONNECT head, anything may be
        // tunnel data; after a refused request, its body is still coming.
        refuse(*result.refusal, result.refused_by_policy);
        return;
    }
    admission_ = std::move(result.admission);
    if (!credentials_field_.empty() && admission_.account) {
        owner_.remember_credentials(std::move(credentials_field_), *admission_.account);
    }
    route_ = result.route;
    pool_key_ = pool_key(intent_, *route_);
    upstream_ = std::move(result.upstream);
    upstream_peer_ = result.peer;
    record_.upstream = result.peer.to_string();
    reused_upstream_ = result.reused;
    if (connect_) {
        open_tunnel();
    } else {
        // A pooled connection was counted in use as it left the pool; a new
        // one is from now.
        upstream_in_use_ =
            result.in_use ? std::move(result.in_use) : context_.pool->in_use(pool_key_);
        start_forwarding();
    }
}

void HttpExchange::start_forwarding() {
    bufferevent* up = upstream_.get();
    bufferevent* client = owner_.client();
    size_t high = std::max<size_t>(limits_.buffer_size, limits_.max_header_size + 1);
    bufferevent_setcb(up, on_upstream_read, on_upstream_write, on_upstream_event, this);
    bufferevent_setwatermark(up, EV_READ, 0, high);
    set_io_size(up, limits_.buffer_size);
    bufferevent_setwatermark(up, EV_WRITE, 0, 0);
    if (!request_done_) {
        // While a body streams up; pump_request_body() sets the timeouts
        // for waiting on the response once it is all sent.
        timeval upstream_timeout = to_timeval(limits_.upstream_timeout);
        bufferevent_set_timeouts(up, nullptr, &upstream_timeout);
        timeval idle = to_timeval(limits_.idle_timeout);
        bufferevent_set_timeouts(client, &idle, &idle);
    }
    send_request_head(up);
    // A reused connection may turn out to be closed by the origin; the head
    // is kept so an idempotent request can be retried once on a fresh
    // connection, as long as it has no body (see upstream_broke()).
    bool may_retry = reused_upstream_ && request_done_ && is_idempotent(record_.method);
    if (!may_retry) std::string().swap(upstream_head_);
    bufferevent_enable(up, EV_READ);
    enable_writing(up);
    pump_request_body();
}

// An HTTP(S) parent takes the request in absolute form, with our
// credentials for it; everyone else gets the origin-form head as built.
void HttpExchange::send_request_head(bufferevent* up) {
    const common::ParentConfig* parent = route_->parent;
    if (parent == nullptr || parent->scheme == common::ParentScheme::kSocks5) {
        send_or_queue(up, upstream_head_.data(), upstream_head_.size());
        context_.counters.bytes_out += upstream_head_.size();
        record_.bytes_to_upstream += upstream_head_.size();
        return;
    }
    // One write, so the head leaves in one segment as it does to an origin.
    std::string head;
    head.reserve(upstream_head_.size() + 256);
    size_t rest =
        append_absolute_request_line(upstream_head_, intent_.destination.host_header(80), head);
    head += parent->authorization;
    head.append(upstream_head_, rest);
    send_or_queue(up, head.data(), head.size());
    context_.counters.bytes_out += head.size();
    record_.bytes_to_upstream += head.size();
}

BodyPump HttpExchange::pump_to_client() {
    return BodyPump{upstream_.get(),         owner_.client(),
                    record_.bytes_to_client, record_.bytes_from_upstream,
                    context_.counters,       limits_.buffer_size};
}

BodyPump HttpExchange::pump_to_upstream() {
    return BodyPump{owner_.client(),           upstream_.get(),   record_.bytes_from_client,
                    record_.bytes_to_upstream, context_.counters, limits_.buffer_size};
}

void HttpExchange::pump_request_body() {
    if (!request_done_) {
        bool done = false;
        if (request_framing_.kind == http::BodyKind::kContentLength) {
            request_left_ -= pump_to_upstream().move(request_left_);
            done = request_left_ == 0;
        } else if (!pump_to_upstream().move_chunked(request_chunks_, true, done)) {
            refuse(make_refusal(RefusalCause::kBadRequest, "malformed chunked request body"), true);
            return;
        }
        if (!done) return;
        if (request_framing_.kind == http::BodyKind::kChunked) {
            send_or_queue(upstream_.get(), "0\r\n\r\n", 5);
        }
        request_done_ = true;
    }
    // Waiting for the response starts once the whole request went out.
    timeval upstream_timeout = to_timeval(limits_.upstream_timeout);
    bufferevent_set_timeouts(upstream_.get(), &upstream_timeout, &upstream_timeout);
    timeval idle = to_timeval(limits_.idle_timeout);
    bufferevent_set_timeouts(owner_.client(), nullptr, &idle);
}

void HttpExchange::on_client_readable() {
    if (upstream_ && !request_done_) pump_request_body();
}

// The client drained below the low mark: read the upstream again.
void HttpExchange::on_client_drained() {
    if (!upstream_ || body_relay_) return;  // not connected yet, or the relay has both sockets
    bufferevent_setwatermark(owner_.client(), EV_WRITE, 0, 0);
    bufferevent_enable(upstream_.get(), EV_READ);
    read_response();  // what the upstream sent meanwhile: a body or more heads
}

// ---------------------------------------------------------------- responses

void HttpExchange::read_response() {
    if (!response_started_) {
        read_response_head();
        return;
    }
    pump_response_body();
}

void HttpExchange::read_response_head() {
    evbuffer* input = bufferevent_get_input(upstream_.get());
    // Once the upstream answered anything, resending the request elsewhere
    // could run it twice.
    if (evbuffer_get_length(input) > 0) std::string().swap(upstream_head_);
    while (!response_started_) {
        size_t available = evbuffer_get_length(input);
        if (available == 0) return;
        size_t want = std::min<size_t>(available, limits_.max_header_size);
        const char* data =
            reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(want)));
        http::ResponseHead& head = scratch_head<http::ResponseHead>();
        http::ParseResult result = http::parse_response_head({data, want}, parse_limits_, head);
        if (result.status == http::ParseStatus::kNeedMore) {
            if (want < limits_.max_header_size) return;
            upstream_malformed(RefusalCause::kUpstreamHeadTooLarge,
                               "response head from upstream is too large");
            return;
        }
        if (result.status == http::ParseStatus::kError) {
            refuse_response_head(result.error);
            return;
        }
        if (head.status < 200) {
            if (!relay_interim(head)) return;
            evbuffer_drain(input, head.head_length);
            // Interim heads obey the client's mark like bodies do: an origin
            // streaming 1xx heads to a client that does not read would grow
            // its output without bound. on_client_drained() resumes.
            if (pump_to_client().hold_if_receiver_full()) return;
            continue;
        }
        if (head.status == 407 && route_->parent != nullptr) {
            // Its challenge is for us, not for our client: our credentials
            // for the parent are wrong, which is our configuration's fault.
            std::string detail = "parent " + route_->parent->name +
                                 (route_->parent->credentials ? " refused our credentials (407)"
                                                              : " requires credentials (407)");
            upstream_reusable_ = false;
            refuse(make_refusal(RefusalCause::kParentAuth, std::move(detail)), false);
            return;
        }
        if (!start_response(head)) return;
        evbuffer_drain(input, head.head_length);
    }
    pump_response_body();
}

// A head over max_header_size or max_headers may be well formed, just too
// big for us: RFC 9209 gives that its own error type
// (http_response_header_section_size), apart from a malformed head.
void HttpExchange::refuse_response_head(http::ParseError error) {
    if (error == http::ParseError::kHeadersTooLarge || error == http::ParseError::kTooManyHeaders) {
        upstream_malformed(
            RefusalCause::kUpstreamHeadTooLarge,
            std::string("response head from upstream is too large: ") + http::describe(error));
        return;
    }
    upstream_malformed(RefusalCause::kUpstreamProtocol,
                       std::string("malformed response from upstream: ") + http::describe(error));
}

bool HttpExchange::relay_interim(const http::ResponseHead& head) {
    if (head.status == 101) {
        upstream_malformed(RefusalCause::kUpstreamProtocol,
                           "upstream switched protocols without being asked");
        return false;
    }
    interim_bytes_ += head.head_length;
    record_.bytes_from_upstream += head.head_length;
    if (++interim_count_ > kMaxInterimResponses || interim_bytes_ > limits_.max_header_size) {
        upstream_malformed(RefusalCause::kUpstreamProtocol,
                           "too many interim responses from upstream");
        return false;
    }
    if (record_.version_minor >= 1) {
        std::string out;
        build_interim_response(head, out);
        send_or_queue(owner_.client(), out.data(), out.size());
        record_.bytes_to_client += out.size();
        context_.counters.bytes_out += out.size();
    }
    return true;
}

bool HttpExchange::start_response(const http::ResponseHead& head) {
    http::BodyFraming framing = http::response_body_framing(head, record_.method);
    if (framing.error != http::ParseError::kNone) {
        upstream_malformed(framing.error == http::ParseError::kUnsupportedTransferCoding
                               ? RefusalCause::kUpstreamTransferCoding
                               : RefusalCause::kUpstreamProtocol,
                           std::string("invalid response framing from upstream: ") +
                               http::describe(framing.error));
        return false;
    }
    response_framing_ = framing;
    switch (framing.kind) {
        case http::BodyKind::kNone:
            client_body_ =
                framing.length_declared ? OutgoingBody::kNoneButLength : OutgoingBody::kNone;
            break;
        case http::BodyKind::kContentLength:
            client_body_ = OutgoingBody::kLength;
            response_left_ = framing.length;
            break;
        case http::BodyKind::kChunked:
            // An HTTP/1.0 client can't read chunked: it gets the data and a close.
            client_body_ =
                record_.version_minor >= 1 ? OutgoingBody::kChunked : OutgoingBody::kUntilClose;
            break;
        case http::BodyKind::kUntilClose:
            client_body_ = OutgoingBody::kUntilClose;
            break;
    }
    response_keep_alive_ = client_keep_alive_ && request_done_ && !context_.draining &&
                           !owner_.client_eof() && client_body_ != OutgoingBody::kUntilClose;
    upstream_reusable_ = head.version_minor >= 1 && !connection_info(head).close &&
                         framing.kind != http::BodyKind::kUntilClose;
    record_.status = head.status;
    response_started_ = true;
    std::string out;
    out.reserve(head.head_length + 64);
    uint64_t length = framing.kind == http::BodyKind::kNone ? framing.length : response_left_;
    build_client_response(head, client_body_, length, response_keep_alive_, record_.version_minor,
                          out, context_.config->proxy.name);
    // Staged until pump_response_body(), which always follows.
    evbuffer_add(staged_response_head(), out.data(), out.size());
    record_.bytes_to_client += out.size();
    record_.bytes_from_upstream += head.head_length;
    context_.counters.bytes_in += head.head_length;
    context_.counters.bytes_out += out.size();
    return true;
}

void HttpExchange::pump_response_body() {
    bool done = false;
    http::BodyKind kind = response_framing_.kind;
    // The session ends with its response: when the last bytes are at hand,
    // its lease goes back before they are written, so a client that sees
    // the end of the response can open its next session at once, even on
    // another worker. (A chunked or spliced body learns its end as it
    // writes it: its lease goes back right after, in finish().)
    if (kind == http::BodyKind::kNone || (kind == http::BodyKind::kContentLength &&
                                          input_length(upstream_.get()) >= response_left_)) {
        admission_ = Admission();
    }
    if (kind != http::BodyKind::kContentLength && kind != http::BodyKind::kUntilClose) {
        send_staged_head();  // move() sends it with the first body bytes
    }
    switch (kind) {
        case http::BodyKind::kNone:
            done = true;
            break;
        case http::BodyKind::kContentLength:
            response_left_ -= pump_to_client().move(response_left_, staged_response_head());
            done = response_left_ == 0;
            if (!done && response_left_ >= limits_.buffer_size) start_body_relay();
            break;
        case http::BodyKind::kChunked: {
            bool reencode = client_body_ == OutgoingBody::kChunked;
            if (!pump_to_client().move_chunked(response_chunks_, reencode, done)) {
                abort("malformed chunked response from upstream", channel::kErrUpstreamProtocol);
                return;
            }
            if (done && reencode) {
                send_or_queue(owner_.client(), "0\r\n\r\n", 5);
                record_.bytes_to_client += 5;
            }
            break;
        }
        case http::BodyKind::kUntilClose:
            pump_to_client().move(UINT64_MAX, staged_response_head());
            start_body_relay();
            break;  // done at upstream EOF
    }
    if (done) finish();
}

void HttpExchange::send_staged_head() {
    evbuffer* head = staged_response_head();
    size_t n = evbuffer_get_length(head);
    if (n > 0) send_or_queue(owner_.client(), head, n);
}

// ---------------------------------------------------------------- spliced bodies

// The upstream's bufferevent stops reading and the client's stops writing
// (what it still holds, the response head included, goes out first); both
// keep their sockets. The client's may go on reading: pipelined requests
// and an EOF are noticed as before.
bool HttpExchange::start_body_relay() {
    bufferevent* client = owner_.client();
    if (body_relay_ || context_.pipes == nullptr || !request_done_ || !is_plain_tcp(client) ||
        input_length(upstream_.get()) > 0) {
        return false;
    }
    if (!relay_timer_) {
        relay_timer_.reset(event_new(context_.base, -1, 0, on_relay_check, this));
        if (!relay_timer_) return false;  // the bufferevents carry on
    }
    bool length_known = response_framing_.kind == http::BodyKind::kContentLength;
    bufferevent_disable(upstream_.get(), EV_READ);
    bufferevent_disable(client, EV_WRITE);
    body_relay_ = std::make_unique<SocketRelay>(
        context_.base, *context_.pipes, bufferevent_getfd(upstream_.get()),
        bufferevent_getfd(client), length_known ? response_left_ : UINT64_MAX,
        [this, length_known](size_t n) {
            if (length_known) response_left_ -= n;
            context_.counters.bytes_in += n;
            context_.counters.bytes_out += n;
            record_.bytes_to_client += n;
            record_.bytes_from_upstream += n;
        },
        [this](SocketRelay::End end, int error) {
            if (!retired()) on_body_relay_end(end, error);
        });
    body_relay_->send_first_output_of(client);
    body_relay_->start();
    // The bufferevents' timeouts went with their events: one timer watches
    // for a stalled upstream (upstream_timeout) or client (idle_timeout).
    timeval tv = to_timeval(std::min({limits_.idle_timeout, limits_.upstream_timeout,
                                      std::chrono::milliseconds(kRelayCheckInterval)}));
    event_add(relay_timer_.get(), &tv);
    return true;
}

void HttpExchange::stop_body_relay() {
    body_relay_.reset();
    event_del(relay_timer_.get());
    bufferevent* client = owner_.client();
    bufferevent_setwatermark(client, EV_WRITE, 0, 0);
    bufferevent_enable(client, EV_WRITE);
}

void HttpExchange::on_body_relay_end(SocketRelay::End end, int error) {
    stop_body_relay();
    switch (end) {
        case SocketRelay::End::kLimitReached:
            // The relay read no byte past the body; anything the origin sent
            // after it is not a response to anything: never pool it.
            if (socket_has_input(bufferevent_getfd(upstream_.get()))) upstream_reusable_ = false;
            finish();
            return;
        case SocketRelay::End::kSourceEof:
            if (response_framing_.kind == http::BodyKind::kUntilClose) {
                upstream_reusable_ = false;
                finish();
                return;
            }
            abort("upstream connection closed mid-response", channel::kErrUpstreamProtocol);
            return;
        case SocketRelay::End::kSourceError:
            abort("upstream connection failed mid-response", channel::kErrUpstreamProtocol);
            return;
        case SocketRelay::End::kSinkError:
            lose_client(std::string("client connection failed mid-response (") +
                        std::strerror(error) + ")");
            return;
    }
}

void HttpExchange::check_body_relay() {
    bool waiting_for_client = body_relay_->waiting_for_sink();
    auto limit = waiting_for_client ? limits_.idle_timeout : limits_.upstream_timeout;
    auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - body_relay_->last_activity());
    if (idle < limit) {
        timeval tv = to_timeval(std::min(limit - idle, kRelayCheckInterval));
        event_add(relay_timer_.get(), &tv);
        return;
    }
    stop_body_relay();
    if (!waiting_for_client) {
        abort("upstream timed out mid-response", channel::kErrTimeout);
        return;
    }
    record_.fail(channel::kErrTimeout, "client stopped reading");
    lose_client(record_.reason);
}

// ---------------------------------------------------------------- endings

void HttpExchange::finish() {
    record_.finish(context_);
    bool reusable =
        upstream_reusable_ && request_done_ && upstream_ && input_length(upstream_.get()) == 0;
    if (reusable) {
        context_.pool->put(pool_key_, PooledConnection{std::move(upstream_), upstream_peer_});
    }
    release_upstream();
    owner_.on_exchange_complete();
}

void HttpExchange::open_tunnel() {
    static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
    bufferevent* client = owner_.client();
    send_or_queue(client, kEstablished.data(), kEstablished.size());
    context_.counters.bytes_out += kEstablished.size();
    record_.bytes_to_client += kEstablished.size();
    bufferevent_set_timeouts(client, nullptr, nullptr);
    owner_.on_exchange_tunnel(std::move(upstream_), std::move(record_), std::move(admission_));
}

void HttpExchange::release_upstream() {
    admission_ = Admission();  // the session ends with its response
    body_relay_.reset();
    if (relay_timer_) event_del(relay_timer_.get());
    upstream_.reset();
    upstream_in_use_.reset();
    pipeline_.cancel();
}

// A refused CONNECT always closes, whatever refused it: the client may have
// sent tunnel data after its head, which must never be read as a request.
void HttpExchange::refuse(const Refusal& refusal, bool close) {
    release_upstream();
    owner_.on_exchange_refused(refusal, close || connect_);
}

// Something broke after the response head went out: the client can only
// learn it from the connection closing before the body is complete.
void HttpExchange::abort(const char* reason, uint32_t error_class) {
    record_.fail(error_class, reason);
    LOG_INFO("%s, client: %.*s, request: \"%s %s\", upstream: %s", reason,
             static_cast<int>(record_.client.size()), record_.client.data(), record_.method.c_str(),
             record_.target.c_str(), record_.upstream.c_str());
    record_.finish(context_);
    release_upstream();
    owner_.on_exchange_aborted();
}

void HttpExchange::lose_client(std::string reason) {
    record_.reason = std::move(reason);
    record_.finish(context_);
    release_upstream();
    owner_.on_exchange_lost_client();
}

// The upstream's answer cannot be read (`cause` says how).
void HttpExchange::upstream_malformed(RefusalCause cause, const std::string& what) {
    if (response_started_) {
        abort("malformed response body from upstream", channel::kErrUpstreamProtocol);
        return;
    }
    refuse(make_refusal(cause, what), false);
}

// The upstream connection broke (EOF or error).
void HttpExchange::upstream_broke(const std::string& what) {
    if (response_started_) {
        abort("upstream connection closed mid-response", channel::kErrUpstreamProtocol);
        return;
    }
    if (reused_upstream_ && !upstream_head_.empty() && !retried_) {
        // The origin closed a kept-alive connection as we reused it, before
        // any byte of an answer: an idempotent request without a body (the
        // only kind whose head is kept) is sent once more on a new one.
        retried_ = true;
        reused_upstream_ = false;
        upstream_.reset();
        upstream_in_use_.reset();
        admission_ = Admission();  // admitted again, with the same credentials
        run_pipeline(false);
        return;
    }
    refuse(make_refusal(RefusalCause::kUpstreamIncomplete, what), false);
}

void HttpExchange::upstream_timed_out() {
    if (response_started_) {
        abort("upstream timed out mid-response", channel::kErrTimeout);
        return;
    }
    refuse(make_refusal(RefusalCause::kUpstreamTimeout,
                        "upstream " + record_.upstream + " did not answer in time"),
           false);
}

// EOF or an error on the upstream. Whatever arrived before it is still ours
// to forward; a body delimited by the close ends here normally.
void HttpExchange::upstream_closed(short events) {
    int error = EVUTIL_SOCKET_ERROR();
    if (response_started_) {
        pump_response_body();
    } else {
        read_response_head();
    }
    if (retired() || !upstream_) return;  // finished or failed meanwhile
    if (response_started_ && response_framing_.kind == http::BodyKind::kUntilClose &&
        (events & BEV_EVENT_EOF)) {
        upstream_reusable_ = false;
        finish();
        return;
    }
    std::string what = "upstream " + record_.upstream;
    what += (events & BEV_EVENT_EOF)
                ? " closed the connection"
                : std::string(" connection failed (") + std::strerror(error) + ")";
    if (!response_started_) what += " without a response";
    upstream_broke(what);
}

// ---------------------------------------------------------------- callbacks

void HttpExchange::on_upstream_read(bufferevent*, void* arg) noexcept {
    if (auto* self = live<HttpExchange>(arg)) self->read_response();
}

// The upstream drained below the low mark: read the client again.
void HttpExchange::on_upstream_write(bufferevent* bev, void* arg) noexcept {
    auto* self = live<HttpExchange>(arg);
    if (self == nullptr) return;
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (!self->request_done_) {
        bufferevent_enable(self->owner_.client(), EV_READ);
        self->pump_request_body();
    }
}

void HttpExchange::on_upstream_event(bufferevent*, short events, void* arg) noexcept {
    auto* self = live<HttpExchange>(arg);
    if (self == nullptr) return;
    if (events & BEV_EVENT_TIMEOUT) {
        self->upstream_timed_out();
    } else {
        self->upstream_closed(events);
    }
}

void HttpExchange::on_relay_check(evutil_socket_t, short, void* arg) noexcept {
    auto* self = live<HttpExchange>(arg);
    if (self && self->body_relay_) self->check_body_relay();
}

}  // namespace worker
