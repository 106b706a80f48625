// One client connection to an HTTP listener, from accept to close: request
// heads, keep-alive and pipelining, the request-head and idle timeouts,
// drain, error responses, and the lingering close. Each request is an
// HttpExchange (http_exchange.h). See the state table at the top of
// http_connection.cpp.
#pragma once

#include <event2/bufferevent.h>

#include <chrono>
#include <memory>

#include "common/address.h"
#include "common/http_parser.h"
#include "common/libevent_handles.h"
#include "worker/client_session.h"
#include "worker/http_exchange.h"
#include "worker/tunnel_start.h"
#include "worker/worker_context.h"

namespace worker {

class HttpConnection final : public ClientSession, public HttpExchange::Owner {
  public:
    // Serves the accepted connection `transport` (plain or TLS) as a session
    // owned by the worker's session list.
    static void start(WorkerContext& context, const common::ListenConfig& listener,
                      common::BufferEventPtr transport, const common::SocketAddress& client);

    // The worker began draining: an idle keep-alive connection closes soon,
    // a busy one closes after its current response.
    void on_drain() override;

  private:
    enum class State {
        kReadingHead,  // waiting for (more of) a request head
        kExchange,     // a request in flight (exchange_)
        kTunnel,       // CONNECT established: tunnel_ has the client
        kClosing,      // flushing our last bytes, then (maybe) lingering
    };

    HttpConnection(WorkerContext& context, const common::ListenConfig& listener,
                   common::BufferEventPtr transport, const common::SocketAddress& client);

    bool ready() const override;
    void serve() override;

    // HttpExchange::Owner
    bufferevent* client() override { return client_.get(); }
    bool client_eof() const override { return no_more_requests(); }
    void on_exchange_tunnel(common::BufferEventPtr upstream, ExchangeRecord record,
                            Admission admission) override;
    void on_exchange_complete() override;
    void on_exchange_refused(const Refusal& refusal, bool close) override;
    void on_exchange_aborted() override;
    void on_exchange_lost_client() override;
    const KnownCredentials* known_credentials() const override { return known_credentials_.get(); }
    void remember_credentials(std::string field, const Account& account) override;

    void on_close() override;
    void read_request_head();
    void read_first_bytes();
    std::unique_ptr<HttpExchange> new_exchange();
    void record_partial_head();
    void respond_error(const Refusal& refusal, bool close);
    void reset_for_next_request();
    void retire_exchange();
    void arm_request_timer();
    void close_after_flush();
    bool must_linger() const;
    bool no_more_requests() const;
    void linger();

    static void on_client_read(bufferevent* bev, void* arg) noexcept;
    static void on_client_write(bufferevent* bev, void* arg) noexcept;
    static void on_client_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_request_timer(evutil_socket_t, short, void* arg) noexcept;
    static void on_linger_timer(evutil_socket_t, short, void* arg) noexcept;

    const common::LimitsConfig& limits_;
    const common::http::Limits parse_limits_;  // derived from limits_ once
    common::BufferEventPtr client_;
    // Waiting for a request head: header_timeout once a byte of it came,
    // idle_timeout between requests (shortened while draining).
    common::EventPtr request_timer_;
    common::EventPtr linger_timer_;  // the lingering close's limit, made when it begins
    std::unique_ptr<HttpExchange> exchange_;
    std::unique_ptr<OpenTunnel> tunnel_;  // kTunnel
    // Only on authenticated connections: a pointer's weight on the others.
    std::unique_ptr<KnownCredentials> known_credentials_;
    State state_ = State::kReadingHead;
    bool first_request_ = true;
    bool timer_is_idle_ = false;
    std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::now();
    bool client_eof_ = false;
    bool shut_down_ = false;  // kClosing: SHUT_WR sent, lingering
};

}  // namespace worker
