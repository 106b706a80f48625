// Unit tests for worker/route_reports: the route counters a worker sends
// after its report, over a real SEQPACKET socketpair like the channel. The
// routes are snapshots (RouteTable::snapshot()'s type), so no table is built.
#include "worker/route_reports.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/channel.h"

namespace worker {
namespace {

namespace channel = common::channel;

struct Received {
    uint64_t active = 0;
    uint64_t total = 0;
    uint64_t failures = 0;
    bool down = false;
    std::string parent;
    int entries = 0;  // how many times the route came
};

// `count` routes "p@10.0.0.N" of parent "p", all at zero and up.
std::vector<RouteSnapshot> routes(int count) {
    std::vector<RouteSnapshot> out;
    for (int i = 0; i < count; ++i) {
        RouteSnapshot route;
        route.name = "p@10.0.0." + std::to_string(i);
        route.parent = "p";
        out.push_back(route);
    }
    return out;
}

class RouteReportsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_), 0);
    }
    void TearDown() override {
        close(fds_[0]);
        close(fds_[1]);
    }

    // Every record waiting on the master's end, by route name: gauges as
    // last sent, deltas summed. Fillers (see fill()) are skipped.
    std::map<std::string, Received> receive(int* records = nullptr) {
        std::map<std::string, Received> got;
        channel::RouteStats record;
        while (recv(fds_[1], &record, sizeof record, MSG_DONTWAIT) == sizeof record) {
            if (record.count == 0) continue;
            EXPECT_EQ(channel::decode_route_stats(&record, sizeof record, record),
                      channel::DecodeStatus::kOk);
            EXPECT_EQ(record.pid, 77);
            for (uint32_t i = 0; i < record.count; ++i) {
                const channel::RouteStat& entry = record.routes[i];
                Received& route = got[std::string(channel::route_name(entry))];
                route.active = entry.active;
                route.down = entry.down != 0;
                route.total += entry.total_delta;
                route.failures += entry.failures_delta;
                route.parent = channel::route_parent(entry);
                ++route.entries;
            }
            if (records) ++*records;
        }
        return got;
    }

    // Fills the channel with empty records of a RouteStats's size, so that
    // taking one out makes room for exactly one.
    void fill() {
        channel::RouteStats filler = channel::make_route_stats();
        while (send(fds_[0], &filler, sizeof filler, MSG_DONTWAIT) == sizeof filler) {
        }
    }
    void take_one() {
        channel::RouteStats drain;
        ASSERT_GT(recv(fds_[1], &drain, sizeof drain, MSG_DONTWAIT), 0);
    }
    void take_all() {
        channel::RouteStats drain;
        while (recv(fds_[1], &drain, sizeof drain, MSG_DONTWAIT) > 0) {
        }
    }

    int fds_[2];
};

// The master learns every route at the worker's first report, idle ones
// included, so `proxyctl routes` lists them before any traffic.
TEST_F(RouteReportsTest, FirstSendCarriesEveryRouteInRecordsOf32) {
    std::vector<RouteSnapshot> table = routes(40);
    table[0].counters = {2, 9, 1};
    table[39].down = true;
    RouteSnapshot direct;
    direct.name = "direct";
    table.push_back(direct);
    RouteReports reports;
    reports.send(fds_[0], 77, table);
    int records = 0;
    auto got = receive(&records);
    EXPECT_EQ(records, 2);
    ASSERT_EQ(got.size(), 41u);
    EXPECT_EQ(got["p@10.0.0.0"].active, 2u);
    EXPECT_EQ(got["p@10.0.0.0"].total, 9u);
    EXPECT_EQ(got["p@10.0.0.0"].failures, 1u);
    EXPECT_EQ(got["p@10.0.0.0"].parent, "p");
    EXPECT_TRUE(got["p@10.0.0.39"].down);
    EXPECT_FALSE(got["p@10.0.0.38"].down);
    EXPECT_EQ(got["direct"].parent, "");
    reports.send(fds_[0], 77, table);  // nothing changed: nothing sent
    EXPECT_TRUE(receive().empty());
}

TEST_F(RouteReportsTest, SendsOnlyWhatChangedWithIncreases) {
    std::vector<RouteSnapshot> table = routes(6);
    for (RouteSnapshot& route : table) route.counters = {1, 10, 3};
    RouteReports reports;
    reports.send(fds_[0], 77, table);
    receive();
    table[1].counters.active = 0;  // a session ended: the gauge changed alone
    table[2].counters.total = 15;  // sessions opened and closed since
    table[3].counters.failures = 4;
    table[4].down = true;
    reports.send(fds_[0], 77, table);
    auto got = receive();
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got["p@10.0.0.1"].active, 0u);
    EXPECT_EQ(got["p@10.0.0.1"].total, 0u);
    EXPECT_EQ(got["p@10.0.0.2"].active, 1u);
    EXPECT_EQ(got["p@10.0.0.2"].total, 5u);
    EXPECT_EQ(got["p@10.0.0.2"].failures, 0u);
    EXPECT_EQ(got["p@10.0.0.3"].failures, 1u);
    EXPECT_TRUE(got["p@10.0.0.4"].down);
    EXPECT_EQ(got["p@10.0.0.4"].total, 0u);
    // Back up: that is a change too.
    table[4].down = false;
    reports.send(fds_[0], 77, table);
    got = receive();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_FALSE(got["p@10.0.0.4"].down);
}

// A full channel loses nothing: the increases wait for the next report and
// come with what was counted meanwhile, the gauges as they are then.
TEST_F(RouteReportsTest, FullChannelKeepsTheChanges) {
    std::vector<RouteSnapshot> table = routes(1);
    table[0].counters = {1, 3, 0};
    RouteReports reports;
    reports.send(fds_[0], 77, table);
    receive();
    fill();
    table[0].counters = {4, 5, 1};
    table[0].down = true;
    reports.send(fds_[0], 77, table);  // refused
    take_all();
    EXPECT_TRUE(receive().empty());
    table[0].counters = {2, 8, 1};
    reports.send(fds_[0], 77, table);
    auto got = receive();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got["p@10.0.0.0"].active, 2u);
    EXPECT_EQ(got["p@10.0.0.0"].total, 5u);  // 8 - 3: the refused 2 included
    EXPECT_EQ(got["p@10.0.0.0"].failures, 1u);
    EXPECT_TRUE(got["p@10.0.0.0"].down);
}

// Room for one record of two: the first one's routes count as told, the
// second's are sent by the next call, and nothing comes twice.
TEST_F(RouteReportsTest, RecordsAfterARefusedOneWait) {
    std::vector<RouteSnapshot> table = routes(40);
    for (RouteSnapshot& route : table) route.counters.total = 1;
    RouteReports reports;
    fill();
    take_one();
    reports.send(fds_[0], 77, table);
    int records = 0;
    auto got = receive(&records);
    EXPECT_EQ(records, 1);
    EXPECT_EQ(got.size(), channel::kRoutesPerRecord);
    take_all();
    reports.send(fds_[0], 77, table);
    auto rest = receive(&records);
    EXPECT_EQ(records, 2);
    EXPECT_EQ(rest.size(), 40 - channel::kRoutesPerRecord);
    for (const auto& [name, route] : rest) {
        EXPECT_FALSE(got.count(name)) << name;
        EXPECT_EQ(route.total, 1u) << name;
    }
}

// Routes late in the table are not starved by earlier ones that change at
// every beat: a call starts with what the last one could not send.
TEST_F(RouteReportsTest, RefusedRoutesGoFirstNextTime) {
    std::vector<RouteSnapshot> table = routes(40);
    RouteReports reports;
    fill();
    take_one();
    reports.send(fds_[0], 77, table);  // 0..31 go, 32..39 are refused
    auto got = receive();
    ASSERT_EQ(got.size(), channel::kRoutesPerRecord);
    EXPECT_FALSE(got.count("p@10.0.0.32"));
    for (RouteSnapshot& route : table) ++route.counters.active;  // all change again
    fill();
    take_one();
    reports.send(fds_[0], 77, table);
    got = receive();
    ASSERT_EQ(got.size(), channel::kRoutesPerRecord);
    for (int i = 32; i < 40; ++i) {
        EXPECT_EQ(got["p@10.0.0." + std::to_string(i)].active, 1u) << i;
    }
    EXPECT_TRUE(got.count("p@10.0.0.0"));  // then the table from its start
    EXPECT_FALSE(got.count("p@10.0.0.31"));
}

// A name the record cannot carry is left out; the other routes still go.
TEST_F(RouteReportsTest, SkipsNamesThatCannotTravel) {
    std::vector<RouteSnapshot> table = routes(2);
    table[0].name = std::string(channel::kMaxRouteName + 1, 'p');
    table.push_back(RouteSnapshot{"q@10.0.0.1", "p", {}, false});  // not its parent
    RouteReports reports;
    reports.send(fds_[0], 77, table);
    auto got = receive();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got.count("p@10.0.0.1"));
    table.resize(1);
    reports.send(fds_[0], 77, table);  // only the unsendable one: no empty record
    EXPECT_TRUE(receive().empty());
}

}  // namespace
}  // namespace worker
