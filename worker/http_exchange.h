// One HTTP request on a client connection (http_connection.h), from its
// parsed head to the end of its response or tunnel: the request pipeline,
// the upstream side, both body pumps, the response framing, the splice
// handover of large bodies, one retry on a stale pooled connection, and
// the exchange record. See the state table at the top of http_exchange.cpp.
//
// The connection owns the client's bufferevent and lends it; the exchange
// tells the connection how it ended through the Owner interface, and is
// retired (deferred_delete.h) by the connection afterwards.
#pragma once

#include <event2/bufferevent.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/http_parser.h"
#include "common/libevent_handles.h"
#include "common/uri.h"
#include "worker/body_pump.h"
#include "worker/deferred_delete.h"
#include "worker/exchange_record.h"
#include "worker/http_forwarding.h"
#include "worker/request_pipeline.h"
#include "worker/socket_relay.h"
#include "worker/upstream_pool.h"
#include "worker/worker_context.h"

namespace worker {

// The parser's head structures are large (room for every field view) and a
// worker is single-threaded, so one of each serves every exchange: a head
// is fully consumed before the callback that parsed it returns.
template <typename Head>
Head& scratch_head() {
    static Head head;
    return head;
}

inline size_t input_length(bufferevent* bev) {
    return evbuffer_get_length(bufferevent_get_input(bev));
}

// What a keep-alive connection last authenticated with: a request carrying
// the same Proxy-Authorization bytes is that account again, without
// decoding them, hashing them for the cache, or looking them up.
struct KnownCredentials {
    std::string field;  // the Proxy-Authorization value, as received
    Account account;
};

class HttpExchange final : public Deferrable {
  public:
    // The connection, as an exchange sees it.
    class Owner {
      public:
        virtual bufferevent* client() = 0;
        // The client half-closed and sent no other request after this one.
        virtual bool client_eof() const = 0;
        // CONNECT established (the 200 is queued): the connection runs the
        // tunnel, with the record and admission it keeps for its life.
        virtual void on_exchange_tunnel(common::BufferEventPtr upstream, ExchangeRecord record,
                                        Admission admission) = 0;
        // The response is complete and the record finished; keep_alive():
        // the connection may take another request.
        virtual void on_exchange_complete() = 0;
        // Refused before any response byte went out: the connection sends
        // an error response (and closes when `close`).
        virtual void on_exchange_refused(const Refusal& refusal, bool close) = 0;
        // Broke after the response head went out: close once flushed.
        virtual void on_exchange_aborted() = 0;
        // The client is gone: close now.
        virtual void on_exchange_lost_client() = 0;
        // The credentials this connection last authenticated with; null
        // before the first.
        virtual const KnownCredentials* known_credentials() const = 0;
        virtual void remember_credentials(std::string field, const Account& account) = 0;

      protected:
        ~Owner() = default;
    };

    HttpExchange(WorkerContext& context, Owner& owner, const common::ListenConfig& listener,
                 const common::SocketAddress& client, const std::string& client_text,
                 const common::http::Limits& parse_limits);
    ~HttpExchange() override;

    // A head the connection could not parse or did not get whole (400,
    // 408, 414, 431): only the record is used, with as much of the request
    // line as `received` holds, so the logs still say what was asked.
    void record_unreadable_head(std::string_view received);
    // Takes a parsed request head and drains it from the client's input.
    void begin(const common::http::RequestHead& head);

    // From the connection's client callbacks.
    void on_client_readable();
    void on_client_drained();
    // Drops the upstream side (connection, pipeline, relay) at once.
    void release_upstream();

    ExchangeRecord& record() { return record_; }
    bool request_done() const { return request_done_; }
    bool client_keep_alive() const { return client_keep_alive_; }
    bool keep_alive() const { return response_keep_alive_; }

  private:
    // Referer and User-Agent into the record, for the combined format.
    void record_header_fields(const common::http::RequestHead& head);
    void read_credentials(const common::http::RequestHead& head);
    // Read the target and framing into intent_; a refusal when unreadable.
    std::optional<Refusal> prepare_forward(const common::http::RequestHead& head);
    std::optional<Refusal> prepare_connect(const common::http::RequestHead& head);
    void run_pipeline(bool may_reuse);
    void on_pipeline_done(PipelineResult&& result);
    void start_forwarding();
    void pump_request_body();
    void read_response();
    void read_response_head();
    bool relay_interim(const common::http::ResponseHead& head);
    // Refuses an unreadable response head: 502, with the error type of
    // a head too big or of a malformed one.
    void refuse_response_head(common::http::ParseError error);
    bool start_response(const common::http::ResponseHead& head);
    void pump_response_body();
    void send_staged_head();
    bool start_body_relay();
    void on_body_relay_end(SocketRelay::End end, int error);
    void stop_body_relay();
    void check_body_relay();
    void finish();
    void open_tunnel();
    // Endings.
    void refuse(const Refusal& refusal, bool close);
    void abort(const char* reason, uint32_t error_class);
    void lose_client(std::string reason);
    void upstream_malformed(RefusalCause cause, const std::string& what);
    void upstream_broke(const std::string& what);
    void upstream_timed_out();
    void upstream_closed(short events);
    BodyPump pump_to_client();
    BodyPump pump_to_upstream();

    void send_request_head(bufferevent* up);
    static void on_upstream_read(bufferevent* bev, void* arg) noexcept;
    static void on_upstream_write(bufferevent* bev, void* arg) noexcept;
    static void on_upstream_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_relay_check(evutil_socket_t, short, void* arg) noexcept;

    WorkerContext& context_;
    Owner& owner_;
    const common::LimitsConfig& limits_;
    const common::http::Limits& parse_limits_;
    ExchangeRecord record_;
    Intent intent_;
    bool connect_ = false;
    // The Proxy-Authorization value, kept until the pipeline authenticated
    // it, for known_credentials(); empty when it matched them already.
    std::string credentials_field_;
    bool client_keep_alive_ = false;
    std::string upstream_head_;  // kept until the first response byte, for a retry
    bool reused_upstream_ = false;
    bool retried_ = false;
    common::http::BodyFraming request_framing_;
    uint64_t request_left_ = 0;  // Content-Length bytes still to forward
    common::http::ChunkedDecoder request_chunks_;
    bool request_done_ = false;
    bool response_started_ = false;  // response head parsed
    int interim_count_ = 0;          // 1xx heads relayed
    size_t interim_bytes_ = 0;
    common::http::BodyFraming response_framing_;
    OutgoingBody client_body_ = OutgoingBody::kNone;
    uint64_t response_left_ = 0;
    common::http::ChunkedDecoder response_chunks_;
    bool response_keep_alive_ = false;
    bool upstream_reusable_ = false;
    std::string pool_key_;
    const Route* route_ = nullptr;  // once the pipeline chose it
    common::SocketAddress upstream_peer_;
    RequestPipeline pipeline_;
    Admission admission_;
    common::BufferEventPtr upstream_;
    // Counts upstream_ in use for pool_key_ (the pool's automatic cap
    // follows it): taken with a forwarding upstream, dropped when it goes
    // back to the pool or closes (release_upstream(), a retry, the end).
    UpstreamPool::InUse upstream_in_use_;
    std::unique_ptr<SocketRelay> body_relay_;  // upstream -> client, response body
    common::EventPtr relay_timer_;             // watches a spliced body for stalls
};

}  // namespace worker
