// The supervisor's pure policy: exit classification, backoff, balancing;
// the metric table's way into the `workers` and `stats` answers; and the
// routes' counters from the workers' records to `routes` and `stats`.
#include "master/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "master/route_status.h"

namespace master {
namespace {

// A real wait status for "exited with `code`" or "killed by `sig`".
int wait_status_of(int code, int sig) {
    pid_t pid = fork();
    if (pid == 0) {
        if (sig != 0) {
            signal(sig, SIG_DFL);
            kill(getpid(), sig);
        }
        _exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

TEST(ClassifyExit, ExitCodes) {
    EXPECT_EQ(classify_exit(wait_status_of(0, 0), 0), ExitKind::kClean);
    EXPECT_EQ(classify_exit(wait_status_of(3, 0), 0), ExitKind::kFatalConfig);
    EXPECT_EQ(classify_exit(wait_status_of(1, 0), 0), ExitKind::kFailed);
    EXPECT_EQ(describe_exit(wait_status_of(3, 0)), "exited with code 3");
}

TEST(ClassifyExit, CrashSignalsNotSentByUs) {
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
        int status = wait_status_of(0, sig);
        EXPECT_EQ(classify_exit(status, 0), ExitKind::kCrashed) << sig;
        // A SIGTERM we sent earlier does not make a later crash ours.
        EXPECT_EQ(classify_exit(status, SIGTERM), ExitKind::kCrashed) << sig;
    }
    EXPECT_EQ(describe_exit(wait_status_of(0, SIGSEGV)).rfind("killed by signal 11 (", 0), 0u);
}

TEST(ClassifyExit, SignalsWeSentAreExpected) {
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGABRT), SIGABRT), ExitKind::kKilledByUs);
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGKILL), SIGKILL), ExitKind::kKilledByUs);
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGTERM), SIGTERM), ExitKind::kKilledByUs);
}

TEST(ClassifyExit, SignalsFromOutside) {
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGKILL), 0), ExitKind::kKilledOutside);
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGTERM), 0), ExitKind::kKilledOutside);
    EXPECT_EQ(classify_exit(wait_status_of(0, SIGKILL), SIGABRT), ExitKind::kKilledOutside);
}

TEST(Backoff, ImmediateThenDoublingUpToThirtySeconds) {
    EXPECT_EQ(backoff_delay(0).count(), 0);
    EXPECT_EQ(backoff_delay(1).count(), 0);
    EXPECT_EQ(backoff_delay(2).count(), 100);
    EXPECT_EQ(backoff_delay(3).count(), 200);
    EXPECT_EQ(backoff_delay(4).count(), 400);
    EXPECT_EQ(backoff_delay(10).count(), 25600);
    EXPECT_EQ(backoff_delay(11).count(), 30000);
    EXPECT_EQ(backoff_delay(1000).count(), 30000);
}

std::vector<BalanceAction> plan(std::vector<BalanceInput> in) {
    return plan_balance(in);
}

TEST(Balance, PausesTheBusiestWorker) {
    auto a = plan({{10, false}, {10, false}, {40, false}});
    EXPECT_EQ(a[0], BalanceAction::kNone);
    EXPECT_EQ(a[1], BalanceAction::kNone);
    EXPECT_EQ(a[2], BalanceAction::kPause);  // mean 20: 40 > 26
}

TEST(Balance, SmallDifferencesAreLeftAlone) {
    auto a = plan({{0, false}, {3, false}});  // mean 1.5: 3 < 3.8
    EXPECT_EQ(a[0], BalanceAction::kNone);
    EXPECT_EQ(a[1], BalanceAction::kNone);
}

TEST(Balance, ResumesAtOrBelowTheMean) {
    auto a = plan({{10, true}, {10, false}});
    EXPECT_EQ(a[0], BalanceAction::kResume);
    auto b = plan({{30, true}, {10, false}});  // mean 20: still above
    EXPECT_EQ(b[0], BalanceAction::kNone);
}

TEST(Balance, SingleWorkerIsAlwaysResumed) {
    auto a = plan({{100, true}});
    EXPECT_EQ(a[0], BalanceAction::kResume);
    EXPECT_TRUE(plan({}).empty());
}

TEST(Balance, NeverPausesEveryWorker) {
    // Worker 0 is paused and stays paused (above the mean); worker 1 is far
    // above the band too, but it is the last one accepting.
    auto a = plan({{100, true}, {60, false}, {0, true}});
    int accepting = 0;
    bool paused[] = {true, false, true};
    for (size_t i = 0; i < a.size(); ++i) {
        bool p = paused[i];
        if (a[i] == BalanceAction::kPause) p = true;
        if (a[i] == BalanceAction::kResume) p = false;
        if (!p) ++accepting;
    }
    EXPECT_GE(accepting, 1);
}

// Metric k, label value i holds 1000 * (k + 1) + i: every field distinct.
common::metrics::Counters distinct_counters() {
    common::metrics::Counters c;
    uint64_t k = 0;
    for (const common::metrics::Metric& m : common::metrics::kMetrics) {
        ++k;
        for (uint32_t i = 0; i < m.size(); ++i) m.values(c)[i] = 1000 * k + i;
    }
    return c;
}

TEST(Reporting, EveryMetricReachesTheWorkersAnswer) {
    const common::metrics::Counters c = distinct_counters();
    common::Json item = common::Json::object();
    add_worker_metrics(item, c);
    EXPECT_EQ(item.size(), std::size(common::metrics::kMetrics));
    for (const common::metrics::Metric& m : common::metrics::kMetrics) {
        const common::Json& field = item[std::string(m.name)];
        if (m.label.none()) {
            EXPECT_EQ(field, m.values(c)[0]) << m.name;
            continue;
        }
        ASSERT_TRUE(field.is_object()) << m.name;
        for (uint32_t i = 0; i < m.labelled_values(); ++i) {
            const common::Json& at = m.label.two() ? field[m.first_value(i)][m.second_value(i)]
                                                   : field[m.first_value(i)];
            EXPECT_EQ(at, m.values(c)[i]) << m.name << " " << m.first_value(i);
        }
        if (m.type == common::metrics::Type::kHistogram) {
            EXPECT_EQ(field["sum_us"], m.values(c)[m.labelled_values()]) << m.name;
        }
    }
    // Today's shape, which scripts read.
    EXPECT_TRUE(item["errors"]["denied"].is_number_unsigned());
    EXPECT_TRUE(item["rss_bytes"].is_number_unsigned());
}

TEST(Reporting, StatsSumsEveryFoldedMetricOverWorkers) {
    const common::metrics::Counters c = distinct_counters();
    // What stats_json() does with one exited and two live workers.
    common::metrics::Counters totals;
    common::metrics::add_counters(totals, c);
    common::metrics::add_summed(totals, c);
    common::metrics::add_summed(totals, c);
    common::Json stats = common::Json::object();
    add_stats_metrics(stats, totals);
    for (const common::metrics::Metric& m : common::metrics::kMetrics) {
        const std::string name(m.name);
        if (m.fold != common::metrics::Fold::kSum) {
            EXPECT_FALSE(stats.contains(name)) << name;
            continue;
        }
        const uint64_t live = m.type != common::metrics::Type::kGauge ? 3 : 2;
        EXPECT_EQ(stats.value(name, uint64_t{0}), live * m.total(c)) << name;
        if (m.label.none()) continue;
        std::string by_name = name + "_by_" + m.label.first.name;
        if (m.label.two()) by_name += std::string("_") + m.label.second.name;
        const common::Json& by = stats[by_name];
        for (uint32_t i = 0; i < m.labelled_values(); ++i) {
            const common::Json& at =
                m.label.two() ? by[m.first_value(i)][m.second_value(i)] : by[m.first_value(i)];
            EXPECT_EQ(at, live * m.values(c)[i]) << name << " " << m.first_value(i);
        }
    }
    // The contract's fields, in today's shape.
    for (const char* key : {"active_sessions", "total_sessions", "requests", "tunnels", "accepts",
                            "bytes_in", "bytes_out", "errors"}) {
        EXPECT_TRUE(stats[key].is_number_unsigned()) << key;
    }
    EXPECT_TRUE(stats["errors_by_class"]["timeout"].is_number_unsigned());
}

// ---- routes ----------------------------------------------------------------

namespace ch = common::channel;

struct Entry {
    std::string name;
    std::string parent;  // empty: direct
    uint64_t active = 0;
    uint64_t total = 0;
    uint64_t failures = 0;
    bool down = false;
};

ch::RouteStats record(pid_t pid, const std::vector<Entry>& entries) {
    ch::RouteStats r = ch::make_route_stats();
    r.pid = pid;
    for (const Entry& e : entries) {
        ch::RouteStat& entry = r.routes[r.count++];
        EXPECT_TRUE(ch::set_route_names(entry, e.name, e.parent)) << e.name;
        entry.active = e.active;
        entry.total_delta = e.total;
        entry.failures_delta = e.failures;
        entry.down = e.down ? 1 : 0;
    }
    // What the master reads has been through the decoder.
    ch::RouteStats decoded;
    EXPECT_EQ(ch::decode_route_stats(&r, sizeof r, decoded), ch::DecodeStatus::kOk);
    return decoded;
}

// The `routes` entry called `name`, or null.
common::Json route(const common::Json& routes, const std::string& name) {
    for (const common::Json& r : routes) {
        if (r["name"] == name) return r;
    }
    return common::Json();
}

TEST(SupervisorRoutes, TotalsSurviveAWorkersExitItsGaugesDoNot) {
    RouteStatus status;
    status.on_record(100, record(100, {{"a@127.0.0.2", "a", 3, 10, 1, false}}));
    status.on_record(200, record(200, {{"a@127.0.0.2", "a", 2, 5, 0, true}}));
    common::Json a = route(status.routes_json(), "a@127.0.0.2");
    EXPECT_EQ(a["parent"], "a");
    EXPECT_EQ(a["source"], "127.0.0.2");
    EXPECT_EQ(a["active"], 5u);
    EXPECT_EQ(a["total"], 15u);
    EXPECT_EQ(a["failures"], 1u);
    EXPECT_EQ(a["state"], "down");  // one worker holds it down
    EXPECT_EQ(a["down_workers"], 1u);
    EXPECT_EQ(a["workers"], 2u);
    // Active and down replace what the worker said; increases add up.
    status.on_record(100, record(100, {{"a@127.0.0.2", "a", 1, 4, 2, false}}));
    a = route(status.routes_json(), "a@127.0.0.2");
    EXPECT_EQ(a["active"], 3u);
    EXPECT_EQ(a["total"], 19u);
    EXPECT_EQ(a["failures"], 3u);
    // The worker that held it down is reaped: its sessions and its view go.
    status.worker_exited(200);
    a = route(status.routes_json(), "a@127.0.0.2");
    EXPECT_EQ(a["active"], 1u);
    EXPECT_EQ(a["total"], 19u);
    EXPECT_EQ(a["state"], "up");
    EXPECT_EQ(a["down_workers"], 0u);
    EXPECT_EQ(a["workers"], 1u);
    status.worker_exited(100);
    a = route(status.routes_json(), "a@127.0.0.2");
    EXPECT_EQ(a["active"], 0u);
    EXPECT_EQ(a["total"], 19u);
    EXPECT_EQ(a["failures"], 3u);
    EXPECT_EQ(a["workers"], 0u);
}

TEST(SupervisorRoutes, SortedByNameWithDirectAndTheKernelsChoiceAsNull) {
    RouteStatus status;
    status.on_record(100, record(100, {{"direct@::1", ""},
                                       {"b", "b"},
                                       {"a@2001:db8::7", "a"},
                                       {"direct", ""},
                                       {"direct", "direct"}}));
    const common::Json routes = status.routes_json();
    ASSERT_EQ(routes.size(), 5u);
    std::vector<std::string> names;
    for (const common::Json& r : routes) names.push_back(r["name"]);
    EXPECT_EQ(names,
              (std::vector<std::string>{"a@2001:db8::7", "b", "direct", "direct", "direct@::1"}));
    EXPECT_EQ(routes[0]["source"], "2001:db8::7");
    EXPECT_TRUE(routes[1]["source"].is_null());
    // The direct route, then a parent called "direct": two routes.
    EXPECT_TRUE(routes[2]["parent"].is_null());
    EXPECT_EQ(routes[3]["parent"], "direct");
    EXPECT_TRUE(routes[4]["parent"].is_null());
    EXPECT_EQ(routes[4]["source"], "::1");
    for (const char* key : {"name", "parent", "source", "active", "total", "failures", "state",
                            "down_workers", "workers"}) {
        EXPECT_TRUE(routes[0].contains(key)) << key;
    }
}

TEST(SupervisorRoutes, ParentsSumTheirRoutesAndAreDownWhenAllAre) {
    RouteStatus status;
    status.on_record(100, record(100, {{"a@127.0.0.2", "a", 1, 10, 2, true},
                                       {"a@127.0.0.3", "a", 2, 20, 0, false},
                                       {"b@127.0.0.2", "b", 0, 5, 5, true}}));
    status.on_record(200, record(200, {{"a@127.0.0.3", "a", 4, 1, 1, false}}));
    common::Json parents = status.parents_json();
    ASSERT_EQ(parents.size(), 2u);
    EXPECT_EQ(parents["a"]["active"], 7u);
    EXPECT_EQ(parents["a"]["total"], 31u);
    EXPECT_EQ(parents["a"]["failures"], 3u);
    EXPECT_EQ(parents["a"]["state"], "up");  // a@127.0.0.3 is up
    EXPECT_EQ(parents["b"]["state"], "down");
    // Down in one worker is down: every route of a is now.
    status.on_record(200, record(200, {{"a@127.0.0.3", "a", 4, 0, 3, true}}));
    parents = status.parents_json();
    EXPECT_EQ(parents["a"]["state"], "down");
    EXPECT_EQ(parents["a"]["failures"], 6u);
    // Direct routes belong to no parent.
    RouteStatus direct;
    direct.on_record(100, record(100, {{"direct@127.0.0.2", "", 1, 1, 0, false}}));
    EXPECT_TRUE(direct.parents_json().empty());
    EXPECT_TRUE(direct.parents_json().is_object());
}

// Like the users a new users file drops, the routes a reload removed are
// forgotten, once no live worker (an old one, draining) reports them.
TEST(SupervisorRoutes, ReloadForgetsRemovedRoutesOnceNoWorkerReportsThem) {
    auto config = std::make_shared<common::Config>();
    config->route.parents = {"a"};
    config->route.source_addresses = {*common::SocketAddress::from_numeric("127.0.0.2", 0),
                                      *common::SocketAddress::from_numeric("::1", 0)};
    RouteStatus status;
    status.on_record(100, record(100, {{"a@127.0.0.2", "a", 0, 3, 0, false},
                                       {"a@::1", "a", 0, 4, 0, false},
                                       {"b@127.0.0.2", "b", 1, 5, 0, false},
                                       {"a", "a", 0, 6, 0, false},
                                       {"direct@127.0.0.2", "", 0, 7, 0, false}}));
    status.configure(config);
    EXPECT_EQ(status.routes_json().size(), 5u);  // worker 100 still reports them
    status.worker_exited(100);
    const common::Json routes = status.routes_json();
    ASSERT_EQ(routes.size(), 2u);
    EXPECT_EQ(routes[0]["name"], "a@127.0.0.2");
    EXPECT_EQ(routes[0]["total"], 3u);
    EXPECT_EQ(routes[1]["name"], "a@::1");
    // Without parents and source addresses, "direct" alone is configured.
    auto direct = std::make_shared<common::Config>();
    status.on_record(
        300, record(300, {{"direct", "", 0, 1, 0, false}, {"direct", "direct", 0, 1, 0, false}}));
    status.configure(direct);
    status.worker_exited(300);
    ASSERT_EQ(status.routes_json().size(), 1u);
    EXPECT_TRUE(status.routes_json()[0]["parent"].is_null());
}

// The supervisor's answers carry them: `routes`, and `parents` in `stats`.
TEST(SupervisorRoutes, AnswersHaveTheirFields) {
    std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), event_base_free);
    ASSERT_TRUE(base);
    Supervisor supervisor(base.get());
    EXPECT_TRUE(supervisor.routes_json().is_array());
    const common::Json stats = supervisor.stats_json();
    ASSERT_TRUE(stats.contains("parents"));
    EXPECT_TRUE(stats["parents"].is_object());
}

TEST(WorkerStatus, Names) {
    EXPECT_STREQ(status_name(WorkerStatus::kStarting), "starting");
    EXPECT_STREQ(status_name(WorkerStatus::kRunning), "running");
    EXPECT_STREQ(status_name(WorkerStatus::kDraining), "draining");
}

}  // namespace
}  // namespace master
