// The SOCKS session.
//
//   state        event                                   next
//   -----------  --------------------------------------  ---------------------------
//   kGreeting    SOCKS5 greeting offering no-auth        reply 05 00 -> kRequest
//   kGreeting    SOCKS5 greeting without no-auth         reply 05 FF -> kClosing
//   kGreeting    SOCKS4/4a CONNECT request               kConnecting
//   kRequest     SOCKS5 CONNECT request                  kConnecting
//   kGreeting/   malformed, BIND, UDP ASSOCIATE,         failure reply -> kClosing
//   kRequest     port not in connect_ports
//   any before   header_timeout                          closed
//   kTunnel
//   kConnecting  connected                               success reply with BND -> kTunnel
//   kConnecting  resolve/deny/refuse/timeout             failure reply -> kClosing
//   kTunnel      either side ends, error, idle timeout   destroyed
//   kClosing     reply flushed                           destroyed
#include "worker/socks_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

#include "common/channel.h"
#include "common/log.h"
#include "common/timeval.h"
#include "common/uri.h"
#include "worker/transport.h"

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

Refusal protocol_refusal(const std::string& detail, uint8_t socks_reply) {
    return Refusal{400, socks_reply, detail, "http_request_error", channel::kErrClientProtocol};
}

}  // namespace

void SocksSession::start(WorkerContext& context, common::BufferEventPtr transport,
                         const common::SocketAddress& client) {
    new SocksSession(context, std::move(transport), client);  // owns itself
}

SocksSession::SocksSession(WorkerContext& context, common::BufferEventPtr client,
                           const common::SocketAddress& address)
    : ClientSession(context), client_(std::move(client)), client_address_(address.to_string()) {
    timer_.reset(event_new(context_.base, -1, 0, on_timeout, this));
    timeval handshake = to_timeval(context_.config->limits.header_timeout);
    event_add(timer_.get(), &handshake);
    bufferevent_setcb(client_.get(), on_read, on_write, on_event, this);
    // No SOCKS message is longer than this; a client can't make us buffer more.
    bufferevent_setwatermark(client_.get(), EV_READ, 0, socks::kMaxMessageSize);
    bufferevent_enable(client_.get(), EV_READ | EV_WRITE);
}

SocksSession::~SocksSession() {
    tunnel_.reset();
    connect_.reset();
    client_.reset();
    timer_.reset();
}

void SocksSession::read_handshake() {
    evbuffer* input = bufferevent_get_input(client_.get());
    while (state_ == State::kGreeting || state_ == State::kRequest) {
        size_t length = std::min(evbuffer_get_length(input), socks::kMaxMessageSize);
        if (length == 0) return;
        const char* data =
            reinterpret_cast<const char*>(evbuffer_pullup(input, static_cast<ev_ssize_t>(length)));
        std::string_view view(data, length);
        bool progressed =
            state_ == State::kGreeting ? read_greeting(view) : read_socks5_request(view);
        if (!progressed) return;
    }
}

bool SocksSession::read_greeting(std::string_view input) {
    auto version = socks::detect_version(input);
    if (version.status == socks::ParseStatus::kError) {
        // Not SOCKS at all: there is no reply format to answer in.
        reason_ = socks::describe(version.error);
        context_.counters.errors[channel::kErrClientProtocol]++;
        LOG_INFO("client %s: %s", client_address_.c_str(), reason_.c_str());
        close_after_flush();
        return false;
    }
    if (version.message == socks::Version::kSocks4) {
        socks4_ = true;
        return read_socks4_request(input);
    }
    auto greeting = socks::parse_greeting(input);
    if (greeting.status == socks::ParseStatus::kNeedMore) return false;
    // A malformed greeting has no REP to answer with: it gets "no acceptable
    // methods", like a greeting without no-auth.
    uint8_t method = greeting.status == socks::ParseStatus::kError
                         ? socks::kMethodNoAcceptable
                         : socks::choose_method(greeting.message, false);
    if (greeting.status == socks::ParseStatus::kComplete) {
        evbuffer_drain(bufferevent_get_input(client_.get()), greeting.consumed);
    }
    std::string reply;
    socks::encode_method_selection(method, reply);
    send(reply);
    if (method == socks::kMethodNoAcceptable) {
        reason_ = greeting.status == socks::ParseStatus::kError
                      ? socks::describe(greeting.error)
                      : "no acceptable SOCKS5 authentication method offered";
        context_.counters.errors[channel::kErrClientProtocol]++;
        log_session(400, 0, 0);
        close_after_flush();
        return false;
    }
    state_ = State::kRequest;
    return true;
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
// CONNECT, else their destination goes on to the shared checks. Returns
// false: the handshake is over either way (or needs more bytes).
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
    // The request's views point into the input: copy before draining it.
    Target target = target_of(request.message.destination);
    evbuffer_drain(bufferevent_get_input(client_.get()), request.consumed);
    handle_connect(target);
    return false;
}

SocksSession::Target SocksSession::target_of(const socks::Destination& destination) {
    if (destination.is_name()) return {std::string(destination.host), destination.port, true};
    return {destination.address.host_string(), destination.port, false};
}

// The destination goes through the same checks as an HTTP CONNECT: host
// name rules, connect_ports, then (in the connector) the dialled address.
void SocksSession::handle_connect(const Target& destination) {
    context_.counters.requests++;
    const std::string& host = destination.host;
    target_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
              std::to_string(destination.port);
    std::string error;
    if (destination.is_name && !common::valid_host_name(host, error)) {
        fail(Refusal{400, socks::kRepNotAllowed, error, "http_request_error",
                     channel::kErrClientProtocol});
        return;
    }
    if (auto refusal = check_tunnel_port(context_.config->acl, destination.port)) {
        fail(*refusal);
        return;
    }
    state_ = State::kConnecting;
    event_del(timer_.get());  // connect_timeout and dns_timeout take over
    connect_ = std::make_unique<UpstreamConnect>(context_.base, *context_.resolver,
                                                 context_.connect_policy);
    connect_->start(host, destination.port,
                    [this](ConnectResult&& result) { on_connected(std::move(result)); });
}

void SocksSession::on_connected(ConnectResult&& result) {
    if (result.error != ConnectError::kNone) {
        fail(refusal_for(result.error, result.detail));
        return;
    }
    upstream_address_ = result.peer.to_string();
    // BND.ADDR/BND.PORT: the address our upstream socket is bound to.
    common::SocketAddress bound = local_address(result.connection.get());
    std::string reply;
    if (socks4_) {
        socks::encode_socks4_reply(true, bound, reply);
    } else {
        socks::encode_reply(socks::kRepSucceeded, bound, reply);
    }
    send(reply);
    start_tunnel(std::move(result.connection));
}

void SocksSession::start_tunnel(common::BufferEventPtr upstream) {
    state_ = State::kTunnel;
    context_.counters.tunnels++;
    event_del(timer_.get());
    const common::LimitsConfig& limits = context_.config->limits;
    tunnel_ = std::make_unique<Tunnel>(
        context_.base, context_.pipes, std::move(client_), std::move(upstream), limits.buffer_size,
        limits.tunnel_idle_timeout, [this](const TunnelTotals& totals) {
            count_tunnel(totals);
            if (std::string_view(totals.end_reason) != "closed") reason_ = totals.end_reason;
            log_session(200, totals.client_to_upstream, totals.upstream_to_client);
            destroy();
        });
    tunnel_->start();
}

void SocksSession::fail(const Refusal& refusal) {
    context_.counters.errors[refusal.error_class]++;
    reason_ = refusal.detail;
    LOG_INFO("SOCKS%s request refused (%s), client: %s, target: %s", socks4_ ? "4" : "5",
             refusal.detail.c_str(), client_address_.c_str(),
             target_.empty() ? "-" : target_.c_str());
    std::string reply;
    if (socks4_) {
        socks::encode_socks4_reply(false, reply);
    } else {
        socks::encode_reply(refusal.socks_reply, reply);
    }
    send(reply);
    log_session(refusal.http_status, 0, 0);
    close_after_flush();
}

void SocksSession::send(const std::string& bytes) {
    bufferevent_write(client_.get(), bytes.data(), bytes.size());
    context_.counters.bytes_out += bytes.size();
}

void SocksSession::close_after_flush() {
    state_ = State::kClosing;
    connect_.reset();
    bufferevent_disable(client_.get(), EV_READ);
    bufferevent_trigger(client_.get(), EV_WRITE,
                        BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void SocksSession::log_session(int status, uint64_t bytes_in, uint64_t bytes_out) {
    if (!context_.access_log->enabled()) return;
    AccessRecord record;
    record.client = client_address_;
    record.method = socks4_ ? "SOCKS4" : "SOCKS5";
    record.target = target_;
    record.version_minor = -1;
    record.status = status;
    record.bytes_from_client = bytes_in;
    record.bytes_to_client = bytes_out;
    record.duration = std::chrono::steady_clock::now() - started_;
    record.upstream = upstream_address_;
    record.reason = reason_;
    context_.access_log->write(record);
}

void SocksSession::on_read(bufferevent*, void* arg) noexcept {
    auto* self = static_cast<SocksSession*>(arg);
    if (self->state_ == State::kGreeting || self->state_ == State::kRequest) {
        self->read_handshake();
    }
    // kConnecting: bytes sent early stay buffered for the tunnel.
}

void SocksSession::on_write(bufferevent* bev, void* arg) noexcept {
    auto* self = static_cast<SocksSession*>(arg);
    if (self->state_ == State::kClosing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        self->destroy();
    }
}

void SocksSession::on_event(bufferevent* bev, short events, void* arg) noexcept {
    auto* self = static_cast<SocksSession*>(arg);
    if (events & BEV_EVENT_CONNECTED) return;  // a TLS handshake completed
    if (events & BEV_EVENT_ERROR) self->note_transport_error(bev, self->client_address_);
    self->destroy();
}

void SocksSession::on_timeout(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<SocksSession*>(arg);
    self->context_.counters.errors[channel::kErrTimeout]++;
    LOG_INFO("client %s: SOCKS handshake timed out", self->client_address_.c_str());
    self->destroy();
}

}  // namespace worker
