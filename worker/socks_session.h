// One client connection to a SOCKS listener: SOCKS5 (RFC 1928, no-auth) or
// SOCKS4/4a, told apart by the first byte. See the state table at the top of
// socks_session.cpp. Past the handshake it is the same machinery as an HTTP
// CONNECT: the tunnel port policy, the connector (resolver, destination
// checks on the dialled address) and the Tunnel.
#pragma once

#include <event2/bufferevent.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/address.h"
#include "common/libevent_handles.h"
#include "common/socks_parser.h"
#include "worker/client_session.h"
#include "worker/destination_policy.h"
#include "worker/tunnel.h"
#include "worker/upstream_connector.h"

namespace worker {

class SocksSession final : public ClientSession {
  public:
    static void start(WorkerContext& context, common::BufferEventPtr transport,
                      const common::SocketAddress& client);

    // Handshakes in progress finish; established tunnels run to their end.
    void on_drain() override {}

  private:
    enum class State {
        kGreeting,    // first byte decides SOCKS4 or SOCKS5
        kRequest,     // SOCKS5: method chosen, waiting for the request
        kConnecting,  // resolving and dialling
        kTunnel,      // relaying bytes
        kClosing,     // flushing a failure reply, then closing
    };

    SocksSession(WorkerContext& context, common::BufferEventPtr client,
                 const common::SocketAddress& address);
    ~SocksSession() override;

    void read_handshake();
    // Each returns false when it needs more bytes or the session ended.
    bool read_greeting(std::string_view input);
    bool read_socks5_request(std::string_view input);
    bool read_socks4_request(std::string_view input);
    template <typename Parsed>
    bool take_request(const Parsed& request, uint8_t malformed_reply);
    // A destination copied out of the input buffer.
    struct Target {
        std::string host;  // a name, or an address literal without brackets
        uint16_t port = 0;
        bool is_name = false;
    };
    static Target target_of(const common::socks::Destination& destination);
    void handle_connect(const Target& destination);
    void on_connected(ConnectResult&& result);
    void start_tunnel(common::BufferEventPtr upstream);
    void fail(const Refusal& refusal);
    void send(const std::string& bytes);
    void close_after_flush();
    void log_session(int status, uint64_t bytes_in, uint64_t bytes_out);

    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_write(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_timeout(evutil_socket_t, short, void* arg) noexcept;

    common::BufferEventPtr client_;
    common::EventPtr timer_;
    std::unique_ptr<UpstreamConnect> connect_;
    std::unique_ptr<Tunnel> tunnel_;
    std::string client_address_;
    State state_ = State::kGreeting;
    bool socks4_ = false;
    std::string target_;  // "host:port" for the logs
    std::string upstream_address_;
    std::string reason_;
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace worker
