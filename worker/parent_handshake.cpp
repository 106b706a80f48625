// The handshake with a parent proxy, see parent_handshake.h for the states.
#include "worker/parent_handshake.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/address.h"
#include "common/http_parser.h"
#include "common/socks_client.h"
#include "common/timeval.h"
#include "common/tls.h"

namespace worker {

namespace http = common::http;
namespace socks = common::socks;

namespace {

bool is_ip_literal(const std::string& host) {
    return common::SocketAddress::from_numeric(host, 0).has_value();
}

// SNI is sent for names only (RFC 6066 §3 forbids literal addresses); the
// certificate must be for the name or the address the URL gave.
bool set_peer_name(SSL* ssl, const std::string& host) {
    if (is_ip_literal(host)) {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
    }
    return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
           SSL_set1_host(ssl, host.c_str()) == 1;
}

// OpenSSL's reasons for a failed TLS connection ("certificate verify
// failed"), taken from the bufferevent; "" when it has none.
std::string openssl_reasons(bufferevent* bev) {
    std::string text;
    while (unsigned long code = bufferevent_get_openssl_error(bev)) {
        // libevent also files SSL_get_error()'s own code (SSL_ERROR_SSL,
        // SSL_ERROR_SYSCALL), which has no reason string: it says nothing.
        const char* reason = ERR_reason_error_string(code);
        if (reason == nullptr) continue;
        if (!text.empty()) text += "; ";
        text += reason;
    }
    return text;
}

// When the parent's certificate was refused, the verifier's reason:
// " (self-signed certificate)"; "" otherwise.
std::string verify_failure(bufferevent* bev) {
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    const long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (verify == X509_V_OK) return "";
    return std::string(" (") + X509_verify_cert_error_string(verify) + ")";
}

// A reason phrase is the parent's text: it goes into our logs and error
// bodies only as printable ASCII, and short.
std::string printable(std::string_view text) {
    constexpr size_t kMax = 64;
    std::string out;
    for (char c : text.substr(0, kMax)) out.push_back(c >= ' ' && c <= '~' ? c : '?');
    return out;
}

// The CONNECT answer is read like a response from an origin
// (http_connection.cpp's limits), with `max_head` for the whole head.
http::Limits answer_limits(size_t max_head) {
    http::Limits limits;
    limits.max_header_size = max_head;
    limits.max_target_length = std::min<size_t>(8192, max_head);
    return limits;
}

// A ResponseHead holds views for every possible field (8 KiB); one per
// thread, as http_exchange.h's scratch heads, since a head is parsed and
// judged within one callback.
http::ResponseHead& answer_head() {
    thread_local http::ResponseHead head;
    return head;
}

std::string hex_byte(uint8_t value) {
    char text[8];
    std::snprintf(text, sizeof(text), "0x%02X", value);
    return text;
}

}  // namespace

bool is_route_failure(ParentError error) {
    switch (error) {
        case ParentError::kTls:
        case ParentError::kCertificate:
        case ParentError::kProtocol:
        case ParentError::kClosed:
        case ParentError::kTimeout:
            return true;
        case ParentError::kNone:
        case ParentError::kAuth:
        case ParentError::kRefused:
        case ParentError::kNoResources:
            return false;
    }
    return false;
}

std::string TunnelTarget::authority() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

void append_connect_request(const common::ParentConfig& parent, const TunnelTarget& target,
                            std::string_view pseudonym, std::string& out) {
    const std::string authority = target.authority();
    out += "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    out += parent.authorization;
    out += "Via: 1.1 ";
    out += pseudonym;
    out += "\r\n\r\n";
}

ParentHandshake::ParentHandshake(event_base* base, const common::ParentConfig& parent,
                                 std::string_view pseudonym, std::chrono::milliseconds timeout,
                                 size_t max_head)
    : base_(base), parent_(parent), pseudonym_(pseudonym), timeout_(timeout), max_head_(max_head) {}

// Members free the timer and the connection, which closes it.
ParentHandshake::~ParentHandshake() = default;

void ParentHandshake::start(common::BufferEventPtr connection,
                            std::optional<TunnelTarget> tunnel_to, Callback callback) {
    bev_ = std::move(connection);
    target_ = std::move(tunnel_to);
    callback_ = std::move(callback);
    const bool tls = parent_.scheme == common::ParentScheme::kHttps;
    if (!tls && !target_) {
        succeed();
        return;
    }
    timer_.reset(evtimer_new(base_, on_timeout, this));
    if (!timer_) {
        fail(ParentError::kNoResources, "cannot make a timer for the handshake with " + named(""));
        return;
    }
    const timeval timeout = common::to_timeval(timeout_);
    evtimer_add(timer_.get(), &timeout);
    if (tls) {
        start_tls();  // on_event() goes on once TLS is up
        return;
    }
    start_tunnel();
}

// The TLS bufferevent sits on the socket itself, not as a filter over the
// plain one (a filter would add a buffer and a copy to every byte of the
// tunnel). The plain bufferevent lets go of the socket first, so freeing it
// does not close it (libevent closes only a descriptor it still holds).
void ParentHandshake::start_tls() {
    state_ = State::kTls;
    const evutil_socket_t fd = bufferevent_getfd(bev_.get());
    bufferevent_setfd(bev_.get(), -1);
    bev_.reset();
    const std::string failed = "cannot start TLS to parent " + parent_.name + ": ";
    SSL* ssl = parent_.tls_context ? SSL_new(parent_.tls_context.get()) : nullptr;
    if (ssl == nullptr || !set_peer_name(ssl, parent_.host)) {
        const std::string why = parent_.tls_context ? common::tls::take_openssl_errors()
                                                    : std::string("no TLS context");
        SSL_free(ssl);
        evutil_closesocket(fd);
        fail(ParentError::kNoResources, failed + why);
        return;
    }
    // The bufferevent owns the SSL object and the socket from here on.
    bufferevent* bev = bufferevent_openssl_socket_new(base_, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                      BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        fail(ParentError::kNoResources, failed + "bufferevent_openssl_socket_new() failed");
        return;
    }
    // A parent that closes a tunnel without close_notify ends its stream,
    // like a TCP EOF, as for clients (transport.cpp).
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bev_.reset(bev);
    bufferevent_setcb(bev, on_read, nullptr, on_event, this);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void ParentHandshake::start_tunnel() {
    bufferevent_setcb(bev_.get(), on_read, nullptr, on_event, this);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    if (parent_.scheme == common::ParentScheme::kSocks5) {
        send(socks::build_greeting(parent_.credentials.has_value()), State::kSocksMethod);
        return;
    }
    std::string request;
    append_connect_request(parent_, *target_, pseudonym_, request);
    send(request, State::kConnectAnswer);
}

void ParentHandshake::send(const std::string& bytes, State next) {
    state_ = next;
    if (bufferevent_write(bev_.get(), bytes.data(), bytes.size()) != 0) {
        fail(ParentError::kNoResources, "cannot queue our handshake for " + named(""));
    }
}

// A parent may send an answer before it read what it answers, or two
// answers in one segment: each state takes its answer from the front of the
// input and leaves the rest to the next.
void ParentHandshake::on_readable() {
    evbuffer* input = bufferevent_get_input(bev_.get());
    for (State before = state_; evbuffer_get_length(input) > 0; before = state_) {
        switch (state_) {
            case State::kTls:
            case State::kDone:
                return;
            case State::kConnectAnswer:
                read_connect_answer();
                break;
            case State::kSocksMethod:
                read_socks_method();
                break;
            case State::kSocksAuth:
                read_socks_auth();
                break;
            case State::kSocksConnect:
                read_socks_connect();
                break;
        }
        if (state_ == before || state_ == State::kDone) return;
    }
}

std::string_view ParentHandshake::input_front(size_t max) {
    evbuffer* input = bufferevent_get_input(bev_.get());
    const size_t n = std::min(evbuffer_get_length(input), max);
    if (n == 0) return {};
    return {reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(n))), n};
}

void ParentHandshake::drain(size_t bytes) {
    evbuffer_drain(bufferevent_get_input(bev_.get()), bytes);
}

// Interim (1xx) heads are skipped; only the final head is drained, so bytes
// after it stay in the input for the tunnel. A 2xx answer to CONNECT has no
// body whatever its fields say (RFC 9110 §9.3.6).
void ParentHandshake::read_connect_answer() {
    http::ResponseHead& head = answer_head();
    for (;;) {
        const std::string_view data = input_front(max_head_);
        if (data.empty()) return;
        const http::ParseResult result =
            http::parse_response_head(data, answer_limits(max_head_), head);
        const bool too_large = result.status == http::ParseStatus::kNeedMore
                                   ? data.size() >= max_head_
                                   : result.error == http::ParseError::kHeadersTooLarge;
        if (too_large) {
            fail(ParentError::kProtocol,
                 named("sent an answer to CONNECT over " + std::to_string(max_head_) + " bytes"));
            return;
        }
        if (result.status == http::ParseStatus::kNeedMore) return;
        if (result.status == http::ParseStatus::kError) {
            fail(ParentError::kProtocol, named(std::string("sent a malformed answer to CONNECT: ") +
                                               http::describe(result.error)));
            return;
        }
        drain(head.head_length);
        if (head.status >= 200) break;
    }
    if (head.status < 300) {
        succeed();
        return;
    }
    if (head.status == 407) {
        fail(ParentError::kAuth,
             named(parent_.credentials ? "refused our credentials (407)"
                                       : "requires credentials (407)"),
             407);
        return;
    }
    fail(ParentError::kRefused,
         named("answered CONNECT with " + std::to_string(head.status) + " " +
               printable(head.reason)),
         head.status);
}

void ParentHandshake::read_socks_method() {
    const auto r = socks::parse_method_selection(input_front(2));
    if (r.status == socks::ParseStatus::kNeedMore) return;
    if (r.status == socks::ParseStatus::kError) {
        fail(ParentError::kProtocol,
             named(std::string("sent a malformed SOCKS5 method selection: ") +
                   socks::describe(r.error)));
        return;
    }
    drain(r.consumed);
    const bool have_credentials = parent_.credentials.has_value();
    if (r.message == socks::kMethodNoAuth) {
        send_socks_connect();
    } else if (r.message == socks::kMethodUsernamePassword && have_credentials) {
        // The URL parser keeps both fields within RFC 1929's 1..255 bytes.
        const auto request =
            socks::build_password_request(parent_.credentials->first, parent_.credentials->second);
        if (request) {
            send(*request, State::kSocksAuth);
        } else {
            fail(ParentError::kAuth, named("has credentials SOCKS5 cannot carry"));
        }
    } else if (r.message == socks::kMethodNoAcceptable) {
        fail(ParentError::kAuth,
             named(have_credentials ? "accepts none of our authentication methods"
                                    : "requires credentials"));
    } else {
        fail(ParentError::kProtocol, named("chose SOCKS5 authentication method " +
                                           hex_byte(r.message) + ", which we did not offer"));
    }
}

void ParentHandshake::read_socks_auth() {
    const auto r = socks::parse_password_reply(input_front(2));
    if (r.status == socks::ParseStatus::kNeedMore) return;
    if (r.status == socks::ParseStatus::kError) {
        fail(ParentError::kProtocol,
             named(std::string("sent a malformed RFC 1929 answer: ") + socks::describe(r.error)));
        return;
    }
    drain(r.consumed);
    if (!r.message) {
        fail(ParentError::kAuth, named("refused our credentials (SOCKS5 username/password)"));
        return;
    }
    send_socks_connect();
}

// The destinations of HTTP and SOCKS clients are names of at most 255 bytes
// or literals, so every target can be sent; one that cannot is the
// destination's fault, answered as SOCKS5 would (address type not supported).
void ParentHandshake::send_socks_connect() {
    const auto request =
        socks::build_connect_request(target_->host, target_->port, target_->ip_literal);
    if (!request) {
        fail(ParentError::kRefused,
             "cannot ask parent " + parent_.name + " for " + target_->authority() +
                 ": not a SOCKS5 address",
             0, socks::kRepAddressTypeNotSupported);
        return;
    }
    send(*request, State::kSocksConnect);
}

void ParentHandshake::read_socks_connect() {
    const auto r = socks::parse_connect_reply(input_front(socks::kMaxConnectReplySize));
    if (r.status == socks::ParseStatus::kNeedMore) return;
    if (r.status == socks::ParseStatus::kError) {
        fail(ParentError::kProtocol,
             named(std::string("sent a malformed SOCKS5 reply: ") + socks::describe(r.error)));
        return;
    }
    const uint8_t rep = r.message.rep;
    if (rep != socks::kRepSucceeded) {
        fail(ParentError::kRefused,
             named("could not reach " + target_->authority() + " (SOCKS reply " +
                   std::to_string(rep) + ": " + socks::describe_socks_reply(rep) + ")"),
             0, rep);
        return;
    }
    drain(r.consumed);  // only the reply: what follows is the tunnel's
    succeed();
}

// What the parent had not done yet when the connection ended, for the log.
const char* ParentHandshake::waiting_for() const {
    switch (state_) {
        case State::kConnectAnswer:
            return "before its answer to CONNECT was whole";
        case State::kSocksMethod:
            return "before its SOCKS5 method selection";
        case State::kSocksAuth:
            return "before its answer to our credentials";
        case State::kSocksConnect:
            return "before its SOCKS5 CONNECT reply";
        case State::kTls:
        case State::kDone:
            break;
    }
    return "during the handshake";
}

// EOF or an error. During the TLS handshake, and whenever OpenSSL has a
// reason, it is TLS's failure; otherwise the connection's.
void ParentHandshake::on_closed(short events) {
    const int error = EVUTIL_SOCKET_ERROR();
    const std::string reasons = openssl_reasons(bev_.get());
    std::string why = reasons;
    if (why.empty()) {
        why = events & BEV_EVENT_EOF ? "the parent closed the connection" : std::strerror(error);
    }
    if (state_ == State::kTls || !reasons.empty()) {
        const std::string refused = verify_failure(bev_.get());
        fail(refused.empty() ? ParentError::kTls : ParentError::kCertificate,
             "TLS to parent " + parent_.name + " failed: " + why + refused);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        fail(ParentError::kClosed, named(std::string("closed the connection ") + waiting_for()));
        return;
    }
    fail(ParentError::kClosed,
         "connection to parent " + parent_.name + " failed " + waiting_for() + ": " + why);
}

void ParentHandshake::succeed() {
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    ParentResult result;
    result.connection = std::move(bev_);
    finish(std::move(result));
}

void ParentHandshake::fail(ParentError error, std::string detail, int http_status,
                           uint8_t socks_reply) {
    // Nothing more is read or written; the socket closes with this object.
    if (bev_) bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    ParentResult result;
    result.error = error;
    result.detail = std::move(detail);
    result.http_status = http_status;
    result.socks_reply = socks_reply;
    finish(std::move(result));
}

void ParentHandshake::finish(ParentResult&& result) {
    state_ = State::kDone;
    if (timer_) event_del(timer_.get());
    if (bufferevent* bev = result.connection ? result.connection.get() : bev_.get()) {
        bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
        bufferevent_set_timeouts(bev, nullptr, nullptr);
    }
    Callback callback = std::move(callback_);
    if (callback) callback(std::move(result));  // may retire this
}

// "parent NAME what".
std::string ParentHandshake::named(std::string_view what) const {
    std::string text = "parent " + parent_.name;
    if (!what.empty()) text += " " + std::string(what);
    return text;
}

void ParentHandshake::on_read(bufferevent*, void* arg) noexcept {
    if (auto* self = live<ParentHandshake>(arg)) self->on_readable();
}

void ParentHandshake::on_event(bufferevent*, short events, void* arg) noexcept {
    auto* self = live<ParentHandshake>(arg);
    if (self == nullptr) return;
    if (events & BEV_EVENT_CONNECTED) {
        if (self->state_ != State::kTls) return;
        if (self->target_) {
            self->start_tunnel();
        } else {
            self->succeed();
        }
        return;
    }
    self->on_closed(events);
}

void ParentHandshake::on_timeout(evutil_socket_t, short, void* arg) noexcept {
    auto* self = live<ParentHandshake>(arg);
    if (self == nullptr) return;
    self->fail(ParentError::kTimeout, self->named("did not finish its handshake within " +
                                                  std::to_string(self->timeout_.count()) + "ms"));
}

}  // namespace worker
