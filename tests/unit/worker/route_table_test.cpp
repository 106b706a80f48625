// Unit tests for worker/route_table (the routes of a configuration, their
// selection and passive health) and the pipeline's keys for routes.
#include "worker/route_table.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "worker/http_forwarding.h"
#include "worker/request_pipeline.h"

namespace worker {
namespace {

using namespace std::chrono_literals;
using Clock = RouteTable::Clock;

common::Config config_with(std::vector<std::string> parents, std::vector<std::string> sources,
                           common::Rotation rotation = common::Rotation::kRoundRobin) {
    common::Config config;
    for (const std::string& name : parents) {
        common::ParentConfig parent;
        parent.name = name;
        parent.host = "127.0.0.1";
        parent.port = 1;
        parent.max_failures = 2;
        parent.retry_after = 10s;
        config.parents.push_back(parent);
        config.route.parents.push_back(name);
    }
    for (const std::string& source : sources) {
        config.route.source_addresses.push_back(*common::SocketAddress::from_numeric(source, 0));
    }
    config.route.rotation = rotation;
    return config;
}

std::vector<std::string> names(const RouteTable& table) {
    std::vector<std::string> out;
    for (const Route& route : table.routes()) out.push_back(route.name);
    return out;
}

TEST(RouteTable, RoutesAreParentsTimesSourceAddresses) {
    common::Config direct;
    EXPECT_EQ(names(RouteTable(direct)), std::vector<std::string>{"direct"});
    common::Config sources = config_with({}, {"127.0.0.2", "::1"});
    EXPECT_EQ(names(RouteTable(sources)),
              (std::vector<std::string>{"direct@127.0.0.2", "direct@::1"}));
    common::Config parents = config_with({"a", "b"}, {});
    EXPECT_EQ(names(RouteTable(parents)), (std::vector<std::string>{"a", "b"}));
    common::Config both = config_with({"a", "b"}, {"127.0.0.2", "127.0.0.3"});
    RouteTable table(both);
    EXPECT_EQ(names(table), (std::vector<std::string>{"a@127.0.0.2", "a@127.0.0.3", "b@127.0.0.2",
                                                      "b@127.0.0.3"}));
    std::set<uint32_t> ids;
    for (const Route& route : table.routes()) {
        EXPECT_NE(route.id, 0u);
        EXPECT_EQ(table.by_id(route.id), &route);
        EXPECT_EQ(&table.routes()[route.index], &route);
        ids.insert(route.id);
    }
    EXPECT_EQ(ids.size(), 4u);
    EXPECT_EQ(table.routes()[2].parent->name, "b");
    EXPECT_EQ(table.routes()[2].source->host_string(), "127.0.0.2");
    // The same name has the same id in every process: the sticky map's values.
    EXPECT_EQ(RouteTable(both).routes()[3].id, table.routes()[3].id);
}

TEST(RouteTable, RoundRobinTakesTurnsAndSkipsWhatIsDown) {
    common::Config config = config_with({"a", "b", "c"}, {});
    RouteTable table(config);
    Clock::time_point now = Clock::now();
    std::string order;
    for (int i = 0; i < 6; ++i) order += table.rotate(now, {})->name;
    // Each worker starts at a random turn; then the turns go round.
    EXPECT_TRUE(order == "abcabc" || order == "bcabca" || order == "cabcab") << order;
    while (table.rotate(now, {})->name != "c") {
    }
    const Route& b = table.routes()[1];
    EXPECT_FALSE(table.note_failure(b, now));
    EXPECT_TRUE(table.note_failure(b, now));  // max_failures = 2
    EXPECT_TRUE(table.down(b, now));
    order.clear();
    for (int i = 0; i < 4; ++i) order += table.rotate(now, {})->name;
    EXPECT_EQ(order, "acac");
    // Tried routes are left out; nothing left is nullptr.
    EXPECT_EQ(table.rotate(now, {0})->name, "c");
    EXPECT_EQ(table.rotate(now, {0, 2}), nullptr);
}

TEST(RouteTable, ADownRouteIsTriedAgainAfterRetryAfterAndFallsAtItsFirstFailure) {
    common::Config config = config_with({"a"}, {});
    RouteTable table(config);
    const Route& a = table.routes()[0];
    Clock::time_point now = Clock::now();
    table.note_failure(a, now);
    EXPECT_TRUE(table.note_failure(a, now));
    EXPECT_EQ(table.rotate(now + 9s, {}), nullptr);
    EXPECT_EQ(table.rotate(now + 10s, {}), &a);
    // On probation: one failure takes it down again.
    EXPECT_TRUE(table.note_failure(a, now + 10s));
    EXPECT_TRUE(table.down(a, now + 19s));
    // A success brings it up and forgets the failures in a row.
    table.note_success(a);
    EXPECT_FALSE(table.down(a, now + 11s));
    EXPECT_FALSE(table.note_failure(a, now + 11s));
    EXPECT_EQ(table.counters(a).failures, 4u);
}

TEST(RouteTable, LeastConnectionsPrefersTheIdleRouteAndSharesTies) {
    common::Config config =
        config_with({}, {"127.0.0.2", "127.0.0.3"}, common::Rotation::kLeastConnections);
    RouteTable table(config);
    Clock::time_point now = Clock::now();
    const Route& first = table.routes()[0];
    RouteUse held(table, first);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(table.rotate(now, {})->index, 1u);
    held.release();
    std::map<size_t, int> picks;
    for (int i = 0; i < 10; ++i) picks[table.rotate(now, {})->index]++;
    EXPECT_EQ(picks[0], 5);
    EXPECT_EQ(picks[1], 5);
}

TEST(RouteTable, RandomUsesEveryRoute) {
    common::Config config = config_with({}, {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"},
                                        common::Rotation::kRandom);
    RouteTable table(config);
    std::map<size_t, int> picks;
    for (int i = 0; i < 400; ++i) picks[table.rotate(Clock::now(), {})->index]++;
    ASSERT_EQ(picks.size(), 4u);
    for (const auto& [index, count] : picks) EXPECT_GT(count, 40) << index;
}

TEST(RouteTable, RendezvousIsTheSameEverywhereAndMovesOnlyTheKeysOfALostRoute) {
    common::Config config = config_with({}, {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"});
    RouteTable one(config);
    RouteTable other(config);
    Clock::time_point now = Clock::now();
    std::map<size_t, int> spread;
    int moved = 0;
    for (int i = 0; i < 400; ++i) {
        std::string key = "sticky:alice:s" + std::to_string(i);
        const Route* route = one.rendezvous(key, now, {});
        ASSERT_NE(route, nullptr);
        EXPECT_EQ(other.rendezvous(key, now, {})->index, route->index);
        spread[route->index]++;
        const Route* without_first = one.rendezvous(key, now, {0});
        if (route->index != 0) {
            EXPECT_EQ(without_first->index, route->index) << key;
        } else {
            EXPECT_NE(without_first->index, 0u);
            moved++;
        }
    }
    EXPECT_EQ(moved, spread[0]);
    for (const auto& [index, count] : spread) EXPECT_GT(count, 50) << index;
}

TEST(RouteUse, CountsActiveAndTotalAndGivesBackOnMoveAndDestruction) {
    common::Config config = config_with({"a"}, {});
    RouteTable table(config);
    const Route& a = table.routes()[0];
    {
        RouteUse first(table, a);
        RouteUse moved = std::move(first);
        EXPECT_EQ(table.counters(a).active, 1u);
        RouteUse second(table, a);
        EXPECT_EQ(table.counters(a).active, 2u);
        second = std::move(moved);
        EXPECT_EQ(table.counters(a).active, 1u);
    }
    EXPECT_EQ(table.counters(a).active, 0u);
    EXPECT_EQ(table.counters(a).total, 2u);
}

TEST(RouteKeys, BudgetKeyNamesTheExitAndStaysWithinTheTablesKeySize) {
    common::Config config = config_with({"a"}, {"192.0.2.7"});
    RouteTable parents(config);
    EXPECT_EQ(budget_key("example.com", parents.routes()[0]), "dst:example.com|parent:a");
    common::Config sources = config_with({}, {"192.0.2.7"});
    RouteTable direct(sources);
    EXPECT_EQ(budget_key("example.com", direct.routes()[0]), "dst:example.com|192.0.2.7");
    common::Config plain;
    RouteTable kernel(plain);
    EXPECT_EQ(budget_key("example.com", kernel.routes()[0]), "dst:example.com|-");
    std::string long_host(200, 'x');
    std::string hashed = budget_key(long_host, kernel.routes()[0]);
    EXPECT_LE(hashed.size(), common::SharedTable::kMaxKeyBytes);
    EXPECT_EQ(hashed.rfind("dst:#", 0), 0u);
    EXPECT_NE(hashed, budget_key(long_host + "y", kernel.routes()[0]));
    Account alice{"alice", "s1", 0s, 0};
    EXPECT_EQ(sticky_key(alice), "sticky:alice:s1");
}

TEST(AbsoluteRequestLine, RewritesTheOriginFormLineOnly) {
    std::string head = "GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
    std::string out;
    size_t rest = append_absolute_request_line(head, "example.com:8080", out);
    EXPECT_EQ(out, "GET http://example.com:8080/a?b HTTP/1.1\r\n");
    EXPECT_EQ(head.substr(rest), "Host: example.com:8080\r\n\r\n");
    out.clear();
    append_absolute_request_line("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "h", out);
    EXPECT_EQ(out, "OPTIONS http://h HTTP/1.1\r\n");
}

}  // namespace
}  // namespace worker
