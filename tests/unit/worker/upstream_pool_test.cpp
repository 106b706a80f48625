// Unit tests for the upstream keep-alive pool's per-key cap (issue 18): the
// automatic cap (the shipped default) follows a key's recent demand, counted
// by InUse tokens, and decays a window after the demand falls; a fixed cap
// still caps, and upstream_keepalive_max_idle still bounds every key
// together. The bounds the automatic cap does not change (LRU order,
// evict_oldest()) are in descriptor_budget_test.cpp.
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/libevent_handles.h"
#include "tests/unit/worker/pooled_connections.h"
#include "worker/upstream_pool.h"

namespace worker {
namespace {

using namespace std::chrono_literals;

constexpr auto kWindow = 30s;  // the pool's keep-alive timeout, its window
const std::string kKey = "origin:80 direct";

class AdaptivePool : public ::testing::Test, protected PooledConnections {
  protected:
    // A pool with the test's clock (`now_`), which only the test moves.
    std::unique_ptr<UpstreamPool> pool(std::optional<size_t> per_key, size_t max_idle = 1024) {
        return std::make_unique<UpstreamPool>(kWindow, per_key, max_idle, [this] { return now_; });
    }

    // `n` requests in flight to `key` at once, as the exchanges run them:
    // each takes an idle connection or connects a new one, holds a token
    // while its upstream is in use, and gives the connection back (put,
    // then the token goes, as HttpExchange::finish() does).
    void burst(UpstreamPool& pool, size_t n, const std::string& key = kKey) {
        std::vector<std::pair<PooledConnection, UpstreamPool::InUse>> in_flight;
        for (size_t i = 0; i < n; ++i) {
            UpstreamPool::InUse token;  // as RequestPipeline takes it
            if (std::optional<PooledConnection> taken = pool.take(key, &token)) {
                in_flight.emplace_back(std::move(*taken), std::move(token));
            } else {
                in_flight.emplace_back(connection(), pool.in_use(key));  // as HttpExchange
            }
        }
        EXPECT_EQ(pool.in_use_count(key), n);
        for (auto& [conn, token] : in_flight) {
            pool.put(key, std::move(conn));
            token.reset();
        }
        EXPECT_EQ(pool.in_use_count(key), 0u);
    }

    UpstreamPool::Clock::time_point now_ = UpstreamPool::Clock::time_point() + 1h;
};

// The case: 30 requests at once to one destination. With the
// shipped default (auto) all 30 connections are kept and serve the next
// burst: no new connection. The old fixed default (8) closed 22 of them.
TEST_F(AdaptivePool, ShippedDefaultKeepsEveryConnectionTheKeyHadInUse) {
    std::optional<uint64_t> shipped = common::LimitsConfig().upstream_keepalive_per_destination;
    EXPECT_FALSE(shipped.has_value()) << "the shipped default is not auto";
    auto p = pool(shipped);
    burst(*p, 30);
    EXPECT_EQ(p->idle_count(kKey), 30u);
    EXPECT_EQ(closed_count(), 0u);
    EXPECT_EQ(p->cap(kKey), 30u);
    for (int round = 0; round < 5; ++round) burst(*p, 30);
    EXPECT_EQ(peers_.size(), 30u) << "connections opened past the first burst";
    EXPECT_EQ(closed_count(), 0u);
    EXPECT_EQ(p->idle_count(kKey), 30u);
}

// Demand that falls: the cap stays for the window the peak was in and the
// next, then falls to the new demand (at least the floor); the connections
// past it close as they come back.
TEST_F(AdaptivePool, CapDecaysAWindowAfterDemandFalls) {
    auto p = pool(std::nullopt);
    burst(*p, 30);
    ASSERT_EQ(p->idle_count(kKey), 30u);

    now_ += kWindow + 1s;  // the next window: the peak still counts
    burst(*p, 2);
    EXPECT_EQ(p->cap(kKey), 30u);
    EXPECT_EQ(p->idle_count(kKey), 30u);
    EXPECT_EQ(closed_count(), 0u);

    now_ += kWindow + 1s;  // a whole window of 2 at most: the cap is the floor
    burst(*p, 2);
    EXPECT_EQ(p->cap(kKey), UpstreamPool::kAutoFloor);
    EXPECT_EQ(p->idle_count(kKey), UpstreamPool::kAutoFloor);
    EXPECT_EQ(closed_count(), 30u - UpstreamPool::kAutoFloor);

    // Demand comes back: the cap follows at once.
    burst(*p, 20);
    EXPECT_EQ(p->cap(kKey), 20u);
    EXPECT_EQ(p->idle_count(kKey), 20u);
}

// A connection taken with a token is in use from the moment it leaves, so
// taking a key's last idle connection keeps the key's demand.
TEST_F(AdaptivePool, TakingTheLastIdleConnectionKeepsTheDemand) {
    auto p = pool(std::nullopt);
    burst(*p, 30);
    EXPECT_EQ(p->evict_oldest(29), 29u);
    UpstreamPool::InUse token;
    std::optional<PooledConnection> last = p->take(kKey, &token);
    ASSERT_TRUE(last.has_value());
    EXPECT_TRUE(token);
    EXPECT_EQ(p->in_use_count(kKey), 1u);
    EXPECT_EQ(p->cap(kKey), 30u);
    EXPECT_FALSE(p->take(kKey, &token).has_value());
    EXPECT_EQ(p->in_use_count(kKey), 1u) << "a take that found nothing counted a use";
}

// A long quiet spell (more than two windows with no use): what was in use
// then says nothing now.
TEST_F(AdaptivePool, LongSilenceForgetsThePeak) {
    auto p = pool(std::nullopt);
    burst(*p, 30);
    now_ += 3 * kWindow;
    EXPECT_EQ(p->cap(kKey), UpstreamPool::kAutoFloor);
    UpstreamPool::InUse held = p->in_use(kKey);  // one in use across the silence
    now_ += 3 * kWindow;
    EXPECT_EQ(p->cap(kKey), UpstreamPool::kAutoFloor);
}

// Below the floor, auto keeps what the old default kept: 8 per key.
TEST_F(AdaptivePool, AutoKeepsAtLeastTheFloor) {
    auto p = pool(std::nullopt);
    for (int i = 0; i < 12; ++i) p->put(kKey, connection());  // returned one at a time
    EXPECT_EQ(p->idle_count(kKey), UpstreamPool::kAutoFloor);
    EXPECT_EQ(closed_count(), 12u - UpstreamPool::kAutoFloor);
}

// A number is a fixed cap, whatever the demand.
TEST_F(AdaptivePool, FixedNumberStillCaps) {
    auto p = pool(4);
    burst(*p, 30);
    EXPECT_EQ(p->cap(kKey), 4u);
    EXPECT_EQ(p->idle_count(kKey), 4u);
    EXPECT_EQ(closed_count(), 26u);
    auto off = pool(0);
    burst(*off, 3);
    EXPECT_EQ(off->idle_count(), 0u);
}

// upstream_keepalive_max_idle bounds every key together, automatic caps
// included: the least recently pooled goes first, whatever its key.
TEST_F(AdaptivePool, MaxIdleBoundsEveryKey) {
    auto p = pool(std::nullopt, 20);
    burst(*p, 30);
    EXPECT_EQ(p->idle_count(), 20u);
    EXPECT_EQ(closed_count(), 10u);
    burst(*p, 5, "other:80 direct");
    EXPECT_EQ(p->idle_count(), 20u);
    EXPECT_EQ(p->idle_count("other:80 direct"), 5u);
    EXPECT_EQ(p->idle_count(kKey), 15u);
    EXPECT_EQ(closed_count(), 15u);
}

// The count of connections in use is the count of live tokens, however they
// go: reset, destroyed, moved from, replaced, or outliving their key's idle
// connections (closed by the peer, cleared).
TEST_F(AdaptivePool, InUseCountIsTheLiveTokens) {
    auto p = pool(std::nullopt);
    UpstreamPool::InUse a = p->in_use(kKey);
    {
        UpstreamPool::InUse b = p->in_use(kKey);
        EXPECT_EQ(p->in_use_count(kKey), 2u);
    }
    EXPECT_EQ(p->in_use_count(kKey), 1u);
    UpstreamPool::InUse moved = std::move(a);
    EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(p->in_use_count(kKey), 1u);
    moved = p->in_use("other");  // replacing a token releases the old one
    EXPECT_EQ(p->in_use_count(kKey), 0u);
    EXPECT_EQ(p->in_use_count("other"), 1u);

    UpstreamPool::InUse c = p->in_use(kKey);
    p->put(kKey, connection());
    peers_.back().reset();  // the origin closes the idle connection
    run_loop();
    EXPECT_EQ(p->idle_count(kKey), 0u);
    EXPECT_EQ(p->in_use_count(kKey), 1u);
    p->put(kKey, connection());
    p->clear();
    EXPECT_EQ(p->idle_count(), 0u);
    EXPECT_EQ(p->in_use_count(kKey), 1u);
    c.reset();
    moved.reset();
    c.reset();  // twice: nothing more
    EXPECT_EQ(p->in_use_count(kKey), 0u);
    EXPECT_EQ(p->in_use_count("other"), 0u);
}

}  // namespace
}  // namespace worker
