// The request pipeline: one path from "a client asked for host:port" to "an
// upstream connection, or one refusal", shared by every protocol.
//
//   HTTP request ─┐
//   HTTP CONNECT ─┼─> Intent (listener, client, credentials, host:port, forward | tunnel)
//   SOCKS connect ┘     │
//                       ├─ check client  allow_clients               policy.h
//                       ├─ authenticate  who the client is           accounts: users file, cache
//                       ├─ authorize     connect_ports, Via loops    policy.h
//                       ├─ admit         per-user limits: leases     accounts: shared state
//                       ├─ route         a parent or direct, from    route_table.h: rotation;
//                       │                a source address            sticky: shared state
//                       ├─ budget        destination rate per exit   shared state token buckets,
//                       │                                            a timer while queued
//
// The shared state (shared_state.h) is this node's table, answering at
// once, or the cluster's Redis, answering from the loop: admit, route and
// budget continue in its callbacks and never know which it is.
//                       ├─ (forward)     a pooled connection for (destination, route)
//                       ├─ resolve       Resolver (async, cached)
//                       ├─ dial          UpstreamConnect: bound to the source address, every
//                       │                dialled address checked by policy.h, connect_timeout,
//                       │                next address on failure
//                       └─ handshake     ParentHandshake: TLS to an https parent, its CONNECT
//                                        or SOCKS5 for tunnels
//                       │
//            a failure of the route (not of the destination): on_failure = retry-next goes
//            back to `route` with that route excluded, at most kMaxRouteAttempts in all
//                       │
//            Upstream + Admission  |  Refusal (refusal.h: HTTP status, Proxy-Status,
//                                             SOCKS reply, error class)
//
// After it, each protocol relays in its own way: HTTP forwarding
// (http_exchange.h) or a byte tunnel (tunnel_start.h). The exchange record
// (exchange_record.h) is filled along the way and consumed once at the end.
//
// Each decision is a function unit-tested apart from the loop (authorize()
// in policy.h, the RouteTable's selection, pool_key() and budget_key()
// here); the pipeline object only sequences them around the asynchronous
// steps.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/config.h"
#include "common/libevent_handles.h"
#include "common/shared_table.h"
#include "worker/parent_handshake.h"
#include "worker/pipeline_types.h"
#include "worker/route_table.h"
#include "worker/shared_state.h"
#include "worker/upstream_connector.h"
#include "worker/upstream_pool.h"

namespace worker {

struct WorkerContext;

// What an admitted request holds against the limits: leases in the shared
// state (shared_state.h: this node's table or the cluster store), given back
// by their destructors on every exit path, so no ending of a session can
// forget one; and who was admitted (the account, with the session ID
// routing keys on).
class Admission {
  public:
    Admission() = default;
    Admission(Admission&&) = default;
    Admission& operator=(Admission&&) = default;

    void hold(StateLease lease) { leases_.push_back(std::move(lease)); }
    size_t held() const { return leases_.size(); }
    // The route the session goes out by, counted active while held.
    void use(RouteUse route) { route_ = std::move(route); }

    std::optional<Account> account;  // authenticated; none on auth = none listeners

  private:
    std::vector<StateLease> leases_;
    RouteUse route_;
};

// The limit of `account`'s lease on its user key: max_sessions (0 = none).
uint32_t lease_limit(const Account& account);

// Applies the shared state's answer to the lease of `admission.account`
// (acquired with lease_limit() on its user key): holds the lease for as
// long as the Admission lives, or returns the refusal (the user is at
// max_sessions, the table cannot count it, or the cluster store is down and
// on_redis_down = deny: `state` says why in that case).
std::optional<Refusal> admit(AcquireResult&& result, Admission& admission,
                             const SharedState& state);

// The upstream pool's key: the destination and the route, so a connection
// is only reused for the same way out.
std::string pool_key(const Intent& intent, const Route& route);

// The shared table key of the destination budget of `host` from `route`'s
// exit: the parent ("dst:example.com|parent:a"), else the source address
// ("dst:example.com|192.0.2.7"), else "-" for the kernel's choice. Hashed
// (SHA-256, hex) when it would be longer than a key may be.
std::string budget_key(std::string_view host, const Route& route);

// The sticky map's key of a session ID: "sticky:USER:ID", hashed likewise.
std::string sticky_key(const Account& account);

// At most this many routes are tried for one request with on_failure =
// retry-next: the first and up to three more.
constexpr size_t kMaxRouteAttempts = 4;

struct PipelineResult {
    std::optional<Refusal> refusal;  // set: nothing else is, but `user`
    bool refused_by_policy = false;  // by authorize: the connection closes
    std::string user;                // the account name once authenticated
    common::BufferEventPtr upstream;
    common::SocketAddress peer;
    // Set with `upstream`, and with a refusal once a route was chosen; the
    // worker's RouteTable owns it.
    const Route* route = nullptr;
    Admission admission;
    bool reused = false;  // taken from the upstream pool
    // Counts a reused `upstream` in use for its pool key, from the moment it
    // left the pool (the exchange takes it over; a new connection's token
    // is the exchange's to take).
    UpstreamPool::InUse in_use;
};

// The stages for one request at a time. Small (it keeps only the callback,
// the route and admission while dialling, and the connector), so a session
// embeds it: no allocation per request, little weight in a held tunnel.
class RequestPipeline {
  public:
    using Callback = std::function<void(PipelineResult&&)>;

    explicit RequestPipeline(WorkerContext& context) : context_(context) {}
    ~RequestPipeline();
    RequestPipeline(const RequestPipeline&) = delete;
    RequestPipeline& operator=(const RequestPipeline&) = delete;

    // Runs the stages for `intent`, which must outlive the run (the stages
    // after authentication may run later, from the loop). `callback` runs
    // exactly once, possibly before start() returns (a refusal by policy, a
    // cached credential and a pooled connection), and may cancel the
    // pipeline. With `may_reuse`, a forward intent takes an idle pooled
    // connection when there is one. Destroying the pipeline cancels what is
    // in flight.
    void start(const Intent& intent, bool may_reuse, Callback callback);
    // Stops what is in flight; the callback will not run.
    void cancel();

  private:
    void authenticate();
    void after_authentication(std::optional<Account> account);
    void on_admitted(AcquireResult&& result);
    void choose_route();
    void route_chosen(const Route* route);
    void sticky_route(const Account& account, RouteTable::Clock::time_point now);
    void ask_sticky(const Account& account, const Route* proposed, uint32_t avoid);
    void on_sticky(const StickResult& result, const Route* proposed);
    void take_budget();
    void on_budget(const TakeResult& result);
    // Keeps the ticket of a call to the shared state that is still in
    // flight (a call answered at once returns 0 and its callback may have
    // started the next one).
    void track(SharedState::Ticket ticket);
    Refusal store_down_refusal() const;
    static void on_budget_timer(evutil_socket_t, short, void* arg) noexcept;
    void take_pooled_or_dial();
    void dial();
    void on_dialled(ConnectResult&& connected);
    void on_handshake(ParentResult&& handshake, const common::SocketAddress& peer);
    // A dial by the route failed for a reason of its own: mark it, then
    // try another route or give up with `refusal`.
    void route_failed(Refusal&& refusal);
    void refuse(Refusal&& refusal, bool by_policy, std::string user = {});
    void succeed(common::BufferEventPtr upstream, const common::SocketAddress& peer, bool reused,
                 UpstreamPool::InUse in_use = {});
    void finish(PipelineResult&& result);
    // Hands the connector and the handshake to the graveyard: they may be
    // the caller.
    void drop_connector();

    WorkerContext& context_;
    Callback callback_;
    const Intent* intent_ = nullptr;  // the caller's, while running
    bool may_reuse_ = false;
    bool sticky_retry_ = false;              // the second stick(), avoiding a stale route
    uint64_t auth_ticket_ = 0;               // a verification in flight (authenticator.h)
    SharedState::Ticket state_ticket_ = 0;   // a shared state call in flight
    const Route* route_ = nullptr;           // while dialling
    std::vector<size_t> tried_;              // routes that failed for this request
    std::unique_ptr<Refusal> last_failure_;  // of the last route tried, while retrying
    std::chrono::steady_clock::time_point queued_until_{};  // while waiting for a token
    common::EventPtr budget_timer_;                         // made the first time a request waits
    Admission admission_;
    std::unique_ptr<UpstreamConnect> connect_;
    std::unique_ptr<ParentHandshake> handshake_;
};

}  // namespace worker
