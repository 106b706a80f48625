// One client connection to an HTTP listener, from accept to close. See the
// state table at the top of session.cpp.
#pragma once

#include <event2/bufferevent.h>

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "common/address.h"
#include "common/http_parser.h"
#include "common/libevent_handles.h"
#include "common/uri.h"
#include "worker/client_session.h"
#include "worker/http_forwarding.h"
#include "worker/socket_relay.h"
#include "worker/tunnel.h"
#include "worker/upstream_connector.h"
#include "worker/worker_context.h"

namespace worker {

class HttpSession final : public ClientSession {
  public:
    // Serves the accepted connection `transport` (plain or TLS). The session
    // deletes itself when the connection ends.
    static void start(WorkerContext& context, common::BufferEventPtr transport,
                      const common::SocketAddress& client);

    // The worker began draining: an idle keep-alive connection closes now,
    // a busy one closes after its current response.
    void on_drain() override;

  private:
    enum class State {
        kReadingHead,  // waiting for (more of) a request head
        kConnecting,   // resolving and dialling the upstream
        kForwarding,   // request body upstream, response back, concurrently
        kTunnel,       // CONNECT established: bytes both ways
        kClosing,      // flushing our last bytes, then a lingering close
    };

    // What one request needs to remember until its response is done.
    struct Exchange {
        std::chrono::steady_clock::time_point started;
        std::string method;
        std::string target;
        int version_minor = 1;
        bool connect = false;
        bool client_keep_alive = false;
        common::ProxyTarget destination;
        std::string pool_key;
        std::string upstream_head;  // kept until the first response byte, for a retry
        bool reused_upstream = false;
        common::http::BodyFraming request_framing;
        uint64_t request_left = 0;  // Content-Length bytes still to forward
        common::http::ChunkedDecoder request_chunks;
        bool request_done = false;
        bool response_started = false;  // response head parsed
        common::http::BodyFraming response_framing;
        OutgoingBody client_body = OutgoingBody::kNone;
        uint64_t response_left = 0;
        common::http::ChunkedDecoder response_chunks;
        bool response_keep_alive = false;  // keep the client connection afterwards
        bool upstream_reusable = false;
        int status = 0;
        uint64_t bytes_from_client = 0;
        uint64_t bytes_to_client = 0;
        common::SocketAddress upstream_peer;
        std::string upstream_address;
        std::string reason;
        bool logged = false;
    };

    // A refusal decided while the request head is still parsed, sent once
    // the head's bytes are consumed.
    struct PendingError {
        int status = 0;
        std::string detail;
        const char* type = "";
        uint32_t error_class = 0;
        bool close = true;
    };

    HttpSession(WorkerContext& context, common::BufferEventPtr client,
                const common::SocketAddress& address);
    ~HttpSession() override;

    // Request side.
    void read_request_head();
    void handle_request(const common::http::RequestHead& head);
    // Each returns false after recording the refusal with refuse().
    bool prepare_forward(const common::http::RequestHead& head);
    bool prepare_connect(const common::http::RequestHead& head);
    bool refuse(int status, std::string detail, const char* type, uint32_t error_class, bool close);
    void connect_upstream();
    void on_connected(ConnectResult&& result);
    void start_forwarding();
    void pump_request_body();
    // Response side.
    void read_response();
    void read_response_head();
    bool relay_interim(const common::http::ResponseHead& head);
    bool start_response(const common::http::ResponseHead& head);
    void pump_response_body();
    void send_staged_head();
    // A large body between plain sockets moves in the kernel from here on.
    bool start_body_relay();
    void on_body_relay_end(SocketRelay::End end, int error);
    void stop_body_relay();
    void check_body_relay();
    void finish_exchange();
    void start_tunnel();
    // Endings.
    void respond_error(int status, const std::string& detail, const char* error_type,
                       uint32_t error_class, bool close);
    void abort_exchange(const char* reason, uint32_t error_class);
    void close_after_flush();
    bool must_linger() const;
    void log_exchange();
    void reset_for_next_request();
    void arm_head_timer();
    // The upstream failed: 502 before the response head, a close after it.
    // `connection_broken` (EOF, reset) allows one retry on a reused connection.
    void upstream_failed(const std::string& what, bool connection_broken);
    void upstream_timed_out();
    void upstream_closed(short events);
    void count_moved(bufferevent* from, size_t n);

    // Moves up to `limit` bytes from `from` to `to` and applies backpressure.
    size_t move_body(bufferevent* from, bufferevent* to, uint64_t limit);
    // Chunked: decode from `from`, re-encode (or not) into `to`.
    bool move_chunked(bufferevent* from, bufferevent* to, common::http::ChunkedDecoder& decoder,
                      bool reencode, bool& done);

    static void on_client_read(bufferevent* bev, void* arg) noexcept;
    static void on_client_write(bufferevent* bev, void* arg) noexcept;
    static void on_client_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_upstream_read(bufferevent* bev, void* arg) noexcept;
    static void on_upstream_write(bufferevent* bev, void* arg) noexcept;
    static void on_upstream_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_timer(evutil_socket_t, short, void* arg) noexcept;

    const common::LimitsConfig& limits_;
    const common::http::Limits parse_limits_;  // derived from limits_ once
    common::BufferEventPtr client_;
    common::BufferEventPtr upstream_;
    common::EventPtr timer_;
    std::unique_ptr<UpstreamConnect> connect_;
    std::unique_ptr<Tunnel> tunnel_;
    std::unique_ptr<SocketRelay> body_relay_;  // upstream -> client, response body
    std::unique_ptr<Exchange> exchange_;
    PendingError pending_error_;
    std::string client_address_;
    State state_ = State::kReadingHead;
    bool first_request_ = true;
    bool timer_is_idle_ = false;
    std::chrono::steady_clock::time_point idle_since_ =
        std::chrono::steady_clock::now();  // the head timer is idle_timeout, not header_timeout
    bool client_eof_ = false;
    bool retried_ = false;
    bool shut_down_ = false;  // SHUT_WR sent during a lingering close
};

}  // namespace worker
