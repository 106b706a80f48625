// Talking to a parent proxy once the TCP connection to it is up: TLS for an
// https parent, then, when a tunnel is wanted, HTTP CONNECT (http, https) or
// the SOCKS5 handshake (socks5), until the parent says the tunnel is open.
//
//   state          leaves on                        to
//   kTls           TLS handshake done               kConnectAnswer | kSocksMethod | done
//   kConnectAnswer 1xx head                         kConnectAnswer
//                  2xx / 407 / other head           done / kAuth / kRefused
//   kSocksMethod   00 / 02 (we have credentials)    kSocksConnect / kSocksAuth
//                  FF / anything else               kAuth / kProtocol
//   kSocksAuth     status 00 / other                kSocksConnect / kAuth
//   kSocksConnect  REP 00 / other                   done / kRefused
//   any            EOF, error / timer / bad bytes   kClosed or kTls / kTimeout / kProtocol
//
// One timer bounds the whole step, TLS included. Failures name the parent,
// since the client only sees a 502 and the log has to tell which parent
// failed and how.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/libevent_handles.h"
#include "worker/deferred_delete.h"

namespace worker {

enum class ParentError {
    kNone,
    kTls,          // the TLS handshake failed (protocol, connection)
    kCertificate,  // the TLS handshake failed: the parent's certificate was refused
    kAuth,         // the parent wants credentials or refused ours (407, SOCKS5 FF, RFC 1929)
    kRefused,      // the parent could not or would not reach the destination
    kProtocol,     // the parent's answer is malformed, too large or unexpected
    kClosed,       // the connection closed or failed before the answer was whole
    kTimeout,      // the handshake did not finish within its timeout
    kNoResources,  // no memory or descriptor for the TLS connection or the timer
};

struct ParentResult {
    ParentError error = ParentError::kNone;
    std::string detail;   // names the parent: "parent NAME refused our credentials (407)"
    int http_status = 0;  // the CONNECT answer's status for kRefused and kAuth over HTTP
    // The parent's REP for kRefused over SOCKS5 (or 0x08, address type not
    // supported, for a target no SOCKS5 request can carry).
    uint8_t socks_reply = 0;
    common::BufferEventPtr connection;  // on success only, see ParentHandshake::start()
};

// True when the failure is the parent's own and counts against its health
// (route_table.h): kTls, kCertificate, kProtocol, kClosed, kTimeout. A refused
// destination, refused credentials (a configuration matter) and our own
// want of resources are not.
bool is_route_failure(ParentError error);

// Where the parent is asked to open a tunnel to.
struct TunnelTarget {
    std::string host;  // a name or an IP literal (IPv6 without brackets)
    uint16_t port = 0;
    bool ip_literal = false;

    // "host:port", brackets for IPv6: the CONNECT target and the logs' name.
    std::string authority() const;
};

// Appends the CONNECT request head asking `parent` for a tunnel to `target`,
// with our Via entry (`pseudonym`: [proxy] name).
void append_connect_request(const common::ParentConfig& parent, const TunnelTarget& target,
                            std::string_view pseudonym, std::string& out);

// One handshake with a parent. Destroying it cancels it; the callback runs
// at most once and may retire the object (hand it to the graveyard,
// deferred_delete.h), as with UpstreamConnect.
class ParentHandshake final : public Deferrable {
  public:
    using Callback = std::function<void(ParentResult&&)>;

    // `parent` must outlive the object. `timeout` (connect_timeout) bounds
    // the whole handshake, TLS included; `max_head` (max_header_size)
    // bounds the CONNECT answer's head.
    ParentHandshake(event_base* base, const common::ParentConfig& parent,
                    std::string_view pseudonym, std::chrono::milliseconds timeout, size_t max_head);
    ~ParentHandshake() override;

    // `connection`: a connected plain TCP bufferevent to the parent
    // (BEV_OPT_CLOSE_ON_FREE, no callbacks), as UpstreamConnect hands it
    // over. With `tunnel_to`, asks the parent for a tunnel there; without,
    // only sets up the transport (TLS for an https parent; nothing for http
    // and socks5 parents: a socks5 parent carries plain HTTP over a tunnel,
    // so callers give it a target).
    //
    // On success the connection is handed back with no callbacks, no
    // timeouts and no watermarks, reading and writing enabled (an https
    // parent's is an OpenSSL bufferevent on the same socket): its new owner
    // sets its callbacks before returning to the loop. Its input may already
    // hold bytes the parent sent after its answer, the tunnel's first, to
    // be passed on before anything read later; its output may still hold
    // the end of our request when the parent answered before reading it.
    // On failure the connection is only closed with this object; nothing
    // more is read or written on it.
    //
    // The callback may run before start() returns: when nothing is to be
    // done (an http parent without a target), or when the TLS connection
    // or the timer cannot be made.
    void start(common::BufferEventPtr connection, std::optional<TunnelTarget> tunnel_to,
               Callback callback);

  private:
    enum class State { kTls, kConnectAnswer, kSocksMethod, kSocksAuth, kSocksConnect, kDone };

    void start_tls();
    void start_tunnel();
    void send(const std::string& bytes, State next);
    void send_socks_connect();
    void on_readable();
    void read_connect_answer();
    void read_socks_method();
    void read_socks_auth();
    void read_socks_connect();
    // Up to `max` bytes from the front of the input, made contiguous.
    std::string_view input_front(size_t max);
    void drain(size_t bytes);
    void on_closed(short events);
    const char* waiting_for() const;
    void succeed();
    void fail(ParentError error, std::string detail, int http_status = 0, uint8_t socks_reply = 0);
    void finish(ParentResult&& result);
    std::string named(std::string_view what) const;
    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short events, void* arg) noexcept;
    static void on_timeout(evutil_socket_t, short, void* arg) noexcept;

    event_base* base_;
    const common::ParentConfig& parent_;
    std::string pseudonym_;
    std::chrono::milliseconds timeout_;
    size_t max_head_;
    State state_ = State::kTls;
    common::BufferEventPtr bev_;
    common::EventPtr timer_;
    std::optional<TunnelTarget> target_;
    Callback callback_;
};

}  // namespace worker
