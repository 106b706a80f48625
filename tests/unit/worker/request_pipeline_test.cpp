// Unit tests for worker/request_pipeline (the route stage's pure functions,
// and the pipeline sequencing its stages on a real libevent loop against
// real loopback sockets) and worker/deferred_delete.
#include "worker/request_pipeline.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "common/libevent_handles.h"
#include "common/shared_table.h"
#include "worker/authenticator.h"
#include "worker/deferred_delete.h"
#include "worker/resolver.h"
#include "worker/upstream_pool.h"
#include "worker/worker_context.h"

namespace worker {
namespace {

using namespace std::chrono_literals;

// A listener without authentication, as the pipeline's stages read it.
const common::ListenConfig kOpenListener;
// The client of every intent: inside the fixture's allow_clients.
const common::SocketAddress kLoopbackClient =
    *common::SocketAddress::from_numeric("127.0.0.1", 40000);

Intent intent_for(const std::string& host, uint16_t port, Intent::Mode mode) {
    Intent out;
    out.listener = &kOpenListener;
    out.client = &kLoopbackClient;
    out.destination.host = host;
    out.destination.port = port;
    out.destination.ipv6_literal = host.find(':') != std::string::npos;
    out.mode = mode;
    return out;
}

TEST(Route, DirectAndKeyedByDestinationAndRoute) {
    common::Config config;
    Intent forward = intent_for("example.com", 80, Intent::Mode::kForward);
    RouteTable routes(config);
    ASSERT_EQ(routes.routes().size(), 1u);
    const Route& route = routes.routes()[0];
    EXPECT_EQ(route.name, "direct");
    EXPECT_EQ(pool_key(forward, route), "example.com:80 direct");
    EXPECT_EQ(pool_key(intent_for("::1", 8080, Intent::Mode::kForward), route),
              "[::1]:8080 direct");
}

// A listening socket on 127.0.0.1, port chosen by the kernel.
class LoopbackListener {
  public:
    LoopbackListener() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
        listen(fd_, 16);
        socklen_t length = sizeof(address);
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~LoopbackListener() { close(fd_); }
    uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    uint16_t port_ = 0;
};

// A port nothing listens on: bound, then closed.
uint16_t closed_port() {
    LoopbackListener listener;
    return listener.port();
}

class Pipeline : public ::testing::Test {
  protected:
    void SetUp() override {
        base_.reset(event_base_new());
        auto config = std::make_shared<common::Config>();
        std::string error;
        config->acl.connect_ports.push_back(*common::parse_port_range("443", error));
        config->acl.connect_ports.push_back(*common::parse_port_range("1024-65535", error));
        config->acl.allow_clients.push_back(*common::parse_cidr("127.0.0.0/8", error));
        resolver_ = Resolver::create(base_.get(), 2000ms);
        ASSERT_TRUE(resolver_);
        pool_ = std::make_unique<UpstreamPool>(30s, 4, 16);
        routes_ = std::make_unique<RouteTable>(*config);
        ASSERT_TRUE(graveyard_.start(base_.get()));
        context_.routes = routes_.get();
        context_.base = base_.get();
        context_.config = config;
        context_.resolver = resolver_.get();
        context_.pool = pool_.get();
        context_.graveyard = &graveyard_;
        context_.connect_policy.deny_private = false;
        context_.connect_policy.connect_timeout = 2000ms;
        context_.shared_state = &no_table_;
    }

    // Runs the pipeline for `intent` until its callback ran (or 3 s).
    std::optional<PipelineResult> run(const Intent& intent, bool may_reuse, bool* synchronous) {
        std::optional<PipelineResult> result;
        RequestPipeline pipeline(context_);
        pipeline.start(intent, may_reuse,
                       [&](PipelineResult&& r) { result.emplace(std::move(r)); });
        if (synchronous) *synchronous = result.has_value();
        timeval limit{3, 0};
        event_base_loopexit(base_.get(), &limit);
        while (!result && event_base_loop(base_.get(), EVLOOP_ONCE) == 0) {
        }
        return result;
    }

    common::EventBasePtr base_;
    std::unique_ptr<Resolver> resolver_;
    std::unique_ptr<UpstreamPool> pool_;
    std::unique_ptr<RouteTable> routes_;
    DeferredDeleter graveyard_;
    LocalSharedState no_table_{nullptr};
    WorkerContext context_;
};

TEST_F(Pipeline, PolicyRefusesAtOnceBeforeResolving) {
    bool synchronous = false;
    auto result =
        run(intent_for("no-such-host.invalid", 22, Intent::Mode::kTunnel), false, &synchronous);
    ASSERT_TRUE(result);
    EXPECT_TRUE(synchronous);
    ASSERT_TRUE(result->refusal);
    EXPECT_EQ(result->refusal->cause, RefusalCause::kPortDenied);
    EXPECT_TRUE(result->refused_by_policy);
    EXPECT_FALSE(result->upstream);
}

// allow_clients is the first stage, for every protocol: before the
// credentials, the ports and any resolving.
TEST_F(Pipeline, ClientOutsideAllowClientsIsRefusedFirst) {
    const common::SocketAddress outsider = *common::SocketAddress::from_numeric("10.1.2.3", 5000);
    Intent intent = intent_for("no-such-host.invalid", 22, Intent::Mode::kTunnel);
    intent.client = &outsider;
    bool synchronous = false;
    auto result = run(intent, false, &synchronous);
    ASSERT_TRUE(result);
    EXPECT_TRUE(synchronous);
    ASSERT_TRUE(result->refusal);
    EXPECT_EQ(result->refusal->cause, RefusalCause::kClientDenied);
    EXPECT_EQ(result->refusal->http_status, 403);
    EXPECT_EQ(result->refusal->socks_reply, 0x02);
    EXPECT_EQ(result->refusal->detail, "client 10.1.2.3 is not allowed (allow_clients)");
    EXPECT_TRUE(result->refused_by_policy);
}

TEST_F(Pipeline, DialsTheDestinationDirectly) {
    LoopbackListener origin;
    bool synchronous = true;
    auto result =
        run(intent_for("127.0.0.1", origin.port(), Intent::Mode::kTunnel), false, &synchronous);
    ASSERT_TRUE(result);
    EXPECT_FALSE(synchronous);
    ASSERT_FALSE(result->refusal) << result->refusal->detail;
    ASSERT_TRUE(result->upstream);
    EXPECT_EQ(result->peer.to_string(), "127.0.0.1:" + std::to_string(origin.port()));
    EXPECT_EQ(result->route->name, "direct");
    EXPECT_FALSE(result->reused);
}

TEST_F(Pipeline, RefusedConnectionIsADialRefusal) {
    auto result =
        run(intent_for("127.0.0.1", closed_port(), Intent::Mode::kForward), false, nullptr);
    ASSERT_TRUE(result);
    ASSERT_TRUE(result->refusal);
    EXPECT_EQ(result->refusal->cause, RefusalCause::kConnectRefused);
    EXPECT_EQ(result->refusal->http_status, 502);
    EXPECT_FALSE(result->refused_by_policy);
    // The route it failed on, for the logs.
    ASSERT_NE(result->route, nullptr);
    EXPECT_EQ(result->route->name, "direct");
}

TEST_F(Pipeline, PrivateAddressRefusedWhereItIsDialled) {
    context_.connect_policy.deny_private = true;
    LoopbackListener origin;
    auto result =
        run(intent_for("127.0.0.1", origin.port(), Intent::Mode::kForward), false, nullptr);
    ASSERT_TRUE(result);
    ASSERT_TRUE(result->refusal);
    EXPECT_EQ(result->refusal->cause, RefusalCause::kPrivateDestination);
    EXPECT_FALSE(result->refused_by_policy);
}

TEST_F(Pipeline, PooledConnectionServesForwardsOfTheSameRouteOnly) {
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);  // pair[1]: the "origin"
    Intent forward = intent_for("127.0.0.1", closed_port(), Intent::Mode::kForward);
    common::SocketAddress peer = *common::SocketAddress::from_numeric("127.0.0.1", 1);
    pool_->put(pool_key(forward, Route{}),
               PooledConnection{common::BufferEventPtr(bufferevent_socket_new(
                                    base_.get(), pair[0], BEV_OPT_CLOSE_ON_FREE)),
                                peer});
    // Not without may_reuse (a retry), and never for a tunnel: both dial.
    auto fresh = run(forward, false, nullptr);
    ASSERT_TRUE(fresh && fresh->refusal);
    Intent tunnel = forward;
    tunnel.mode = Intent::Mode::kTunnel;
    auto tunnelled = run(tunnel, true, nullptr);
    ASSERT_TRUE(tunnelled && tunnelled->refusal);
    EXPECT_EQ(pool_->idle_count(), 1u);

    bool synchronous = false;
    auto reused = run(forward, true, &synchronous);
    ASSERT_TRUE(reused);
    EXPECT_TRUE(synchronous);
    EXPECT_FALSE(reused->refusal);
    EXPECT_TRUE(reused->reused);
    EXPECT_TRUE(reused->upstream);
    EXPECT_EQ(reused->peer, peer);
    EXPECT_EQ(pool_->idle_count(), 0u);
    close(pair[1]);
}

TEST_F(Pipeline, CancelledPipelineNeverCallsBack) {
    LoopbackListener origin;
    bool called = false;
    {
        RequestPipeline pipeline(context_);
        pipeline.start(intent_for("127.0.0.1", origin.port(), Intent::Mode::kTunnel), false,
                       [&](PipelineResult&&) { called = true; });
        pipeline.cancel();
        timeval limit{0, 200 * 1000};
        event_base_loopexit(base_.get(), &limit);
        event_base_dispatch(base_.get());
    }
    EXPECT_FALSE(called);
    EXPECT_EQ(graveyard_.pending(), 0u);  // the connector was freed by the loop
}

// ---------------------------------------------------------------- authenticate, admit

// `htpasswd -nbB -C 4 alice secret`: test data.
constexpr const char* kAliceHash = "$2y$04$rxlxlYgfPllmY1UMf.B94./kLTIMKyryhFPINttAdHkEZPonZd5zW";

class PipelineWithAccounts : public Pipeline {
  protected:
    void SetUp() override {
        Pipeline::SetUp();
        auto config = std::make_shared<common::Config>(*context_.config);
        config->auth.users.emplace("alice", common::UserAccount{kAliceHash, 1});
        context_.config = config;
        listener_.auth = common::ListenAuth::kPassword;
        authenticator_ = std::make_unique<Authenticator>(base_.get(), *config);
        context_.authenticator = authenticator_.get();
        table_ = common::SharedTable::create(common::SharedTable::Capacity{64, 64, 8});
        context_.shared_table = table_.get();
        state_ = std::make_unique<LocalSharedState>(table_.get());
        context_.shared_state = state_.get();
    }

    Intent tunnel_to(uint16_t port) {
        Intent intent = intent_for("127.0.0.1", port, Intent::Mode::kTunnel);
        intent.listener = &listener_;
        intent.client = &client_;
        return intent;
    }

    common::ListenConfig listener_;
    common::SocketAddress client_ = *common::SocketAddress::from_numeric("127.0.0.1", 40000);
    std::unique_ptr<Authenticator> authenticator_;
    std::unique_ptr<common::SharedTable> table_;
    std::unique_ptr<LocalSharedState> state_;
};

// Authentication comes first: a client without credentials learns nothing
// about ports, and a 407 keeps the connection (it is not a policy refusal).
TEST_F(PipelineWithAccounts, NoCredentialsIs407BeforePolicy) {
    bool synchronous = false;
    auto result = run(tunnel_to(22), false, &synchronous);  // port 22 is denied
    ASSERT_TRUE(result && result->refusal);
    EXPECT_TRUE(synchronous);
    EXPECT_EQ(result->refusal->http_status, 407);
    EXPECT_EQ(result->refusal->detail, "proxy authentication required");
    EXPECT_FALSE(result->refused_by_policy);

    Intent unreadable = tunnel_to(22);
    unreadable.credentials_error = "credentials are not Basic";
    result = run(unreadable, false, nullptr);
    ASSERT_TRUE(result && result->refusal);
    EXPECT_EQ(result->refusal->detail, "credentials are not Basic");
}

TEST_F(PipelineWithAccounts, AuthenticatedTunnelHoldsTheUsersLease) {
    LoopbackListener origin;
    Intent intent = tunnel_to(origin.port());
    intent.credentials.emplace("alice-session-s1", "secret");
    auto first = run(intent, false, nullptr);
    ASSERT_TRUE(first);
    ASSERT_FALSE(first->refusal) << first->refusal->detail;
    EXPECT_EQ(first->user, "alice");
    ASSERT_TRUE(first->admission.account);
    EXPECT_EQ(first->admission.account->session_id, "s1");
    EXPECT_EQ(first->admission.held(), 1u);
    EXPECT_EQ(table_->count("user:alice"), 1u);

    // alice's limit is 1: the next session is refused while this one lives.
    auto second = run(intent, false, nullptr);
    ASSERT_TRUE(second && second->refusal);
    EXPECT_EQ(second->refusal->cause, RefusalCause::kUserLimit);
    EXPECT_EQ(second->user, "alice");
    first.reset();
    EXPECT_EQ(table_->count("user:alice"), 0u);
    auto third = run(intent, false, nullptr);
    ASSERT_TRUE(third);
    EXPECT_FALSE(third->refusal);
}

// SOCKS5 authenticates in its handshake: the pipeline takes its account.
TEST_F(PipelineWithAccounts, AuthenticatedIntentSkipsTheCheck) {
    LoopbackListener origin;
    Intent intent = tunnel_to(origin.port());
    intent.account = Account{"alice", "", 0s, 1};
    auto result = run(intent, false, nullptr);
    ASSERT_TRUE(result);
    ASSERT_FALSE(result->refusal) << result->refusal->detail;
    EXPECT_EQ(result->user, "alice");
    EXPECT_EQ(table_->count("user:alice"), 1u);
}

TEST_F(PipelineWithAccounts, CancelDuringVerificationNeverCallsBack) {
    Intent intent = tunnel_to(closed_port());
    intent.credentials.emplace("alice", "not the password");
    bool called = false;
    {
        RequestPipeline pipeline(context_);
        pipeline.start(intent, false, [&](PipelineResult&&) { called = true; });
        EXPECT_FALSE(called);  // waiting for the hash
    }
    timeval limit{0, 300 * 1000};
    event_base_loopexit(base_.get(), &limit);
    event_base_dispatch(base_.get());
    EXPECT_FALSE(called);
}

// ---------------------------------------------------------------- graveyard

struct Tracked : Deferrable {
    explicit Tracked(int& alive) : alive_(alive) { ++alive_; }
    ~Tracked() override { --alive_; }
    int& alive_;
};

TEST(DeferredDelete, FreesOnlyAfterTheCallbackReturns) {
    common::EventBasePtr base(event_base_new());
    DeferredDeleter graveyard;
    ASSERT_TRUE(graveyard.start(base.get()));
    int alive = 0;
    struct Step {
        DeferredDeleter* graveyard;
        int* alive;
        int alive_after_defer = -1;
        bool retired = false;
    } step{&graveyard, &alive};
    auto callback = [](evutil_socket_t, short, void* arg) {
        auto* s = static_cast<Step*>(arg);
        auto object = std::make_unique<Tracked>(*s->alive);
        Tracked* raw = object.get();
        s->graveyard->defer(std::move(object));
        s->alive_after_defer = *s->alive;  // still there inside the callback
        s->retired = raw->retired();
    };
    event_base_once(base.get(), -1, EV_TIMEOUT, callback, &step, nullptr);
    event_base_loop(base.get(), EVLOOP_ONCE);
    EXPECT_EQ(step.alive_after_defer, 1);
    EXPECT_TRUE(step.retired);
    EXPECT_EQ(alive, 0);  // freed by the loop in the same iteration
    EXPECT_EQ(graveyard.pending(), 0u);
}

TEST(DeferredDelete, FreeNowAlsoFreesWhatDestructorsRetire) {
    DeferredDeleter graveyard;  // not started: only free_now() frees
    int alive = 0;
    struct Parent : Tracked {
        Parent(int& alive, DeferredDeleter& g) : Tracked(alive), graveyard(g) {}
        ~Parent() override { graveyard.defer(std::make_unique<Tracked>(alive_)); }
        DeferredDeleter& graveyard;
    };
    graveyard.defer(std::make_unique<Parent>(alive, graveyard));
    EXPECT_EQ(alive, 1);
    graveyard.free_now();
    EXPECT_EQ(alive, 0);
    EXPECT_EQ(graveyard.pending(), 0u);
}

}  // namespace
}  // namespace worker

namespace worker {
namespace {

// The admission is what makes a limit exact on every exit path: whatever
// ends the request (a refusal, a tunnel's end, a client gone, a session
// closed by a stop) destroys it, and its leases go back.
TEST(Admission, GivesItsLeasesBackWhenDestroyed) {
    auto table = common::SharedTable::create(common::SharedTable::Capacity{64, 64, 16});
    ASSERT_TRUE(table);
    {
        Admission admission;
        admission.hold(table->acquire("user alice", 2));
        admission.hold(table->acquire("user alice", 2));
        EXPECT_EQ(admission.held(), 2u);
        EXPECT_EQ(table->count("user alice"), 2u);
        EXPECT_FALSE(table->acquire("user alice", 2));  // at the limit
        Admission moved = std::move(admission);
        EXPECT_EQ(table->count("user alice"), 2u);
    }
    EXPECT_EQ(table->count("user alice"), 0u);
    EXPECT_TRUE(table->acquire("user alice", 2));
}

}  // namespace
}  // namespace worker
