// The SOCKS session.
//
//   state        event                                   next
//   -----------  --------------------------------------  ---------------------------
//   kGreeting    SOCKS5 greeting offering no-auth        reply 05 00 -> kRequest
//                (listener auth = none)
//   kGreeting    SOCKS5 greeting offering user/password  reply 05 02 -> kCredentials
//                (listener auth = password)
//   kGreeting    SOCKS5 greeting without that method     reply 05 FF -> kClosing
//   kCredentials RFC 1929 username/password              kAuthenticating
//   kCredentials malformed                               reply 01 01 -> kClosing
//   kAuthenti-   authenticated                           reply 01 00 -> kRequest
//   cating       refused (wrong, unknown, malformed      reply 01 01 -> kClosing
//                user-name parameters, busy)
//   kGreeting    not SOCKS at all                        kClosing (no reply)
//   kGreeting    SOCKS4/4a CONNECT request               kConnecting
//   kGreeting    SOCKS4/4a on an auth = password         reply 5B -> kClosing
//                listener (it cannot carry a password)
//   kRequest     SOCKS5 CONNECT request                  kConnecting
//   kGreeting/   malformed, BIND, UDP ASSOCIATE,         failure reply -> kClosing
//   kRequest     bad host name
//   kGreeting..  header_timeout                          closed
//   kRequest
//   kConnecting  pipeline: connected                     success reply with BND -> kTunnel
//   kConnecting  pipeline: refused (ports, loop, DNS,    failure reply -> kClosing
//                private address, connect error)
//   kConnecting  client half-close                       kConnecting (the tunnel passes
//                                                        the EOF on after the payload)
//   kTunnel      either side ends, error, idle timeout   closed
//   kClosing     reply flushed                           closed
#include "worker/socks_session.h"

#include <sys/socket.h>

#include <algorithm>

#include "common/channel.h"
#include "common/log.h"
#include "common/timeval.h"
#include "common/uri.h"
#include "worker/policy.h"
#include "worker/refusal.h"
#include "worker/tunnel_start.h"
#include "worker/worker_context.h"

namespace worker {

using common::to_timeval;

namespace socks = common::socks;
namespace channel = common::channel;

namespace {

common::SocketAddress local_address(bufferevent* bev) {
    sockaddr_storage storage{};
    socklen_t length = sizeof(storage);
    if (getsockname(bufferevent_getfd(bev), reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
        return {};
    }
    return common::SocketAddress::from(reinterpret_cast<sockaddr*>(&storage), length);
}

// A request SOCKS could not read gets the reply code its parser chose.
Refusal protocol_refusal(const std::string& detail, uint8_t socks_reply) {
    Refusal refusal = make_refusal(RefusalCause::kBadRequest, detail);
    refusal.socks_reply = socks_reply;
    return refusal;
}

// The destination as the pipeline takes it. The request's views point into
// the input buffer: everything is copied.
common::ProxyTarget target_of(const socks::Destination& destination) {
    common::ProxyTarget target;
    target.host =
        destination.is_name() ? std::string(destination.host) : destination.address.host_string();
    target.port = destination.port;
    target.ipv6_literal = !destination.is_name() && destination.address.family() == AF_INET6;
    return target;
}

}  // namespace

void SocksSession::start(WorkerContext& context, const common::ListenConfig& listener,
                         common::BufferEventPtr transport, const common::SocketAddress& client) {
    context.sessions->open(std::unique_ptr<ClientSession>(
        new SocksSession(context, listener, std::move(transport), client)));
}

bool SocksSession::ready() const {
    return handshake_timer_ != nullptr;
}

SocksSession::SocksSession(WorkerContext& context, const common::ListenConfig& listener,
                           common::BufferEventPtr transport, const common::SocketAddress& client)
    : ClientSession(context, listener, client), client_(std::move(transport)), pipeline_(context) {
    record_->client = client_text_;
    record_->listener = listener.name;
    record_->method = "SOCKS5";
    record_->version_minor = kNotHttp;
    handshake_timer_.reset(event_new(context_.base, -1, 0, on_handshake_timeout, this));
}

void SocksSession::serve() {
    timeval handshake = to_timeval(context_.config->limits.header_timeout);
    event_add(handshake_timer_.get(), &handshake);
    bufferevent_setcb(client_.get(), on_read, on_write, on_event, this);
    // No SOCKS message is longer than this; a client can't make us buffer more.
    bufferevent_setwatermark(client_.get(), EV_READ, 0, socks::kMaxMessageSize);
    bufferevent_enable(client_.get(), EV_READ | EV_WRITE);
}

// A verification in flight must not call back into a closed session.
void SocksSession::on_close() {
    if (auth_ticket_ != 0) context_.authenticator->cancel(auth_ticket_);
    auth_ticket_ = 0;
}

bool SocksSession::reading_handshake() const {
    return state_ == State::kGreeting || state_ == State::kCredentials || state_ == State::kRequest;
}

void SocksSession::read_handshake() {
    evbuffer* input = bufferevent_get_input(client_.get());
    while (reading_handshake()) {
        size_t length = std::min(evbuffer_get_length(input), socks::kMaxMessageSize);
        if (length == 0) return;
        const char* data =
            reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(length)));
        std::string_view view(data, length);
        bool progressed = state_ == State::kGreeting      ? read_greeting(view)
                          : state_ == State::kCredentials ? read_credentials(view)
                                                          : read_socks5_request(view);
        if (!progressed) return;
    }
}

// Not for a client outside allow_clients: the pipeline refuses it whatever
// it presents, so its password is never verified (no guessing from there).
bool SocksSession::password_required() const {
    return listener_.auth == common::ListenAuth::kPassword &&
           client_allowed(context_.config->acl, client_address_);
}

bool SocksSession::read_greeting(std::string_view input) {
    auto version = socks::detect_version(input);
    if (version.status == socks::ParseStatus::kError) {
        // Not SOCKS at all: there is no reply format to answer in, and no
        // request to log.
        context_.counters.errors[channel::kErrClientProtocol]++;
        LOG_INFO("client %s: %s", client_text_.c_str(), socks::describe(version.error));
        close_after_flush();
        return false;
    }
    if (version.message == socks::Version::kSocks4) {
        socks4_ = true;
        record_->method = "SOCKS4";
        if (password_required()) {
            fail(auth_refusal("SOCKS4 cannot carry a password: use SOCKS5"));
            return false;
        }
        return read_socks4_request(input);
    }
    auto greeting = socks::parse_greeting(input);
    if (greeting.status == socks::ParseStatus::kNeedMore) return false;
    // A malformed greeting has no REP to answer with: it gets "no acceptable
    // methods", like a greeting without no-auth.
    uint8_t method = greeting.status == socks::ParseStatus::kError
                         ? socks::kMethodNoAcceptable
                         : socks::choose_method(greeting.message, password_required());
    if (greeting.status == socks::ParseStatus::kComplete) {
        evbuffer_drain(bufferevent_get_input(client_.get()), greeting.consumed);
    }
    std::string reply;
    socks::encode_method_selection(method, reply);
    send(reply);
    if (method == socks::kMethodNoAcceptable) {
        refuse_greeting(
            greeting.status == socks::ParseStatus::kError ? socks::describe(greeting.error)
            : password_required() ? "no username/password authentication offered (RFC 1929)"
                                  : "no acceptable SOCKS5 authentication method offered");
        return false;
    }
    state_ = method == socks::kMethodUsernamePassword ? State::kCredentials : State::kRequest;
    return true;
}

// After "no acceptable methods" (already sent): a client outside
// allow_clients is logged as refused for that, as the pipeline would have
// refused its request (a client offering only a password never gets that
// far); any other is a protocol error.
void SocksSession::refuse_greeting(const std::string& why) {
    if (std::optional<Refusal> denied = check_client(context_.config->acl, client_address_)) {
        LOG_INFO("SOCKS5 greeting refused (%s), client: %s", denied->detail.c_str(),
                 client_text_.c_str());
        record_->refuse(*denied);
    } else {
        record_->status = 400;
        record_->fail(channel::kErrClientProtocol, why);
    }
    record_->finish(context_);
    close_after_flush();
}

// RFC 1929: the answer to the credentials comes before the request, so
// they are checked here, not by the pipeline (which then finds the intent
// authenticated).
bool SocksSession::read_credentials(std::string_view input) {
    auto credentials = socks::parse_credentials(input);
    if (credentials.status == socks::ParseStatus::kNeedMore) return false;
    if (credentials.status == socks::ParseStatus::kError) {
        refuse_credentials(auth_refusal(socks::describe(credentials.error)));
        return false;
    }
    std::string user(credentials.message.username);
    std::string password(credentials.message.password);
    evbuffer_drain(bufferevent_get_input(client_.get()), credentials.consumed);
    if (context_.authenticator == nullptr) {
        refuse_credentials(make_refusal(RefusalCause::kInternal, "authentication is unavailable"));
        return false;
    }
    state_ = State::kAuthenticating;
    auth_ticket_ = context_.authenticator->check(
        user, password, client_address_,
        [this](AuthOutcome&& outcome) { on_authenticated(std::move(outcome)); });
    return false;  // on_authenticated() goes on
}

void SocksSession::on_authenticated(AuthOutcome&& outcome) {
    auth_ticket_ = 0;
    if (outcome.refusal) {
        refuse_credentials(*outcome.refusal);
        return;
    }
    record_->user = outcome.account->name;
    account_ = std::move(outcome.account);
    std::string reply;
    socks::encode_auth_status(true, reply);
    send(reply);
    state_ = State::kRequest;
    read_handshake();  // a request sent right behind the credentials
}

// RFC 1929 §2: a failure status, then the server closes.
void SocksSession::refuse_credentials(const Refusal& refusal) {
    std::string reply;
    socks::encode_auth_status(false, reply);
    send(reply);
    record_->refuse(refusal);
    record_->finish(context_);
    close_after_flush();
}

bool SocksSession::read_socks5_request(std::string_view input) {
    auto request = socks::parse_request(input);
    return take_request(request, socks::reply_code(request.error));
}

bool SocksSession::read_socks4_request(std::string_view input) {
    // SOCKS4 has one failure reply (5B) whatever the cause.
    return take_request(socks::parse_socks4_request(input), socks::kRepGeneralFailure);
}

// SOCKS5 and SOCKS4 requests end the same way: refused when malformed or not
// CONNECT, else their destination goes on to the pipeline. Returns false:
// the handshake is over either way (or needs more bytes).
template <typename Parsed>
bool SocksSession::take_request(const Parsed& request, uint8_t malformed_reply) {
    if (request.status == socks::ParseStatus::kNeedMore) return false;
    if (request.status == socks::ParseStatus::kError) {
        fail(protocol_refusal(socks::describe(request.error), malformed_reply));
        return false;
    }
    if (request.message.command != socks::Command::kConnect) {
        fail(protocol_refusal("only the CONNECT command is supported",
                              socks::kRepCommandNotSupported));
        return false;
    }
    common::ProxyTarget destination = target_of(request.message.destination);
    bool is_name = request.message.destination.is_name();
    evbuffer_drain(bufferevent_get_input(client_.get()), request.consumed);
    context_.counters.requests++;
    record_->target = destination.authority();
    std::string error;
    if (is_name && !common::valid_host_name(destination.host, error)) {
        fail(protocol_refusal(error, socks::kRepNotAllowed));
        return false;
    }
    state_ = State::kConnecting;
    event_del(handshake_timer_.get());  // connect_timeout and dns_timeout take over
    intent_ = std::make_unique<Intent>();
    intent_->listener = &listener_;
    intent_->client = &client_address_;
    intent_->destination = std::move(destination);
    intent_->mode = Intent::Mode::kTunnel;
    intent_->account = std::move(account_);
    pipeline_.start(*intent_, false,
                    [this](PipelineResult&& result) { on_pipeline_done(std::move(result)); });
    return false;
}

void SocksSession::on_pipeline_done(PipelineResult&& result) {
    if (closed()) return;
    intent_.reset();  // the pipeline is done with it; a held tunnel keeps less
    if (result.route) record_->route = result.route->name;
    if (result.refusal) {
        fail(*result.refusal);
        return;
    }
    record_->upstream = result.peer.to_string();
    // BND.ADDR/BND.PORT: the address our upstream socket is bound to.
    common::SocketAddress bound = local_address(result.upstream.get());
    std::string reply;
    if (socks4_) {
        socks::encode_socks4_reply(true, bound, reply);
    } else {
        socks::encode_reply(socks::kRepSucceeded, bound, reply);
    }
    send(reply);
    state_ = State::kTunnel;
    ExchangeRecord record = std::move(*record_);
    record_.reset();
    tunnel_ =
        OpenTunnel::start(context_, std::move(client_), std::move(result.upstream),
                          std::move(record), std::move(result.admission), [this] { close(); });
}

void SocksSession::fail(const Refusal& refusal) {
    LOG_INFO("SOCKS%s request refused (%s), client: %s, target: %s", socks4_ ? "4" : "5",
             refusal.detail.c_str(), client_text_.c_str(),
             record_->target.empty() ? "-" : record_->target.c_str());
    std::string reply;
    if (socks4_) {
        socks::encode_socks4_reply(false, reply);
    } else {
        socks::encode_reply(refusal.socks_reply, reply);
    }
    send(reply);
    record_->refuse(refusal);
    record_->finish(context_);
    close_after_flush();
}

void SocksSession::send(const std::string& bytes) {
    bufferevent_write(client_.get(), bytes.data(), bytes.size());
    context_.counters.bytes_out += bytes.size();
}

void SocksSession::close_after_flush() {
    state_ = State::kClosing;
    bufferevent_disable(client_.get(), EV_READ);
    bufferevent_trigger(client_.get(), EV_WRITE,
                        BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void SocksSession::on_read(bufferevent*, void* arg) noexcept {
    SocksSession* self = live<SocksSession>(arg);
    if (self && self->reading_handshake()) self->read_handshake();
    // kAuthenticating, kConnecting: bytes sent early stay buffered for the
    // request or the tunnel.
}

void SocksSession::on_write(bufferevent* bev, void* arg) noexcept {
    SocksSession* self = live<SocksSession>(arg);
    if (self && self->state_ == State::kClosing &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        self->close();
    }
}

void SocksSession::on_event(bufferevent* bev, short events, void* arg) noexcept {
    SocksSession* self = live<SocksSession>(arg);
    if (self == nullptr || (events & BEV_EVENT_CONNECTED)) return;  // a TLS handshake completed
    if (events & BEV_EVENT_ERROR) self->note_transport_error(bev);
    if (events == (BEV_EVENT_EOF | BEV_EVENT_READING) && self->state_ == State::kConnecting) {
        // A half-close behind a complete request ends the client's sending,
        // not the request: the tunnel reads the EOF again once it runs and
        // passes it on after the bytes sent before it.
        return;
    }
    self->close();
}

void SocksSession::on_handshake_timeout(evutil_socket_t, short, void* arg) noexcept {
    SocksSession* self = live<SocksSession>(arg);
    if (self == nullptr) return;
    self->context_.counters.errors[channel::kErrTimeout]++;
    LOG_INFO("client %s: SOCKS handshake timed out", self->client_text_.c_str());
    self->close();
}

}  // namespace worker
