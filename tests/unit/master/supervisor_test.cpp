// The supervisor's pure policy: exit classification, backoff, balancing; and
// the metric table's way into the `workers` and `stats` answers.
#include "master/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

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
        if (m.label.name == nullptr) {
            EXPECT_EQ(field, m.values(c)[0]) << m.name;
            continue;
        }
        ASSERT_TRUE(field.is_object()) << m.name;
        EXPECT_EQ(field.size(), m.size()) << m.name;
        for (uint32_t i = 0; i < m.size(); ++i) {
            EXPECT_EQ(field.value(m.label.values(i), uint64_t{0}), m.values(c)[i])
                << m.name << " " << m.label.values(i);
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
        const uint64_t live = m.type == common::metrics::Type::kCounter ? 3 : 2;
        EXPECT_EQ(stats.value(name, uint64_t{0}), live * m.total(c)) << name;
        if (m.label.name == nullptr) continue;
        const common::Json& by = stats[name + "_by_" + m.label.name];
        for (uint32_t i = 0; i < m.size(); ++i) {
            EXPECT_EQ(by.value(m.label.values(i), uint64_t{0}), live * m.values(c)[i])
                << name << " " << m.label.values(i);
        }
    }
    // The contract's fields, in today's shape.
    for (const char* key : {"active_sessions", "total_sessions", "requests", "tunnels", "accepts",
                            "bytes_in", "bytes_out", "errors"}) {
        EXPECT_TRUE(stats[key].is_number_unsigned()) << key;
    }
    EXPECT_TRUE(stats["errors_by_class"]["timeout"].is_number_unsigned());
}

TEST(WorkerStatus, Names) {
    EXPECT_STREQ(status_name(WorkerStatus::kStarting), "starting");
    EXPECT_STREQ(status_name(WorkerStatus::kRunning), "running");
    EXPECT_STREQ(status_name(WorkerStatus::kDraining), "draining");
}

}  // namespace
}  // namespace master
