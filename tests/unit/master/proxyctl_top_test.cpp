// proxyctl top's view: snapshots from `workers` answers, rates between two
// reports of a worker, and the lines drawn from them.
#include "master/proxyctl_top.h"

#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

namespace master::proxyctl {
namespace {

// One worker of a `workers` answer.
Json worker(int64_t pid, int64_t requests, int64_t bytes_in, int64_t bytes_out,
            Json last_report_ms) {
    Json w;
    w["pid"] = pid;
    w["slot"] = 0;
    w["generation"] = 2;
    w["state"] = "running";
    w["active_sessions"] = 3;
    w["requests"] = requests;
    w["bytes_in"] = bytes_in;
    w["bytes_out"] = bytes_out;
    w["rss_bytes"] = 4 * 1024 * 1024;
    w["last_report_ms"] = std::move(last_report_ms);
    return w;
}

Snapshot snap(double taken_ms, std::vector<Json> workers) {
    Json answer;
    answer["ok"] = true;
    answer["workers"] = Json::array();
    for (Json& w : workers) answer["workers"].push_back(std::move(w));
    return snapshot_from_answer(answer, taken_ms, 0);
}

std::vector<std::string> columns(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string word; in >> word;) out.push_back(word);
    return out;
}

// The worker line of `pid` split into columns; empty when absent.
std::vector<std::string> row(const std::vector<std::string>& lines, int64_t pid) {
    for (size_t i = 3; i < lines.size(); ++i) {
        auto cols = columns(lines[i]);
        if (!cols.empty() && cols[0] == std::to_string(pid)) return cols;
    }
    return {};
}

// PID SLOT GEN STATE SESS REQ/S IN/S OUT/S RSS LAST
enum Col { kPid, kSlot, kGen, kState, kSess, kReq, kIn, kOut, kRss, kLast, kColumns };

TEST(ProxyctlTop, FirstViewHasNoRatesButEveryWorker) {
    Snapshot now = snap(5000, {worker(101, 10, 0, 0, 100), worker(102, 0, 0, 0, nullptr)});
    auto lines = render(Snapshot{}, now);
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_EQ(columns(lines[2]),
              (std::vector<std::string>{"PID", "SLOT", "GEN", "STATE", "SESS", "REQ/S", "IN/S",
                                        "OUT/S", "RSS", "LAST"}));
    auto a = row(lines, 101);
    ASSERT_EQ(a.size(), size_t{kColumns}) << lines[3];
    EXPECT_EQ(a[kGen], "2");
    EXPECT_EQ(a[kState], "running");
    EXPECT_EQ(a[kSess], "3");
    EXPECT_EQ(a[kReq], "-");
    EXPECT_EQ(a[kIn], "-");
    EXPECT_EQ(a[kRss], "4.0M");
    EXPECT_EQ(a[kLast], "100ms");
    auto b = row(lines, 102);
    ASSERT_EQ(b.size(), size_t{kColumns});
    EXPECT_EQ(b[kLast], "-");  // no report yet
    EXPECT_NE(lines[0].find("2 workers"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("6 sessions"), std::string::npos) << lines[0];
}

TEST(ProxyctlTop, RatesAreMeasuredBetweenReportsNotQuestions) {
    // Reported at 900 and at 1900 (1 s apart), asked at 1000 and 2300.
    Snapshot first = snap(1000, {worker(7, 100, 10000, 20000, 100)});
    Snapshot second = snap(2300, {worker(7, 150, 10000 + 2048, 20000 + 4096, 400)});
    Snapshot base = advance_baseline(Snapshot{}, first, second);
    auto r = row(render(base, second), 7);
    ASSERT_EQ(r.size(), size_t{kColumns});
    EXPECT_EQ(r[kReq], "50.0");
    EXPECT_EQ(r[kIn], "2.0K");
    EXPECT_EQ(r[kOut], "4.0K");
    EXPECT_EQ(r[kLast], "400ms");
    auto lines = render(base, second);
    EXPECT_NE(lines[0].find("50.0 req/s"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("in 2.0K/s"), std::string::npos) << lines[0];
}

TEST(ProxyctlTop, ARefreshFasterThanTheHeartbeatKeepsTheRate) {
    // Report A at 900, report B at 1900; asked at 1000 (A), 2000 (B), 2200 (B again).
    Snapshot s1 = snap(1000, {worker(7, 0, 0, 0, 100)});
    Snapshot s2 = snap(2000, {worker(7, 30, 0, 0, 100)});
    Snapshot s3 = snap(2200, {worker(7, 30, 0, 0, 300)});
    Snapshot base = advance_baseline(Snapshot{}, s1, s2);
    EXPECT_EQ(row(render(base, s2), 7)[kReq], "30.0");
    // Between s2 and s3 no report came: the rate stays measured from A to B,
    // rather than 0 (same counters) or nothing.
    base = advance_baseline(base, s2, s3);
    EXPECT_EQ(row(render(base, s3), 7)[kReq], "30.0");
    // Only two samples of one report: no rate yet.
    Snapshot only = advance_baseline(Snapshot{}, s2, s3);
    EXPECT_EQ(row(render(only, s3), 7)[kReq], "-");
}

TEST(ProxyctlTop, NewAndRestartedWorkersHaveNoRate) {
    Snapshot s1 = snap(1000, {worker(7, 500, 500, 500, 0)});
    // Pid 7 reused by a fresh worker (counters went back); pid 8 is new.
    Snapshot s2 = snap(2000, {worker(7, 5, 5, 5, 0), worker(8, 1, 1, 1, 0)});
    Snapshot base = advance_baseline(Snapshot{}, s1, s2);
    auto lines = render(base, s2);
    EXPECT_EQ(row(lines, 7)[kReq], "-");
    EXPECT_EQ(row(lines, 8)[kReq], "-");
    EXPECT_NE(lines[0].find("- req/s"), std::string::npos) << lines[0];
    // A worker gone from the answer leaves the baseline.
    Snapshot s3 = snap(3000, {worker(8, 11, 1, 1, 0)});
    base = advance_baseline(base, s2, s3);
    EXPECT_EQ(base.workers.size(), 1u);
    EXPECT_EQ(row(render(base, s3), 8)[kReq], "10.0");
}

TEST(ProxyctlTop, LabelledCountersAreSummed) {
    Json w1 = worker(9, 0, 0, 0, 0);
    Json w2 = worker(9, 0, 0, 0, 0);
    w1["requests"] = Json{{"http", {{"2xx", 1}, {"5xx", 1}}}, {"socks", 2}};
    w2["requests"] = Json{{"http", {{"2xx", 11}, {"5xx", 1}}}, {"socks", 12}};
    Snapshot s1 = snap(1000, {w1});
    Snapshot s2 = snap(2000, {w2});
    EXPECT_EQ(row(render(advance_baseline(Snapshot{}, s1, s2), s2), 9)[kReq], "20.0");
}

TEST(ProxyctlTop, AnAnswerOfAnyShapeRendersWithoutThrowing) {
    for (const char* text :
         {"{}", "[]", "null", R"({"workers":7})", R"({"workers":[1,"x",null,{}]})",
          R"({"workers":[{"pid":"x","requests":-5,"last_report_ms":"soon","state":7}]})",
          R"({"workers":[{"pid":1e300,"requests":1e300,"rss_bytes":-1e300}]})"}) {
        Json answer = common::parse_untrusted(text);
        Snapshot s = snapshot_from_answer(answer, 1000, 0);
        Snapshot t = snapshot_from_answer(answer, 2000, 0);
        auto lines = render(advance_baseline(Snapshot{}, s, t), t);
        EXPECT_GE(lines.size(), 3u) << text;
    }
}

TEST(ProxyctlTop, LongSilenceReadsInSeconds) {
    auto r = row(render(Snapshot{}, snap(0, {worker(5, 0, 0, 0, 12500)})), 5);
    EXPECT_EQ(r[kLast], "12s");
}

}  // namespace
}  // namespace master::proxyctl
