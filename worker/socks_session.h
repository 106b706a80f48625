// One client connection to a SOCKS listener: SOCKS5 (RFC 1928, no-auth) or
// SOCKS4/4a, told apart by the first byte. See the state table at the top of
// socks_session.cpp. The handshake is SOCKS's own; from the connect request
// on it is the request pipeline (request_pipeline.h) and the tunnel start
// (tunnel_start.h) that an HTTP CONNECT uses too.
#pragma once

#include <event2/bufferevent.h>

#include <memory>
#include <optional>
#include <string>

#include "common/address.h"
#include "common/libevent_handles.h"
#include "common/socks_parser.h"
#include "worker/authenticator.h"
#include "worker/client_session.h"
#include "worker/exchange_record.h"
#include "worker/request_pipeline.h"
#include "worker/tunnel_start.h"

namespace worker {

class SocksSession final : public ClientSession {
  public:
    // Serves the accepted connection `transport` (plain or TLS) as a session
    // owned by the worker's session list.
    static void start(WorkerContext& context, const common::ListenConfig& listener,
                      common::BufferEventPtr transport, const common::SocketAddress& client);

    // Handshakes in progress finish; established tunnels run to their end.
    void on_drain() override {}

  private:
    enum class State {
        kGreeting,        // first byte decides SOCKS4 or SOCKS5
        kCredentials,     // SOCKS5: username/password chosen, waiting for them (RFC 1929)
        kAuthenticating,  // the authenticator verifies them
        kRequest,         // SOCKS5: method chosen (and passed), waiting for the request
        kConnecting,      // in the request pipeline
        kTunnel,          // relaying bytes
        kClosing,         // flushing a failure reply, then closing
    };

    SocksSession(WorkerContext& context, const common::ListenConfig& listener,
                 common::BufferEventPtr transport, const common::SocketAddress& client);

    bool ready() const override;
    void serve() override;
    void on_close() override;
    bool reading_handshake() const;
    bool password_required() const;
    void refuse_credentials(const Refusal& refusal);
    void read_handshake();
    // Each returns false when it needs more bytes or the session ended.
    void refuse_greeting(const std::string& why);
    bool read_greeting(std::string_view input);
    bool read_credentials(std::string_view input);
    void on_authenticated(AuthOutcome&& outcome);
    bool read_socks5_request(std::string_view input);
    bool read_socks4_request(std::string_view input);
    template <typename Parsed>
    bool take_request(const Parsed& request, uint8_t malformed_reply);
    void handle_connect(const common::socks::Destination& destination);
    void on_pipeline_done(PipelineResult&& result);
    void fail(const Refusal& refusal);
    void send(const std::string& bytes);
    void close_after_flush();

    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_write(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_handshake_timeout(evutil_socket_t, short, void* arg) noexcept;

    common::BufferEventPtr client_;
    common::EventPtr handshake_timer_;
    RequestPipeline pipeline_;
    uint64_t auth_ticket_ = 0;        // a verification in flight (authenticator.h)
    std::optional<Account> account_;  // authenticated (RFC 1929)
    std::unique_ptr<Intent> intent_;  // while in the pipeline
    // Until the tunnel runs; then the OpenTunnel keeps it.
    std::unique_ptr<ExchangeRecord> record_ = std::make_unique<ExchangeRecord>();
    std::unique_ptr<OpenTunnel> tunnel_;
    State state_ = State::kGreeting;
    bool socks4_ = false;
};

}  // namespace worker
