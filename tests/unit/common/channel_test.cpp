#include "common/channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace common::channel {
namespace {

Report sample_report() {
    Report r = make_report();
    r.pid = 1234;
    r.slot = 2;
    r.generation = 7;
    r.state = static_cast<uint32_t>(WorkerState::kRunning);
    r.accepting = 1;
    r.counters.active_sessions = 5;
    r.counters.errors[kErrDenied] = 3;
    return r;
}

TEST(Channel, ReportRoundTrips) {
    Report in = sample_report();
    Report out{};
    ASSERT_EQ(decode_report(&in, sizeof in, out), DecodeStatus::kOk);
    EXPECT_EQ(out.pid, 1234);
    EXPECT_EQ(out.slot, 2u);
    EXPECT_EQ(out.generation, 7u);
    EXPECT_EQ(out.counters.active_sessions, 5u);
    EXPECT_EQ(out.counters.errors[kErrDenied], 3u);
    EXPECT_EQ(std::memcmp(&in, &out, sizeof in), 0);
}

TEST(Channel, CommandRoundTrips) {
    for (CommandCode code :
         {CommandCode::kDrain, CommandCode::kPauseAccept, CommandCode::kResumeAccept,
          CommandCode::kReopenLogs, CommandCode::kStop}) {
        Command in = make_command(code);
        Command out{};
        ASSERT_EQ(decode_command(&in, sizeof in, out), DecodeStatus::kOk);
        EXPECT_EQ(out.code, static_cast<uint32_t>(code));
    }
}

TEST(Channel, RejectsWrongSizes) {
    Report r = sample_report();
    Report out{};
    EXPECT_EQ(decode_report(&r, sizeof r - 1, out), DecodeStatus::kBadLength);
    EXPECT_EQ(decode_report(&r, 3, out), DecodeStatus::kBadLength);
    EXPECT_EQ(decode_report(nullptr, 0, out), DecodeStatus::kBadLength);
    std::vector<unsigned char> longer(sizeof r + 8, 0);
    std::memcpy(longer.data(), &r, sizeof r);
    EXPECT_EQ(decode_report(longer.data(), longer.size(), out), DecodeStatus::kBadLength);
    r.header.length = sizeof r + 8;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadLength);
}

TEST(Channel, RejectsBadHeaders) {
    Report out{};
    Report r = sample_report();
    r.header.magic = 0;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadMagic);
    r = sample_report();
    r.header.version = 99;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadVersion);
    // Same size, written against another metric table.
    r = sample_report();
    r.layout ^= 1;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadVersion);
    Command c = make_command(CommandCode::kDrain);
    EXPECT_EQ(decode_report(&c, sizeof c, out), DecodeStatus::kBadType);
    Command cout{};
    r = sample_report();
    EXPECT_EQ(decode_command(&r, sizeof r, cout), DecodeStatus::kBadType);
}

TEST(Channel, RejectsOutOfRangeValues) {
    Report out{};
    Report r = sample_report();
    r.state = 3;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadValue);
    r = sample_report();
    r.accepting = 2;
    EXPECT_EQ(decode_report(&r, sizeof r, out), DecodeStatus::kBadValue);
    Command c = make_command(CommandCode::kDrain);
    Command cout{};
    c.code = 0;
    EXPECT_EQ(decode_command(&c, sizeof c, cout), DecodeStatus::kBadValue);
    c.code = 6;
    EXPECT_EQ(decode_command(&c, sizeof c, cout), DecodeStatus::kBadValue);
}

TEST(Channel, NamesEveryErrorClassAndStatus) {
    for (uint32_t i = 0; i < kErrorClassCount; ++i) {
        EXPECT_STRNE(error_class_name(i), "unknown") << i;
    }
    EXPECT_STREQ(error_class_name(kErrorClassCount), "unknown");
    EXPECT_STREQ(describe(DecodeStatus::kOk), "ok");
    EXPECT_STRNE(describe(DecodeStatus::kBadMagic), describe(DecodeStatus::kBadType));
}

UserSessions sample_user_sessions() {
    UserSessions r = make_user_sessions();
    r.pid = 1234;
    r.count = 2;
    r.users[0].sessions = 3;
    r.users[0].name_length = 5;
    std::memcpy(r.users[0].name, "alice", 5);
    r.users[1].sessions = 1;
    r.users[1].name_length = kMaxUserName;
    std::memset(r.users[1].name, 'x', kMaxUserName);
    return r;
}

TEST(Channel, UserSessionsRoundTrip) {
    UserSessions in = sample_user_sessions();
    EXPECT_EQ(record_type(&in, sizeof in), RecordType::kUserSessions);
    UserSessions out{};
    ASSERT_EQ(decode_user_sessions(&in, sizeof in, out), DecodeStatus::kOk);
    EXPECT_EQ(out.count, 2u);
    EXPECT_EQ(std::string(out.users[0].name, out.users[0].name_length), "alice");
    EXPECT_EQ(out.users[0].sessions, 3u);
    // A report is not user sessions, and the other way round.
    Report report = sample_report();
    EXPECT_EQ(record_type(&report, sizeof report), RecordType::kReport);
    EXPECT_EQ(decode_user_sessions(&report, sizeof report, out), DecodeStatus::kBadType);
    Report as_report{};
    EXPECT_EQ(decode_report(&in, sizeof in, as_report), DecodeStatus::kBadType);
}

TEST(Channel, UserSessionsRejectsBadEntries) {
    UserSessions out{};
    auto decoded = [&](void (*spoil)(UserSessions&)) {
        UserSessions r = sample_user_sessions();
        spoil(r);
        return decode_user_sessions(&r, sizeof r, out);
    };
    EXPECT_EQ(decoded([](UserSessions& r) { r.count = 0; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.count = kUsersPerRecord + 1; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.pid = 0; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.users[1].name_length = 0; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.users[1].name_length = kMaxUserName + 1; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.users[0].name[2] = '\0'; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](UserSessions& r) { r.header.magic = 0; }), DecodeStatus::kBadMagic);
    UserSessions r = sample_user_sessions();
    EXPECT_EQ(decode_user_sessions(&r, sizeof r - 1, out), DecodeStatus::kBadLength);
    EXPECT_FALSE(record_type(&r, 3));
    r.header.type = 99;
    EXPECT_FALSE(record_type(&r, sizeof r));
}

// The four shapes of route names, and the longest name there can be.
RouteStats sample_route_stats() {
    RouteStats r = make_route_stats();
    r.pid = 1234;
    const std::string longest(kMaxRouteName, 'p');
    const std::pair<std::string, std::string> routes[] = {
        {"direct", ""},     {"direct@127.0.0.2", ""},
        {"NAME", "NAME"},   {"NAME@2001:db8::7", "NAME"},
        {longest, longest},
    };
    for (const auto& [name, parent] : routes) {
        RouteStat& entry = r.routes[r.count++];
        EXPECT_TRUE(set_route_names(entry, name, parent)) << name;
        entry.active = r.count;
        entry.total_delta = 10 * r.count;
        entry.failures_delta = 100 * r.count;
        entry.down = r.count % 2;
    }
    return r;
}

TEST(Channel, RouteStatsRoundTrip) {
    RouteStats in = sample_route_stats();
    EXPECT_EQ(record_type(&in, sizeof in), RecordType::kRouteStats);
    RouteStats out{};
    ASSERT_EQ(decode_route_stats(&in, sizeof in, out), DecodeStatus::kOk);
    EXPECT_EQ(std::memcmp(&in, &out, sizeof in), 0);
    ASSERT_EQ(out.count, 5u);
    const RouteStat& v6 = out.routes[3];
    EXPECT_EQ(route_name(v6), "NAME@2001:db8::7");
    EXPECT_EQ(route_parent(v6), "NAME");
    EXPECT_EQ(route_source(v6), "2001:db8::7");
    EXPECT_EQ(v6.active, 4u);
    EXPECT_EQ(v6.total_delta, 40u);
    EXPECT_EQ(v6.failures_delta, 400u);
    EXPECT_EQ(v6.down, 0u);
    EXPECT_EQ(route_parent(out.routes[1]), "");  // direct
    EXPECT_EQ(route_source(out.routes[1]), "127.0.0.2");
    EXPECT_EQ(route_source(out.routes[2]), "");  // the kernel's choice
    // Other records are not route stats, and the other way round.
    Report report = sample_report();
    EXPECT_EQ(decode_route_stats(&report, sizeof report, out), DecodeStatus::kBadType);
    UserSessions users = sample_user_sessions();
    EXPECT_EQ(decode_route_stats(&users, sizeof users, out), DecodeStatus::kBadType);
    UserSessions as_users{};
    EXPECT_EQ(decode_user_sessions(&in, sizeof in, as_users), DecodeStatus::kBadType);
    Report as_report{};
    EXPECT_EQ(decode_report(&in, sizeof in, as_report), DecodeStatus::kBadType);
}

TEST(Channel, ClusterStatusRoundTripsAndRejectsBadValues) {
    ClusterStatus in = make_cluster_status();
    in.pid = 42;
    in.state = static_cast<uint32_t>(ClusterState::kDown);
    in.latency_ewma_us = 300;
    in.error_at_ms = 1764642000000;
    std::memcpy(in.error, "Connection refused", 18);
    in.error_length = 18;
    EXPECT_EQ(record_type(&in, sizeof in), RecordType::kClusterStatus);
    ClusterStatus out{};
    ASSERT_EQ(decode_cluster_status(&in, sizeof in, out), DecodeStatus::kOk);
    EXPECT_EQ(std::memcmp(&in, &out, sizeof in), 0);
    EXPECT_EQ(decode_cluster_status(&in, sizeof in - 1, out), DecodeStatus::kBadLength);
    ClusterStatus bad = in;
    bad.state = 4;
    EXPECT_EQ(decode_cluster_status(&bad, sizeof bad, out), DecodeStatus::kBadValue);
    bad = in;
    bad.error_length = kMaxClusterError + 1;
    EXPECT_EQ(decode_cluster_status(&bad, sizeof bad, out), DecodeStatus::kBadValue);
    bad = in;
    bad.error[3] = '\0';
    EXPECT_EQ(decode_cluster_status(&bad, sizeof bad, out), DecodeStatus::kBadValue);
    bad = in;
    bad.reserved[0] = 1;
    EXPECT_EQ(decode_cluster_status(&bad, sizeof bad, out), DecodeStatus::kBadValue);
    bad = in;
    bad.pid = 0;
    EXPECT_EQ(decode_cluster_status(&bad, sizeof bad, out), DecodeStatus::kBadValue);
    Report report = sample_report();
    EXPECT_EQ(decode_cluster_status(&report, sizeof report, out), DecodeStatus::kBadType);
}

TEST(Channel, RouteNamesThatCannotTravel) {
    RouteStat entry{};
    EXPECT_TRUE(set_route_names(entry, "direct", "direct"));  // a parent called "direct"
    EXPECT_EQ(entry.parent_length, 6u);
    EXPECT_TRUE(set_route_names(entry, "a@::1", "a"));
    EXPECT_FALSE(set_route_names(entry, "", ""));
    EXPECT_FALSE(set_route_names(entry, std::string(kMaxRouteName + 1, 'p'), "p"));
    EXPECT_FALSE(set_route_names(entry, std::string("a\0b", 3), "a"));
    EXPECT_FALSE(set_route_names(entry, "a@127.0.0.2", "b"));   // not its parent
    EXPECT_FALSE(set_route_names(entry, "ab@127.0.0.2", "a"));  // a prefix, not the part
    EXPECT_FALSE(set_route_names(entry, "a", "a@"));            // longer than the part
    EXPECT_FALSE(set_route_names(entry, "a@127.0.0.2", ""));    // direct, but named a
    EXPECT_FALSE(set_route_names(entry, "directly", ""));       // idem
    EXPECT_FALSE(set_route_names(entry, "a@", "a"));            // no source after '@'
    EXPECT_FALSE(set_route_names(entry, "a@1@2", "a"));         // two '@'
    EXPECT_FALSE(set_route_names(entry, "a", "abc"));           // longer than the name
}

TEST(Channel, RouteStatsRejectsBadEntries) {
    RouteStats out{};
    auto decoded = [&](void (*spoil)(RouteStats&)) {
        RouteStats r = sample_route_stats();
        spoil(r);
        return decode_route_stats(&r, sizeof r, out);
    };
    EXPECT_EQ(decoded([](RouteStats&) {}), DecodeStatus::kOk);
    EXPECT_EQ(decoded([](RouteStats& r) { r.count = 0; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.count = kRoutesPerRecord + 1; }),
              DecodeStatus::kBadValue);
    // The entries in use must be whole; those past `count` are not read.
    EXPECT_EQ(decoded([](RouteStats& r) { r.count = 6; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.count = 4; }), DecodeStatus::kOk);
    EXPECT_EQ(decoded([](RouteStats& r) { r.pid = 0; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.pid = -1; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[0].down = 2; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[1].reserved[4] = 1; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[2].name_length = 0; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[4].name_length = kMaxRouteName + 1; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[3].name[1] = '\0'; }), DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[3].name[8] = '@'; }), DecodeStatus::kBadValue);
    // The kind must match the name: "NAME" is no direct route, "direct" has
    // no parent of 3 bytes, and a parent is the whole part before '@'.
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[2].parent_length = 0; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[0].parent_length = 3; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[3].parent_length = 3; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[2].parent_length = 5; }),
              DecodeStatus::kBadValue);
    EXPECT_EQ(decoded([](RouteStats& r) { r.routes[0].parent_length = 6; }),
              DecodeStatus::kOk);  // a parent called "direct"
    EXPECT_EQ(decoded([](RouteStats& r) { r.header.magic = 0; }), DecodeStatus::kBadMagic);
    EXPECT_EQ(decoded([](RouteStats& r) { r.header.version = 1; }), DecodeStatus::kBadVersion);
    EXPECT_EQ(decoded([](RouteStats& r) { r.header.length -= 1; }), DecodeStatus::kBadLength);
    RouteStats r = sample_route_stats();
    EXPECT_EQ(decode_route_stats(&r, sizeof r - 1, out), DecodeStatus::kBadLength);
    std::vector<unsigned char> longer(sizeof r + 8, 0);
    std::memcpy(longer.data(), &r, sizeof r);
    EXPECT_EQ(decode_route_stats(longer.data(), longer.size(), out), DecodeStatus::kBadLength);
    EXPECT_EQ(decode_route_stats(nullptr, 0, out), DecodeStatus::kBadLength);
}

// SEQPACKET keeps record boundaries: one send is one recv.
TEST(Channel, TravelsOverSeqpacketSocketpair) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
    Report r = sample_report();
    Command c = make_command(CommandCode::kStop);
    ASSERT_EQ(send(fds[0], &r, sizeof r, 0), static_cast<ssize_t>(sizeof r));
    ASSERT_EQ(send(fds[1], &c, sizeof c, 0), static_cast<ssize_t>(sizeof c));
    unsigned char buf[sizeof(Report) + 16];
    ssize_t n = recv(fds[1], buf, sizeof buf, 0);
    Report got{};
    EXPECT_EQ(decode_report(buf, static_cast<size_t>(n), got), DecodeStatus::kOk);
    n = recv(fds[0], buf, sizeof buf, 0);
    Command cgot{};
    EXPECT_EQ(decode_command(buf, static_cast<size_t>(n), cgot), DecodeStatus::kOk);
    close(fds[0]);
    close(fds[1]);
}

}  // namespace
}  // namespace common::channel
